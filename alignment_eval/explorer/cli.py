"""``alignment-eval explore``: one self-contained HTML page to browse every head's attention.

Records the teacher-forced attention of one or more checkpoints on a ``SOURCE ||| TARGET``
text (cross, encoder self and decoder self; every layer and head) and writes one HTML file
that shows it as heatmaps, side by side per checkpoint, with the gold links (``--gold``),
the induced links (argmax, nonzero; normal or shifted), per-sentence AER, sparsity and
per-head null rate. The page needs no network: its script, style and data are inline.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

from ..alignments.command_line import EXIT_INPUT_ERROR, print_message
from ..alignments.errors import AlignmentInputError
from ..alignments.io import read_gold_alignments, read_parallel_text
from ..analysis.extract import add_model_arguments
from ..analysis.model_attention import load_model
from .collect import build_data
from .page import write_page
from .payload import levels_of

__all__ = ["add_command", "run"]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_command(subparsers) -> None:
    """Register ``alignment-eval explore``."""
    parser = subparsers.add_parser(
        "explore",
        help="an HTML page to browse every head's attention, gold and induced links, side by side per checkpoint",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        conflict_handler="resolve",  # --checkpoint of add_model_arguments becomes repeatable
    )
    add_model_arguments(parser)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="CKPT",
                        help="checkpoint trained with --user-dir fairseq_plugins; repeat it to compare models side by side")
    parser.add_argument("--label", action="append", metavar="NAME",
                        help="panel title of each --checkpoint, in order (default: its cross-attention normalizer)")
    parser.add_argument("--gold", help="gold alignment of --text (i-j sure, ipj possible)")
    parser.add_argument("--gold-one-based", action="store_true", help="gold indices start at 1 (the shared sets do)")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--sentences", type=positive_int, metavar="N", help="only the first N sentence pairs")
    parser.add_argument("--cross-only", action="store_true",
                        help="leave out encoder and decoder self-attention (a page about 40%% of the size)")
    parser.add_argument("--bits", type=int, choices=range(2, 9), default=8, metavar="{2..8}",
                        help="quantisation of the weights (default: 8; 6 about halves a softmax model's page)")
    parser.add_argument("--title", help="page title (default: 'Attention explorer: <text file name>')")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.label and len(args.label) != len(args.checkpoint):
        print_message("error", f"{len(args.label)} --label for {len(args.checkpoint)} --checkpoint; give one per checkpoint")
        return EXIT_INPUT_ERROR
    for checkpoint in args.checkpoint:
        if not Path(checkpoint).is_file():
            raise AlignmentInputError(checkpoint, None, "checkpoint not found")
    pairs = read_parallel_text(args.text)
    gold = None
    if args.gold:
        gold = read_gold_alignments(args.gold, one_based=args.gold_one_based, texts=pairs, text_path=args.text)
    if args.sentences is not None:
        pairs = pairs[:args.sentences]
        gold = gold[:args.sentences] if gold is not None else None
    loaders = [functools.partial(load_model, checkpoint, data_dir=args.data_dir, spm=args.spm,
                                 source_spm=args.source_spm, target_spm=args.target_spm)
               for checkpoint in args.checkpoint]
    try:
        data = build_data(
            loaders, pairs, labels=args.label, gold=gold, reverse=args.reverse, cross_only=args.cross_only,
            batch_size=args.batch_size, levels=levels_of(args.bits),
            title=args.title or f"Attention explorer: {Path(args.text).name}",
            text=Path(args.text).name, gold_name=Path(args.gold).name if args.gold else "",
            log=lambda message: print_message("note", message),
        )
    except ValueError as exc:  # weights the page cannot hold (shapes, negative values)
        raise AlignmentInputError(", ".join(args.checkpoint), None, str(exc)) from None
    size = write_page(Path(args.out), data)
    print(f"wrote {args.out}: {len(pairs)} sentence pairs x {len(args.checkpoint)} checkpoint(s), "
          f"{size / 1e6:.2f} MB, in {time.perf_counter() - started:.1f} s")
    return 0
