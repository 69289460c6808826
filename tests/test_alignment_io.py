"""Reading/writing Pharaoh alignments and ``SOURCE ||| TARGET`` text, and every input error."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from alignment_eval import (
    AlignmentInputError,
    GoldAlignment,
    SentencePair,
    atomic_write_text,
    format_alignment_line,
    parse_link,
    read_alignments,
    read_gold_alignments,
    read_lines,
    read_parallel_text,
    split_tokens,
    write_alignments,
)


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_text(tmp_path: Path, name: str, text: str) -> Path:
    return write_bytes(tmp_path, name, text.encode("utf-8"))


# --- link tokens -------------------------------------------------------------------


@pytest.mark.parametrize(
    "token, expected",
    [
        ("3-4", ((3, 4), True)),
        ("3p4", ((3, 4), False)),
        ("3-4-P", ((3, 4), False)),
        ("3-4-S", ((3, 4), True)),
        ("0-0", ((0, 0), True)),
        ("012-7", ((12, 7), True)),
    ],
)
def test_parse_link_forms(token: str, expected) -> None:
    assert parse_link(token) == expected


def test_parse_link_base_and_reverse() -> None:
    assert parse_link("1-2", one_based=True) == ((0, 1), True)
    assert parse_link("1-2", reverse=True) == ((2, 1), True)
    assert parse_link("1p3", one_based=True, reverse=True) == ((2, 0), False)


@pytest.mark.parametrize(
    "token", ["3-x", "3--4", "-1-2", "3", "3-", "p4", "3p", "3-4-Q", "3-4-p", "3-4-5", "3:4", "\uff13-4", "3-4p5"]
)
def test_malformed_link_tokens(tmp_path: Path, token: str) -> None:
    path = write_text(tmp_path, "bad.gold", f"0-0\n1-1 {token} 2-2\n")
    with pytest.raises(AlignmentInputError) as info:
        read_gold_alignments(path)
    error = info.value
    assert error.path == str(path) and error.line == 2
    assert str(error) == f"{path}:2: malformed link {token!r} (expected i-j, ipj or i-j-P)"


def test_zero_index_in_one_based_file(tmp_path: Path) -> None:
    path = write_text(tmp_path, "g.gold", "1-1\n\n2-1 0-3\n")
    with pytest.raises(AlignmentInputError) as info:
        read_gold_alignments(path, one_based=True)
    assert info.value.line == 3
    assert "'0-3'" in str(info.value) and "1-based" in str(info.value)
    # the same file is fine as 0-based
    assert len(read_gold_alignments(path)) == 3


# --- alignment files ---------------------------------------------------------------


def test_read_gold_sure_possible_duplicates_and_empty_lines(tmp_path: Path) -> None:
    # line 1: duplicates collapse; a link marked both sure and possible is sure
    # line 2: empty sentence; line 3: only spaces; line 4: DeNero form and tabs
    path = write_text(tmp_path, "g.gold", "2-1 1p2 2-1 1-1 1p1\n\n   \n0-1-P\t2-2-S 0-0\n")
    gold = read_gold_alignments(path, one_based=False)
    assert gold == [
        GoldAlignment(frozenset({(2, 1), (1, 1)}), frozenset({(1, 2)})),
        GoldAlignment(),
        GoldAlignment(),
        GoldAlignment(frozenset({(2, 2), (0, 0)}), frozenset({(0, 1)})),
    ]


def test_read_gold_one_based_reversed(tmp_path: Path) -> None:
    path = write_text(tmp_path, "g.gold", "1-2 3p1\n")
    [gold] = read_gold_alignments(path, one_based=True, reverse=True)
    assert gold.sure == {(1, 0)} and gold.possible == {(0, 2)}


def test_read_alignments_merges_marks(tmp_path: Path) -> None:
    path = write_text(tmp_path, "h.txt", "0-0 1p1 2-2-P\n\n")
    assert read_alignments(path) == [{(0, 0), (1, 1), (2, 2)}, set()]


def test_line_endings(tmp_path: Path) -> None:
    crlf = write_bytes(tmp_path, "crlf.txt", b"0-0 1-1\r\n\r\n2-2\r\n")
    no_final_newline = write_bytes(tmp_path, "nofinal.txt", b"0-0 1-1\n\n2-2")
    expected = [{(0, 0), (1, 1)}, set(), {(2, 2)}]
    assert read_alignments(crlf) == expected
    assert read_alignments(no_final_newline) == expected


def test_file_of_empty_lines_is_valid(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "empty_lines.txt", b"\n\n\n")
    assert read_alignments(path) == [set(), set(), set()]


def test_zero_byte_file_is_an_error(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "zero.txt", b"")
    with pytest.raises(AlignmentInputError) as info:
        read_alignments(path)
    assert info.value.line is None
    assert str(info.value).startswith(f"{path}: file is empty")


def test_bom_is_an_error(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "bom.gold", b"\xef\xbb\xbf1-1\n")
    with pytest.raises(AlignmentInputError) as info:
        read_gold_alignments(path, one_based=True)
    assert info.value.line == 1
    assert "remove the BOM" in str(info.value)
    assert str(info.value).startswith(f"{path}:1: ")


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "latin1.src-tgt", "a ||| b\nc ||| d\nGr\u00fc\u00dfe ||| hi\n".encode("latin-1"))
    with pytest.raises(AlignmentInputError) as info:
        read_parallel_text(path)
    assert info.value.line == 3
    assert "invalid UTF-8" in str(info.value) and "byte 3" in str(info.value)


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_alignments(tmp_path / "nope.txt")


def test_read_lines_keeps_unicode_line_separators_inside_lines(tmp_path: Path) -> None:
    # str.splitlines() would split on U+2028 / U+0085 / form feed; files are split on \n only.
    path = write_text(tmp_path, "t.txt", "a\u2028b ||| c\x0cd\u0085\n")
    assert read_lines(path) == ["a\u2028b ||| c\x0cd\u0085"]


# --- parallel text ----------------------------------------------------------------


def test_split_tokens_rule() -> None:
    assert split_tokens("a b c") == ["a", "b", "c"]
    assert split_tokens("a b c ") == ["a", "b", "c"]  # trailing space (enfr, roen)
    assert split_tokens("  a  b ") == ["a", "b"]  # runs of spaces
    assert split_tokens("\u6708 \u3000 \u65e5") == ["\u6708", "\u3000", "\u65e5"]  # U+3000 is a token (jaen)
    assert split_tokens("a\u3000b") == ["a\u3000b"]
    assert split_tokens("a\tb") == ["a\tb"]  # only U+0020 separates
    assert split_tokens("") == [] and split_tokens("   ") == []


def test_read_parallel_text(tmp_path: Path) -> None:
    path = write_text(
        tmp_path,
        "t.src-tgt",
        "Das ist gut .  ||| That is good . \n\u5e74 \u3000 \u6708 ||| year month\nnur quelle ||| \n||| only target\n",
    )
    assert read_parallel_text(path) == [
        SentencePair(("Das", "ist", "gut", "."), ("That", "is", "good", ".")),
        SentencePair(("\u5e74", "\u3000", "\u6708"), ("year", "month")),
        SentencePair(("nur", "quelle"), ()),
        SentencePair((), ("only", "target")),
    ]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("no separator here", "missing ' ||| ' separator"),
        ("a|||b", "missing ' ||| ' separator"),
        ("a ||| b ||| c", "found 2 ' ||| ' separators"),
    ],
)
def test_text_separator_errors(tmp_path: Path, line: str, reason: str) -> None:
    path = write_text(tmp_path, "t.src-tgt", f"x ||| y\n{line}\n")
    with pytest.raises(AlignmentInputError) as info:
        read_parallel_text(path)
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: {reason}")


def test_index_out_of_range_against_text(tmp_path: Path) -> None:
    text = write_text(tmp_path, "t.src-tgt", "a b c ||| x y\nd e ||| z\n")
    texts = read_parallel_text(text)
    ok = write_text(tmp_path, "ok.gold", "3-2 1p1\n2-1\n")
    assert len(read_gold_alignments(ok, one_based=True, texts=texts, text_path=text)) == 2

    bad_target = write_text(tmp_path, "bad.gold", "3-2\n2-1 1-2\n")
    with pytest.raises(AlignmentInputError) as info:
        read_gold_alignments(bad_target, one_based=True, texts=texts, text_path=text)
    message = str(info.value)
    assert message.startswith(f"{bad_target}:2: link '1-2' is out of range")
    assert "target index 2 (1-based)" in message and "1 target tokens" in message and f"{text}:2" in message

    bad_source = write_text(tmp_path, "bad0.txt", "3-0\n\n")  # 0-based: source index 3 of 3 tokens
    with pytest.raises(AlignmentInputError) as info:
        read_alignments(bad_source, texts=texts, text_path=text)
    assert info.value.line == 1
    assert "'3-0'" in str(info.value) and "source index 3 (0-based)" in str(info.value)
    assert "3 source tokens" in str(info.value)

    # reversed file: token '0-3' means target 0, source 3 -> source index out of range
    bad_reversed = write_text(tmp_path, "rev.txt", "0-3\n\n")
    with pytest.raises(AlignmentInputError, match=r"link '0-3' is out of range: source index 3"):
        read_alignments(bad_reversed, reverse=True, texts=texts, text_path=text)


def test_line_count_mismatch_names_both_files(tmp_path: Path) -> None:
    text = write_text(tmp_path, "t.src-tgt", "a ||| b\nc ||| d\n")
    texts = read_parallel_text(text)
    gold = write_text(tmp_path, "g.gold", "0-0\n0-0\n0-0\n")
    with pytest.raises(AlignmentInputError) as info:
        read_gold_alignments(gold, texts=texts, text_path=text)
    message = str(info.value)
    assert info.value.line is None
    assert f"{gold} has 3 lines" in message and f"{text} has 2 lines" in message

    with pytest.raises(AlignmentInputError, match=r"h\.txt has 1 lines but .*ref\.gold has 2 lines"):
        read_alignments(write_text(tmp_path, "h.txt", "0-0\n"), expect_lines=2, expect_lines_from="ref.gold")


# --- writing ---------------------------------------------------------------------


def test_format_alignment_line() -> None:
    assert format_alignment_line({(2, 1), (0, 0), (1, 3)}) == "0-0 1-3 2-1"
    assert format_alignment_line({(0, 0)}, {(1, 1), (0, 0)}, one_based=True) == "1-1 2p2"
    assert format_alignment_line(set()) == ""
    with pytest.raises(ValueError):
        format_alignment_line({(-1, 0)})


@pytest.mark.parametrize("one_based", [False, True])
def test_round_trip_gold(tmp_path: Path, one_based: bool) -> None:
    gold = [
        GoldAlignment(frozenset({(0, 0), (3, 1)}), frozenset({(1, 2), (2, 2)})),
        GoldAlignment(),
        GoldAlignment(frozenset(), frozenset({(10, 0)})),
        GoldAlignment(frozenset({(5, 4)}), frozenset()),
    ]
    path = tmp_path / "rt.gold"
    write_alignments(path, gold, one_based=one_based)
    assert read_gold_alignments(path, one_based=one_based) == gold
    if one_based:
        assert path.read_text().splitlines()[0] == "1-1 2p3 3p3 4-2"
    else:
        assert path.read_text().splitlines()[0] == "0-0 1p2 2p2 3-1"


@pytest.mark.parametrize("one_based", [False, True])
def test_round_trip_hypothesis(tmp_path: Path, one_based: bool) -> None:
    hyp = [{(0, 0), (1, 1)}, set(), {(4, 2)}]
    path = tmp_path / "rt.txt"
    write_alignments(path, hyp, one_based=one_based)
    assert read_alignments(path, one_based=one_based) == hyp
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 3


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old\n")

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        write_alignments(path, [{(0, 0)}])
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


# --- error type ------------------------------------------------------------------


def test_error_type() -> None:
    error = AlignmentInputError("deen.gold", 12, "malformed link '3-x' (expected i-j, ipj or i-j-P)")
    assert isinstance(error, ValueError)
    assert str(error) == "deen.gold:12: malformed link '3-x' (expected i-j, ipj or i-j-P)"
    assert str(AlignmentInputError(Path("a.gold"), None, "file is empty")) == "a.gold: file is empty"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.reason, str(copy)) == (error.path, error.line, error.reason, str(error))
