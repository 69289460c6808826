"""Attention -> word alignment induction on hand-made matrices."""

import numpy as np
import pytest

from alignment_eval.alignments.induce import pool_to_words, row_links, target_rows, word_links


def test_argmax_leaves_all_zero_rows_unaligned():
    rows = np.array([[0.1, 0.7, 0.2], [0.0, 0.0, 0.0], [0.0, 0.0, 0.4]])
    links = row_links(rows, "argmax")
    assert links.tolist() == [[False, True, False], [False, False, False], [False, False, True]]


def test_nonzero_takes_the_support_and_threshold_is_row_normalised():
    rows = np.array([[0.0, 1.2, 0.4, 0.0], [2.0, 2.0, 0.0, 0.0]])  # unnormalised (ReLA-like)
    assert row_links(rows, "nonzero").tolist() == [[False, True, True, False], [True, True, False, False]]
    # row 0 normalised: 0.75, 0.25 -> only 0.75 >= 0.3; row 1: 0.5, 0.5
    assert row_links(rows, "threshold", 0.3).tolist() == [[False, True, False, False], [True, True, False, False]]
    assert not row_links(np.zeros((2, 3)), "threshold", 0.0).any()  # null rows never link


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="argmax"):
        row_links(np.ones((1, 1)), "max")


def test_normal_and_shifted_rows_and_the_eos_column():
    # decoder positions: 0 = BOS/EOS input, 1 = target piece 0 input, 2 = piece 1 input
    attention = np.arange(3 * 4, dtype=float).reshape(3, 4)  # 3 positions, 3 source pieces + EOS
    normal = target_rows(attention, n_target_pieces=2, shift=False)
    shifted = target_rows(attention, n_target_pieces=2, shift=True)
    assert normal.tolist() == [[0, 1, 2], [4, 5, 6]]  # positions 0-1, EOS column dropped
    assert shifted.tolist() == [[4, 5, 6], [8, 9, 10]]  # positions 1-2
    with pytest.raises(ValueError, match="too few"):
        target_rows(attention, n_target_pieces=3, shift=True)


def test_pool_to_words_sums_source_pieces_and_averages_target_pieces():
    # target pieces: t0 t0 t1 (word 0 has two pieces); source pieces: s0 s1 s1
    rows = np.array([
        [0.2, 0.3, 0.5],
        [0.4, 0.4, 0.2],
        [1.0, 0.0, 0.0],
    ])
    pooled = pool_to_words(rows, np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2)
    # word (t0, s0) = mean(0.2, 0.4) = 0.3; (t0, s1) = mean(0.8, 0.6) = 0.7; (t1, s0) = 1.0; (t1, s1) = 0
    np.testing.assert_allclose(pooled, [[0.3, 0.7], [1.0, 0.0]])


def test_any_rule_links_words_when_any_pieces_link_and_mean_rule_pools_first():
    rows = np.array([
        [0.6, 0.3, 0.1],  # t0 piece a -> s0
        [0.1, 0.2, 0.7],  # t0 piece b -> s1 (piece 2)
        [0.0, 0.0, 0.0],  # t1: attends to nothing
    ])
    target_map, source_map = np.array([0, 0, 1]), np.array([0, 1, 1])
    assert word_links(rows, target_map, source_map, 2, 2, "argmax", "any") == {(0, 0), (1, 0)}
    # pooled t0: s0 = mean(0.6, 0.1) = 0.35, s1 = mean(0.4, 0.9) = 0.65 -> s1 only; t1 null
    assert word_links(rows, target_map, source_map, 2, 2, "argmax", "mean") == {(1, 0)}
    with pytest.raises(ValueError, match="subword rule"):
        word_links(rows, target_map, source_map, 2, 2, "argmax", "max")
