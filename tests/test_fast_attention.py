"""The fast paths of the normalizers and the attention module equal their references.

* masks given as ``-inf`` scores (what the attention module passes) == an explicit mask;
* sparsemax / 1.5-entmax by sort-free thresholds (and their sorting fallback) == the ``entmax``
  package, on rows of 256 and 1024 keys, ties and extreme rows;
* alpha-entmax by Newton iterations == ``entmax.entmax_bisect`` (values and gradients in
  the scores and in alpha), also on long rows solved from their largest entries;
* without autograd (decoding) the normalizers' forward alone == their autograd Function;
* the attention module on long keys: incremental decoding == the full forward.
"""

import entmax
import pytest
import torch

from fairseq_plugins import normalizers
from fairseq_plugins.normalizers import ATTENTION_VARIANTS, normalize

from conftest import build_model, random_batch


def scores_and_mask(batch, queries, keys, scale=2.0, dtype=torch.float64, seed=0, dead_row=True):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, queries, keys, generator=generator, dtype=dtype) * scale
    lengths = torch.randint(1, keys + 1, (batch,), generator=generator)
    mask = (torch.arange(keys).view(1, 1, keys) >= lengths.view(batch, 1, 1)).expand(batch, queries, keys).clone()
    if dead_row:
        mask[0, 0] = True  # a query that sees no key
    return scores, mask


@pytest.mark.parametrize("keys", [9, 300])
@pytest.mark.parametrize("name", ATTENTION_VARIANTS)
def test_neginf_scores_are_the_same_mask_as_an_explicit_one(name, keys, threshold_path):
    scores, mask = scores_and_mask(4, 3, keys)
    weight = torch.randn(4, 3, keys, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    explicit = scores.clone().requires_grad_()
    implicit = scores.masked_fill(mask, float("-inf")).requires_grad_()
    expected = normalize(name, explicit, mask)
    got = normalize(name, implicit)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)
    assert (got[mask] == 0).all() and (got[0, 0] == 0).all()
    (expected * weight).sum().backward()
    (got * weight).sum().backward()
    assert torch.isfinite(implicit.grad).all()
    torch.testing.assert_close(implicit.grad[~mask], explicit.grad[~mask], atol=1e-12, rtol=1e-10)
    assert (implicit.grad[mask] == 0).all()


@pytest.mark.parametrize("keys", [9, 300, 500])  # 500: alpha-entmax's partial solve
@pytest.mark.parametrize("name", ["sparsemax", "entmax15", "alpha_entmax", "topk"])
def test_inference_path_equals_the_autograd_path(name, keys, threshold_path):
    """Without autograd (decoding) the normalizers skip their autograd Function: same weights."""
    scores, mask = scores_and_mask(4, 3, keys)
    params = {"alpha": torch.tensor([1.2, 1.5, 1.8, 2.0], dtype=torch.float64).view(4, 1, 1)} \
        if name == "alpha_entmax" else {}
    with torch.no_grad():
        inference = normalize(name, scores, mask, **params)
    training = normalize(name, scores.clone().requires_grad_(), mask, **params)
    assert training.requires_grad and not inference.requires_grad
    # alpha-entmax: on CPU inference takes the C++ kernel and training the PyTorch solver (equal to rounding)
    exact = dict(atol=1e-12, rtol=1e-10) if name == "alpha_entmax" else dict(atol=0, rtol=0)
    torch.testing.assert_close(inference, training.detach(), **exact)
    assert (inference[mask] == 0).all() and (inference[0, 0] == 0).all()


@pytest.fixture(params=["sort-free", "sorting"])
def threshold_path(request, monkeypatch):
    """Both ways to a sparsemax / 1.5-entmax threshold, whatever the tensor's size."""
    monkeypatch.setattr(normalizers, "SORT_FREE_MIN_SCORES", 0 if request.param == "sort-free" else 10**12)
    return request.param


