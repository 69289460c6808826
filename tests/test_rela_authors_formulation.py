"""Our ReLA against the authors' formulation, step by step (issue #10's check).

The reference below is a plain PyTorch transcription of ``dot_attention`` in the authors'
TensorFlow code (bzhangGo/zero ``modules/rela.py``; Zhang, Titov & Sennrich 2021, Sec. 3 and
Eq. 5-6), written from ``../shared/REFERENCE.md``:

1. queries scaled by ``d_head ** -0.5``, ``S = Q K^T``;
2. masking by *multiplication* with a 0/1 mask (masked score -> 0 -> ReLU 0), not by -inf;
3. ``W = ReLU(S)``, no row normalisation;
4. attention dropout on ``W``; ``O = W V``; heads concatenated;
5. gated RMS norm over the whole concatenated vector (d_model):
   ``scale * o * rsqrt(mean(o^2) + 1e-8) * sigmoid(gate * o)``;
6. the output projection.

Initialisation: ``scale`` ones, ``gate`` U(+-sqrt(3/d)) (uniform unit scaling of a d-vector).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from fairseq_plugins.attention import RELA_RMS_EPS, SparseMultiheadAttention

from conftest import build_model, random_batch

D_MODEL, HEADS = 16, 4


def authors_rela(module, query, memory, keep, dropout_p=0.0, training=False):
    """The authors' ReLA attention, batch-major: query [B, Tq, d], memory [B, Tk, d] (None: self),
    keep [B or 1, 1, Tq or 1, Tk] 1.0 = may attend.  Weights come from our module's parameters."""
    d_head = D_MODEL // HEADS
    memory = query if memory is None else memory
    q = F.linear(query, module.q_proj.weight, module.q_proj.bias)
    k = F.linear(memory, module.k_proj.weight, module.k_proj.bias)
    v = F.linear(memory, module.v_proj.weight, module.v_proj.bias)

    def split_heads(x):  # [B, T, d] -> [B, heads, T, d_head]
        return x.view(x.size(0), x.size(1), HEADS, d_head).transpose(1, 2)

    q, k, v = split_heads(q), split_heads(k), split_heads(v)
    q = q * d_head ** -0.5                                   # step 1
    logits = q @ k.transpose(-1, -2)                         # [B, heads, Tq, Tk]
    logits = logits * keep                                   # step 2
    weights = torch.relu(logits)                             # step 3
    dropped = F.dropout(weights, dropout_p, training)        # step 4
    o = dropped @ v                                          # [B, heads, Tq, d_head]
    o = o.transpose(1, 2).reshape(query.size(0), query.size(1), D_MODEL)  # [B, Tq, d_model]
    norm = module.output_norm                                # step 5
    ms = o.pow(2).mean(-1, keepdim=True)
    o = norm.scale * o * torch.rsqrt(ms + 1e-8) * torch.sigmoid(norm.gate * o)
    return F.linear(o, module.out_proj.weight, module.out_proj.bias), weights  # step 6


def _case(mode, seed=0):
    """Time-major inputs for our module, the 0/1 keep mask for the authors', and our masks."""
    torch.manual_seed(seed)
    bsz, tq = 3, 5
    tk = 7 if mode == "cross" else tq
    query = torch.randn(tq, bsz, D_MODEL, dtype=torch.float64)
    memory = torch.randn(tk, bsz, D_MODEL, dtype=torch.float64) if mode == "cross" else None
    padding = torch.zeros(bsz, tk, dtype=torch.bool)  # True = pad
    padding[1, tk - 2:] = True
    padding[2, tk - 3:] = True
    keep = (~padding).to(torch.float64).view(bsz, 1, 1, tk)
    attn_mask = None
    if mode == "causal":
        future = torch.triu(torch.ones(tq, tk, dtype=torch.bool), 1)
        attn_mask = torch.zeros(tq, tk, dtype=torch.float64).masked_fill(future, float("-inf"))
        keep = keep * (~future).to(torch.float64).view(1, 1, tq, tk)
    return query, memory, padding, attn_mask, keep


def _module(mode, dropout=0.0):
    kwargs = {"encoder_decoder_attention": True} if mode == "cross" else {"self_attention": True}
    return SparseMultiheadAttention(D_MODEL, HEADS, dropout=dropout, normalizer="rela", **kwargs).double()


