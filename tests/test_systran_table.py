"""The reader of systran-align's t(f|e) tables (``alignment_eval.baselines.systran_table``).

The layout is the one ``TTable::ExportToFile`` of systran-align 3.5.0 writes (read from
its bundled fast_align library): int32 format tag 2, int32 V and V NUL-terminated words
(ids 1..V), int32 row count, then per non-empty row int32 e, int32 k and k pairs
(int32 f, float32 t(f|e)). Hand-written tables pin the layout; a table written by the
installed package checks that the layout is the one it writes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from alignment_eval.baselines import route_systran_align
from alignment_eval.baselines.errors import AlignerFailedError
from alignment_eval.baselines.systran_table import FORMAT_TAG, NULL_WORD, read_lexical_table
from alignment_eval.cli import main

WORDS = ["<eps>", "|||", "s0", "s1", "t0", "t1"]  # ids 1..6, as fast_align's Dict numbers them
ROWS = {1: [(5, 0.25), (6, 0.75)], 3: [(5, 0.5), (6, 0.5)], 4: [(6, 1.0)]}  # e -> [(f, t(f|e))]


def table_bytes(words=WORDS, rows=ROWS, row_count: int = 7, tag: int = FORMAT_TAG) -> bytes:
    """A table in systran-align's layout."""
    encoded = [word if isinstance(word, bytes) else word.encode("utf-8") for word in words]
    data = struct.pack("<ii", tag, len(words)) + b"".join(word + b"\0" for word in encoded)
    data += struct.pack("<i", row_count)
    for row, entries in rows.items():
        data += struct.pack("<ii", row, len(entries)) + b"".join(struct.pack("<if", f, p) for f, p in entries)
    return data


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "forward.probs"
    path.write_bytes(data)
    return path


def test_reads_a_hand_written_table(tmp_path: Path) -> None:
    table = read_lexical_table(write(tmp_path, table_bytes()), ["s0", NULL_WORD, "not-in-the-table"])
    assert table.word_ids == {word: number for number, word in enumerate(WORDS, start=1)}
    assert table.row(NULL_WORD) == {5: 0.25, 6: 0.75}
    assert table.row("s0") == {5: 0.5, 6: 0.5}
    assert table.row("s1") == {}  # a row that was not asked for is not kept
    assert table.row("not-in-the-table") == {}


def test_reads_a_table_written_by_systran_align(tmp_path: Path) -> None:
    systran_align = pytest.importorskip("systran_align")
    corpus = tmp_path / "corpus"
    corpus.write_text("s0 s1 ||| t0 t1\ns1 s2 ||| t1 t2\ns0 ||| t0\n", encoding="utf-8")
    forward, backward = tmp_path / "forward.probs", tmp_path / "backward.probs"
    systran_align.generate_alignment_probabilities(
        str(corpus), str(forward), str(backward), favor_diagonal=True, beam_threshold=-1000.0
    )
    assert struct.unpack_from("<i", forward.read_bytes())[0] == FORMAT_TAG
    sources = ["s0", "s1", "s2"]
    table = read_lexical_table(forward, [NULL_WORD, *sources])
    assert {NULL_WORD, *sources, "t0", "t1", "t2"} <= set(table.word_ids)
    target_ids = {table.word_ids[word] for word in ("t0", "t1", "t2")}
    for word in [NULL_WORD, *sources]:
        row = table.row(word)
        assert set(row) <= target_ids
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-3)  # t(.|e) is a distribution (float32)
    best = table.row("s0")
    assert max(best, key=best.get) == table.word_ids["t0"]


def truncated_words() -> bytes:
    return struct.pack("<ii", FORMAT_TAG, 2) + b"<eps>\0s0"


MALFORMED = {
    "empty file": (b"", "byte 0: end of file inside the format tag"),
    "other format": (table_bytes(tag=7), "byte 0: format tag 7, but systran-align 3.5.0 writes 2"),
    "word without NUL": (truncated_words(), "byte 14: word 2 has no NUL terminator"),
    "word not UTF-8": (table_bytes(words=["<eps>", b"s\xff"], rows={}), "byte 14: word 2 is not valid UTF-8"),
    "row outside the table": (table_bytes(row_count=4), "row id 4 is outside the table's 4 rows"),
    "row cut off": (table_bytes()[:-3], "end of file inside row 4's entries"),
    "trailing bytes": (table_bytes() + b"\0\0\0", "end of file inside the header of a row"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_tables_name_the_file_and_the_byte(tmp_path: Path, case: str) -> None:
    data, expected = MALFORMED[case]
    path = write(tmp_path, data)
    with pytest.raises(AlignerFailedError) as error:
        read_lexical_table(path, ["s0", NULL_WORD])
    message = str(error.value)
    assert message.startswith(f"cannot read the systran-align table {path}: byte ")
    assert expected in message


def test_malformed_table_through_the_cli_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training that leaves broken tables behind: exit status 2, the file and byte named, no traceback."""
    writes_broken_tables = (
        "import json, sys\n"
        "parameters = json.loads(sys.argv[2])\n"
        "for key in ('forward_probs_path', 'backward_probs_path'):\n"
        "    open(parameters[key], 'wb').write(bytes([2, 0, 0, 0, 9]))\n"
    )
    monkeypatch.setattr(route_systran_align, "TRAIN_SCRIPT", writes_broken_tables)
    text, gold = tmp_path / "toy.src-tgt", tmp_path / "toy.gold"
    text.write_text("s0 s1 ||| t0 t1\n", encoding="utf-8")
    gold.write_text("1-1 2-2\n", encoding="utf-8")
    code = main(["baseline", "--text", str(text), "--gold", str(gold), "--gold-one-based", "--aligner", "fast_align"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("alignment-eval: error: cannot read the systran-align table ")
    assert "forward.probs: byte 4: end of file inside the vocabulary size" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
