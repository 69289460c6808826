"""The t(f|e) tables that systran-align writes: the one module that knows their layout.

``systran_align.generate_alignment_probabilities`` (systran-align 3.5.0, the
``TTable::ExportToFile`` of its bundled fast_align) writes one binary file per
direction, little-endian:

* int32 format tag, 2;
* int32 V, then V NUL-terminated UTF-8 words: fast_align's ``Dict``, word k has id k
  (1-based), ``<eps>`` is the NULL word;
* int32 R, the number of rows of the table (conditioning word ids below R);
* per row e that has entries (rows without entries are not written): int32 e,
  int32 k, then k pairs (int32 f, float32 t(f|e)).

:func:`read_lexical_table` is the only reader. A file that breaks this layout raises
:class:`~alignment_eval.baselines.errors.AlignerFailedError` naming the file, the
byte offset and the record.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .errors import AlignerFailedError

__all__ = ["FORMAT_TAG", "NULL_WORD", "LexicalTable", "read_lexical_table"]

#: The format tag systran-align 3.5.0 writes first.
FORMAT_TAG = 2
#: fast_align's NULL word: its row holds t(f|NULL).
NULL_WORD = "<eps>"
_INT32 = struct.Struct("<i")
_ROW_HEADER = struct.Struct("<ii")


@dataclass(frozen=True)
class LexicalTable:
    """``word_ids``: word -> id; ``rows``: conditioning word id -> {generated word id: t(f|e)}."""

    word_ids: Mapping[str, int]
    rows: Mapping[int, Mapping[int, float]]

    def row(self, word: str) -> Mapping[int, float]:
        """t(·|word); empty for a word the table does not know or did not keep."""
        return self.rows.get(self.word_ids.get(word, -1), {})


class _Reader:
    """A position in the table's bytes; every error names the file and the byte offset."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        self.position = 0

    def error(self, reason: str) -> AlignerFailedError:
        return AlignerFailedError(f"cannot read the systran-align table {self.path}: byte {self.position}: {reason}")

    def need(self, size: int, what: str) -> None:
        if self.position + size > len(self.data):
            raise self.error(f"end of file inside {what} (the file has {len(self.data)} bytes)")

    def int32(self, what: str) -> int:
        self.need(_INT32.size, what)
        (value,) = _INT32.unpack_from(self.data, self.position)
        self.position += _INT32.size
        return value

    def word(self, number: int) -> str:
        end = self.data.find(b"\0", self.position)
        if end < 0:
            raise self.error(f"word {number} has no NUL terminator before the end of the file")
        try:
            word = self.data[self.position:end].decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"word {number} is not valid UTF-8") from None
        self.position = end + 1
        return word


def read_lexical_table(path: Path, wanted_words: Iterable[str]) -> LexicalTable:
    """Read a systran-align table, keeping in memory only the rows of ``wanted_words``."""
    reader = _Reader(path, Path(path).read_bytes())
    tag = reader.int32("the format tag")
    if tag != FORMAT_TAG:
        reader.position = 0
        raise reader.error(f"format tag {tag}, but systran-align 3.5.0 writes {FORMAT_TAG}")
    vocabulary_size = reader.int32("the vocabulary size")
    if vocabulary_size < 0:
        raise reader.error(f"negative vocabulary size {vocabulary_size}")
    word_ids = {reader.word(number): number for number in range(1, vocabulary_size + 1)}
    row_count = reader.int32("the row count")
    wanted_rows = {word_ids[word] for word in wanted_words if word in word_ids}
    rows: dict[int, dict[int, float]] = {}
    data = reader.data
    while reader.position < len(data):
        reader.need(_ROW_HEADER.size, "the header of a row")
        row, count = _ROW_HEADER.unpack_from(data, reader.position)
        if not 0 <= row < row_count:
            raise reader.error(f"row id {row} is outside the table's {row_count} rows")
        if count < 1:
            raise reader.error(f"row {row} has {count} entries (empty rows are not written)")
        reader.position += _ROW_HEADER.size
        reader.need(8 * count, f"row {row}'s entries")
        if row in wanted_rows:
            ids = struct.unpack_from(f"<{2 * count}i", data, reader.position)
            probabilities = struct.unpack_from(f"<{2 * count}f", data, reader.position)
            rows[row] = dict(zip(ids[0::2], probabilities[1::2]))
        reader.position += 8 * count
    return LexicalTable(word_ids=word_ids, rows=rows)