def _agree_with_the_entmax_package(name, scores):
    weight = torch.randn(scores.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ours_in, reference_in = scores.clone().requires_grad_(), scores.clone().requires_grad_()
    ours = normalize(name, ours_in)
    reference = getattr(entmax, name)(reference_in, dim=-1)
    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-9)
    (ours * weight).sum().backward()
    (reference * weight).sum().backward()
    torch.testing.assert_close(ours_in.grad, reference_in.grad, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("keys", [256, 1024])
@pytest.mark.parametrize("scale", [0.05, 0.3, 1.0, 5.0])  # small scales: wide supports; large: one or two keys
@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_thresholds_of_long_rows_equal_the_entmax_package(name, scale, keys, threshold_path):
    scores = torch.randn(2, 6, keys, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * scale
    _agree_with_the_entmax_package(name, scores)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_thresholds_on_ties_and_extreme_rows(name, threshold_path):
    keys = 300
    scores = torch.randn(6, keys, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    scores[0] = 0.25  # all equal: uniform
    scores[1, :150] = 3.0  # a tie of half the keys
    scores[2, 7] = 1e4  # one key far above the rest: a one-hot row
    scores[3] = torch.linspace(0, 1e-9, keys, dtype=torch.float64)  # nearly equal
    scores[4] = torch.arange(keys, dtype=torch.float64)  # evenly spaced, support of a few keys
    scores[5] *= 1e3
    _agree_with_the_entmax_package(name, scores)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_rows_left_unsettled_are_solved_by_sorting(name, monkeypatch):
    """With a single sort-free pass allowed, most rows fall back to the sort-based solver: same result."""
    monkeypatch.setattr(normalizers, "SORT_FREE_MIN_SCORES", 0)
    scores, mask = scores_and_mask(3, 4, 200, dead_row=True)
    expected = normalize(name, scores, mask)
    monkeypatch.setattr(normalizers, "SORT_FREE_MAX_STEPS", 1)
    got = normalize(name, scores, mask)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)
    assert (got[mask] == 0).all() and (got[0, 0] == 0).all()
    _agree_with_the_entmax_package(name, scores[1:])


def test_partial_sort_handles_rows_with_fewer_keys_than_candidates():
    keys = 500
    assert keys >= normalizers.PARTIAL_SORT_MIN_KEYS  # alpha-entmax's partial solve
    scores, mask = scores_and_mask(2, 4, keys, dead_row=True)
    mask[1, :, 5:] = True  # 5 visible keys, fewer than the partial sort's candidates
    for name in ("sparsemax", "entmax15", "alpha_entmax"):
        got = normalize(name, scores, mask)
        cut = normalize(name, scores[1:, :, :5])
        torch.testing.assert_close(got[1:, :, :5], cut, atol=1e-12, rtol=1e-10)
        assert (got[mask] == 0).all()


@pytest.mark.parametrize("keys", [12, 300, 500])  # short rows, long rows, rows solved from their largest entries
@pytest.mark.parametrize("alpha", [1.05, 1.3, 1.5, 1.8, 1.99, 2.0])
def test_alpha_entmax_newton_equals_bisection(alpha, keys):
    scores = torch.randn(2, 5, keys, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2
    weight = torch.randn(2, 5, keys, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    alphas = torch.tensor([alpha, 1.4], dtype=torch.float64).view(2, 1, 1)
    ours_in, reference_in = scores.clone().requires_grad_(), scores.clone().requires_grad_()
    ours_alpha, reference_alpha = alphas.clone().requires_grad_(), alphas.clone().requires_grad_()
    ours = normalize("alpha_entmax", ours_in, alpha=ours_alpha)
    reference = entmax.entmax_bisect(reference_in, reference_alpha.expand(2, 5, 1), dim=-1, n_iter=60)
    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-9)
    (ours * weight).sum().backward()
    (reference * weight).sum().backward()
    torch.testing.assert_close(ours_in.grad, reference_in.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(ours_alpha.grad, reference_alpha.grad, atol=1e-9, rtol=1e-7)


def test_alpha_entmax_in_float32_is_as_accurate_as_bisection():
    scores = torch.randn(4, 6, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) * 2
    alphas = torch.tensor([1.1, 1.5, 1.7, 2.0], dtype=torch.float64).view(4, 1, 1)
    exact = normalize("alpha_entmax", scores, alpha=alphas)
    ours = normalize("alpha_entmax", scores.float(), alpha=alphas.float())
    bisection = entmax.entmax_bisect(scores.float(), alphas.float().expand(4, 6, 1), dim=-1)
    assert (ours.double() - exact).abs().max() <= max(2e-6, 2 * (bisection.double() - exact).abs().max())


@pytest.mark.parametrize("variant", ["sparsemax", "entmax15", "alpha_entmax", "topk", "rela"])
def test_incremental_decoding_equals_the_full_forward_on_long_sources(variant):
    """Cross-attention over 150 source tokens takes the partial-sort paths."""
    model, dictionary = build_model(f"{variant}_transformer_tiny", ["--attention-topk", "5"], vocab=40)
    src, src_lengths, prev = random_batch(dictionary, bsz=2, src_len=150, tgt_len=5)
    with torch.no_grad():
        encoder_out = model.encoder(src, src_lengths=src_lengths)
        full, _ = model.decoder(prev, encoder_out=encoder_out)
        incremental_state = {}
        steps = [
            model.decoder(prev[:, : t + 1], encoder_out=encoder_out, incremental_state=incremental_state)[0]
            for t in range(prev.size(1))
        ]
    keep = prev.ne(dictionary.pad())
    torch.testing.assert_close(torch.cat(steps, dim=1)[keep], full[keep], atol=1e-4, rtol=1e-4)


def test_weights_hook_still_receives_the_mask_of_masked_keys():
    from fairseq_plugins.attention import SparseMultiheadAttention

    module = SparseMultiheadAttention(16, 2, self_attention=True, normalizer="sparsemax").eval()
    x = torch.randn(4, 2, 16)
    padding = torch.tensor([[False] * 4, [False, False, True, True]])
    seen = {}
    module.weights_hook = lambda weights, mask: seen.update(mask=mask)  # observes, returns None
    module(x, x, x, key_padding_mask=padding)
    expected = padding.view(2, 1, 1, 4).expand(2, 2, 4, 4).reshape(4, 4, 4)
    assert seen["mask"].dtype == torch.bool and torch.equal(seen["mask"], expected)


@pytest.mark.parametrize("mode", ["self", "causal", "cross"])
@pytest.mark.parametrize("normalizer", ["rela", "rela_i", "softmax", "sparsemax", "entmax15", "alpha_entmax", "topk"])
def test_own_scores_path_equals_the_fairseq_path(normalizer, mode):
    """Without incremental state every normalizer computes its own scores (ReLA: padded keys zeroed
    in k; the others: -inf at padded keys; the causal mask: all through the product's input);
    the result and every gradient equal fairseq's masked-scores path."""
    from fairseq_plugins.attention import SparseMultiheadAttention

    torch.manual_seed(7)
    kwargs = {"encoder_decoder_attention": True} if mode == "cross" else {"self_attention": True}
    module = SparseMultiheadAttention(16, 4, normalizer=normalizer, dropout=0.0, **kwargs).train()
    query = torch.randn(5, 3, 16)
    key = torch.randn(7, 3, 16) if mode == "cross" else query
    padding = torch.zeros(3, key.size(0), dtype=torch.bool)
    padding[1, -2:] = True
    padding[2, :] = True  # a sentence whose keys are all padding: all-zero rows
    attn_mask = torch.triu(torch.full((5, 5), float("-inf")), 1) if mode == "causal" else None
    results = []
    for fused in (True, False):
        module.fused_scores = fused
        module.zero_grad()
        q = query.detach().clone().requires_grad_()
        k = q if mode != "cross" else key.detach().clone().requires_grad_()
        out, weights = module(q, k, k, key_padding_mask=padding, attn_mask=attn_mask, static_kv=mode == "cross",
                              need_head_weights=True)
        out.pow(2).sum().backward()
        grads = [q.grad] + ([k.grad] if mode == "cross" else []) + [p.grad for p in module.parameters()]
        results.append((out, weights, grads))
    (out_f, w_f, g_f), (out_r, w_r, g_r) = results
    torch.testing.assert_close(out_f, out_r, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w_f, w_r, atol=1e-6, rtol=1e-5)
    assert (w_f.transpose(0, 1)[padding.view(3, 1, 1, -1).expand_as(w_f.transpose(0, 1))] == 0).all()
    for a, b in zip(g_f, g_r):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mode", ["self", "cross"])
@pytest.mark.parametrize("normalizer", ["rela", "sparsemax"])
def test_own_scores_path_makes_autograd_copy_nothing_back(normalizer, mode):
    """The in-place scaling of q and masking of k act on the projections' products, not on views of
    them: a view's in-place op makes autograd copy the whole gradient back (CopySlices), which cost
    about 8% of an attention module's forward and backward."""
    from fairseq_plugins.attention import SparseMultiheadAttention

    kwargs = {"encoder_decoder_attention": True} if mode == "cross" else {"self_attention": True}
    module = SparseMultiheadAttention(16, 4, normalizer=normalizer, dropout=0.0, **kwargs).train()
    query = torch.randn(5, 3, 16, requires_grad=True)
    key = torch.randn(7, 3, 16, requires_grad=True) if mode == "cross" else query
    padding = torch.zeros(3, key.size(0), dtype=torch.bool)
    padding[1, -2:] = True
    out, _ = module(query, key, key, key_padding_mask=padding, static_kv=mode == "cross", need_weights=False)
    seen, stack = set(), [out.grad_fn]
    names = []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    assert "MulBackward0" in names  # the scaling of q is in the graph ...
    assert "CopySlices" not in names  # ... and acts on the product itself


@pytest.mark.parametrize("alpha", [1.05, 1.2, 1.49, 1.5, 1.51, 1.7, 2.0])
def test_alpha_entmax_start_brackets_its_threshold(alpha):
    """The power-free start (root of sum [z - tau]_+^2 = 1) is at or below the exact threshold for
    alpha >= 1.5, at or above it below 1.5, and the threshold itself at 1.5; Newton's method
    reaches the threshold from either side."""
    x = torch.randn(64, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) * 1.5
    x[0] = float("-inf")  # a row whose keys are all masked
    am1 = torch.full((64, 1), alpha - 1, dtype=torch.float64)
    z = (x - x.amax(-1, keepdim=True).nan_to_num(neginf=0.0)) * am1
    start = normalizers._alpha_entmax_start(z)
    exact = normalizers._alpha_entmax_newton(z, am1, 50)[0]
    assert torch.isfinite(start).all() and torch.isfinite(exact).all()
    if alpha >= 1.5:
        assert (start[1:] <= exact[1:] + 1e-12).all()
    else:
        assert (start[1:] >= exact[1:] - 1e-12).all()
    if alpha == 1.5:
        torch.testing.assert_close(start[1:], exact[1:], atol=1e-6, rtol=0)
    reference = entmax.entmax_bisect(x[1:], alpha, dim=-1, n_iter=60)
    ours = normalize("alpha_entmax", x[1:], alpha=alpha)
    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-9)
