"""alignment-eval interpret: hand-built cases with known answers, every variant, and the CLI end to end."""

import json
import math

import numpy as np
import pytest
import torch

from alignment_eval.analysis.attention_stats import count_layer
from alignment_eval.cli import main
from alignment_eval.alignments.errors import AlignmentInputError
from alignment_eval.interpretability.measures import (
    RankCorrelation,
    SupportOverlap,
    coindexed_shares,
    head_average,
    js_divergence,
    total_variation,
)
from fairseq_plugins.normalizers import ATTENTION_VARIANTS

from conftest import build_model

SENTENCES = [("w4 w5 w6 w7", "w8 w9 w10"), ("w11 w12 w13", "w14 w15 w16 w17"), ("w18 w19", "w20")]


def loaded_model(arch="softmax_transformer_tiny", seed=0):
    from alignment_eval.analysis.model_attention import LoadedModel

    model, dictionary = build_model(arch, seed=seed)
    return LoadedModel(model=model, source_dictionary=dictionary, target_dictionary=dictionary, checkpoint=f"{arch}-{seed}")


def encoded_pairs(loaded, sentences=SENTENCES):
    from alignment_eval.alignments.io import SentencePair
    from alignment_eval.analysis.model_attention import encode_pairs

    return encode_pairs(loaded, [SentencePair(tuple(s.split()), tuple(t.split())) for s, t in sentences])


# --- measures -------------------------------------------------------------------------------------


