"""Markdown tables, in the one layout every report of the toolkit uses."""

from __future__ import annotations

from typing import Any, Sequence


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """``| a | b |`` / ``|---|---|`` / one line per row, joined by newlines (no final newline).

    Cells are written with ``str``; format numbers before passing them.
    """
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
