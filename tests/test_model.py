"""Registration, architectures and checkpoint compatibility of the sparse_transformer model."""

import types

import numpy as np
import pytest
import torch
from fairseq.models import ARCH_MODEL_REGISTRY

from fairseq_plugins.normalizers import ATTENTION_VARIANTS
from fairseq_plugins.sparse_transformer import (
    ARCH_SIZES,
    ARCHITECTURES,
    SparseTransformerModel,
    _register_architecture,
)

from conftest import build_model


def test_every_variant_and_size_is_registered_under_its_documented_name():
    variants = (*ATTENTION_VARIANTS, "sparse")  # sparse_transformer_*: attention from --attention
    expected = {f"{v}_transformer_{s}" for v in variants for s in ("wmt_en_de", "iwslt_de_en", "tiny")}
    assert set(ARCHITECTURES) == expected
    assert all(ARCH_MODEL_REGISTRY[name] is SparseTransformerModel for name in expected)


def test_registering_a_name_twice_fails_loudly():
    with pytest.raises(ValueError, match="already registered"):
        _register_architecture("rela", "tiny")


@pytest.mark.parametrize("size", ARCH_SIZES)
def test_architecture_sizes(size):
    model, _ = build_model(f"rela_transformer_{size}")
    expected = {
        "wmt_en_de": (6, 512, 2048, 8, 0.1),  # Transformer base of the ReLA paper
        "iwslt_de_en": (6, 512, 1024, 4, 0.0),  # fairseq's transformer_iwslt_de_en
        "tiny": (2, 64, 256, 4, 0.0),
    }[size]
    layers, dim, ffn, heads, attention_dropout = expected
    layer = model.encoder.layers[0]
    assert len(model.encoder.layers) == len(model.decoder.layers) == layers
    assert layer.embed_dim == dim and layer.fc1.out_features == ffn
    assert layer.self_attn.num_heads == heads
    assert layer.self_attn.dropout_module.p == attention_dropout
    assert not layer.normalize_before  # post-norm


def test_the_variant_neutral_architecture_takes_its_attention_from_the_flag():
    model, _ = build_model("sparse_transformer_tiny")
    assert {m.normalizer for _, _, m in model.attention_modules()} == {"softmax"}
    model, _ = build_model("sparse_transformer_tiny", ["--attention", "entmax15"])
    assert {m.normalizer for _, _, m in model.attention_modules()} == {"entmax15"}


def test_attention_sets_all_sublayers_and_each_can_be_overridden():
    model, _ = build_model("softmax_transformer_tiny", ["--attention", "sparsemax", "--cross-attention", "rela"])
    kinds = {(s, m.normalizer) for s, _, m in model.attention_modules()}
    assert kinds == {("encoder", "sparsemax"), ("decoder", "sparsemax"), ("cross", "rela")}
    model, _ = build_model("topk_transformer_tiny", ["--encoder-attention", "entmax15", "--attention-topk", "2"])
    normalizers = {s: (m.normalizer, m.topk) for s, _, m in model.attention_modules()}
    assert normalizers == {"encoder": ("entmax15", 2), "decoder": ("topk", 2), "cross": ("topk", 2)}


def test_sublayer_attention_from_a_hydra_dictconfig():
    """fairseq-hydra-train hands build_model a flat DictConfig, not an argparse Namespace."""
    from fairseq import options
    from omegaconf import OmegaConf

    from conftest import PLUGIN_DIR, make_dictionary

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, ["x", "--arch", "rela_transformer_tiny", "--user-dir", str(PLUGIN_DIR)])
    config = OmegaConf.create({k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))})
    config.encoder_attention = "softmax"
    config.decoder_attention = "topk"
    config.cross_attention = "sparsemax"
    dictionary = make_dictionary()
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    model = SparseTransformerModel.build_model(config, task)
    normalizers = {s: m.normalizer for s, _, m in model.attention_modules()}
    assert normalizers == {"encoder": "softmax", "decoder": "topk", "cross": "sparsemax"}


def test_unknown_attention_name_is_rejected_by_the_argument_parser(capsys):
    with pytest.raises(SystemExit):
        build_model("softmax_transformer_tiny", ["--attention", "sparsmax"])
    assert "invalid choice: 'sparsmax'" in capsys.readouterr().err


def test_softmax_model_has_fairseq_transformer_parameters_and_loads_its_weights():
    fairseq_tiny_sizes = ["--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
                          "--encoder-attention-heads", "2", "--decoder-attention-heads", "2"]
    ours, dictionary = build_model("softmax_transformer_tiny", fairseq_tiny_sizes)
    reference, _ = build_model("transformer_tiny")
    assert ours.state_dict().keys() == reference.state_dict().keys()
    ours.load_state_dict(reference.state_dict())
    src = torch.tensor([[5, 6, 7, 2]])
    prev = torch.tensor([[2, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(ours(src, torch.tensor([4]), prev)[0], reference(src, torch.tensor([4]), prev)[0])


def test_sparse_variants_add_only_their_own_parameters():
    base = set(build_model("softmax_transformer_tiny")[0].state_dict())
    rela = set(build_model("rela_transformer_tiny")[0].state_dict()) - base
    rela_i = set(build_model("rela_i_transformer_tiny")[0].state_dict()) - base
    alpha = set(build_model("alpha_entmax_transformer_tiny")[0].state_dict()) - base
    assert all(k.endswith(("output_norm.scale", "output_norm.gate")) for k in rela) and len(rela) == 6 * 2
    assert all(k.endswith("output_norm.scale") for k in rela_i) and len(rela_i) == 6
    assert all(k.endswith("alpha_logit") for k in alpha) and len(alpha) == 6
    for variant in ("sparsemax", "entmax15", "topk"):
        assert set(build_model(f"{variant}_transformer_tiny")[0].state_dict()) == base


def test_learned_alphas_are_inspectable():
    model, _ = build_model("alpha_entmax_transformer_tiny")
    alphas = model.learned_alphas()
    assert set(alphas) == {"encoder.0", "encoder.1", "decoder.0", "decoder.1", "cross.0", "cross.1"}
    assert all(np.allclose(v, 1.5) and len(v) == 4 for v in alphas.values())


def test_batching_never_leaves_out_sentences():
    from fairseq.data import data_utils

    import fairseq_plugins  # noqa: F401

    lengths = np.random.RandomState(0).randint(3, 12, size=50)
    indices = np.argsort(lengths, kind="mergesort")
    for batch_size in (1, 3, 7, 8, 16, 64):
        for multiple in (1, 8):
            batches = data_utils.batch_by_size(
                indices, lambda i: lengths[i], max_sentences=batch_size, required_batch_size_multiple=multiple
            )
            assert sorted(np.concatenate(batches).tolist()) == list(range(50)), (batch_size, multiple)
