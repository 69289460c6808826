"""The pipeline's file helpers: required inputs, line counts, parallel checks, hashes.

Atomic writes, JSON and line reading are :mod:`nmt_common.files`; :func:`iter_lines` here is
its reader with the pipeline's errors (a :class:`PipelineError` naming the file, and the line).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import IO, Iterator

from nmt_common import files as common_files
from nmt_common.files import InputFileError, atomic_path

from .errors import PipelineError


@contextlib.contextmanager
def pipeline_errors() -> Iterator[None]:
    """Re-raise an :class:`~nmt_common.files.InputFileError` of the block as a PipelineError (same message)."""
    try:
        yield
    except InputFileError as error:
        raise PipelineError(str(error)) from None


def require_file(path: Path, what: str = "file") -> Path:
    """``path`` as a Path, or a PipelineError naming it when it is missing or not a file."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{what} not found: {path}")
    if not path.is_file():
        raise PipelineError(f"{what} is not a regular file: {path}")
    return path


def open_binary(path: Path) -> IO[bytes]:
    """Open a plain or gzip-compressed file for reading bytes (decided by its magic number)."""
    return common_files.open_binary(require_file(path))


def iter_lines(path: Path, *, strict: bool = True) -> Iterator[str | None]:
    """:func:`nmt_common.files.iter_lines` (split on "\\n" only; None for a bad line unless ``strict``),
    with a PipelineError naming ``path:line`` for invalid UTF-8 and ``path`` when it is missing."""
    require_file(path)
    with pipeline_errors():
        yield from common_files.iter_lines(path, strict=strict)


def count_lines(path: Path) -> int:
    """Number of lines, counting a last line without a final newline."""
    count = 0
    last = b"\n"
    with open_binary(path) as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (0 if last == b"\n" else 1)


def check_parallel(source: Path, target: Path, what: str = "corpus") -> int:
    """Line count shared by two parallel files; a PipelineError naming both when they differ."""
    require_file(source, f"{what} source file")
    require_file(target, f"{what} target file")
    n_source, n_target = count_lines(source), count_lines(target)
    if n_source != n_target:
        raise PipelineError(
            f"{what}: line counts differ: {source} has {n_source} lines, {target} has {n_target} lines"
        )
    if n_source == 0:
        raise PipelineError(f"{what} is empty: {source} and {target} have no lines")
    return n_source


def sha256_file(path: Path, *, desc: str | None = None) -> str:
    """Hex SHA-256 of a file, with a progress bar for big files when ``desc`` is given."""
    digest = hashlib.sha256()
    size = Path(path).stat().st_size
    bar = None
    if desc is not None and size > 64 << 20:
        from tqdm import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"sha256 {desc}", leave=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            if bar is not None:
                bar.update(len(block))
    if bar is not None:
        bar.close()
    return digest.hexdigest()


def copy_file(source: Path, destination: Path) -> None:
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)
