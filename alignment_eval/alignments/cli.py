"""``alignment-eval aer`` and ``alignment-eval symmetrize``: the commands of the torch-free library."""

from __future__ import annotations

import argparse
import json
import sys

from .aer import DEFAULT_F_ALPHA, evaluate_files
from .command_line import print_message
from .io import atomic_write_text, format_alignment_line, read_alignments, read_parallel_text
from .signature import POSSIBLE_MODES
from .symmetrize import SYMMETRIZATION_METHODS, symmetrize

__all__ = ["add_commands"]


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``alignment-eval aer`` and ``alignment-eval symmetrize``."""
    _add_aer_command(subparsers)
    _add_symmetrize_command(subparsers)


def _add_aer_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "aer",
        help="alignment error rate, precision, recall and F of a hypothesis against gold (Och & Ney 2003)",
        description=(
            "Score HYP against GOLD like lilt/alignment-scripts scripts/aer.py: corpus-level AER, "
            "precision (against sure+possible) and recall (against sure). Gold lines use i-j for sure "
            "and ipj (or i-j-P) for possible links; hypothesis marks are ignored. Output: "
            "'HYP: AER% (P%/R%/links)', 'F-Measure: F', then the signature."
        ),
    )
    parser.add_argument("gold", metavar="GOLD", help="gold alignment file (Pharaoh/talp)")
    parser.add_argument("hyp", metavar="HYP", help="hypothesis alignment file (Pharaoh)")
    parser.add_argument("--gold-one-based", action="store_true", help="gold indices start at 1 (the shared gold sets do)")
    parser.add_argument("--hyp-one-based", action="store_true", help="hypothesis indices start at 1")
    parser.add_argument("--reverse-gold", action="store_true", help="gold links are target-source: swap i and j")
    parser.add_argument("--reverse-hyp", action="store_true", help="hypothesis links are target-source: swap i and j")
    parser.add_argument(
        "--text", metavar="FILE", help="'SOURCE ||| TARGET' file; every index is checked against its sentence lengths"
    )
    parser.add_argument(
        "--possible",
        choices=sorted(POSSIBLE_MODES),
        default="p-includes-s",
        help="possible-link handling: p-includes-s (Och & Ney, default), all-sure, ignore-possible",
    )
    parser.add_argument(
        "--f-alpha",
        type=_unit_interval,
        default=DEFAULT_F_ALPHA,
        help="weight of precision in the F-measure, 1/(a/P + (1-a)/R) (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text lines")
    parser.set_defaults(func=_run_aer)


def _run_aer(args: argparse.Namespace) -> int:
    result = evaluate_files(
        args.gold,
        args.hyp,
        gold_one_based=args.gold_one_based,
        hyp_one_based=args.hyp_one_based,
        reverse_gold=args.reverse_gold,
        reverse_hyp=args.reverse_hyp,
        text_path=args.text,
        possible=args.possible,
        f_alpha=args.f_alpha,
    )
    if result.counts.a == 0:
        print_message("warning", f"{args.hyp} has no links: precision is taken as 0.0 and AER is 1.0")
    if result.counts.s == 0:
        print_message("warning", f"{args.gold} has no sure links: recall is taken as 0.0")
    if args.json:
        record = {"gold": args.gold, "hypothesis": args.hyp, **result.as_dict()}
        print(json.dumps(record, ensure_ascii=False))
    else:
        for line in result.reference_lines(args.hyp):
            print(line)
        print(result.signature)
    return 0


def _add_symmetrize_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "symmetrize",
        help="combine src->tgt and tgt->src alignments (intersection, union, grow-diag[-final[-and]])",
        description=(
            "Symmetrise two directional alignments with Moses' definitions (symal; Koehn et al. 2003). "
            "FWD holds src-tgt links; REV is the reverse-direction aligner's output, whose links are "
            "tgt-src and are swapped on reading. Writes 0-based src-tgt Pharaoh lines."
        ),
    )
    parser.add_argument("fwd", metavar="FWD", help="src->tgt alignment file (src-tgt links)")
    parser.add_argument("rev", metavar="REV", help="tgt->src alignment file (tgt-src links, as the aligner wrote them)")
    parser.add_argument("--method", choices=SYMMETRIZATION_METHODS, default="grow-diag-final-and")
    parser.add_argument("--text", metavar="FILE", required=True, help="'SOURCE ||| TARGET' file (sentence lengths)")
    parser.add_argument("--one-based", action="store_true", help="FWD and REV indices start at 1 (output is 0-based)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    parser.set_defaults(func=_run_symmetrize)


def _run_symmetrize(args: argparse.Namespace) -> int:
    texts = read_parallel_text(args.text)
    forward = read_alignments(args.fwd, one_based=args.one_based, texts=texts, text_path=args.text)
    backward = read_alignments(args.rev, one_based=args.one_based, reverse=True, texts=texts, text_path=args.text)
    lines = [
        format_alignment_line(symmetrize(fwd, rev, args.method, len(pair.source), len(pair.target)))
        for fwd, rev, pair in zip(forward, backward, texts)
    ]
    output = "".join(line + "\n" for line in lines)
    if args.output:
        atomic_write_text(args.output, output)
    else:
        sys.stdout.write(output)
    return 0
