"""``alignment-eval extract``: cross-attention of a checkpoint -> word alignments -> AER table.

For every decoder layer, every head and the head average, every induction
method and both normal and shifted attention (see :mod:`alignment_eval.alignments.induce`),
writes one 0-based Pharaoh file in the text's ``source-target`` orientation and,
given a gold file, scores each against it.  Layers and heads are numbered from 1
in file names and reports (layer 1 = the first decoder layer).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Set, Union

import numpy as np

from nmt_common.files import atomic_write_text, json_text
from nmt_common.markdown import markdown_table as common_markdown_table
from nmt_common.records import to_json

from ..alignments.aer import AER
from ..alignments.induce import DEFAULT_THRESHOLD, METHODS, SUBWORD_RULES, target_rows, word_links_batch
from ..alignments.io import (
    Link,
    SentencePair,
    check_line_counts,
    read_gold_alignments,
    read_parallel_text,
    write_alignments,
)
from ..alignments.records import AerReport, AerRow, best_rows
from .model_attention import encode_pairs, load_model, record_pairs

Head = Union[int, str]  # 1-based head number or "avg"


@dataclass(frozen=True)
class AlignmentKey:
    """Which attention an alignment comes from."""

    layer: int  # 1-based decoder layer
    head: Head  # 1-based head or "avg"
    method: str
    shift: bool

    @property
    def file_name(self) -> str:
        head = self.head if self.head == "avg" else f"head{self.head}"
        return f"layer{self.layer}.{head}.{self.method}.{'shift' if self.shift else 'normal'}.align"


def extract_alignments(
    loaded,
    pairs: Sequence[SentencePair],
    *,
    reverse: bool = False,
    methods: Sequence[str] = METHODS,
    rule: str = "any",
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 32,
) -> Dict[AlignmentKey, List[Set[Link]]]:
    """Word alignments of every (layer, head|avg, method, shift) for ``pairs``.

    ``loaded`` comes from :func:`~alignment_eval.analysis.model_attention.load_model`.  Links
    are 0-based ``(text source word, text target word)``; with ``reverse`` the
    model translates the text's target side into its source side.
    """
    encoded = encode_pairs(loaded, pairs, reverse=reverse)
    results: Dict[AlignmentKey, List[Set[Link]]] = {}
    for index, record in record_pairs(loaded, encoded, batch_size=batch_size):
        pair = encoded[index]
        cross = record.cross.numpy()  # [layers, heads, decoder positions, source pieces + EOS]
        # [layers, heads + 1, positions, sources]: the head average as an extra head
        with_average = np.concatenate([cross, cross.mean(axis=1, keepdims=True)], axis=1)
        layers, heads_plus_one = with_average.shape[:2]
        n_pieces = len(pair.target_ids)
        for shift in (False, True):
            rows = target_rows(with_average, n_pieces, shift)  # [layers, heads+1, target pieces, source pieces]
            # [layers, heads+1, T, S] -> [layers*(heads+1), T, S]: one induction call per method
            flat = rows.reshape(layers * heads_plus_one, *rows.shape[2:])
            for method in methods:
                per_matrix = word_links_batch(
                    flat, pair.target_word_of_piece, pair.source_word_of_piece,
                    pair.n_target_words, pair.n_source_words, method, rule, threshold,
                )
                for flat_index, links in enumerate(per_matrix):
                    layer, head = divmod(flat_index, heads_plus_one)
                    head_name: Head = "avg" if head == heads_plus_one - 1 else head + 1
                    if reverse:
                        links = {(t, s) for s, t in links}
                    results.setdefault(AlignmentKey(layer + 1, head_name, method, shift), []).append(links)
    return results


def score_table(
    alignments: Dict[AlignmentKey, List[Set[Link]]],
    metric: AER,
    *,
    rule: str,
) -> List[AerRow]:
    """One ``aer.json`` row per alignment key, scored by ``metric`` (whose signature each row carries)."""
    return [
        AerRow.from_result(
            metric.score(hypothesis, layer=key.layer, head=key.head, method=key.method, shift=key.shift, subword=rule),
            layer=key.layer, head=key.head, method=key.method, shift=key.shift, file=key.file_name,
        )
        for key, hypothesis in alignments.items()
    ]


def markdown_table(best: Dict[str, AerRow]) -> str:
    """The best rows as a Markdown table (:func:`nmt_common.markdown.markdown_table`), with a final newline."""
    header = ["method", "attention", "heads", "best layer", "best head", "AER", "precision", "recall"]
    table = []
    for name, row in best.items():
        method, shift, kind = name.split(".")
        table.append([method, shift, "average" if kind == "avg" else "best head", row.layer, row.head,
                      f"{row.aer:.3f}", f"{row.precision:.3f}", f"{row.recall:.3f}"])
    return common_markdown_table(header, table) + "\n"


# --- command ------------------------------------------------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by the commands that run a checkpoint."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint trained with --user-dir fairseq_plugins")
    parser.add_argument("--text", required=True, help="'SOURCE ||| TARGET' tokenised text (e.g. the gold set's)")
    parser.add_argument("--data-dir", help="binarized data folder with the dictionaries (default: the checkpoint's)")
    parser.add_argument("--spm", help="joint SentencePiece model (default: tokens are used as they are)")
    parser.add_argument("--source-spm", help="SentencePiece model of the model's source side")
    parser.add_argument("--target-spm", help="SentencePiece model of the model's target side")
    parser.add_argument(
        "--reverse", action="store_true", help="the model translates the text's TARGET side into its SOURCE side"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default: 32)")


def load_from_args(args: argparse.Namespace):
    return load_model(
        args.checkpoint, data_dir=args.data_dir, spm=args.spm,
        source_spm=args.source_spm, target_spm=args.target_spm,
    )


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="cross-attention of a checkpoint -> word alignments per layer/head/method, and their AER",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    add_model_arguments(parser)
    parser.add_argument("--out-dir", required=True, help="folder for alignments/, aer.json and aer.md")
    parser.add_argument("--gold", help="gold alignment of --text (i-j sure, ipj possible)")
    parser.add_argument("--gold-one-based", action="store_true", help="gold indices start at 1 (the shared sets do)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="row-normalised weight needed by the threshold method (default: %(default)s)")
    parser.add_argument("--subword-rule", choices=SUBWORD_RULES, default="any",
                        help="any: words linked when any pieces are; mean: pool weights to words first")
    parser.add_argument("--json", action="store_true", help="print the AER table as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pairs = read_parallel_text(args.text)
    gold = None
    if args.gold:
        gold = read_gold_alignments(args.gold, one_based=args.gold_one_based, texts=pairs, text_path=args.text)
        check_line_counts(args.gold, len(gold), args.text, len(pairs))
    loaded = load_from_args(args)
    alignments = extract_alignments(
        loaded, pairs, reverse=args.reverse, methods=args.methods, rule=args.subword_rule,
        threshold=args.threshold, batch_size=args.batch_size,
    )
    out_dir = Path(args.out_dir)
    (out_dir / "alignments").mkdir(parents=True, exist_ok=True)
    for key, links in alignments.items():
        write_alignments(out_dir / "alignments" / key.file_name, links)
    print(f"wrote {len(alignments)} alignment files to {out_dir / 'alignments'}", file=sys.stderr)
    if gold is None:
        return 0
    metric = AER(gold, Path(args.gold).name, gold_one_based=args.gold_one_based)
    rows = score_table(alignments, metric, rule=args.subword_rule)
    report = AerReport(
        checkpoint=str(args.checkpoint), text=str(args.text), gold=str(args.gold), reverse=args.reverse,
        subword_rule=args.subword_rule, threshold=args.threshold, sentences=len(pairs), rows=rows,
        best=best_rows(rows),
    )
    report.write(out_dir / "aer.json")
    table = markdown_table(report.best)
    atomic_write_text(out_dir / "aer.md", f"# AER of {args.checkpoint} on {args.gold}\n\n{table}")
    print(json_text(to_json(report.best), indent=1) if args.json else table, end="")
    return 0
