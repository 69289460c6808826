"""Error type for bad alignment-evaluation input.

Every problem with an input file (malformed link, index out of range, line-count
mismatch, BOM, invalid UTF-8, ...) is reported as one :class:`AlignmentInputError`
that names the file and, where it applies, the 1-based line number::

    deen.gold:12: malformed link '3-x' (expected i-j, ipj or i-j-P)
"""

from __future__ import annotations

from os import PathLike
from typing import Optional, Union

__all__ = ["AlignmentInputError"]


class AlignmentInputError(ValueError):
    """A problem with an input file, located by path and (optionally) 1-based line.

    Attributes:
        path: the file as the user named it (a string).
        line: 1-based line number, or ``None`` when the problem concerns the whole file.
        reason: the message without the ``path:line:`` prefix.
    """

    def __init__(self, path: Union[str, PathLike], line: Optional[int], reason: str) -> None:
        super().__init__(str(path), line, reason)
        self.path: str = str(path)
        self.line: Optional[int] = line
        self.reason: str = reason

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.reason}"
        return f"{self.path}:{self.line}: {self.reason}"
