"""Symmetrisation (Koehn et al. 2003 / Moses symal): hand-worked cases and a pseudo-code cross-check.

Links are written (source, target), 0-based. In the comments "t,s" is the
(target, source) order in which Moses walks the alignment.
"""

from __future__ import annotations

import random

import pytest

from alignment_eval import SYMMETRIZATION_METHODS, symmetrize

# ---------------------------------------------------------------------------
# Case A: every method gives a different answer.
#   src_len = tgt_len = 4
#   FWD = {(0,0), (1,1), (2,3)}          REV = {(0,0), (3,1), (3,3)}
#   intersection = {(0,0)}
#   union        = {(0,0), (1,1), (2,3), (3,1), (3,3)}
# grow-diag: start {(0,0)}. Visit t0,s0; its neighbours in symal order
#   (t-1,s) (t,s-1) out of range; (t1,s0)=(0,1) and (t0,s1)=(1,0) not in union;
#   diagonals: (t1,s1)=(1,1) is in the union and both words are unaligned -> add.
#   Visit t1,s1: no neighbour is in the union except (0,0), already present.
#   (3,1) is two source words away from (1,1), so it is not a neighbour.
#   -> grow-diag = {(0,0), (1,1)}
# grow-diag-final: FWD-only links first, in (t,s) order: (1,1) present; (2,3): src 2
#   unaligned -> add. REV-only links: (3,1) = t1,s3 comes first: src 3 unaligned ->
#   add. (3,3) = t3,s3: src 3 and tgt 3 are both aligned now -> skip.
#   -> gdf = {(0,0), (1,1), (2,3), (3,1)}
# grow-diag-final-and: (2,3): src 2 and tgt 3 both unaligned -> add.
#   (3,1): tgt 1 aligned -> skip. (3,3): tgt 3 aligned (by (2,3)) -> skip.
#   -> gdfa = {(0,0), (1,1), (2,3)}
# ---------------------------------------------------------------------------
CASE_A_FWD = {(0, 0), (1, 1), (2, 3)}
CASE_A_REV = {(0, 0), (3, 1), (3, 3)}
CASE_A_EXPECTED = {
    "intersection": {(0, 0)},
    "union": {(0, 0), (1, 1), (2, 3), (3, 1), (3, 3)},
    "grow-diag": {(0, 0), (1, 1)},
    "grow-diag-final": {(0, 0), (1, 1), (2, 3), (3, 1)},
    "grow-diag-final-and": {(0, 0), (1, 1), (2, 3)},
}


@pytest.mark.parametrize("method", SYMMETRIZATION_METHODS)
def test_case_a_each_method(method: str) -> None:
    assert symmetrize(CASE_A_FWD, CASE_A_REV, method, 4, 4) == CASE_A_EXPECTED[method]


def test_case_a_methods_all_differ() -> None:
    results = [frozenset(CASE_A_EXPECTED[m]) for m in SYMMETRIZATION_METHODS]
    assert len(set(results)) == len(results)
    # and they nest: intersection ⊂ grow-diag ⊂ gdfa ⊂ gdf ⊂ union
    chain = ["intersection", "grow-diag", "grow-diag-final-and", "grow-diag-final", "union"]
    for smaller, larger in zip(chain, chain[1:]):
        assert CASE_A_EXPECTED[smaller] < CASE_A_EXPECTED[larger]


def test_grow_prefers_straight_neighbours_over_the_diagonal() -> None:
    # 2x2, intersection {(0,0)}, union = all four cells.
    # Visit t0,s0: neighbour (t1,s0) = (0,1): tgt 1 unaligned -> add;
    # (t0,s1) = (1,0): src 1 unaligned -> add; diagonal (t1,s1) = (1,1): src 1 and
    # tgt 1 are both aligned by now -> skip. FINAL cannot add (1,1) either.
    fwd = {(0, 0), (0, 1), (1, 1)}
    rev = {(0, 0), (1, 0)}
    expected = {(0, 0), (0, 1), (1, 0)}
    assert symmetrize(fwd, rev, "grow-diag", 2, 2) == expected
    assert symmetrize(fwd, rev, "grow-diag-final", 2, 2) == expected
    assert symmetrize(fwd, rev, "grow-diag-final-and", 2, 2) == expected
    assert symmetrize(fwd, rev, "union", 2, 2) == expected | {(1, 1)}


def test_grow_iterates_until_no_change() -> None:
    # A diagonal chain (0,0)-(1,1)-(2,2)-(3,3) in FWD only, intersection {(3,3)}.
    # The sweep visits t3,s3 last; it adds (2,2), which sorts before it, so it is only
    # expanded in the next sweep; each sweep adds one more link: 3 extra sweeps.
    fwd = {(0, 0), (1, 1), (2, 2), (3, 3)}
    rev = {(3, 3)}
    assert symmetrize(fwd, rev, "grow-diag", 4, 4) == fwd


def test_final_and_takes_the_src_to_tgt_links_first() -> None:
    # No intersection, so grow adds nothing. FWD-only (0,0) and REV-only (0,1) share
    # source word 0. FINAL-AND goes over the src->tgt links first (Moses: giza.E-F, -d):
    # (0,0) both free -> add; then (0,1): src 0 aligned -> skip.
    assert symmetrize({(0, 0)}, {(0, 1)}, "grow-diag-final-and", 1, 2) == {(0, 0)}
    # Swapping the inputs swaps which link wins.
    assert symmetrize({(0, 1)}, {(0, 0)}, "grow-diag-final-and", 1, 2) == {(0, 1)}
    # FINAL (OR) adds both: (0,1) has an unaligned target word.
    assert symmetrize({(0, 0)}, {(0, 1)}, "grow-diag-final", 1, 2) == {(0, 0), (0, 1)}


