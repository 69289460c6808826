"""``alignment-eval baseline``: fast_align and eflomal on a gold set, scored forward, reverse and gdfa."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nmt_common.records import to_json

from ..alignments.command_line import EXIT_INPUT_ERROR, print_message
from ..alignments.io import read_gold_alignments, read_parallel_text
from ..alignments.signature import POSSIBLE_MODES
from .aligners import ALIGNERS
from .errors import AlignerFailedError, AlignerUnavailableError
from .options import EflomalOptions, FastAlignOptions
from .report import baseline_markdown, baseline_report, write_baseline_outputs
from .scoring import run_baseline
from .training_text import read_extra_pairs

__all__ = ["add_command", "run"]


def add_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``alignment-eval baseline``."""
    parser = subparsers.add_parser(
        "baseline",
        help="fast_align / eflomal baselines on a gold set: forward, reverse and grow-diag-final-and AER",
        description=(
            "Train fast_align (Dyer et al. 2013) and eflomal (Östling & Tiedemann 2016) on the gold set's "
            "text plus optional extra parallel text, align both directions, symmetrise with Moses "
            "grow-diag-final-and and score against GOLD (Och & Ney 2003). Prints a Markdown table; with "
            "--out-dir also writes <aligner>.{forward,reverse,gdfa}.align (0-based source-target), "
            "baseline.json and baseline.md. fast_align is deterministic (one thread); eflomal has no seed."
        ),
    )
    parser.add_argument("--text", metavar="FILE", required=True, help="gold set text, 'SOURCE ||| TARGET' per line")
    parser.add_argument("--gold", metavar="FILE", required=True, help="gold alignment file (Pharaoh/talp)")
    parser.add_argument("--gold-one-based", action="store_true", help="gold indices start at 1 (the shared gold sets do)")
    parser.add_argument(
        "--aligner", nargs="+", choices=ALIGNERS, default=list(ALIGNERS), metavar="NAME",
        help=f"aligners to run, from {', '.join(ALIGNERS)} (default: both)",
    )
    parser.add_argument(
        "--extra", action="append", default=[], metavar="FILE",
        help="extra training text, 'SOURCE ||| TARGET' per line (repeatable; not scored)",
    )
    parser.add_argument("--extra-src", action="append", default=[], metavar="FILE", help="extra source text, tokenised, one sentence a line")
    parser.add_argument("--extra-tgt", action="append", default=[], metavar="FILE", help="extra target text, paired with --extra-src")
    parser.add_argument("--lowercase", action="store_true", help="lowercase all text before aligning (default: keep case)")
    parser.add_argument(
        "--possible", choices=sorted(POSSIBLE_MODES), default="p-includes-s",
        help="possible-link handling, as for 'aer' (default: %(default)s)",
    )
    parser.add_argument("--out-dir", metavar="DIR", help="write the alignment files, baseline.json and baseline.md here")
    parser.add_argument("--json", action="store_true", help="print baseline.json instead of the Markdown table")
    parser.add_argument(
        "--fast-align-binary", metavar="PATH",
        help="use this clab/fast_align executable instead of the systran-align library",
    )
    parser.add_argument("--fast-align-iterations", type=int, default=FastAlignOptions.iterations, metavar="N", help="EM iterations (default: %(default)s)")
    parser.add_argument(
        "--fast-align-threads", type=int, default=FastAlignOptions.threads, metavar="N",
        help="OpenMP threads for fast_align training; more than 1 is not reproducible (default: %(default)s)",
    )
    parser.add_argument("--eflomal-samplers", type=int, default=EflomalOptions.n_samplers, metavar="N", help="independent Gibbs samplers (default: %(default)s)")
    parser.add_argument("--eflomal-length", type=float, default=EflomalOptions.rel_iterations, metavar="X", help="relative number of sampling iterations (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``alignment-eval baseline``; returns the exit status."""
    try:
        fast_align = FastAlignOptions(
            iterations=args.fast_align_iterations, threads=args.fast_align_threads, binary=args.fast_align_binary
        )
        eflomal = EflomalOptions(n_samplers=args.eflomal_samplers, rel_iterations=args.eflomal_length)
    except ValueError as exc:
        print_message("error", str(exc))
        return EXIT_INPUT_ERROR
    pairs = read_parallel_text(args.text)
    gold = read_gold_alignments(args.gold, one_based=args.gold_one_based, texts=pairs, text_path=args.text)
    extra = read_extra_pairs(args.extra, args.extra_src, args.extra_tgt)
    try:
        results = run_baseline(
            pairs,
            gold,
            args.aligner,
            extra,
            lowercase=args.lowercase,
            possible=args.possible,
            gold_name=Path(args.gold).name,
            gold_one_based=args.gold_one_based,
            fast_align=fast_align,
            eflomal=eflomal,
        )
    except (AlignerUnavailableError, AlignerFailedError, ValueError) as exc:
        print_message("error", str(exc))
        return EXIT_INPUT_ERROR
    report = baseline_report(
        results,
        text=args.text,
        gold=args.gold,
        gold_one_based=args.gold_one_based,
        lowercase=args.lowercase,
        possible=args.possible,
        gold_sentences=len(pairs),
        extra_sentences=len(extra),
    )
    title = f"Baseline AER on {Path(args.gold).name} ({len(pairs)} sentences, {len(pairs) + len(extra)} training pairs)"
    markdown = baseline_markdown(results, title=title)
    if args.out_dir:
        write_baseline_outputs(args.out_dir, results, report, markdown)
    if args.json:
        print(json.dumps(to_json(report), ensure_ascii=False))
    else:
        sys.stdout.write(markdown)
    return 0
