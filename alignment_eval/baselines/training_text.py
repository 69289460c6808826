"""Extra training text for the aligners: ``src ||| tgt`` files and paired plain source/target files."""

from __future__ import annotations

from typing import Sequence

from ..alignments.errors import AlignmentInputError
from ..alignments.io import PathLike, SentencePair, check_line_counts, read_lines, read_parallel_text, split_tokens

__all__ = ["read_extra_pairs", "read_plain_parallel"]


def read_plain_parallel(src_path: PathLike, tgt_path: PathLike) -> list[SentencePair]:
    """Pair two tokenised one-sentence-per-line files (same line count)."""
    src_lines = read_lines(src_path)
    tgt_lines = read_lines(tgt_path)
    check_line_counts(tgt_path, len(tgt_lines), src_path, len(src_lines))
    return [
        SentencePair(tuple(split_tokens(src)), tuple(split_tokens(tgt))) for src, tgt in zip(src_lines, tgt_lines)
    ]


def read_extra_pairs(
    joint_files: Sequence[PathLike] = (),
    src_files: Sequence[PathLike] = (),
    tgt_files: Sequence[PathLike] = (),
) -> list[SentencePair]:
    """Extra training pairs from ``src ||| tgt`` files and from paired plain source/target files."""
    if len(src_files) != len(tgt_files):
        lonely = (src_files or tgt_files)[-1]
        raise AlignmentInputError(
            lonely, None, f"{len(src_files)} --extra-src but {len(tgt_files)} --extra-tgt files; give them in pairs"
        )
    extra: list[SentencePair] = []
    for path in joint_files:
        extra.extend(read_parallel_text(path))
    for src_path, tgt_path in zip(src_files, tgt_files):
        extra.extend(read_plain_parallel(src_path, tgt_path))
    return extra
