"""What every ``alignment-eval`` subcommand shares: the program name, the bad-input exit status, message lines."""

from __future__ import annotations

import sys

__all__ = ["EXIT_INPUT_ERROR", "PROG", "print_message"]

PROG = "alignment-eval"
#: Exit status for bad input and usage errors.
EXIT_INPUT_ERROR = 2


def print_message(kind: str, message: str) -> None:
    """Print ``alignment-eval: <kind>: <message>`` on stderr (kind: error, warning, note)."""
    print(f"{PROG}: {kind}: {message}", file=sys.stderr)
