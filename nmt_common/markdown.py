"""Markdown tables, in the one layout every report of the toolkit uses."""

from __future__ import annotations

from typing import Any, Optional, Sequence

_RULES = {"left": "---", "right": "---:", "center": ":---:"}


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], *,
                   align: Optional[Sequence[str]] = None) -> str:
    """``| a | b |`` / ``|---|---|`` / one line per row, joined by newlines (no final newline).

    Cells are written with ``str``; format numbers before passing them. ``align`` gives one of
    ``left``/``right``/``center`` per column (default: the renderer's, left).
    """
    if align is not None and (len(align) != len(header) or not set(align) <= set(_RULES)):
        raise ValueError(f"align needs one of {sorted(_RULES)} per column ({len(header)}), got {list(align)}")
    rules = [_RULES[side] for side in align] if align is not None else ["---"] * len(header)
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |", "|" + "".join(f"{rule}|" for rule in rules)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
