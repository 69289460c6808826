"""AER / precision / recall / F (Och & Ney 2003) with the semantics of lilt/alignment-scripts aer.py.

Numbers are worked out by hand in the comments; a literal restatement of the
reference formulas is also run on random data.
"""

from __future__ import annotations

import random

import pytest

from alignment_eval import (
    AERCounts,
    GoldAlignment,
    Signature,
    apply_possible_mode,
    count_links,
    metrics_from_counts,
    score_alignments,
)


def gold(sure=(), possible=()) -> GoldAlignment:
    return GoldAlignment(frozenset(sure), frozenset(possible))


# Case 1 (one sentence):
#   S = {(0,0), (1,1)}, P = S ∪ {(1,2)}, A = {(0,0), (1,2), (2,2)}
#   |A| = 3, |S| = 2, |A∩S| = 1 ((0,0)), |A∩P| = 2 ((0,0), (1,2))
#   precision = 2/3, recall = 1/2, AER = 1 − (1 + 2)/(3 + 2) = 1 − 3/5 = 0.4
#   F(α=0.5) = 1 / (0.5/(2/3) + 0.5/(1/2)) = 1 / (0.75 + 1) = 4/7
CASE1_GOLD = [gold({(0, 0), (1, 1)}, {(1, 2)})]
CASE1_HYP = [{(0, 0), (1, 2), (2, 2)}]


def test_case1_hand_computed() -> None:
    result = score_alignments(CASE1_GOLD, CASE1_HYP)
    assert result.counts == AERCounts(a=3, s=2, p=3, a_and_s=1, a_and_p=2, sentences=1)
    assert result.aer == pytest.approx(0.4)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(1 / 2)
    assert result.f_measure == pytest.approx(4 / 7)
    assert result.links == 3 and result.sentences == 1


def test_case1_reference_output_format() -> None:
    # The reference prints "{hyp}: {AER:.1f}% ({P:.1f}%/{R:.1f}%/{links})" and "F-Measure: {F:.3f}".
    lines = score_alignments(CASE1_GOLD, CASE1_HYP).reference_lines("hyp.txt")
    assert lines == ["hyp.txt: 40.0% (66.7%/50.0%/3)", "F-Measure: 0.571"]


def test_corpus_level_sums_not_sentence_average() -> None:
    # Sentence 1: S = {(0,0)}, A = {(0,0)}                       -> perfect on its own.
    # Sentence 2: S = {(0,0),(1,1),(2,2)}, A = {(0,1),(1,0),(2,2),(3,3)}
    #   |A| = 4, |A∩S| = |A∩P| = 1, |S| = 3  -> sentence AER = 1 − 2/7 = 5/7
    # Corpus: |A| = 5, |S| = 4, |A∩S| = |A∩P| = 2
    #   AER = 1 − 4/9 = 5/9, precision = 2/5, recall = 2/4, F = 1/(1.25 + 1) = 4/9
    # The per-sentence average (0 + 5/7)/2 = 5/14 would be wrong.
    gold_sets = [gold({(0, 0)}), gold({(0, 0), (1, 1), (2, 2)})]
    hyp = [{(0, 0)}, {(0, 1), (1, 0), (2, 2), (3, 3)}]
    result = score_alignments(gold_sets, hyp)
    assert result.aer == pytest.approx(5 / 9)
    assert result.aer != pytest.approx(5 / 14)
    assert result.precision == pytest.approx(0.4)
    assert result.recall == pytest.approx(0.5)
    assert result.f_measure == pytest.approx(4 / 9)
    assert result.reference_lines("h") == ["h: 55.6% (40.0%/50.0%/5)", "F-Measure: 0.444"]


def test_possible_links_count_for_precision_only() -> None:
    # S = {(0,0)}, P = S ∪ {(1,1)}; A = {(1,1)} hits only a possible link.
    #   precision = 1/1, recall = 0/1, AER = 1 − (0 + 1)/(1 + 1) = 0.5, F = 0 (recall 0)
    result = score_alignments([gold({(0, 0)}, {(1, 1)})], [{(1, 1)}])
    assert (result.precision, result.recall, result.aer, result.f_measure) == (1.0, 0.0, 0.5, 0.0)