def test_kendall_tau_of_identical_rankings_is_one_and_null_rows_are_counted_apart():
    correlation = RankCorrelation()
    assert correlation.add(np.array([0.5, 0.2, 0.3]), np.array([5.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert correlation.add(np.array([0.5, 0.2, 0.3]), np.array([1.0, 3.0, 2.0])) == pytest.approx(-1.0)
    assert correlation.add(np.zeros(3), np.array([1.0, 2.0, 3.0])) is None  # ReLA null row
    assert correlation.add(np.zeros(3), np.array([1.0, 2.0, 3.0]), attends_elsewhere=True) is None  # all on EOS
    assert correlation.add(np.full(3, 0.3), np.array([1.0, 2.0, 3.0])) is None  # uniform: ties everywhere
    assert correlation.add(np.array([0.5, 0.2, 0.3]), np.zeros(3)) is None  # importance all zero
    summary = correlation.summary()
    assert summary["rows"] == 6 and summary["tau_rows"] == 2
    assert (summary["null_rows"], summary["other_keys_only_rows"]) == (1, 1)
    assert (summary["constant_attention_rows"], summary["constant_importance_rows"]) == (1, 1)
    assert summary["tau_mean"] == pytest.approx(0.0) and summary["tau_positive_rate"] == pytest.approx(0.5)


def test_divergences_of_known_distributions():
    p, q = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert js_divergence(p, q) == pytest.approx(math.log(2))
    assert js_divergence(p, p) == pytest.approx(0.0)
    assert total_variation(p, q) == pytest.approx(1.0)
    # smoothed attention KL of the adversarial test: 0 for equal rows, finite for disjoint ones, null rows left out
    from alignment_eval.interpretability.experiments import attention_kl_terms

    adversary = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]])  # [bsz, heads, queries, keys]
    base = torch.tensor([[[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]]])
    keys, queries = torch.tensor([[True, True, False]]), torch.tensor([[True, True]])
    kl, counted = attention_kl_terms(adversary, base, keys, queries)
    assert counted.tolist() == [[[True, False]]] and kl[0, 0, 0] == pytest.approx(0.0, abs=1e-7)
    kl, counted = attention_kl_terms(base.flip(-1).roll(-1, -1), base, keys, queries)
    assert 0 < kl[0, 0, 0] < math.inf and counted.all()
    # head average: mean of the row-normalised live heads; null only when every head is null
    heads = np.array([[[2.0, 2.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]])  # [heads, queries, keys]
    mixture, null = head_average(heads)
    np.testing.assert_allclose(mixture[0], [0.25, 0.75])
    assert null.tolist() == [False, True]


def test_support_overlap_of_a_hand_built_sparse_row():
    overlap = SupportOverlap()
    # support {0, 1}; top-2 by importance {0, 2}: overlap 1/2, Jaccard 1/3, chance 2/4
    assert overlap.add(np.array([0.6, 0.4, 0.0, 0.0]), np.array([9.0, 1.0, 5.0, 0.0])) == pytest.approx(0.5)
    assert overlap.add(np.array([0.0, 0.4, 0.0, 0.0]), np.array([0.0, 9.0, 5.0, 0.0])) == pytest.approx(1.0)
    assert overlap.add(np.full(4, 0.25), np.arange(4.0)) is None  # dense: overlap 1 by construction
    assert overlap.add(np.zeros(4), np.arange(4.0)) is None
    summary = overlap.summary()
    assert (summary["compared_rows"], summary["full_support_rows"], summary["null_rows"]) == (2, 1, 1)
    assert summary["overlap_mean"] == pytest.approx(0.75)
    assert summary["jaccard_mean"] == pytest.approx((1 / 3 + 1) / 2)
    assert summary["chance_overlap_mean"] == pytest.approx((0.5 + 0.25) / 2)
    # with a weight share, dense rows are compared too: 0.9 of (.5, .3, .15, .05) is held by keys {0, 1, 2}
    by_mass = SupportOverlap(mass=0.9)
    assert by_mass.add(np.array([0.5, 0.3, 0.15, 0.05]), np.array([3.0, 0.0, 2.0, 1.0])) == pytest.approx(2 / 3)
    assert by_mass.summary()["support_size_mean"] == 3


def test_coindexed_share_of_a_diagonal_and_of_an_even_attribution():
    share, top = coindexed_shares(np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(share, 1.0)
    assert top.all()
    share, _ = coindexed_shares(np.ones((4, 4)))
    np.testing.assert_allclose(share, 0.25)
    share, _ = coindexed_shares(np.zeros((2, 2)))
    assert np.isnan(share).all()


# --- hand-built models --------------------------------------------------------------------------


def block_source_position(model, position):
    """Hooks giving every encoder self-attention and cross-attention fixed weights, uniform over the
    source positions but ``position``: the output then does not depend on that input token at all
    (zeroing its column of learned weights would not do: softmax weights of the other keys depend on it)."""
    def hook(weights, mask):
        keep = ~mask
        keep[..., position] = False
        keep = keep.to(weights.dtype)
        return keep / keep.sum(dim=-1, keepdim=True).clamp(min=1.0)

    modules = [m for sublayer, _, m in model.attention_modules() if sublayer in ("encoder", "cross")]
    for module in modules:
        module.weights_hook = hook
    return modules


@pytest.mark.parametrize("arch", ["softmax_transformer_tiny", "rela_transformer_tiny"])
def test_an_input_the_output_ignores_has_zero_importance(arch):
    from alignment_eval.interpretability.model import gradient_times_input, leave_one_out

    loaded = loaded_model(arch)
    pair = encoded_pairs(loaded)[0]
    ignored = 1
    block_source_position(loaded.model, ignored)
    pad, unk = loaded.source_dictionary.pad(), loaded.source_dictionary.unk()
    gradient = gradient_times_input(loaded.model, pair, pad)  # [predicted tokens, source positions + EOS]
    loo = leave_one_out(loaded.model, pair, pad, unk, mode="unk")  # [predicted tokens, source words]
    assert gradient.shape == (len(pair.target_ids) + 1, len(pair.source_ids))
    assert loo.shape == (len(pair.target_ids) + 1, len(pair.source_ids) - 1)
    assert torch.all(gradient[:, ignored] == 0)
    # leave-one-out compares two forward passes: with several BLAS threads, rows of one batch can
    # differ in the last float bits, so "zero" is zero up to float32 noise
    assert torch.all(loo[:, ignored].abs() < 1e-5)
    others = [j for j in range(len(pair.source_ids) - 1) if j != ignored]
    assert torch.all(gradient[:, others].sum(0) > 0) and torch.all(loo[:, others].sum(0) > 1e-3)


def test_representations_that_only_see_their_own_token_are_fully_coindexed():
    from alignment_eval.interpretability.model import encoder_attribution

    loaded = loaded_model()
    pair = encoded_pairs(loaded)[0]
    for _, _, module in (m for m in loaded.model.attention_modules() if m[0] == "encoder"):
        module.weights_hook = lambda weights, mask: torch.eye(weights.size(-1)).expand_as(weights)
    for projections in (64, 5):  # exact, and estimated with random projections
        attribution = encoder_attribution(loaded.model, pair, projections=projections).numpy()
        for layer in attribution:
            share, top = coindexed_shares(layer)
            np.testing.assert_allclose(share, 1.0)
            assert top.all()


def test_uniform_replacement_of_already_uniform_attention_changes_nothing():
    from alignment_eval.interpretability.experiments import uniform_attention_test
    from alignment_eval.interpretability.model import collate, cross_attention_hook, cross_attention_modules, uniform_weights
    from fairseq_plugins import record_attention

    loaded = loaded_model()
    with torch.no_grad():
        for module in cross_attention_modules(loaded.model):  # q = 0: every score 0, softmax uniform
            module.q_proj.weight.zero_()
            module.q_proj.bias.zero_()
    encoded = encoded_pairs(loaded)
    result = uniform_attention_test(loaded, encoded, [t for _, t in SENTENCES])
    assert [row["condition"] for row in result["conditions"]] == ["none", "layer1", "layer2", "all"]
    for row in result["conditions"]:
        assert row["delta_nll"] == pytest.approx(0.0, abs=1e-5)
        assert row["output_tvd_mean"] == pytest.approx(0.0, abs=1e-5)
        assert row["delta_bleu"] == 0.0 and row["changed_hypotheses"] == 0
    # uniform attention has zero JS divergence between heads (attention_stats.count_layer)
    batch = collate(loaded, encoded)
    with cross_attention_hook(loaded.model, uniform_weights):
        records = record_attention(loaded.model, batch.src_tokens, batch.src_lengths, batch.prev_output_tokens,
                                   pad=loaded.pad)
    for record in records:
        for layer in record.cross.numpy():
            counts = count_layer(layer, np.ones(layer.shape[1:], dtype=bool))
            assert counts.js_sum == pytest.approx(0.0, abs=1e-9) and counts.js_rows == layer.shape[1]


def test_uniform_attention_changes_a_model_that_uses_its_attention():
    from alignment_eval.interpretability.experiments import uniform_attention_test

    loaded = loaded_model("sparsemax_transformer_tiny")
    result = uniform_attention_test(loaded, encoded_pairs(loaded), [t for _, t in SENTENCES])
    assert result["conditions"][-1]["output_tvd_mean"] > 1e-3


def test_identical_seeds_have_zero_divergence_and_different_seeds_do_not():
    from alignment_eval.interpretability.experiments import seeds_test

    first, second = loaded_model("rela_transformer_tiny", 0), loaded_model("rela_transformer_tiny", 1)
    encoded = encoded_pairs(first)
    tokens = sum(len(p.target_ids) + 1 for p in encoded)
    same = seeds_test([first, first], encoded)
    overall = same["overall"]
    assert overall["tokens"] == tokens
    assert overall["attention_js"]["max"] == pytest.approx(0.0, abs=1e-9)
    assert overall["output_js"]["max"] == pytest.approx(0.0, abs=1e-9)
    assert overall["output_tvd"]["max"] == pytest.approx(0.0, abs=1e-9)
    assert overall["attention_js"]["count"] + overall["null_rows"] == tokens
    different = seeds_test([first, second], encoded)["overall"]
    assert different["attention_js"]["mean"] > 0.01 and different["output_tvd"]["mean"] > 0.01


def test_seeds_needs_two_models_with_the_same_vocabulary():
    from alignment_eval.interpretability.experiments import seeds_test

    loaded = loaded_model()
    with pytest.raises(AlignmentInputError, match="at least 2"):
        seeds_test([loaded], encoded_pairs(loaded))
    from alignment_eval.analysis.model_attention import LoadedModel

    model, dictionary = build_model("softmax_transformer_tiny", vocab=30)
    other = LoadedModel(model, dictionary, dictionary, "bigger-vocabulary")
    with pytest.raises(AlignmentInputError, match="differs"):
        seeds_test([loaded, other], encoded_pairs(loaded))


def test_unknown_rate_warns_then_fails():
    from alignment_eval.interpretability.cli import check_vocabulary, unknown_rate

    loaded = loaded_model()
    half = encoded_pairs(loaded, [("w4 nope", "w5 nope")])
    assert unknown_rate(half) == pytest.approx(0.5)
    assert check_vocabulary(half, "text", "ckpt", 0.5) == pytest.approx(0.5)
    with pytest.raises(AlignmentInputError, match="unknown"):
        check_vocabulary(encoded_pairs(loaded, [("foo bar", "baz")]), "text", "ckpt", 0.5)


def test_adversarial_fine_tuning_is_deterministic_and_moves_attention():
    from alignment_eval.interpretability.experiments import adversarial_test

    loaded = loaded_model()
    encoded = encoded_pairs(loaded)
    first = adversarial_test(loaded, encoded, lambdas=[1.0], steps=4, learning_rate=1e-2, seed=3)
    second = adversarial_test(loaded, encoded, lambdas=[1.0], steps=4, learning_rate=1e-2, seed=3)
    assert first["runs"] == second["runs"]
    assert first["runs"][0]["attention_js"]["mean"] > 0
    # the base model is left untouched
    assert adversarial_test(loaded, encoded, lambdas=[1.0], steps=0)["runs"][0]["attention_js"]["max"] == 0.0


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
def test_every_test_runs_on_every_variant(variant):
    from alignment_eval.interpretability.experiments import (
        adversarial_test, coindex_test, importance_test, sentence_importances, seeds_test, uniform_attention_test,
    )

    loaded = loaded_model(f"{variant}_transformer_tiny")
    encoded = encoded_pairs(loaded)
    rows = sum(len(p.target_ids) + 1 for p in encoded)
    uniform = uniform_attention_test(loaded, encoded, [t for _, t in SENTENCES])
    assert all(math.isfinite(row["nll"]) for row in uniform["conditions"])
    importances = sentence_importances(loaded, encoded)
    importance = importance_test(importances)
    for layer in importance["layers"]:
        for measures in layer["heads"].values():
            for summary in measures.values():
                assert summary["rows"] == rows  # every row is either correlated or counted apart
    coindex = coindex_test(loaded, encoded, importances, projections=4)
    assert all(0.0 <= layer["share"]["mean"] <= 1.0 for layer in coindex["encoder_layers"])
    for layer in coindex["support_overlap"]:
        assert layer["avg"]["rows"] == rows and layer["heads"]["rows"] == layer["heads_mass"]["rows"] == rows * 4
    adversarial = adversarial_test(loaded, encoded, lambdas=[0.1], steps=1)
    assert math.isfinite(adversarial["runs"][0]["output_tvd"]["mean"])
    assert seeds_test([loaded, loaded], encoded)["overall"]["output_tvd"]["max"] == pytest.approx(0.0, abs=1e-9)
    json.dumps([uniform, importance, coindex, adversarial])  # JSON-ready


# --- command line ---------------------------------------------------------------------------------


def test_bad_inputs_exit_2_without_traceback(tmp_path, capsys):
    text = tmp_path / "text"
    text.write_text("w4 w5 ||| w6\n")
    missing = tmp_path / "missing.pt"
    assert main(["interpret", "uniform", "--checkpoint", str(missing), "--text", str(text),
                 "--out-dir", str(tmp_path / "out")]) == 2
    assert main(["interpret", "seeds", "--checkpoints", str(missing), "--text", str(text),
                 "--out-dir", str(tmp_path / "out")]) == 2
    assert main(["interpret", "all", "--checkpoint", str(missing), "--checkpoints", str(missing),
                 "--text", str(text), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "checkpoint not found" in err and err.count("at least 2 checkpoints") == 2
    assert "Traceback" not in err


# --- end to end on the trained toy model ----------------------------------------------------------


def toy_arguments(toy_model, out_dir, *extra):
    return ["--checkpoint", str(toy_model["checkpoint"]), "--data-dir", str(toy_model["data_dir"]),
            "--text", str(toy_model["text"]), "--out-dir", str(out_dir), "--max-sentences", "6", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("test, extra", [
    ("uniform", []),
    ("importance", ["--leave-one-out", "drop"]),
    ("coindex", ["--projections", "8"]),
    ("adversarial", ["--steps", "3", "--lambdas", "0.1", "--layer", "2"]),
])
def test_each_subcommand_on_the_toy_model(toy_model, tmp_path, capsys, test, extra):
    out = tmp_path / test
    assert main(["interpret", test, *toy_arguments(toy_model, out, *extra)]) == 0
    result = json.loads((out / f"{test}.json").read_text())
    assert result["test"] == test and result["normalizer"] == "rela" and result["sentences"] == 6
    assert (out / f"{test}.png").stat().st_size > 0
    assert (out / f"{test}.md").read_text().startswith("# Is attention an explanation?")
    if test == "uniform":
        assert result["conditions"][-1]["delta_nll"] > 0  # the trained model needs its attention
    if test == "importance":
        lines = toy_model["text"].read_text().splitlines()[:6]
        predicted = sum(len(line.split(" ||| ")[1].split()) + 1 for line in lines)
        for measure in ("gradient", "leave_one_out"):
            summary = result["layers"][0]["heads"]["avg"][measure]
            assert "null_rows" in summary and summary["rows"] == predicted
    if test == "adversarial":
        assert result["layers"] == [2] and len(result["runs"]) == 1
    assert "## " in capsys.readouterr().out


@pytest.mark.slow
def test_seeds_and_the_battery_on_the_toy_model(toy_model, tmp_path):
    checkpoint = str(toy_model["checkpoint"])
    out = tmp_path / "seeds"
    assert main(["interpret", "seeds", "--checkpoints", checkpoint, checkpoint, "--data-dir", str(toy_model["data_dir"]),
                 "--text", str(toy_model["text"]), "--out-dir", str(out), "--max-sentences", "6"]) == 0
    seeds = json.loads((out / "seeds.json").read_text())
    assert seeds["pairs"][0]["same_checkpoint"] and seeds["overall"]["output_tvd"]["max"] == pytest.approx(0.0, abs=1e-9)
    out = tmp_path / "all"
    assert main(["interpret", "all", *toy_arguments(toy_model, out, "--projections", "8", "--checkpoints",
                                                     checkpoint, checkpoint, "--lambdas", "0.1", "--steps", "2")]) == 0
    combined = json.loads((out / "interpret.json").read_text())
    assert set(combined["tests"]) == {"uniform", "importance", "coindex", "seeds", "adversarial"}
    report = (out / "interpret.md").read_text()
    assert report.count("\n## ") == 5 and "null rows" in report
    out = tmp_path / "battery"
    assert main(["interpret", "all", *toy_arguments(toy_model, out, "--projections", "8")]) == 0
    assert set(json.loads((out / "interpret.json").read_text())["tests"]) == {"uniform", "importance", "coindex"}


@pytest.mark.slow
def test_text_in_another_vocabulary_is_rejected(toy_model, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.write_text("le chat ||| the cat\n")
    assert main(["interpret", "uniform", "--checkpoint", str(toy_model["checkpoint"]), "--data-dir",
                 str(toy_model["data_dir"]), "--text", str(foreign), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unknown" in err and "Traceback" not in err
    partly = tmp_path / "partly"
    partly.write_text("s1 s2 s3 zz ||| t3 t2 t1\n")
    assert main(["interpret", "uniform", "--checkpoint", str(toy_model["checkpoint"]), "--data-dir",
                 str(toy_model["data_dir"]), "--text", str(partly), "--out-dir", str(tmp_path / "out")]) == 0
    assert "warning" in capsys.readouterr().err
