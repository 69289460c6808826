"""The C++ row kernels (fairseq_plugins/cpu_kernels.py) against the PyTorch formulation and the
``entmax`` package, on long rows (256 and 1,024 keys), ties, masked keys and extreme scales; and the
fallback to PyTorch when they cannot be built."""

import logging

import entmax
import pytest
import torch

from fairseq_plugins import cpu_kernels, normalizers
from fairseq_plugins.normalizers import normalize


@pytest.fixture(scope="module")
def kernels():
    module = cpu_kernels.kernels()
    if module is None:
        pytest.skip(f"C++ row kernels unavailable: {cpu_kernels.unavailable_reason()}")
    return module


def hard_rows(keys, dtype, seed=0):
    """[rows, keys] scores with the cases a threshold search can get wrong."""
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randn(keys, generator=generator, dtype=dtype) * scale for scale in (0.01, 0.5, 2.0, 30.0)]
    rows.append(torch.randint(0, 3, (keys,), generator=generator).to(dtype))  # many ties
    rows.append(torch.full((keys,), 1.5, dtype=dtype))  # all equal: uniform
    peaked = torch.randn(keys, generator=generator, dtype=dtype)
    peaked[keys // 2] = 50.0
    rows.append(peaked)  # one key takes everything
    masked_tail = torch.randn(keys, generator=generator, dtype=dtype) * 2
    masked_tail[max(1, keys // 3):] = float("-inf")
    rows.append(masked_tail)
    rows.append(torch.full((keys,), float("-inf"), dtype=dtype))  # every key masked
    return torch.stack(rows)  # [9, keys]


def pytorch_path(name, scores, **params):
    with cpu_kernels.enabled(False):
        return normalize(name, scores, **params)


@pytest.mark.parametrize("keys", [1, 5, 64, 256, 1024])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_kernels_equal_the_pytorch_path_and_the_entmax_package(kernels, name, dtype, keys, monkeypatch):
    scores = hard_rows(keys, dtype)
    weights = normalize(name, scores)
    tolerance = dict(rtol=1e-5, atol=2e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
    for sort_free_from in (0, 10**12):  # both PyTorch threshold searches
        monkeypatch.setattr(normalizers, "SORT_FREE_MIN_SCORES", sort_free_from)
        torch.testing.assert_close(weights, pytorch_path(name, scores), **tolerance)
    finite = scores[:-2].double()  # the entmax package cannot take -inf rows
    reference = getattr(entmax, name)(finite, dim=-1).to(dtype)
    torch.testing.assert_close(weights[:-2], reference, **tolerance)
    assert (weights[-1] == 0).all()
    assert (weights[-2][torch.isneginf(scores[-2])] == 0).all()
    # float32: a support of ~340 tied keys (1,024-key ties row) sums to 1 within 2e-5, as the references do
    torch.testing.assert_close(weights[:-1].sum(-1), torch.ones(scores.size(0) - 1, dtype=dtype),
                               atol=5e-5 if dtype == torch.float32 else 1e-12, rtol=0)


ALPHAS = [1.01, 1.05, 1.2, 1.45, 1.5, 1.55, 1.8, 2.0]


@pytest.mark.parametrize("keys", [1, 5, 64, 256, 1024])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_alpha_entmax_kernel_equals_the_pytorch_path_and_bisection(kernels, dtype, keys):
    """Every hard row at every alpha, from 1.01 (p = 100: unscaled y^p underflows float32) to 2, one
    alpha per row as the module passes them; with its backward's output^(2 - alpha)."""
    rows = hard_rows(keys, dtype)  # [9, keys]
    scores = rows.repeat(len(ALPHAS), 1)  # [9 * alphas, keys]
    alpha = torch.tensor(ALPHAS, dtype=dtype).repeat_interleave(rows.size(0)).view(-1, 1)
    weights = normalize("alpha_entmax", scores, alpha=alpha)
    # float32: both paths are within 6e-6 of the exact weights on the 0.01-scale row at alpha = 2
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(weights, pytorch_path("alpha_entmax", scores, alpha=alpha), **tolerance)
    finite = torch.isfinite(scores).any(-1)
    exact = entmax.entmax_bisect(scores[finite].double(), alpha[finite].double(), dim=-1, n_iter=200)
    if keys > 1:  # entmax_bisect cannot take a single key
        torch.testing.assert_close(weights[finite].double(), exact, **tolerance)
    assert (weights[~finite] == 0).all() and (weights[torch.isneginf(scores)] == 0).all()
    torch.testing.assert_close(weights[finite].sum(-1), torch.ones(int(finite.sum()), dtype=dtype), atol=5e-5, rtol=0)
    output, gppr = kernels.alpha_entmax_rows(scores, alpha.view(-1), 50, True, normalizers.ALPHA_ENTMAX_START_TOLERANCE,
                                            normalizers.SORT_FREE_MAX_STEPS)
    support = output > 0
    torch.testing.assert_close(gppr[support], output.pow(2 - alpha)[support], **tolerance)
    assert (gppr[~support] == 0).all()  # 0^0 at alpha = 2 off the support: 0, not 1


def test_alpha_entmax_kernel_serves_inference_and_training(kernels, monkeypatch):
    """With or without autograd the kernel answers (training: with output^(2 - alpha) for the backward
    kernel); the PyTorch solver is not called, and both give the PyTorch path's weights."""
    from fairseq_plugins.normalizers import alpha_entmax

    scores = torch.randn(6, 40, generator=torch.Generator().manual_seed(4))
    alpha = torch.linspace(1.1, 1.9, 6).view(6, 1)
    calls = []
    original = normalizers._alpha_entmax_newton
    monkeypatch.setattr(normalizers, "_alpha_entmax_newton", lambda *a: calls.append(1) or original(*a))
    with torch.no_grad():
        inference = alpha_entmax(scores, alpha=alpha)
    training = alpha_entmax(scores.clone().requires_grad_(), alpha=alpha)
    assert not calls and training.grad_fn is not None
    torch.testing.assert_close(inference, training.detach(), rtol=0, atol=0)
    torch.testing.assert_close(training.detach(), pytorch_path("alpha_entmax", scores, alpha=alpha), rtol=1e-5, atol=1e-6)
    assert calls  # the PyTorch path did run the solver


def test_alpha_entmax_pytorch_path_no_longer_stalls_near_alpha_one():
    """Unscaled, sum y^p underflowed float32 at alpha = 1.01 and the Newton step was 0: every weight 0."""
    scores = torch.randn(4, 64, generator=torch.Generator().manual_seed(0)) * 3
    weights = pytorch_path("alpha_entmax", scores, alpha=torch.full((4, 1), 1.01))
    torch.testing.assert_close(weights.sum(-1), torch.ones(4), atol=1e-5, rtol=0)
    exact = entmax.entmax_bisect(scores.double(), torch.full((4, 1), 1.01, dtype=torch.float64), dim=-1, n_iter=200)
    torch.testing.assert_close(weights.double(), exact, atol=3e-6, rtol=1e-5)


def alpha_entmax_gradients(scores, alpha, upstream, use_kernels):
    """(d scores, d alpha) of ``sum(alpha_entmax(scores, alpha) * upstream)``; d alpha None when alpha
    does not require grad."""
    leaf = scores.clone().requires_grad_()
    with cpu_kernels.enabled(use_kernels):
        (normalize("alpha_entmax", leaf, alpha=alpha) * upstream).sum().backward()
    return leaf.grad, None if alpha.grad is None else alpha.grad.clone()


@pytest.mark.parametrize("keys", [1, 5, 64, 256, 1024])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_alpha_entmax_backward_kernel_equals_the_pytorch_backward(kernels, dtype, keys):
    """Training's gradients through the kernels (alpha_entmax_rows with output^(2 - alpha), then
    alpha_entmax_rows_backward) on every hard row at every alpha, one alpha per row, with and without
    d alpha. float64: equal to the PyTorch path's. float32: within the float64 gradients' tolerance,
    as the PyTorch path is (d scores within 3e-5 of their largest value; d alpha, which subtracts sums of
    size 1 and divides by (alpha - 1)^2 = 1e-4 at alpha = 1.01, within 1e-3 through the kernel, which sums
    in float64, and 2e-3 through PyTorch)."""
    rows = hard_rows(keys, torch.float64, seed=keys)  # [9, keys]
    scores = rows.repeat(len(ALPHAS), 1)  # [9 * alphas, keys]
    upstream = torch.randn(scores.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    alpha_values = torch.tensor(ALPHAS, dtype=torch.float64).repeat_interleave(rows.size(0)).view(-1, 1)
    exact_scores, exact_alpha = alpha_entmax_gradients(scores, alpha_values.clone().requires_grad_(), upstream, False)
    scale_scores, scale_alpha = exact_scores.abs().amax().item(), exact_alpha.abs().amax().item()
    scores, upstream, alpha_values = scores.to(dtype), upstream.to(dtype), alpha_values.to(dtype)
    for learn_alpha in (True, False):
        results = []
        for use_kernels in (True, False):
            alpha = alpha_values.clone().requires_grad_(learn_alpha)
            results.append(alpha_entmax_gradients(scores, alpha, upstream, use_kernels))
        (kernel_scores, kernel_alpha), (torch_scores, torch_alpha) = results
        assert torch.isfinite(kernel_scores).all() and (kernel_scores[torch.isneginf(scores)] == 0).all()
        if dtype == torch.float64:  # the same sums: equal up to rounding, cancellation included
            torch.testing.assert_close(kernel_scores, torch_scores, rtol=1e-10, atol=1e-10 * scale_scores)
        else:
            for computed in (kernel_scores, torch_scores):
                torch.testing.assert_close(computed.double(), exact_scores, rtol=0, atol=3e-5 * scale_scores)
        if not learn_alpha:
            assert kernel_alpha is None
            continue
        if dtype == torch.float64:
            torch.testing.assert_close(kernel_alpha, torch_alpha, rtol=1e-10, atol=1e-10 * scale_alpha)
        else:
            for computed, within in ((kernel_alpha, 1e-3), (torch_alpha, 2e-3)):
                torch.testing.assert_close(computed.double(), exact_alpha, rtol=0, atol=within * scale_alpha)
        assert (kernel_alpha[torch.isneginf(scores).all(-1)] == 0).all()  # a query that sees no key


def test_alpha_entmax_backward_kernel_passes_float64_gradcheck_in_scores_and_alpha(kernels):
    generator = torch.Generator().manual_seed(5)
    scores = torch.randn(2, 3, 4, 9, generator=generator, dtype=torch.float64)
    scores[1, 2, :, 6:] = float("-inf")
    alpha = torch.tensor([1.2, 1.5, 1.9], dtype=torch.float64).view(1, 3, 1, 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, a: normalize("alpha_entmax", s, alpha=a),
                                    (scores.clone().requires_grad_(), alpha))


def test_alpha_entmax_backward_builds_agree_and_reject_mismatched_shapes(kernels):
    scores = hard_rows(256, torch.float32, seed=3)
    alpha = torch.linspace(1.05, 2.0, scores.size(0)).view(-1, 1).requires_grad_()
    upstream = torch.randn(scores.shape, generator=torch.Generator().manual_seed(2))
    avx2 = alpha_entmax_gradients(scores, alpha, upstream, True)
    alpha.grad = None
    try:
        kernels.set_baseline(True)
        baseline = alpha_entmax_gradients(scores, alpha, upstream, True)
    finally:
        kernels.set_baseline(False)
    torch.testing.assert_close(avx2[0], baseline[0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(avx2[1], baseline[1], rtol=1e-5, atol=1e-5 * avx2[1].abs().amax().item())
    output = torch.rand(4, 8)
    with pytest.raises(RuntimeError, match="grad_out and gppr must match output"):
        kernels.alpha_entmax_rows_backward(torch.rand(4, 7), output, output, torch.full((4,), 1.5), True)
    with pytest.raises(RuntimeError, match=r"alpha must be a \[rows\] vector"):
        kernels.alpha_entmax_rows_backward(output, output, output, torch.full((3,), 1.5), True)


@pytest.mark.parametrize("keys", [5, 13, 64, 130, 256, 1024])
@pytest.mark.parametrize("k", [1, 8, 16])
def test_topk_kernel_equals_the_pytorch_path(kernels, keys, k):
    scores = hard_rows(keys, torch.float64, seed=keys + k)
    if k >= keys:
        pytest.skip("k >= keys is plain softmax")
    weights = normalize("topk", scores, k=k)
    torch.testing.assert_close(weights, pytorch_path("topk", scores, k=k), rtol=1e-12, atol=1e-14)
    kept = (weights > 0).sum(-1)
    assert kept[1] == k  # continuous scores: exactly k
    assert kept[5] == keys  # all tied with the k-th: all kept
    assert (weights[-1] == 0).all()


@pytest.mark.parametrize("keys", [5, 13, 64, 130, 256, 1024])
@pytest.mark.parametrize("k", [1, 3, 8, 9])
def test_float32_topk_kernel_keeps_the_same_keys_and_weights_as_float64(kernels, keys, k):
    """float32 rows take the 8-lane selection network (k <= 8) and the vectorised exp of the kernel;
    k = 9 takes the insertion buffer. Same kept keys as the float64 kernel, weights within float32
    rounding of it, and of the PyTorch path."""
    if k >= keys:
        pytest.skip("k >= keys is plain softmax")
    scores64 = hard_rows(keys, torch.float64, seed=3 * keys + k)
    # a row whose kept keys spread over 80 nats: exp's whole range, down to weights of 1e-35
    spread = torch.linspace(0.0, -80.0, keys, dtype=torch.float64)[torch.randperm(keys, generator=torch.Generator().manual_seed(k))]
    scores64 = torch.cat([scores64, spread.unsqueeze(0)])
    scores = scores64.float()
    weights = normalize("topk", scores, k=k)
    reference = normalize("topk", scores.double(), k=k)  # the same float32 scores, kept in float64
    assert torch.equal(weights > 0, reference > 0)
    # float32 rounds z - max z (up to 80 here) to 6e-8 relative: exp of it to 80 * 6e-8 = 5e-6
    # (and exp below -87 is exp(-87) = 1.6e-38: no denormals)
    torch.testing.assert_close(weights.double(), reference, rtol=1e-5, atol=2e-38)
    torch.testing.assert_close(weights, pytorch_path("topk", scores, k=k), rtol=1e-6, atol=1e-7)
    assert (weights[-2] == 0).all()  # every key masked


@pytest.mark.parametrize("keys", [64, 67, 128, 130, 256])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_float32_topk_kernel_on_causal_rows_and_scattered_finite_keys(kernels, keys, k):
    """Rows with fewer finite keys than k, or with their finite keys in a few chunks of 8, as decoder
    self-attention's causal rows in training: float32 rows from 64 keys are solved through their chunk
    maxima, and must keep exactly the keys of the float64 kernel."""
    generator = torch.Generator().manual_seed(keys + k)
    causal = torch.randn(keys, keys, generator=generator, dtype=torch.float64)
    causal.masked_fill_(torch.triu(torch.ones(keys, keys, dtype=torch.bool), 1), float("-inf"))  # row i: keys <= i
    scattered = torch.full((4, keys), float("-inf"), dtype=torch.float64)
    for row, count in enumerate((1, k, k + 1, 2 * k)):
        where = torch.randperm(keys, generator=generator)[:count]
        scattered[row, where] = torch.randn(count, generator=generator, dtype=torch.float64)
    scattered[3, where[:2]] = scattered[3, where[0]].item()  # a tie
    scores = torch.cat([causal, scattered]).float()
    weights = normalize("topk", scores, k=k)
    reference = normalize("topk", scores.double(), k=k)
    assert torch.equal(weights > 0, reference > 0)
    expected_kept = torch.minimum(torch.isfinite(scores).sum(-1), torch.tensor(k))
    assert torch.equal((weights > 0).sum(-1)[:-1], expected_kept[:-1])  # continuous scores: min(k, finite)
    torch.testing.assert_close(weights.double(), reference, rtol=1e-5, atol=1e-30)
    torch.testing.assert_close(weights, pytorch_path("topk", scores, k=k), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(scores.size(0)), rtol=1e-6, atol=1e-6)


def test_sparsemax_kernel_reports_the_support_its_backward_needs(kernels):
    scores = hard_rows(256, torch.float64)
    output, support = kernels.sparsemax_rows(scores)
    assert torch.equal(support.squeeze(1), (output > 0).sum(-1).double())


@pytest.mark.parametrize("name", ["sparsemax", "entmax15", "topk"])
def test_gradients_through_the_kernels_equal_the_pytorch_path_and_pass_gradcheck(kernels, name):
    generator = torch.Generator().manual_seed(7)
    scores = torch.randn(3, 4, 40, generator=generator, dtype=torch.float64) * 2
    scores = scores + 0.05 * torch.sign(scores)
    mask = torch.zeros(3, 4, 40, dtype=torch.bool)
    mask[1, :, 25:] = True
    mask[2, 0] = True  # a query that sees no key
    upstream = torch.randn(3, 4, 40, generator=generator, dtype=torch.float64)
    grads = []
    for use_kernels in (True, False):
        leaf = scores.clone().requires_grad_()
        with cpu_kernels.enabled(use_kernels):
            (normalize(name, leaf, mask) * upstream).sum().backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)
    small = scores[:2, :2, :12].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda s: normalize(name, s, mask[:2, :2, :12]), (small,))


def test_kernels_give_the_same_result_on_several_threads(kernels):
    scores = torch.randn(512, 96, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    one = normalize("entmax15", scores)
    try:
        torch.set_num_threads(2)
        assert torch.equal(normalize("entmax15", scores), one)
    finally:
        torch.set_num_threads(threads)


def test_a_failed_build_falls_back_to_pytorch_with_one_warning(monkeypatch, caplog):
    def broken_build():
        raise RuntimeError("Error building extension 'sparse_attention_rows'\ng++: not found")

    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_unavailable", None)
    monkeypatch.setattr(cpu_kernels, "_build", broken_build)
    scores = hard_rows(64, torch.float32)
    with caplog.at_level(logging.WARNING, logger="fairseq_plugins.cpu_kernels"):
        weights = normalize("sparsemax", scores)
        normalize("entmax15", scores)
    assert [r.getMessage() for r in caplog.records] == [
        "sparse attention CPU kernels unavailable (RuntimeError: g++: not found); using the PyTorch path (slower)"
    ]
    torch.testing.assert_close(weights, pytorch_path("sparsemax", scores))
    assert cpu_kernels.status() == "PyTorch operators (RuntimeError: g++: not found)"


def test_the_environment_switch_turns_the_kernels_off(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_unavailable", None)
    monkeypatch.setenv(cpu_kernels.ENV_SWITCH, "0")
    assert cpu_kernels.kernels() is None
    assert cpu_kernels.status() == f"PyTorch operators ({cpu_kernels.ENV_SWITCH}=0)"


@pytest.mark.parametrize("name", ["sparsemax", "entmax15", "alpha_entmax", "topk"])
def test_the_baseline_and_avx2_builds_agree(kernels, name):
    """Both instruction-set builds of the row algorithms (the AVX2 one runs where the CPU has it)."""
    scores = torch.cat([hard_rows(keys, torch.float32, seed=keys) for keys in (256,)] * 2)
    params = {"k": 8} if name == "topk" else {"alpha": torch.linspace(1.05, 2.0, scores.size(0)).view(-1, 1)} \
        if name == "alpha_entmax" else {}
    try:
        kernels.set_baseline(True)
        assert kernels.instruction_set() == "baseline"
        baseline = normalize(name, scores, **params)
    finally:
        kernels.set_baseline(False)
    torch.testing.assert_close(normalize(name, scores, **params), baseline, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(baseline, pytorch_path(name, scores, **params), rtol=1e-5, atol=2e-6)


def norm_rows(dim, dtype, seed=0):
    """[rows, dim] inputs of ReLA's gated RMS norm: scales 1e-3..1e3, a zero row, saturating gates."""
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randn(dim, generator=generator, dtype=dtype) * scale for scale in (1e-3, 1.0, 30.0, 1e3)]
    rows.append(torch.zeros(dim, dtype=dtype))  # mean(z^2) = 0: r = eps^-1/2, output 0
    spread = torch.randn(dim, generator=generator, dtype=dtype)
    spread[0] = 200.0  # gate * z beyond exp's range on both sides
    spread[-1] = -200.0
    rows.append(spread)
    return torch.stack(rows)  # [6, dim]


@pytest.mark.parametrize("dim", [1, 7, 64, 512, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gated", [True, False])
def test_rms_norm_gate_kernel_equals_the_reference(kernels, dim, dtype, gated):
    from fairseq_plugins.attention import rms_norm_gate, rms_norm_gate_reference

    z = norm_rows(dim, dtype, seed=dim)
    generator = torch.Generator().manual_seed(1)
    scale = torch.rand(dim, generator=generator, dtype=dtype) + 0.5
    gate = torch.randn(dim, generator=generator, dtype=dtype) * 3 if gated else None
    reference = rms_norm_gate_reference(z, scale, gate)
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(kernels.rms_norm_gate_rows(z, scale, gate, 1e-8), reference, **tolerance)
    with torch.no_grad():  # inference on CPU: the module's path goes through the kernel
        torch.testing.assert_close(rms_norm_gate(z.view(2, 3, dim), scale, gate).view(6, dim), reference, **tolerance)
    assert (kernels.rms_norm_gate_rows(z, scale, gate, 1e-8)[4] == 0).all()


def test_rms_norm_gate_kernel_rejects_mismatched_parameters(kernels):
    z = torch.randn(3, 8)
    with pytest.raises(RuntimeError, match="scale must be a \\[dim\\] vector"):
        kernels.rms_norm_gate_rows(z, torch.ones(7), None, 1e-8)
    with pytest.raises(RuntimeError, match="gate must be a \\[dim\\] vector"):
        kernels.rms_norm_gate_rows(z, torch.ones(8), torch.ones(8, dtype=torch.float64), 1e-8)


def test_rms_norm_gate_baseline_and_avx2_builds_agree(kernels):
    z = norm_rows(512, torch.float32)
    scale, gate = torch.ones(512), torch.linspace(-3, 3, 512)
    try:
        kernels.set_baseline(True)
        baseline = kernels.rms_norm_gate_rows(z, scale, gate, 1e-8)
    finally:
        kernels.set_baseline(False)
    torch.testing.assert_close(kernels.rms_norm_gate_rows(z, scale, gate, 1e-8), baseline, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rows", [6, 33, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gated", [True, False])
def test_rms_norm_gate_training_kernels_equal_the_reference_with_gradients(kernels, rows, dtype, gated):
    """Forward and backward through the C++ training kernels (r kept, s recomputed; parameter gradients
    summed over blocks of 32 rows) equal autograd on the plain formula, including over 1,000 rows."""
    from fairseq_plugins.attention import rms_norm_gate, rms_norm_gate_reference

    dim = 96
    z = torch.cat([norm_rows(dim, dtype)] * (rows // 6 + 1))[:rows]
    generator = torch.Generator().manual_seed(3)
    z = (z + torch.randn(z.shape, generator=generator, dtype=dtype) * 0.1).requires_grad_()
    scale = (torch.rand(dim, generator=generator, dtype=dtype) + 0.5).requires_grad_()
    gate = (torch.randn(dim, generator=generator, dtype=dtype) * 3).requires_grad_() if gated else None
    grad_out = torch.randn(z.shape, generator=generator, dtype=dtype)
    inputs = [z, scale] + ([gate] if gated else [])
    with cpu_kernels.enabled(True):
        ours = rms_norm_gate(z, scale, gate)
        our_grads = torch.autograd.grad(ours, inputs, grad_out)
    reference = rms_norm_gate_reference(z, scale, gate)
    reference_grads = torch.autograd.grad(reference, inputs, grad_out)
    tolerance = dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(ours, reference, **tolerance)
    for name, a, b in zip(["z", "scale", "gate"], our_grads, reference_grads):
        scale_of_b = b.abs().max().clamp_min(1.0)  # the parameter gradients sum 1,000 rows
        torch.testing.assert_close(a / scale_of_b, b / scale_of_b, **tolerance, msg=lambda m: f"d {name}: {m}")


def test_rms_norm_gate_training_kernels_pass_float64_gradcheck(kernels):
    from fairseq_plugins.attention import rms_norm_gate

    generator = torch.Generator().manual_seed(5)
    z = torch.randn(3, 4, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(16, generator=generator, dtype=torch.float64, requires_grad=True)
    gate = torch.randn(16, generator=generator, dtype=torch.float64, requires_grad=True)
    with cpu_kernels.enabled(True):
        assert torch.autograd.gradcheck(rms_norm_gate, (z, scale, gate))
        assert torch.autograd.gradcheck(rms_norm_gate, (z, scale, None))


def test_rms_norm_gate_backward_builds_agree_and_reject_mismatched_shapes(kernels):
    z = norm_rows(512, torch.float32)
    scale, gate = torch.ones(512), torch.linspace(-3, 3, 512)
    grad_out = torch.randn(z.shape, generator=torch.Generator().manual_seed(2))
    _, inverse_rms = kernels.rms_norm_gate_rows_forward(z, scale, gate, 1e-8)
    try:
        kernels.set_baseline(True)
        baseline = kernels.rms_norm_gate_rows_backward(grad_out, z, inverse_rms, scale, gate)
    finally:
        kernels.set_baseline(False)
    for ours, theirs in zip(kernels.rms_norm_gate_rows_backward(grad_out, z, inverse_rms, scale, gate), baseline):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="grad_out must match z"):
        kernels.rms_norm_gate_rows_backward(grad_out[:, :-1], z, inverse_rms, scale, gate)
    with pytest.raises(RuntimeError, match="inverse_rms must be a \\[rows\\] vector"):
        kernels.rms_norm_gate_rows_backward(grad_out, z, inverse_rms[:-1], scale, gate)
