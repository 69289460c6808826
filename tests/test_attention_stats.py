"""Attention statistics on hand-built weights whose answers are known."""

import math

import numpy as np
import pytest

from alignment_eval.analysis.attention_stats import SublayerStatistics, allowed_positions, count_layer


def test_identical_heads_have_zero_diversity_and_disjoint_heads_have_ln2():
    uniform = np.full((2, 3, 4), 0.25)  # two identical uniform heads
    counts = count_layer(uniform, np.ones((3, 4), dtype=bool))
    assert counts.js_sum == pytest.approx(0.0, abs=1e-12) and counts.js_rows == 3
    disjoint = np.zeros((2, 1, 2))
    disjoint[0, 0, 0] = disjoint[1, 0, 1] = 1.0
    counts = count_layer(disjoint, np.ones((1, 2), dtype=bool))
    assert counts.js_sum == pytest.approx(math.log(2))


def test_sparsity_null_rate_and_entropy_of_a_relu_like_head():
    weights = np.array([[
        [0.0, 2.0, 2.0, 0.0],  # two zeros; normalised (0, .5, .5, 0): entropy ln 2
        [0.0, 0.0, 0.0, 0.0],  # null row
    ]])
    summary = count_layer(weights, np.ones((2, 4), dtype=bool)).heads[0].summary()
    assert summary["sparsity"] == pytest.approx(6 / 8)
    assert summary["null_rate"] == pytest.approx(1 / 2)
    assert summary["entropy"] == pytest.approx(math.log(2))


def test_null_rows_are_left_out_of_diversity_and_counted():
    weights = np.zeros((3, 2, 2))
    weights[0, 0] = [1.0, 0.0]
    weights[1, 0] = [0.0, 1.0]  # query 0: heads 0 and 1 live, head 2 null
    weights[0, 1] = [0.5, 0.5]  # query 1: only head 0 live -> no JS
    counts = count_layer(weights, np.ones((2, 2), dtype=bool))
    assert counts.js_rows == 1 and counts.js_excluded_rows == 1
    assert counts.js_sum == pytest.approx(math.log(2))  # the two live heads of query 0 are disjoint


def test_decoder_self_attention_counts_only_causal_positions():
    allowed = allowed_positions("decoder", 3, 3)
    assert allowed.sum() == 6
    weights = np.tril(np.ones((1, 3, 3))) / np.arange(1, 4).reshape(1, 3, 1)  # uniform causal softmax
    summary = count_layer(weights, allowed).heads[0].summary()
    assert summary["sparsity"] == 0.0 and summary["null_rate"] == 0.0


def test_sentence_statistics_accumulate_over_sentences_and_layers():
    stats = SublayerStatistics("cross")
    first = np.zeros((2, 1, 2, 3))
    first[0, 0] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]
    first[1, 0] = [[0.0, 0.0, 0.0], [0.2, 0.3, 0.5]]
    second = np.full((2, 1, 1, 2), 0.5)
    stats.add_sentence(first)
    stats.add_sentence(second)
    summary = stats.summary()
    layer1, layer2 = summary.layers
    # layer 1: zeros 2 + 1 + 0 (second sentence) over 6 + 2 positions
    assert layer1.sparsity == pytest.approx(3 / 8)
    assert layer2.null_rate == pytest.approx(1 / 3)  # one null row of three
    assert summary.overall.rows == 6
    assert layer1.js_diversity is None and layer1.js_excluded_rows == 3  # one head per layer
