"""Messages to stderr, one prefix for the whole pipeline."""

import sys

PREFIX = "[mt_pipeline]"


def log(message: str) -> None:
    print(f"{PREFIX} {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"{PREFIX} warning: {message}", file=sys.stderr, flush=True)
