"""The attention module and the model built on it, in-process."""

import pytest
import torch
from fairseq.modules import MultiheadAttention

from fairseq_plugins import record_attention
from fairseq_plugins.attention import (
    AttentionOutputRMSNorm,
    SparseMultiheadAttention,
    attention_modules,
    rms_norm_gate,
    rms_norm_gate_reference,
)
from fairseq_plugins.normalizers import ATTENTION_VARIANTS

from conftest import build_model, random_batch


def causal_mask(length):
    return torch.triu(torch.full((length, length), float("-inf")), 1)


def padding_mask(bsz, length):
    mask = torch.zeros(bsz, length, dtype=torch.bool)
    for b in range(bsz):
        mask[b, length - b:] = True if b else False
    return mask


@pytest.mark.parametrize("mode", ["self", "causal", "cross"])
@pytest.mark.parametrize("training", [False, True])
def test_softmax_reproduces_fairseq_multihead_attention(mode, training):
    torch.manual_seed(0)
    kwargs = {"encoder_decoder_attention": True, "kdim": 16, "vdim": 16} if mode == "cross" else {"self_attention": True}
    reference = MultiheadAttention(16, 4, dropout=0.0, **kwargs)
    ours = SparseMultiheadAttention(16, 4, dropout=0.0, normalizer="softmax", **kwargs)
    ours.load_state_dict(reference.state_dict())
    reference.train(training), ours.train(training)
    query = torch.randn(5, 3, 16)
    key = torch.randn(7, 3, 16) if mode == "cross" else query
    kpm = padding_mask(3, key.size(0))
    attn_mask = causal_mask(5) if mode == "causal" else None
    static_kv = mode == "cross"
    for need_weights in (False, True):
        expected, expected_w = reference(query, key, key, key_padding_mask=kpm, attn_mask=attn_mask,
                                         static_kv=static_kv, need_weights=need_weights)
        got, got_w = ours(query, key, key, key_padding_mask=kpm, attn_mask=attn_mask,
                          static_kv=static_kv, need_weights=need_weights)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
        if need_weights:
            torch.testing.assert_close(got_w, expected_w, atol=1e-6, rtol=1e-5)
    # the Python path (weights requested per head) gives the same output too
    got, per_head = ours(query, key, key, key_padding_mask=kpm, attn_mask=attn_mask,
                         static_kv=static_kv, need_head_weights=True)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert per_head.shape == (4, 3, 5, key.size(0))
    torch.testing.assert_close(per_head.mean(0), expected_w, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("normalizer", ATTENTION_VARIANTS)
def test_every_variant_masks_padding_and_returns_per_head_weights(normalizer):
    torch.manual_seed(1)
    module = SparseMultiheadAttention(16, 4, self_attention=True, normalizer=normalizer).eval()
    x = torch.randn(6, 3, 16)
    kpm = padding_mask(3, 6)
    out, weights = module(x, x, x, key_padding_mask=kpm, need_head_weights=True)
    assert out.shape == (6, 3, 16) and torch.isfinite(out).all()
    assert weights.shape == (4, 3, 6, 6)
    assert (weights.transpose(0, 1)[kpm.view(3, 1, 1, 6).expand(3, 4, 6, 6)] == 0).all()


@pytest.mark.parametrize("normalizer", ["rela", "rela_i"])
def test_rela_rows_that_attend_to_nothing_keep_the_output_finite(normalizer):
    torch.manual_seed(2)
    module = SparseMultiheadAttention(16, 4, encoder_decoder_attention=True, normalizer=normalizer).eval()
    query, key = torch.randn(4, 2, 16), torch.randn(5, 2, 16)
    everything_masked = torch.ones(2, 5, dtype=torch.bool)
    out, weights = module(query, key, key, key_padding_mask=everything_masked, static_kv=True,
                          need_head_weights=True)
    assert (weights == 0).all()
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, module.out_proj.bias.expand_as(out))  # RMSNorm(0) = 0
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


def test_rela_output_norm_is_over_the_whole_model_dimension():
    norm = AttentionOutputRMSNorm(8, gated=False)
    with torch.no_grad():
        norm.scale.fill_(1.0)
    z = torch.tensor([[1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0]])
    expected = z / torch.sqrt(torch.tensor(5.0))  # mean(z^2) = (4*1 + 4*9) / 8 = 5
    torch.testing.assert_close(norm(z), expected)
    gated = AttentionOutputRMSNorm(8, gated=True)
    torch.testing.assert_close(gated.scale, torch.ones(8))
    torch.testing.assert_close(gated(z), expected * torch.sigmoid(gated.gate * z))


