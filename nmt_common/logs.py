"""Progress and diagnostics: one ``logging`` set-up per command line, ``[package] message`` on stderr.

A package logs through ``logging.getLogger("<package>")``; its command line calls
:func:`setup_logging` once. A command's actual output (tables, paths a user reads) stays on
stdout with ``print``.
"""

from __future__ import annotations

import argparse
import logging
import sys

HANDLER_NAME = "nmt_common"


class _CurrentStderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time of each message (so that
    redirections made later, such as pytest's capture, see the messages)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler assigns it; the current stderr is always used
        pass


class _PrefixFormatter(logging.Formatter):
    """``[package] message``; warnings and errors say so: ``[package] warning: message``."""

    def format(self, record: logging.LogRecord) -> str:
        package = record.name.split(".")[0]
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        text = f"[{package}] {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def level_for(verbosity: int) -> int:
    """0: INFO (progress), 1 or more: DEBUG, -1: WARNING, -2 or less: ERROR."""
    return {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)


def setup_logging(verbosity: int = 0, package: str = "") -> logging.Logger:
    """Send ``package``'s log records (every package's when empty) to stderr as ``[package] message``,
    at the level of ``verbosity`` (:func:`level_for`). Calling it again replaces the earlier set-up.

    A named package's logger does not pass its records on to the root logger, which fairseq
    configures on import: each message is printed once.
    """
    logger = logging.getLogger(package or None)
    for handler in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
        logger.removeHandler(handler)
    handler = _CurrentStderr()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(_PrefixFormatter())
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    if package:
        logger.propagate = False
    return logger


def add_verbosity_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` (repeatable); :func:`verbosity` reads them back."""
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more progress messages (debug)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="fewer progress messages (warnings only)")


def verbosity(args: argparse.Namespace) -> int:
    return getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
