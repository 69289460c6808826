"""Property tests of every attention normalizer (the entmax package's style of tests)."""

import entmax
import pytest
import torch
import torch.nn.functional as F

from fairseq_plugins.normalizers import ATTENTION_VARIANTS, NORMALIZERS, normalize
from nmt_common.variants import VARIANTS

SUM_TO_ONE = [name for name, spec in NORMALIZERS.items() if spec.sums_to_one]


@pytest.fixture(autouse=True, params=["cpu_kernels", "pytorch"])
def implementation(request):
    """Every property holds for both CPU paths of sparsemax, 1.5-entmax and top-k: the C++ row
    kernels (fairseq_plugins/cpu_kernels.py) and the PyTorch formulation."""
    from fairseq_plugins import cpu_kernels

    if request.param == "cpu_kernels" and cpu_kernels.kernels() is None:
        pytest.skip(f"C++ row kernels unavailable: {cpu_kernels.unavailable_reason()}")
    with cpu_kernels.enabled(request.param == "cpu_kernels"):
        yield request.param


def random_scores(*shape, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype) * 2


def random_mask(batch, queries, keys, seed=0):
    """Key padding of random length per batch row (at least one key kept)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, keys + 1, (batch,), generator=generator)
    mask = torch.arange(keys).view(1, 1, keys) >= lengths.view(batch, 1, 1)
    return mask.expand(batch, queries, keys)


def test_registry_defines_exactly_the_toolkits_variants_in_order():
    assert tuple(NORMALIZERS) == VARIANTS == ATTENTION_VARIANTS
    assert set(VARIANTS) == {"softmax", "sparsemax", "entmax15", "alpha_entmax", "topk", "rela", "rela_i"}


@pytest.mark.parametrize("name", SUM_TO_ONE)
def test_rows_sum_to_one_and_masked_keys_get_zero(name):
    scores = random_scores(6, 5, 9)
    mask = random_mask(6, 5, 9)
    weights = normalize(name, scores, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 5))
    assert (weights[mask] == 0).all()
    assert (weights >= 0).all()


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_sort_based_normalizers_equal_the_entmax_package(name):
    scores = random_scores(4, 7, 11, dtype=torch.float64)
    reference = getattr(entmax, name)(scores, dim=-1)
    torch.testing.assert_close(normalize(name, scores), reference)


def test_alpha_entmax_matches_entmax15_at_alpha_one_and_a_half():
    scores = random_scores(3, 4, 10, dtype=torch.float64)
    torch.testing.assert_close(
        normalize("alpha_entmax", scores, alpha=1.5), entmax.entmax15(scores, dim=-1), atol=1e-6, rtol=1e-6
    )


def test_alpha_entmax_per_row_alpha_equals_separate_calls():
    scores = random_scores(2, 3, 8, dtype=torch.float64)
    alpha = torch.tensor([1.2, 1.9], dtype=torch.float64).view(2, 1, 1)
    together = normalize("alpha_entmax", scores, alpha=alpha)
    for row, a in enumerate([1.2, 1.9]):
        torch.testing.assert_close(together[row], entmax.entmax_bisect(scores[row], a, dim=-1))


@pytest.mark.parametrize("name", ATTENTION_VARIANTS)
def test_padding_with_masked_keys_equals_cutting_them_off(name):
    scores = random_scores(3, 4, 6, dtype=torch.float64)
    padded = torch.cat([scores, random_scores(3, 4, 5, dtype=torch.float64, seed=1) + 5.0], dim=-1)
    mask = torch.zeros(3, 4, 11, dtype=torch.bool)
    mask[..., 6:] = True
    cut = normalize(name, scores)
    with_padding = normalize(name, padded, mask)
    torch.testing.assert_close(with_padding[..., :6], cut, atol=1e-9, rtol=1e-7)
    assert (with_padding[..., 6:] == 0).all()


@pytest.mark.parametrize("name", ATTENTION_VARIANTS)
def test_fully_masked_rows_are_zero_with_finite_gradients(name):
    scores = random_scores(2, 3, 5).requires_grad_()
    mask = torch.zeros(2, 3, 5, dtype=torch.bool)
    mask[0, 1] = True  # one query sees no key at all
    weights = normalize(name, scores, mask)
    assert torch.isfinite(weights).all()
    assert (weights[0, 1] == 0).all()
    (weights * random_scores(2, 3, 5, seed=3)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[0, 1] == 0).all()


@pytest.mark.parametrize("name", ATTENTION_VARIANTS)
def test_float64_gradcheck(name, monkeypatch):
    from fairseq_plugins import normalizers

    for sort_free_from in (0, 10**12):  # sparsemax / 1.5-entmax: both threshold paths
        monkeypatch.setattr(normalizers, "SORT_FREE_MIN_SCORES", sort_free_from)
        _gradcheck(name)


def _gradcheck(name):
    # keep scores away from ReLU's kink and from sort ties, where the gradient is not defined
    scores = random_scores(2, 3, 6, dtype=torch.float64, seed=4)
    scores = (scores + 0.05 * torch.sign(scores)).requires_grad_()
    mask = torch.zeros(2, 3, 6, dtype=torch.bool)
    mask[1, :, 4:] = True
    assert torch.autograd.gradcheck(lambda s: normalize(name, s, mask), (scores,))


def test_alpha_entmax_gradcheck_in_alpha():
    scores = random_scores(2, 3, 6, dtype=torch.float64, seed=5)
    alpha = torch.tensor([1.3, 1.7], dtype=torch.float64).view(2, 1, 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: normalize("alpha_entmax", scores, alpha=a), (alpha,))


def test_topk_keeps_exactly_k_and_ties_with_the_kth():
    scores = torch.tensor([[5.0, 1.0, 4.0, 3.0, 2.0, 0.0]])
    weights = normalize("topk", scores, k=3)
    assert (weights > 0).sum().item() == 3
    torch.testing.assert_close(weights[0, [0, 2, 3]], F.softmax(torch.tensor([5.0, 4.0, 3.0]), -1))
    tied = torch.tensor([[5.0, 3.0, 4.0, 3.0, 2.0, 3.0]])
    assert (normalize("topk", tied, k=3) > 0).sum().item() == 5  # 5, 4 and the three 3s


@pytest.mark.parametrize("keys", [64, 130, 256, 300, 1024])
@pytest.mark.parametrize("k", [1, 8, 16])
def test_topk_two_stage_selection_finds_the_exact_kth_largest(keys, k):
    """The block prefilter of long rows returns torch.topk's k-th largest, with ties, -inf and padding."""
    from fairseq_plugins.normalizers import _kth_largest

    generator = torch.Generator().manual_seed(keys * 31 + k)
    scores = torch.randn(6, 5, keys, generator=generator)
    scores[0] = torch.randint(0, 3, (5, keys), generator=generator).float()  # many ties
    scores[1, :, keys // 3:] = float("-inf")  # masked tail (padded keys)
    scores[2, 0, : keys - k + 1] = float("-inf")  # fewer than k finite scores: -inf
    scores[3] = scores[3].sort(dim=-1).values  # the largest all in the last blocks
    expected = scores.topk(k, dim=-1).values.amin(dim=-1, keepdim=True)
    torch.testing.assert_close(_kth_largest(scores, k), expected, rtol=0, atol=0)
    weights = normalize("topk", scores, k=k)
    torch.testing.assert_close(weights, normalize("topk", scores.double(), k=k).float(), rtol=1e-5, atol=1e-6)
    assert ((weights > 0).sum(-1)[3:] == k).all()  # continuous scores: exactly k kept


def test_topk_counts_only_unmasked_keys():
    scores = torch.tensor([[9.0, 8.0, 1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, True, False, False, False]])
    weights = normalize("topk", scores, mask, k=2)
    assert weights[0, :2].eq(0).all() and (weights[0, 3:] > 0).all() and weights[0, 2] == 0


def test_topk_with_k_at_least_the_number_of_keys_is_softmax():
    scores = random_scores(3, 4, 6)
    mask = random_mask(3, 4, 6)
    for k in (6, 7, 100):
        torch.testing.assert_close(normalize("topk", scores, mask, k=k), normalize("softmax", scores, mask))


def test_topk_rejects_k_below_one():
    with pytest.raises(ValueError, match="k >= 1"):
        normalize("topk", random_scores(1, 2, 3), k=0)


def test_rela_gives_exact_zeros_unnormalised_rows_and_all_zero_rows():
    scores = torch.tensor([[[1.5, -0.5, 0.25], [-1.0, -2.0, -0.1]]])
    weights = normalize("rela", scores)
    assert weights.tolist() == [[[1.5, 0.0, 0.25], [0.0, 0.0, 0.0]]]
    mask = torch.tensor([[[False, False, True]]])
    assert normalize("rela", scores, mask)[0, 0].tolist() == [1.5, 0.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_scores_are_normalised_in_float32(dtype):
    scores = random_scores(2, 3, 7).to(dtype)
    for name in ATTENTION_VARIANTS:
        weights = normalize(name, scores)
        assert weights.dtype == torch.float32
        assert torch.isfinite(weights).all()


def test_unknown_normalizer_lists_the_valid_names():
    with pytest.raises(ValueError, match="sparsemax"):
        normalize("sparsmax", random_scores(1, 1, 2))