def test_sure_links_as_hypothesis_score_perfectly() -> None:
    # A = S: |A∩S| = |A∩P| = |A| = |S| -> precision 1, recall 1, AER 0.
    g = [gold({(0, 0), (1, 2)}, {(2, 2), (3, 1)})]
    result = score_alignments(g, [set(g[0].sure)])
    assert (result.aer, result.precision, result.recall, result.f_measure) == (0.0, 1.0, 1.0, 1.0)
    # A = P: |A∩P| = |A| = 4, |A∩S| = |S| = 2 -> AER = 1 − (2 + 4)/(4 + 2) = 0, precision 1, recall 1.
    result = score_alignments(g, [set(g[0].all_links)])
    assert (result.aer, result.precision, result.recall) == (0.0, 1.0, 1.0)


def test_empty_hypothesis_has_defined_values() -> None:
    # |A| = 0: the reference divides by zero. We take 0/0 as 0:
    #   precision = 0, recall = 0/2 = 0, AER = 1 − 0/(0 + 2) = 1, F = 0.
    result = score_alignments([gold({(0, 0), (1, 1)})], [set()])
    assert (result.aer, result.precision, result.recall, result.f_measure) == (1.0, 0.0, 0.0, 0.0)
    assert result.reference_lines("h")[0] == "h: 100.0% (0.0%/0.0%/0)"


def test_gold_without_sure_links() -> None:
    # No gold links at all, A = {(0,0)}: precision 0/1 = 0, recall 0/0 -> 0, AER = 1 − 0/1 = 1.
    result = score_alignments([gold()], [{(0, 0)}])
    assert (result.aer, result.precision, result.recall, result.f_measure) == (1.0, 0.0, 0.0, 0.0)
    # Only possible gold links, A = P = {(0,0)}: precision 1, recall 0/0 -> 0,
    # AER = 1 − (0 + 1)/(1 + 0) = 0, F = 0 (recall 0).
    result = score_alignments([gold((), {(0, 0)})], [{(0, 0)}])
    assert (result.aer, result.precision, result.recall, result.f_measure) == (0.0, 1.0, 0.0, 0.0)


def test_everything_empty() -> None:
    result = score_alignments([gold(), gold()], [set(), set()])
    assert (result.aer, result.precision, result.recall, result.f_measure) == (1.0, 0.0, 0.0, 0.0)
    assert result.sentences == 2


def test_f_alpha_weights() -> None:
    # Case 1: precision 2/3, recall 1/2. α = 1 -> F = precision; α = 0 -> F = recall.
    counts = count_links(CASE1_GOLD, CASE1_HYP)
    assert metrics_from_counts(counts, f_alpha=1.0).f_measure == pytest.approx(2 / 3)
    assert metrics_from_counts(counts, f_alpha=0.0).f_measure == pytest.approx(1 / 2)
    with pytest.raises(ValueError):
        metrics_from_counts(counts, f_alpha=1.5)


def test_duplicate_hypothesis_links_count_once() -> None:
    result = score_alignments(CASE1_GOLD, [[(0, 0), (0, 0), (1, 2), (2, 2), (1, 2)]])
    assert result.counts.a == 3
    assert result.aer == pytest.approx(0.4)


def test_sentence_count_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 sentences"):
        score_alignments([gold(), gold()], [set()])


def test_possible_modes() -> None:
    # all-sure: S = P = {(0,0),(1,1),(1,2)}; A = {(0,0),(1,2),(2,2)}
    #   |A∩S| = |A∩P| = 2, |S| = 3 -> AER = 1 − 4/6 = 1/3, precision = recall = 2/3
    result = score_alignments(apply_possible_mode(CASE1_GOLD, "all-sure"), CASE1_HYP)
    assert (result.aer, result.precision, result.recall) == pytest.approx((1 / 3, 2 / 3, 2 / 3))
    # ignore-possible: S = P = {(0,0),(1,1)} -> |A∩S| = |A∩P| = 1
    #   AER = 1 − 2/5 = 0.6, precision = 1/3, recall = 1/2
    result = score_alignments(apply_possible_mode(CASE1_GOLD, "ignore-possible"), CASE1_HYP)
    assert (result.aer, result.precision, result.recall) == pytest.approx((0.6, 1 / 3, 1 / 2))
    assert apply_possible_mode(CASE1_GOLD, "p-includes-s") == CASE1_GOLD
    with pytest.raises(ValueError):
        apply_possible_mode(CASE1_GOLD, "both")


def test_gold_alignment_keeps_sure_and_possible_disjoint() -> None:
    g = GoldAlignment(frozenset({(0, 0)}), frozenset({(0, 0), (1, 1)}))
    assert g.possible == frozenset({(1, 1)})
    assert g.all_links == frozenset({(0, 0), (1, 1)})


