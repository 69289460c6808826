"""Command-line interface: ``alignment-eval <subcommand> ...``, the one entry point.

Each subpackage registers its subcommands (``add_commands`` / ``add_command``), each
run by a function that returns an exit code. Bad input
(:class:`~alignment_eval.alignments.errors.AlignmentInputError`) and OS errors print
``alignment-eval: error: <message>`` on stderr and exit with status 2. Building the
parser imports no torch: the commands that run a model import it when they run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .alignments import cli as alignment_commands
from .alignments.command_line import EXIT_INPUT_ERROR, PROG, print_message
from .alignments.errors import AlignmentInputError
from .alignments.version import __version__
from .analysis import cli as analysis_commands
from .baselines import cli as baseline_commands
from .explorer import cli as explorer_commands
from .interpretability import cli as interpretability_commands

__all__ = ["EXIT_INPUT_ERROR", "PROG", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``alignment-eval`` parser with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Word-alignment evaluation: AER (Och & Ney 2003) and symmetrisation."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    alignment_commands.add_commands(subparsers)  # aer, symmetrize
    analysis_commands.add_commands(subparsers)  # extract, stats, report
    baseline_commands.add_command(subparsers)  # baseline
    interpretability_commands.add_command(subparsers)  # interpret
    explorer_commands.add_command(subparsers)  # explore
    return parser


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input or usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_INPUT_ERROR)
    try:
        return int(args.func(args))
    except AlignmentInputError as exc:
        print_message("error", str(exc))
        return EXIT_INPUT_ERROR
    except OSError as exc:
        print_message("error", _describe_os_error(exc))
        return EXIT_INPUT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