def test_empty_inputs() -> None:
    for method in SYMMETRIZATION_METHODS:
        assert symmetrize(set(), set(), method, 3, 3) == set()
        assert symmetrize(set(), set(), method, 0, 0) == set()


def test_one_side_empty() -> None:
    fwd = {(0, 0), (1, 1)}
    assert symmetrize(fwd, set(), "intersection", 2, 2) == set()
    assert symmetrize(fwd, set(), "grow-diag", 2, 2) == set()  # nothing to grow from
    assert symmetrize(fwd, set(), "grow-diag-final", 2, 2) == fwd
    assert symmetrize(fwd, set(), "grow-diag-final-and", 2, 2) == fwd


def test_lengths_inferred_when_omitted() -> None:
    assert symmetrize(CASE_A_FWD, CASE_A_REV, "grow-diag-final") == CASE_A_EXPECTED["grow-diag-final"]


def test_bad_method_and_out_of_range_links() -> None:
    with pytest.raises(ValueError, match="unknown symmetrisation method"):
        symmetrize(set(), set(), "grow-diag-finale", 1, 1)
    with pytest.raises(ValueError, match="outside"):
        symmetrize({(2, 0)}, set(), "union", 2, 2)
    with pytest.raises(ValueError, match="outside"):
        symmetrize(set(), {(0, -1)}, "union", 2, 2)


def test_inputs_are_not_modified() -> None:
    fwd, rev = set(CASE_A_FWD), set(CASE_A_REV)
    symmetrize(fwd, rev, "grow-diag-final", 4, 4)
    assert fwd == CASE_A_FWD and rev == CASE_A_REV


# ---------------------------------------------------------------------------
# Cross-check against a literal transcription of Koehn's pseudo-code
# (statmt.org / Koehn 2010): scan e = 0..n, f = 0..m over the live alignment.
# ---------------------------------------------------------------------------
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _pseudo_code(fwd: set, rev: set, method: str, src_len: int, tgt_len: int) -> set:
    union = fwd | rev
    alignment = set(fwd & rev)
    if method == "intersection":
        return alignment
    if method == "union":
        return union

    def e_aligned(e: int) -> bool:
        return any((f, e) in alignment for f in range(src_len))

    def f_aligned(f: int) -> bool:
        return any((f, e) in alignment for e in range(tgt_len))

    while True:  # GROW-DIAG
        added = False
        for e in range(tgt_len):
            for f in range(src_len):
                if (f, e) not in alignment:
                    continue
                for de, df in _NEIGHBOURS:
                    e_new, f_new = e + de, f + df
                    if not (0 <= e_new < tgt_len and 0 <= f_new < src_len):
                        continue
                    if (not e_aligned(e_new) or not f_aligned(f_new)) and (f_new, e_new) in union:
                        alignment.add((f_new, e_new))
                        added = True
        if not added:
            break
    if method == "grow-diag":
        return alignment
    for directional in (fwd, rev):  # FINAL(e2f); FINAL(f2e)
        for e in range(tgt_len):
            for f in range(src_len):
                if (f, e) not in directional:
                    continue
                if method == "grow-diag-final-and":
                    ok = not e_aligned(e) and not f_aligned(f)
                else:
                    ok = not e_aligned(e) or not f_aligned(f)
                if ok:
                    alignment.add((f, e))
    return alignment


def _random_directional(rng: random.Random, src_len: int, tgt_len: int, forward: bool) -> set:
    # Roughly what an aligner gives: each target (forward) or source (reverse) word
    # gets at most one partner, near the diagonal, sometimes none.
    links = set()
    if forward:
        for t in range(tgt_len):
            if rng.random() < 0.85:
                s = min(src_len - 1, max(0, round(t * src_len / tgt_len) + rng.randint(-2, 2)))
                links.add((s, t))
    else:
        for s in range(src_len):
            if rng.random() < 0.85:
                t = min(tgt_len - 1, max(0, round(s * tgt_len / src_len) + rng.randint(-2, 2)))
                links.add((s, t))
    # plus an occasional non-functional link
    if rng.random() < 0.3:
        links.add((rng.randrange(src_len), rng.randrange(tgt_len)))
    return links


@pytest.mark.parametrize("method", SYMMETRIZATION_METHODS)
def test_matches_koehn_pseudo_code_on_random_sentences(method: str) -> None:
    rng = random.Random(1234)
    for _ in range(150):
        src_len, tgt_len = rng.randint(1, 12), rng.randint(1, 12)
        fwd = _random_directional(rng, src_len, tgt_len, forward=True)
        rev = _random_directional(rng, src_len, tgt_len, forward=False)
        assert symmetrize(fwd, rev, method, src_len, tgt_len) == _pseudo_code(fwd, rev, method, src_len, tgt_len)


def test_case_a_matches_pseudo_code() -> None:
    for method in SYMMETRIZATION_METHODS:
        assert _pseudo_code(CASE_A_FWD, CASE_A_REV, method, 4, 4) == CASE_A_EXPECTED[method]