@pytest.mark.parametrize("gated", [True, False])
def test_rms_norm_gate_backward_passes_float64_gradcheck(gated):
    torch.manual_seed(0)
    z = torch.randn(3, 2, 6, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(6, dtype=torch.float64, requires_grad=True)
    gate = torch.randn(6, dtype=torch.float64, requires_grad=True) if gated else None
    inputs = (z, scale, gate, 1e-8) if gated else (z, scale, None, 1e-8)
    assert torch.autograd.gradcheck(rms_norm_gate, inputs)


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("requires", ["all", "input", "params"])
def test_rms_norm_gate_equals_the_plain_formula_with_gradients(gated, requires):
    torch.manual_seed(1)
    d = 64
    z0 = torch.randn(7, 5, d) * 3
    z0[0, 0] = 0.0  # an all-zero row (a ReLA query that attends to nothing)
    grad_y = torch.randn(7, 5, d)
    scale0, gate0 = torch.rand(d) + 0.5, torch.randn(d) * 0.2
    results = []
    for function in (rms_norm_gate, rms_norm_gate_reference):
        z = z0.clone().requires_grad_(requires in ("all", "input"))
        scale = scale0.clone().requires_grad_(requires in ("all", "params"))
        gate = gate0.clone().requires_grad_(requires in ("all", "params")) if gated else None
        y = function(z, scale, gate, 1e-8)
        y.backward(grad_y)
        results.append((y, z.grad, scale.grad, gate.grad if gated else None))
    for ours, reference in zip(*results):
        if reference is None:
            assert ours is None
        else:
            torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    assert torch.equal(results[0][0][0, 0], torch.zeros(d))


def test_rms_norm_gate_without_grad_and_in_half_precision():
    torch.manual_seed(2)
    z = torch.randn(4, 3, 32)
    scale, gate = torch.rand(32) + 0.5, torch.randn(32)
    with torch.no_grad():
        torch.testing.assert_close(rms_norm_gate(z, scale, gate), rms_norm_gate_reference(z, scale, gate))
    half = z.to(torch.bfloat16).requires_grad_()
    out = rms_norm_gate(half, scale.to(torch.bfloat16).requires_grad_(), gate.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert half.grad.dtype == torch.bfloat16 and torch.isfinite(half.grad.float()).all()
    torch.testing.assert_close(out.float(), rms_norm_gate_reference(z, scale, gate), rtol=2e-2, atol=2e-2)


def test_rela_i_gain_starts_small_and_rela_g_gain_starts_at_one():
    d = 512
    rela_i = AttentionOutputRMSNorm(d, gated=False)
    assert rela_i.gate is None
    assert rela_i.scale.abs().max() <= (3.0 / d) ** 0.5
    assert rela_i.scale.pow(2).mean().sqrt() < 0.1


def test_alpha_entmax_alpha_is_per_head_in_range_and_learns():
    module = SparseMultiheadAttention(16, 4, self_attention=True, normalizer="alpha_entmax", alpha_init=1.3)
    torch.testing.assert_close(module.alpha, torch.full((4,), 1.3))
    x = torch.randn(5, 2, 16)
    out, _ = module(x, x, x)
    out.pow(2).sum().backward()
    assert module.alpha_logit.grad is not None and module.alpha_logit.grad.abs().sum() > 0
    with torch.no_grad():
        module.alpha_logit.fill_(50.0)
    assert (module.alpha <= 2.0).all() and (module.alpha > 1.0).all()
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        SparseMultiheadAttention(16, 4, self_attention=True, normalizer="alpha_entmax", alpha_init=2.5)


@pytest.mark.parametrize("normalizer", ATTENTION_VARIANTS)
def test_beamable_cross_attention_equals_repeated_keys(normalizer):
    """Beam search stores encoder keys once per sentence (set_beam_size); the result must not change."""
    torch.manual_seed(3)
    module = SparseMultiheadAttention(16, 4, encoder_decoder_attention=True, normalizer=normalizer).eval()
    beam, bsz = 2, 3
    query = torch.randn(1, bsz * beam, 16)
    key = torch.randn(6, bsz, 16)
    kpm = padding_mask(bsz, 6)
    repeated_key = key.repeat_interleave(beam, dim=1)
    repeated_kpm = kpm.repeat_interleave(beam, dim=0)
    expected, expected_w = module(query, repeated_key, repeated_key, key_padding_mask=repeated_kpm,
                                  static_kv=True, need_head_weights=True)
    module.set_beam_size(beam)
    got, got_w = module(query, key, key, key_padding_mask=kpm, incremental_state={}, static_kv=True,
                        need_head_weights=True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_w, expected_w, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
def test_incremental_decoding_equals_the_full_forward(variant):
    model, dictionary = build_model(f"{variant}_transformer_tiny", ["--attention-topk", "3"])
    src, src_lengths, prev = random_batch(dictionary, bsz=3, src_len=7, tgt_len=6)
    with torch.no_grad():
        encoder_out = model.encoder(src, src_lengths=src_lengths)
        full, full_extra = model.decoder(prev, encoder_out=encoder_out)
        incremental_state = {}
        steps = []
        for t in range(prev.size(1)):
            out, _ = model.decoder(prev[:, : t + 1], encoder_out=encoder_out, incremental_state=incremental_state)
            steps.append(out)
    stepwise = torch.cat(steps, dim=1)
    keep = prev.ne(dictionary.pad())  # compare real target positions
    torch.testing.assert_close(stepwise[keep], full[keep], atol=1e-4, rtol=1e-4)


def test_recording_returns_every_layer_and_head_unaveraged_and_cut_to_real_tokens():
    model, dictionary = build_model("rela_transformer_tiny")
    src, src_lengths, prev = random_batch(dictionary, bsz=3, src_len=7, tgt_len=6)
    records = record_attention(model, src, src_lengths, prev, pad=dictionary.pad(), include_self=True)
    assert len(records) == 3
    layers, heads = 2, 4
    for b, record in enumerate(records):
        s = int(src[b].ne(dictionary.pad()).sum())
        t = int(prev[b].ne(dictionary.pad()).sum())
        assert record.cross.shape == (layers, heads, t, s)
        assert record.encoder_self.shape == (layers, heads, s, s)
        assert record.decoder_self.shape == (layers, heads, t, t)
        assert torch.triu(record.decoder_self, diagonal=1).eq(0).all()  # causal
    # the same sentence alone (no padding) gives the same weights as inside the padded batch
    b = 2
    s = int(src[b].ne(dictionary.pad()).sum())
    t = int(prev[b].ne(dictionary.pad()).sum())
    alone = record_attention(model, src[b:b + 1, -s:], src_lengths[b:b + 1], prev[b:b + 1, :t],
                             pad=dictionary.pad(), include_self=True)[0]
    torch.testing.assert_close(alone.cross, records[b].cross, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone.encoder_self, records[b].encoder_self, atol=1e-5, rtol=1e-5)
    # recording leaves the modules as they were and the model in its previous mode
    assert all(m.weights_hooks == [] for _, _, m in model.attention_modules())


def test_recording_agrees_with_need_head_weights_of_the_decoder():
    model, dictionary = build_model("softmax_transformer_tiny")
    src, src_lengths, prev = random_batch(dictionary, bsz=2)
    record = record_attention(model, src, src_lengths, prev, pad=dictionary.pad())[0]
    with torch.no_grad():
        encoder_out = model.encoder(src, src_lengths=src_lengths)
        _, extra = model.decoder(prev, encoder_out=encoder_out, alignment_layer=1, alignment_heads=None)
    # fairseq averages the last layer's heads for --print-alignment; ours keeps them apart
    s = int(src[0].ne(dictionary.pad()).sum())
    t = int(prev[0].ne(dictionary.pad()).sum())
    fairseq_average = extra["attn"][0][0, :t, -s:]
    torch.testing.assert_close(record.cross[1].mean(0), fairseq_average, atol=1e-6, rtol=1e-5)


def test_weights_hook_can_replace_the_weights_and_sees_the_graph():
    torch.manual_seed(4)
    module = SparseMultiheadAttention(16, 4, self_attention=True, normalizer="softmax").eval()
    x = torch.randn(5, 2, 16)
    kpm = padding_mask(2, 5)
    seen = []

    def uniform(weights, mask):
        seen.append(weights.requires_grad)
        keep = (~mask).float()
        return keep / keep.sum(-1, keepdim=True)

    module.weights_hook = uniform
    x.requires_grad_()
    _, weights = module(x, x, x, key_padding_mask=kpm, need_head_weights=True)
    assert seen == [True]
    expected = (~kpm).float() / (~kpm).float().sum(-1, keepdim=True)  # [bsz, src]
    torch.testing.assert_close(weights[0, :, 0], expected)
    module.weights_hook = None
    out_plain, _ = module(x, x, x, key_padding_mask=kpm)
    module.weights_hook = lambda weights, mask: None  # observing only: weights unchanged
    out_hooked, _ = module(x, x, x, key_padding_mask=kpm)
    torch.testing.assert_close(out_hooked, out_plain, atol=1e-6, rtol=1e-5)


def test_hooks_compose_in_order_and_recording_is_one_of_them():
    """A replacing hook added before the recording is what the recording sees; removing a hook
    leaves the others in place."""
    model, dictionary = build_model("rela_transformer_tiny")
    src, src_lengths, prev = random_batch(dictionary, bsz=2)
    cross = [m for s, _, m in attention_modules(model) if s == "cross"]
    zero = lambda weights, mask: torch.zeros_like(weights)  # noqa: E731
    removers = [m.add_weights_hook(zero) for m in cross]
    record = record_attention(model, src, src_lengths, prev, pad=dictionary.pad())[0]
    assert (record.cross == 0).all()
    assert all(m.weights_hooks == [zero] for m in cross)  # the recording hook removed itself
    for remove in removers:
        remove()
    record = record_attention(model, src, src_lengths, prev, pad=dictionary.pad())[0]
    assert (record.cross > 0).any()


def test_attention_modules_enumerates_every_sublayer_in_model_order():
    model, _ = build_model("softmax_transformer_tiny")
    listed = [(s, i) for s, i, _ in attention_modules(model)]
    assert listed == [("encoder", 0), ("encoder", 1), ("decoder", 0), ("cross", 0), ("decoder", 1), ("cross", 1)]
    assert [(s, i) for s, i, _ in attention_modules(model, ("cross",))] == [("cross", 0), ("cross", 1)]
    assert [(s, i, m) for s, i, m in model.attention_modules()] == attention_modules(model)
    with pytest.raises(ValueError, match="unknown sublayer"):
        attention_modules(model, ("encoder_self",))
