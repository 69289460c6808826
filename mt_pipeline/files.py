"""File helpers: line reading that only splits on "\\n", atomic writes, line counts, sums."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import IO, Iterator

from .errors import PipelineError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


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
    path = require_file(path)
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def iter_lines(path: Path, *, strict: bool = True) -> Iterator[str | None]:
    """The lines of a UTF-8 text file (plain or .gz), without their line ending.

    Lines are separated by "\\n" only (a stray "\\r", U+2028 or U+0085 inside a line does
    not split it, so two parallel files stay parallel); a final "\\r" is dropped, and so
    is a byte-order mark at the start of the file. A line that is not valid UTF-8 raises
    a PipelineError naming ``path:line`` when ``strict``, and is yielded as None otherwise.
    """
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as error:
                if strict:
                    raise PipelineError(
                        f"{path}:{number}: not valid UTF-8 ({error.reason} at byte {error.start} of the line)"
                    ) from None
                yield None


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


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; renamed to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as temporary:
        kwargs = {"encoding": "utf-8", "newline": "\n"} if "b" not in mode else {}
        with open(temporary, mode, **kwargs) as handle:
            yield handle


def write_json(path: Path, data) -> None:
    import json

    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=False)
        handle.write("\n")


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
