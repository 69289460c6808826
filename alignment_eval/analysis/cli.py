"""The model-analysis subcommands: ``extract``, ``stats`` and ``report``."""

from __future__ import annotations

import argparse

from . import attention_stats, extract, report

__all__ = ["add_commands"]


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``alignment-eval extract``, ``stats`` and ``report``."""
    for command in (extract, attention_stats, report):
        command.add_command(subparsers)
