"""Reading and writing word alignments (Pharaoh/"talp" format) and parallel text.

Alignment files
    One line per sentence pair. Links are separated by ASCII spaces (tabs are
    tolerated). Accepted link tokens:

    * ``i-j``   sure link
    * ``ipj``   possible link (talp convention, used by the shared gold sets)
    * ``i-j-P`` possible link, ``i-j-S`` sure link (DeNero & Macherey 2011 format)

    Index order within a line is arbitrary, duplicates collapse, and a link given
    as both sure and possible counts as sure. An empty line is a sentence without
    links. Internally every link is a 0-based ``(source, target)`` pair; each file
    is read with its own ``one_based`` and ``reverse`` (swap i and j) flags.
    For hypotheses (:func:`read_alignments`) the sure/possible mark is ignored and
    all links are kept, as the reference ``aer.py`` does.

Parallel text files
    One ``SOURCE ||| TARGET`` pair per line (the awesome-align / lilt
    alignment-scripts convention). Tokenisation rule (:func:`split_tokens`): each
    side has ASCII whitespace stripped at both ends, is split on the ASCII space
    U+0020 only, and empty tokens from runs of spaces are dropped. Other characters,
    in particular the ideographic space U+3000 (a token of its own in the KFTT
    Japanese gold) and tabs inside a line, stay inside tokens. ``str.split()`` would
    drop U+3000 and shift the indices of the KFTT gold. This rule reproduces the
    token counts of the shared gold sets and keeps every gold index in range.

File-level rules for every input: the file must exist and be non-empty (0 bytes
is an error; a file of empty lines is fine), must not start with a UTF-8 BOM, and
must be valid UTF-8. Lines end at ``\\n``; one trailing ``\\r`` is removed. Every
problem raises :class:`~alignment_eval.alignments.errors.AlignmentInputError` naming the file
and the 1-based line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Optional, Sequence, Union

from nmt_common import files
from nmt_common.files import PathLike, atomic_write_text

from .errors import AlignmentInputError

__all__ = [
    "Link",
    "PathLike",
    "GoldAlignment",
    "SentencePair",
    "split_tokens",
    "read_lines",
    "parse_link",
    "read_gold_alignments",
    "read_alignments",
    "read_parallel_text",
    "format_alignment_line",
    "write_alignments",
    "atomic_write",
    "atomic_write_text",
    "check_line_counts",
]

Link = tuple[int, int]

UTF8_BOM = b"\xef\xbb\xbf"
TEXT_SEPARATOR = " ||| "
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
_LINK_RE = re.compile(
    r"(?P<i>[0-9]+)(?:-(?P<j>[0-9]+)(?:-(?P<tag>[PS]))?|p(?P<jp>[0-9]+))", re.ASCII
)
_EXPECTED_LINK_FORMS = "expected i-j, ipj or i-j-P"


@dataclass(frozen=True)
class GoldAlignment:
    """Gold links of one sentence pair, 0-based ``(source, target)``.

    ``sure`` is S. ``possible`` holds the links marked possible and not sure, so
    S and ``possible`` are disjoint. P = S ∪ possible is :attr:`all_links`
    (Och & Ney 2003 require S ⊆ P).
    """

    sure: frozenset[Link] = frozenset()
    possible: frozenset[Link] = frozenset()

    def __post_init__(self) -> None:
        sure = frozenset(self.sure)
        object.__setattr__(self, "sure", sure)
        object.__setattr__(self, "possible", frozenset(self.possible) - sure)

    @property
    def all_links(self) -> frozenset[Link]:
        """P = S ∪ possible."""
        return self.sure | self.possible


@dataclass(frozen=True)
class SentencePair:
    """One line of a ``SOURCE ||| TARGET`` file, tokenised by :func:`split_tokens`."""

    source: tuple[str, ...]
    target: tuple[str, ...]


def split_tokens(side: str) -> list[str]:
    """Tokenise one side of a parallel-text line.

    Strips ASCII whitespace at both ends, splits on U+0020 only and drops the
    empty tokens left by runs of spaces. U+3000 and other non-ASCII spaces stay
    tokens (see the module docstring).
    """
    return [token for token in side.strip(_ASCII_WHITESPACE).split(" ") if token]


def read_lines(path: PathLike) -> list[str]:
    """Read a UTF-8 text file as a list of lines, with the file-level checks.

    Raises :class:`AlignmentInputError` for an empty (0-byte) file, a leading
    UTF-8 BOM or invalid UTF-8 (naming the line), and lets ``OSError`` (missing
    file, permission) propagate.
    """
    data = Path(path).read_bytes()
    if not data:
        raise AlignmentInputError(
            path, None, "file is empty (0 bytes); a file with one (possibly empty) line per sentence is expected"
        )
    if data.startswith(UTF8_BOM):
        raise AlignmentInputError(path, 1, "file starts with a UTF-8 byte-order mark (BOM); remove the BOM")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_number = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        raise AlignmentInputError(
            path, line_number, f"invalid UTF-8 byte 0x{data[exc.start]:02x} at byte {column} of the line"
        ) from None
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def check_line_counts(path: PathLike, count: int, other_path: PathLike, other_count: int) -> None:
    """Raise if ``path`` (with ``count`` lines) and ``other_path`` differ in line count."""
    if count != other_count:
        raise AlignmentInputError(
            path,
            None,
            f"line count mismatch: {path} has {count} lines but {other_path} has {other_count} lines",
        )


def parse_link(token: str, *, one_based: bool = False, reverse: bool = False) -> tuple[Link, bool]:
    """Parse one link token into a 0-based ``(source, target)`` pair and a sure flag.

    Raises ``ValueError`` (without file position) for a malformed token or an index
    0 in a 1-based file; the readers turn it into :class:`AlignmentInputError`.
    """
    match = _LINK_RE.fullmatch(token)
    if match is None:
        raise ValueError(f"malformed link {token!r} ({_EXPECTED_LINK_FORMS})")
    first = int(match.group("i"))
    if match.group("jp") is not None:
        second = int(match.group("jp"))
        sure = False
    else:
        second = int(match.group("j"))
        sure = match.group("tag") != "P"
    if one_based:
        if first == 0 or second == 0:
            raise ValueError(
                f"link {token!r} has index 0 but the file is read as 1-based "
                "(read it as 0-based if its indices start at 0)"
            )
        first -= 1
        second -= 1
    if reverse:
        first, second = second, first
    return (first, second), sure


def _range_error(
    path: PathLike,
    line_number: int,
    token: str,
    side: str,
    index: int,
    length: int,
    one_based: bool,
    text_path: Optional[PathLike],
) -> AlignmentInputError:
    shown = index + 1 if one_based else index
    base = "1-based" if one_based else "0-based"
    where = f" ({text_path}:{line_number})" if text_path is not None else ""
    return AlignmentInputError(
        path,
        line_number,
        f"link {token!r} is out of range: {side} index {shown} ({base}) but the sentence has "
        f"{length} {side} tokens{where}",
    )


def _parse_alignment_lines(
    path: PathLike,
    lines: Sequence[str],
    one_based: bool,
    reverse: bool,
    texts: Optional[Sequence[SentencePair]],
    text_path: Optional[PathLike],
) -> list[tuple[set[Link], set[Link]]]:
    parsed: list[tuple[set[Link], set[Link]]] = []
    for line_number, line in enumerate(lines, start=1):
        sure: set[Link] = set()
        possible: set[Link] = set()
        pair = texts[line_number - 1] if texts is not None else None
        for token in line.replace("\t", " ").split(" "):
            if not token:
                continue
            try:
                link, is_sure = parse_link(token, one_based=one_based, reverse=reverse)
            except ValueError as exc:
                raise AlignmentInputError(path, line_number, str(exc)) from None
            if pair is not None:
                if link[0] >= len(pair.source):
                    raise _range_error(
                        path, line_number, token, "source", link[0], len(pair.source), one_based, text_path
                    )
                if link[1] >= len(pair.target):
                    raise _range_error(
                        path, line_number, token, "target", link[1], len(pair.target), one_based, text_path
                    )
            (sure if is_sure else possible).add(link)
        parsed.append((sure, possible))
    return parsed


def _read_alignment_file(
    path: PathLike,
    one_based: bool,
    reverse: bool,
    texts: Optional[Sequence[SentencePair]],
    text_path: Optional[PathLike],
    expect_lines: Optional[int],
    expect_lines_from: Optional[PathLike],
) -> list[tuple[set[Link], set[Link]]]:
    lines = read_lines(path)
    if texts is not None:
        check_line_counts(path, len(lines), text_path if text_path is not None else "the text", len(texts))
    if expect_lines is not None:
        check_line_counts(
            path, len(lines), expect_lines_from if expect_lines_from is not None else "the reference", expect_lines
        )
    return _parse_alignment_lines(path, lines, one_based, reverse, texts, text_path)


def read_gold_alignments(
    path: PathLike,
    *,
    one_based: bool = False,
    reverse: bool = False,
    texts: Optional[Sequence[SentencePair]] = None,
    text_path: Optional[PathLike] = None,
    expect_lines: Optional[int] = None,
    expect_lines_from: Optional[PathLike] = None,
) -> list[GoldAlignment]:
    """Read a gold alignment file into one :class:`GoldAlignment` per line.

    With ``texts`` every index is checked against the sentence lengths and the
    line counts must match. ``expect_lines``/``expect_lines_from`` check the line
    count against another file. The shared gold sets are 1-based: pass
    ``one_based=True`` for them.
    """
    parsed = _read_alignment_file(path, one_based, reverse, texts, text_path, expect_lines, expect_lines_from)
    return [GoldAlignment(frozenset(sure), frozenset(possible)) for sure, possible in parsed]


def read_alignments(
    path: PathLike,
    *,
    one_based: bool = False,
    reverse: bool = False,
    texts: Optional[Sequence[SentencePair]] = None,
    text_path: Optional[PathLike] = None,
    expect_lines: Optional[int] = None,
    expect_lines_from: Optional[PathLike] = None,
) -> list[set[Link]]:
    """Read a hypothesis alignment file into one set of links per line.

    Sure and possible marks are merged (all links count), as in the reference
    ``aer.py``. Arguments as in :func:`read_gold_alignments`.
    """
    parsed = _read_alignment_file(path, one_based, reverse, texts, text_path, expect_lines, expect_lines_from)
    return [sure | possible for sure, possible in parsed]


def read_parallel_text(path: PathLike) -> list[SentencePair]:
    """Read a ``SOURCE ||| TARGET`` file, tokenised with :func:`split_tokens`."""
    pairs: list[SentencePair] = []
    for line_number, line in enumerate(read_lines(path), start=1):
        sides = line.split(TEXT_SEPARATOR)
        if len(sides) != 2:
            # Tolerate an empty side written without its outer space ("src |||", "||| tgt").
            sides = f" {line} ".split(TEXT_SEPARATOR)
        if len(sides) != 2:
            found = len(sides) - 1
            if found == 0:
                reason = "missing ' ||| ' separator between source and target"
            else:
                reason = f"found {found} ' ||| ' separators, expected exactly one"
            raise AlignmentInputError(path, line_number, reason)
        pairs.append(SentencePair(tuple(split_tokens(sides[0])), tuple(split_tokens(sides[1]))))
    return pairs


def format_alignment_line(
    links: Iterable[Link], possible: Iterable[Link] = (), *, one_based: bool = False
) -> str:
    """Format one sentence's links as Pharaoh text, sorted by (source, target).

    ``links`` are written as sure (``i-j``), ``possible`` as ``ipj``; a link in
    both is written once, as sure.
    """
    offset = 1 if one_based else 0
    sure = set(links)
    marked: dict[Link, str] = {link: "p" for link in possible}
    marked.update({link: "-" for link in sure})
    for i, j in marked:
        if i < 0 or j < 0:
            raise ValueError(f"negative index in link {(i, j)}")
    return " ".join(f"{i + offset}{mark}{j + offset}" for (i, j), mark in sorted(marked.items()))


def write_alignments(
    path: PathLike,
    alignments: Sequence[Union[GoldAlignment, Iterable[Link]]],
    *,
    one_based: bool = False,
) -> None:
    """Write one Pharaoh line per sentence, atomically (:func:`nmt_common.files.atomic_write_text`).

    Items may be plain link collections (written as sure links) or
    :class:`GoldAlignment` (sure as ``i-j``, possible as ``ipj``).
    """
    lines = []
    for item in alignments:
        if isinstance(item, GoldAlignment):
            lines.append(format_alignment_line(item.sure, item.possible, one_based=one_based))
        else:
            lines.append(format_alignment_line(item, one_based=one_based))
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` atomically: ``write(stream)`` into a temporary file next to it, which replaces
    ``path`` only when ``write`` succeeds (:func:`nmt_common.files.atomic_write` in ``"wb"`` mode).

    Readers never see a half-written file; on failure the temporary file is removed
    and an existing ``path`` is left untouched (a replaced file keeps its permissions).
    """
    with files.atomic_write(path, "wb") as stream:
        write(stream)
