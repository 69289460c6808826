"""Symmetrisation of two directional word alignments (Och & Ney 2003; Koehn, Och & Marcu 2003).

Definitions follow Moses (``symal/symal.cpp``, run by ``train-model.perl`` through
``giza2bal.pl``), which is Koehn's pseudo-code (Koehn et al. 2003; Koehn,
*Statistical Machine Translation*, 2010, section 4.5). Below f is a source word
and e a target word, and a word is *aligned* when the current alignment has a
link on it.

* ``intersection``: links in both directions.
* ``union``: links in either direction.
* ``grow-diag``: start from the intersection, then repeat until a whole sweep
  adds nothing: visit the current links in (target, source) order, e first, then
  f. For each link (e, f), try its neighbours in the order (e−1, f), (e, f−1),
  (e+1, f), (e, f+1), (e−1, f−1), (e−1, f+1), (e+1, f−1), (e+1, f+1). Add a
  neighbour if it is in the union and its e or its f is not aligned yet. A link
  added during a sweep is visited in the same sweep if it comes after the current
  link in that order, and in the next sweep otherwise. This is how symal walks
  its ``std::set`` and how Koehn's pseudo-code scans e = 0..n, f = 0..m.
* ``grow-diag-final``: grow-diag, then FINAL: over the links found only in
  ``src_to_tgt``, then over those found only in ``tgt_to_src``, each in
  (target, source) order, add a link whose source word OR target word is still
  unaligned.
* ``grow-diag-final-and``: the same, but the FINAL step requires the source word
  AND the target word to be unaligned.

Order of the two FINAL passes: symal first adds the links of the alignment that
gives each target word at most one source word (GIZA++ run ``giza.E-F``, the
``-d`` file of ``giza2bal.pl``; Koehn's FINAL(e2f)), then the other. That is the
translation-direction src→tgt model, our ``src_to_tgt`` input (fast_align run
forward, or an NMT src→tgt model's attention argmax for each target word).

lilt/alignment-scripts has its own grow-diag-final, which differs from Moses.
This module follows Moses.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import AbstractSet, Iterable, Optional

from .io import Link

__all__ = ["SYMMETRIZATION_METHODS", "symmetrize"]

SYMMETRIZATION_METHODS: tuple[str, ...] = (
    "intersection",
    "union",
    "grow-diag",
    "grow-diag-final",
    "grow-diag-final-and",
)

# Neighbour offsets as (target, source) steps, in symal's order.
_DIAGONAL_NEIGHBOURS: tuple[tuple[int, int], ...] = (
    (-1, 0),
    (0, -1),
    (1, 0),
    (0, 1),
    (-1, -1),
    (-1, 1),
    (1, -1),
    (1, 1),
)


def _check_bounds(name: str, links: AbstractSet[Link], src_len: int, tgt_len: int) -> None:
    for src, tgt in links:
        if not (0 <= src < src_len and 0 <= tgt < tgt_len):
            raise ValueError(
                f"{name} link {(src, tgt)} is outside a {src_len}-word source and {tgt_len}-word target"
            )


def symmetrize(
    src_to_tgt: Iterable[Link],
    tgt_to_src_as_src_tgt: Iterable[Link],
    method: str = "grow-diag-final-and",
    src_len: Optional[int] = None,
    tgt_len: Optional[int] = None,
) -> set[Link]:
    """Combine two directional alignments of one sentence pair (Koehn et al. 2003 / Moses symal).

    Both inputs are 0-based ``(source, target)`` pairs: reverse the reverse-direction
    aligner's ``(target, source)`` output before calling. ``src_len``/``tgt_len``
    are the sentence lengths (inferred from the largest index when ``None``).
    Links outside the lengths raise ``ValueError``.
    """
    if method not in SYMMETRIZATION_METHODS:
        raise ValueError(f"unknown symmetrisation method {method!r}; choose from {', '.join(SYMMETRIZATION_METHODS)}")
    forward = set(src_to_tgt)
    backward = set(tgt_to_src_as_src_tgt)
    union = forward | backward
    if src_len is None:
        src_len = max((s for s, _ in union), default=-1) + 1
    if tgt_len is None:
        tgt_len = max((t for _, t in union), default=-1) + 1
    _check_bounds("src_to_tgt", forward, src_len, tgt_len)
    _check_bounds("tgt_to_src", backward, src_len, tgt_len)

    intersection = forward & backward
    if method == "intersection":
        return intersection
    if method == "union":
        return union

    # Work in (target, source) coordinates so that tuple order is symal's order.
    union_ts = {(t, s) for s, t in union}
    points = sorted((t, s) for s, t in intersection)
    current = set(points)
    aligned_tgt = {t for t, _ in points}
    aligned_src = {s for _, s in points}

    def add(point: tuple[int, int]) -> None:
        current.add(point)
        aligned_tgt.add(point[0])
        aligned_src.add(point[1])

    added = True
    while added:
        added = False
        index = 0
        while index < len(points):
            tgt, src = points[index]
            for d_tgt, d_src in _DIAGONAL_NEIGHBOURS:
                neighbour = (tgt + d_tgt, src + d_src)
                if neighbour in current or neighbour not in union_ts:
                    continue
                if neighbour[0] in aligned_tgt and neighbour[1] in aligned_src:
                    continue
                position = bisect_left(points, neighbour)
                points.insert(position, neighbour)
                if position <= index:
                    index += 1  # keep pointing at the link being expanded
                add(neighbour)
                added = True
            index += 1

    if method in ("grow-diag-final", "grow-diag-final-and"):
        both_unaligned = method == "grow-diag-final-and"
        for only_here in (forward - backward, backward - forward):
            for tgt, src in sorted((t, s) for s, t in only_here):
                if (tgt, src) in current:
                    continue
                tgt_free = tgt not in aligned_tgt
                src_free = src not in aligned_src
                if (tgt_free and src_free) if both_unaligned else (tgt_free or src_free):
                    add((tgt, src))

    return {(s, t) for t, s in current}
