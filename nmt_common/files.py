"""Files: atomic writes, one JSON format, and strict UTF-8 line reading that names ``file:line``.

Atomic writes go to a temporary name next to the target (``.NAME.partial-PID``) and are
renamed over it only when the writer succeeds, so a reader never sees a half-written file
and a failed write leaves the old file (if any) as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
from pathlib import Path
from typing import IO, Iterator, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class InputFileError(ValueError):
    """A problem with an input file, located by path and (optionally) 1-based line.

    ``str(error)`` is ``path:line: message`` (``path: message`` without a line); packages wrap it
    in their own error type (``mt_pipeline.PipelineError``, ...) where their callers expect one.
    """

    def __init__(self, path: PathLike, line: Optional[int], message: str) -> None:
        super().__init__(str(path), line, message)
        self.path = str(path)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


# --- atomic writes -------------------------------------------------------------------------------


def partial_path(path: PathLike) -> Path:
    """The temporary name an atomic write of ``path`` uses: ``.NAME.partial-PID`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (create a file or a folder there); it replaces ``path``
    only when the block succeeds, and is removed in every case. A replaced file keeps its permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(path)
    try:
        yield temporary
        if temporary.is_file() and path.is_file():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    finally:
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists() or temporary.is_symlink():
            temporary.unlink()


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """An open temporary file (text: UTF-8 with "\\n" line endings; ``mode="wb"``: bytes) that
    replaces ``path`` only when the block succeeds (flushed to disk first)."""
    with atomic_path(path) as temporary:
        options = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with open(temporary, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically (no newline translation)."""
    with atomic_write(path) as handle:
        handle.write(text)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def json_text(data, *, indent: int = 2) -> str:
    """The toolkit's JSON format: ``indent`` spaces, keys in insertion order, non-ASCII kept as UTF-8,
    a final newline."""
    return json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=False) + "\n"


def write_json(path: PathLike, data, *, indent: int = 2) -> None:
    """Write ``data`` as :func:`json_text` to ``path``, atomically. ``indent=1`` is kept by the writers
    whose files are committed in that layout (run records, BLEU scores, summaries)."""
    atomic_write_text(path, json_text(data, indent=indent))


# --- reading lines -------------------------------------------------------------------------------


def is_gzip(path: PathLike) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: PathLike) -> IO[bytes]:
    """Open a plain or gzip-compressed file for reading bytes (decided by its magic number);
    InputFileError when it is missing or not a regular file."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, None, "file not found" if not path.exists() else "not a regular file")
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def iter_lines(path: PathLike, *, strict: bool = True) -> Iterator[Optional[str]]:
    """The lines of a UTF-8 text file (plain or .gz), without their line ending.

    Lines are separated by "\\n" only (a stray "\\r", U+2028 or U+0085 inside a line does not
    split it, so two parallel files stay parallel); a final "\\r" is dropped, and so is a
    byte-order mark at the start of the file. A line that is not valid UTF-8 raises an
    :class:`InputFileError` naming ``path:line`` when ``strict``, and is yielded as None otherwise.
    """
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if number == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM):]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as error:
                if strict:
                    raise InputFileError(
                        path, number, f"not valid UTF-8 ({error.reason} at byte {error.start} of the line)"
                    ) from None
                yield None


def read_lines(path: PathLike) -> List[str]:
    """Every line of a UTF-8 text file, as :func:`iter_lines` reads them (strict)."""
    return list(iter_lines(path, strict=True))
