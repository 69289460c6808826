"""Per-direction steps after training: ``python -m mt_pipeline.pairs {translate,bleu,align,report} --pair en-de``.

The Makefile targets ``translate``, ``bleu``, ``align`` and ``report`` call these; paths follow
the Hydra configs in ``configs/``: data in ``data-bin/<config>``, checkpoints in
``checkpoints/<config>/<attention>``, outputs in ``results/<config>/<attention>``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from alignment_eval.io import atomic_write_text

from .errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
GOLD_DIR = ROOT.parent / "shared" / "data" / "word-alignment-gold"
VARIANTS = ("softmax", "rela", "rela_i", "sparsemax", "entmax15", "alpha_entmax", "topk")


@dataclass(frozen=True)
class Direction:
    pair: str  # e.g. en-de: source-target of the model
    config: str  # configs/<config>.yaml, data-bin/<config>
    gold: Optional[str] = None  # word-alignment-gold/<gold>.{src-tgt,gold}
    gold_reversed: bool = False  # the gold text's target side is the model's source


DIRECTIONS = {
    d.pair: d
    for d in (
        Direction("en-de", "wmt14_en_de", gold="deen", gold_reversed=True),
        Direction("en-fr", "wmt14_en_fr", gold="enfr"),
        Direction("ro-en", "wmt16_ro_en", gold="roen"),
        Direction("en-fi", "wmt18_en_fi"),  # no public English-Finnish gold alignment exists
        Direction("zh-en", "wmt18_zh_en", gold="zhen"),
    )
}


def direction(pair: str) -> Direction:
    if pair not in DIRECTIONS:
        raise PipelineError(f"unknown language pair {pair!r}; valid pairs: {', '.join(DIRECTIONS)}")
    return DIRECTIONS[pair]


def _checkpoint(args, d: Direction) -> Path:
    folder = Path(args.checkpoints) / d.config / args.attn
    for name in ("checkpoint.avg.pt", "checkpoint_best.pt", "checkpoint_last.pt"):
        if (folder / name).is_file():
            return folder / name
    raise PipelineError(f"{folder}: no checkpoint (train first: make train PAIR={d.pair} ATTN={args.attn})")


def _prepared(args, d: Direction):
    from .prepare import PreparedData

    return PreparedData.load(Path(args.data_bin or f"data-bin/{d.config}"))


def _out(args, d: Direction) -> Path:
    return Path(args.results) / d.config / args.attn


def run_translate(args) -> int:
    from .translate import TranslationError, translate

    d = direction(args.pair)
    prepared = _prepared(args, d)
    try:
        result = translate(prepared.data_bin, _checkpoint(args, d), _out(args, d) / "test.hyp", beam=args.beam,
                           batch_size=args.batch_size)
    except TranslationError as error:
        raise PipelineError(str(error)) from None
    result.write_record(_out(args, d) / "translate.json")
    print(f"{result.sentences} sentences -> {result.output} ({result.sentences_per_second} sentences/s)")
    return 0


def run_bleu(args) -> int:
    from .bleu import BleuInputError, score

    d = direction(args.pair)
    prepared = _prepared(args, d)
    hypotheses = _out(args, d) / "test.hyp"
    try:
        if prepared.sacrebleu_test_set and not args.reference:
            try:
                result = score(hypotheses, test_set=prepared.sacrebleu_test_set, langpair=prepared.sacrebleu_langpair)
            except BleuInputError:  # not cached (no internet): the raw reference kept by prepare
                result = score(hypotheses, prepared.test_reference, langpair=d.pair)
        else:
            result = score(hypotheses, Path(args.reference) if args.reference else prepared.test_reference,
                           langpair=d.pair)
    except BleuInputError as error:
        raise PipelineError(str(error)) from None
    atomic_write_text(_out(args, d) / "bleu.json", json.dumps(result.as_dict(), indent=1) + "\n")
    print(f"BLEU {result.bleu:.2f}  chrF {result.chrf:.2f}  {result.signature}  (references: {result.references})")
    return 0


def run_align(args) -> int:
    d = direction(args.pair)
    if d.gold is None:
        raise PipelineError(f"no gold word alignment for {d.pair}; nothing to align")
    gold_dir = Path(args.gold_dir)
    text, gold = gold_dir / f"{d.gold}.src-tgt", gold_dir / f"{d.gold}.gold"
    if not (text.is_file() and gold.is_file()):
        raise PipelineError(f"{gold}: gold alignment not found (set GOLD_DIR to the word-alignment-gold folder)")
    prepared = _prepared(args, d)
    src, tgt = d.pair.split("-")
    spm = ["--source-spm", prepared.spm_models[src], "--target-spm", prepared.spm_models[tgt]]
    model = ["--checkpoint", _checkpoint(args, d), "--data-dir", prepared.data_bin, *spm, "--text", text]
    model += ["--reverse"] if d.gold_reversed else []
    out = _out(args, d) / "attention"
    binary = Path(sys.executable).with_name("alignment-eval")
    for command in (
        [binary, "stats", *model, "--out-dir", out],
        [binary, "extract", *model, "--gold", gold, "--gold-one-based", "--out-dir", out],
    ):
        result = subprocess.run(list(map(str, command)))
        if result.returncode != 0:
            raise PipelineError(f"{shlex.join(map(str, command))} failed with status {result.returncode}")
    return 0


def run_report(args) -> int:
    """One table across every trained variant of the pair: BLEU, AER, sparsity, null rate, diversity, speed."""
    from .experiment import row_from_outputs, summary_table

    d = direction(args.pair)
    results = Path(args.results) / d.config
    rows = [row_from_outputs(v, results / v) for v in VARIANTS if (results / v / "bleu.json").is_file()]
    if not rows:
        raise PipelineError(f"{results}: no variant has been scored yet (make bleu PAIR={d.pair})")
    report = "\n".join([f"# {d.pair} ({d.config}): attention variants", "", *summary_table(rows), ""])
    atomic_write_text(results / "report.md", report)
    atomic_write_text(results / "report.json", json.dumps({"pair": d.pair, "rows": rows}, indent=1) + "\n")
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mt_pipeline.pairs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function in (("translate", run_translate), ("bleu", run_bleu), ("align", run_align),
                           ("report", run_report)):
        command = commands.add_parser(name)
        command.add_argument("--pair", required=True, help=f"one of {', '.join(DIRECTIONS)}")
        if name != "report":
            command.add_argument("--attn", default="softmax", choices=VARIANTS)
        command.add_argument("--data-bin", help="default data-bin/<config>")
        command.add_argument("--checkpoints", default="checkpoints")
        command.add_argument("--results", default="results")
        command.set_defaults(func=function)
        if name == "translate":
            command.add_argument("--beam", type=int, default=4)
            command.add_argument("--batch-size", type=int, default=64)
        if name == "bleu":
            command.add_argument("--reference", help="reference file (default: sacreBLEU's test set, else the raw test reference)")
        if name == "align":
            command.add_argument("--gold-dir", default=str(GOLD_DIR))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