@pytest.mark.parametrize("fused", [True, False], ids=["fused-path", "fairseq-path"])
@pytest.mark.parametrize("mode", ["self", "causal", "cross"])
def test_output_weights_and_gradients_equal_the_authors_formulation(mode, fused):
    module = _module(mode)
    module.fused_scores = fused
    with torch.no_grad():  # a gate far from its small initial values, so the gate term matters
        module.output_norm.gate.normal_(0.0, 1.0)
        module.output_norm.scale.uniform_(0.5, 1.5)
    query, memory, padding, attn_mask, keep = _case(mode)
    query.requires_grad_()
    key = query if memory is None else memory
    ours, our_weights = module(query, key, key, key_padding_mask=padding, attn_mask=attn_mask,
                               static_kv=mode == "cross", need_head_weights=True)
    # batch-major for the reference: [T, B, d] -> [B, T, d]
    reference, reference_weights = authors_rela(
        module, query.transpose(0, 1), None if memory is None else memory.transpose(0, 1), keep)
    torch.testing.assert_close(ours.transpose(0, 1), reference)
    # [heads, B, Tq, Tk] -> [B, heads, Tq, Tk]
    torch.testing.assert_close(our_weights.transpose(0, 1).double(), reference_weights)

    ours_grads = torch.autograd.grad(ours.pow(2).sum(), [query, *module.parameters()])
    reference_grads = torch.autograd.grad(reference.pow(2).sum(), [query, *module.parameters()])
    for got, expected in zip(ours_grads, reference_grads):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("mode", ["self", "causal", "cross"])
def test_attention_dropout_sits_on_the_relu_weights_before_the_values(mode):
    """Same RNG state, same dropout mask: equal outputs only if dropout acts where the authors put it."""
    module = _module(mode, dropout=0.3).train()
    query, memory, padding, attn_mask, keep = _case(mode, seed=4)
    key = query if memory is None else memory
    torch.manual_seed(11)
    ours, _ = module(query, key, key, key_padding_mask=padding, attn_mask=attn_mask, static_kv=mode == "cross")
    torch.manual_seed(11)
    reference, _ = authors_rela(module, query.transpose(0, 1),
                                None if memory is None else memory.transpose(0, 1), keep, dropout_p=0.3, training=True)
    torch.testing.assert_close(ours.transpose(0, 1), reference)
    module.eval()
    undropped, _ = module(query, key, key, key_padding_mask=padding, attn_mask=attn_mask, static_kv=mode == "cross")
    assert not torch.allclose(undropped, ours)  # dropout did act


def test_incremental_decoding_equals_the_authors_causal_attention():
    """Step-by-step decoding (fairseq's incremental state, -inf masking) = multiplication masking."""
    module = _module("causal").eval()
    query = _case("causal", seed=5)[0]
    past_and_present = torch.tril(torch.ones(5, 5, dtype=torch.float64)).view(1, 1, 5, 5)  # no padding
    reference, _ = authors_rela(module, query.transpose(0, 1), None, past_and_present)
    state = {}
    steps = [module(query[t:t + 1], query[t:t + 1], query[t:t + 1], incremental_state=state)[0] for t in range(5)]
    torch.testing.assert_close(torch.cat(steps).transpose(0, 1), reference)


def test_every_sublayer_of_a_rela_model_is_rela_with_the_gated_norm_over_d_model():
    model, dictionary = build_model("rela_transformer_tiny")
    modules = list(model.attention_modules())
    sublayers = {sublayer for sublayer, _, _ in modules}
    assert sublayers == {"encoder", "decoder", "cross"}
    for sublayer, layer, module in modules:
        assert module.normalizer == "rela", (sublayer, layer)
        norm = module.output_norm
        assert norm is not None and norm.gated and norm.dim == module.embed_dim and norm.eps == RELA_RMS_EPS
        assert module.scaling == pytest.approx(module.head_dim ** -0.5)
        bound = math.sqrt(3.0 / module.embed_dim)
        assert torch.equal(norm.scale, torch.ones_like(norm.scale))
        assert norm.gate.abs().max() <= bound and norm.gate.std() > bound / 4  # U(+-sqrt(3/d)), not zeros
    # the whole model runs with every row free to attend to nothing
    src, src_lengths, prev = random_batch(dictionary)
    with torch.no_grad():
        out, _ = model(src, src_lengths, prev)
    assert torch.isfinite(out).all()
