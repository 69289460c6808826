"""What the aligner routes share: the indexed corpus they get, the files they write, the link lines they read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..alignments.io import Link, parse_link
from .errors import AlignerFailedError

__all__ = [
    "IndexedCorpus", "fast_align_words", "index_corpus", "links_per_sentence", "parse_aligner_line", "stderr_tail",
    "write_fast_align_corpus",
]


@dataclass(frozen=True)
class IndexedCorpus:
    """Sentence pairs as the aligners get them: integer token ids, one vocabulary per side.

    ``trainable``: the pairs with words on both sides (the training data);
    ``wanted``: the pairs whose links are returned, in that order.
    """

    src_ids: list[list[int]]
    src_vocab_size: int
    tgt_ids: list[list[int]]
    tgt_vocab_size: int
    trainable: list[int]
    wanted: list[int]


def _index_tokens(sentences: Sequence[Sequence[str]], lowercase: bool) -> tuple[list[list[int]], int]:
    """Replace every token by an integer id; returns ids and vocabulary size."""
    vocabulary: dict[str, int] = {}
    encoded = [
        [vocabulary.setdefault(token.lower() if lowercase else token, len(vocabulary)) for token in sentence]
        for sentence in sentences
    ]
    return encoded, len(vocabulary)


def index_corpus(
    src_sentences: Sequence[Sequence[str]], tgt_sentences: Sequence[Sequence[str]], wanted: Sequence[int], lowercase: bool
) -> IndexedCorpus:
    """Token ids of both sides (lowercased first with ``lowercase``); pairs with an empty side are not trainable."""
    src_ids, src_vocab_size = _index_tokens(src_sentences, lowercase)
    tgt_ids, tgt_vocab_size = _index_tokens(tgt_sentences, lowercase)
    trainable = [k for k in range(len(src_ids)) if src_ids[k] and tgt_ids[k]]
    return IndexedCorpus(src_ids, src_vocab_size, tgt_ids, tgt_vocab_size, trainable, list(wanted))


def fast_align_words(ids: Sequence[int], side: str) -> list[str]:
    """Token ids as fast_align words, ``s17`` (source) or ``t17`` (target): no whitespace, never ``|||``."""
    return [f"{side}{x}" for x in ids]


def write_fast_align_corpus(
    path: Path,
    first_ids: Sequence[Sequence[int]],
    first_side: str,
    second_ids: Sequence[Sequence[int]],
    second_side: str,
    lines: Sequence[int],
) -> None:
    """fast_align input, ``FIRST ||| SECOND`` for the sentence pairs in ``lines``."""
    with open(path, "w", encoding="utf-8") as stream:
        for k in lines:
            first = " ".join(fast_align_words(first_ids[k], first_side))
            second = " ".join(fast_align_words(second_ids[k], second_side))
            stream.write(f"{first} ||| {second}\n")


def parse_aligner_line(
    line: str, cond_len: int, gen_len: int, what: str, line_number: int
) -> set[tuple[int, int]]:
    """Parse one ``i-j`` line of aligner output (i indexes the first side of its input)."""
    links: set[tuple[int, int]] = set()
    for token in line.split():
        try:
            (first, second), _ = parse_link(token)
        except ValueError as exc:
            raise AlignerFailedError(f"{what}, output line {line_number}: {exc}") from None
        if first >= cond_len or second >= gen_len:
            raise AlignerFailedError(
                f"{what}, output line {line_number}: link {token!r} is outside a sentence pair of "
                f"{cond_len} and {gen_len} tokens"
            )
        links.add((first, second))
    return links


def links_per_sentence(
    corpus: IndexedCorpus, parse: Callable[[int, int], tuple[set[Link], set[Link]]]
) -> tuple[list[set[Link]], list[set[Link]]]:
    """Forward and reverse links of every wanted sentence; untrained ones get no links.

    ``parse(k, line_number)`` returns the (forward, reverse) source-target links of
    sentence ``k`` from 0-based line ``line_number`` of the aligner's output.
    """
    line_of = {k: number for number, k in enumerate(corpus.trainable)}
    forward: list[set[Link]] = []
    reverse: list[set[Link]] = []
    for k in corpus.wanted:
        if k in line_of:
            fwd, rev = parse(k, line_of[k])
        else:
            fwd, rev = set(), set()
        forward.append(fwd)
        reverse.append(rev)
    return forward, reverse


def stderr_tail(text: str, lines: int = 12) -> str:
    """The last ``lines`` lines of an aligner's stderr, for error messages."""
    return "\n".join(text.strip().splitlines()[-lines:])