def test_result_dict_and_signature() -> None:
    signature = Signature.for_aer("toy.gold", gold_one_based=True, hyp_one_based=False)
    result = score_alignments(CASE1_GOLD, CASE1_HYP, signature=signature)
    record = result.as_dict()
    for key in ("aer", "precision", "recall", "f_measure", "links", "sentences", "counts", "signature"):
        assert key in record
    assert record["counts"] == {"a": 3, "s": 2, "p": 3, "a_and_s": 1, "a_and_p": 2, "sentences": 1}
    assert record["signature"]["gold"] == "toy.gold"
    assert record["signature_str"] == str(signature)


def _reference_formulas(sure_sets, possible_sets, hyp_sets):
    """The reference script's arithmetic, restated: float sums over sentences, P ⊇ S."""
    sum_a_intersect_p = sum_a_intersect_s = sum_s = sum_a = 0.0
    for sure, possible, hyp in zip(sure_sets, possible_sets, hyp_sets):
        sum_a += len(hyp)
        sum_s += len(sure)
        sum_a_intersect_p += len(hyp & possible)
        sum_a_intersect_s += len(hyp & sure)
    precision = sum_a_intersect_p / sum_a
    recall = sum_a_intersect_s / sum_s
    aer = 1.0 - (sum_a_intersect_p + sum_a_intersect_s) / (sum_a + sum_s)
    f_measure = 1.0 / (0.5 / precision + 0.5 / recall)
    return aer, precision, recall, f_measure


def test_matches_reference_formulas_on_random_corpora() -> None:
    rng = random.Random(7)
    checked = 0
    for _ in range(30):
        gold_sets, sure_sets, possible_sets, hyp_sets = [], [], [], []
        for _ in range(rng.randint(1, 20)):
            cells = [(i, j) for i in range(6) for j in range(6)]
            sure = {c for c in cells if rng.random() < 0.15}
            possible_only = {c for c in cells if rng.random() < 0.1} - sure
            hyp = {c for c in cells if rng.random() < 0.2}
            gold_sets.append(gold(sure, possible_only))
            sure_sets.append(sure)
            possible_sets.append(sure | possible_only)  # the reference adds sure links to P too
            hyp_sets.append(hyp)
        ours = score_alignments(gold_sets, hyp_sets)
        if ours.precision == 0.0 or ours.recall == 0.0:
            continue  # the reference divides by zero here
        checked += 1
        theirs = _reference_formulas(sure_sets, possible_sets, hyp_sets)
        assert (ours.aer, ours.precision, ours.recall, ours.f_measure) == pytest.approx(theirs, abs=1e-12)
    assert checked >= 20


# --- signature -------------------------------------------------------------------------


def test_signature_rendering_and_optional_keys() -> None:
    from alignment_eval import __version__

    basic = Signature.for_aer("deen.gold", gold_one_based=True, hyp_one_based=False)
    assert str(basic) == (
        f"gold:deen.gold|gold-base:1|hyp-base:0|rev-gold:no|rev-hyp:no|possible:P=S+P|version:{__version__}"
    )
    extracted = Signature.for_aer(
        "deen.gold",
        gold_one_based=True,
        hyp_one_based=False,
        reverse_hyp=True,
        layer=3,
        head="avg",
        method="shift-att",
        shift=True,
        subword="any-subword",
        symmetrization="grow-diag",
    )
    assert list(extracted) == [
        "gold", "gold-base", "hyp-base", "rev-gold", "rev-hyp", "possible",
        "layer", "head", "method", "shift", "subword", "sym", "version",
    ]
    assert extracted.as_dict()["head"] == "avg" and extracted["shift"] == "yes" and extracted["rev-hyp"] == "yes"
    assert Signature.parse(str(extracted)) == extracted
    with_head = basic.with_items(head=5, layer=None)
    assert with_head["head"] == "5" and "layer" not in with_head and list(with_head)[-1] == "version"


def test_signature_validation() -> None:
    with pytest.raises(ValueError):
        Signature.for_aer("g", gold_one_based=True, hyp_one_based=True, possible="maybe")
    with pytest.raises(ValueError):
        Signature.for_aer("g", gold_one_based=True, hyp_one_based=True, head="mean")
    with pytest.raises(ValueError):
        Signature.for_aer("a|b", gold_one_based=True, hyp_one_based=True)
    with pytest.raises(ValueError):
        Signature.parse("gold")
