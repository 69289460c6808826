"""Attention normalizers: scaled scores -> attention weights.

Every normalizer is a small pure function with the same contract::

    weights = normalizer(scores, mask, **params)

* ``scores``: float tensor ``[..., queries, keys]`` of scaled dot products.
* ``mask``: optional bool tensor broadcastable to ``scores``; ``True`` marks a
  key the query may not see (padding or a future position).
* ``weights``: same shape as ``scores``; masked positions are exactly 0, and a
  query row whose keys are all masked is all zeros (never NaN) for every
  normalizer.

The softmax family (softmax, sparsemax, 1.5-entmax, alpha-entmax, top-k) gives
rows that sum to 1; ReLA gives unnormalised, possibly all-zero rows.  Callers
compute in float32 (see :func:`normalize`), whatever the model's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn.functional as F
from entmax import entmax15 as _entmax15
from entmax import entmax_bisect as _entmax_bisect
from entmax import sparsemax as _sparsemax

Tensor = torch.Tensor


def _fill_masked(scores: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Give masked scores the most negative finite value of their dtype.

    A finite value (not -inf) keeps every normalizer and its gradient free of
    NaN, also on rows where every key is masked.
    """
    if mask is None:
        return scores
    return scores.masked_fill(mask, torch.finfo(scores.dtype).min)


def _zero_masked(weights: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Exact zeros on masked keys; rows with every key masked become all zeros."""
    if mask is None:
        return weights
    return weights.masked_fill(mask, 0.0)


def softmax(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Softmax attention (Vaswani et al. 2017, Eq. 1)."""
    return _zero_masked(F.softmax(_fill_masked(scores, mask), dim=-1), mask)


def sparsemax(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Sparsemax (Martins & Astudillo 2016): argmin_p ||p - z||^2 over the simplex.

    Exact sort-based algorithm of the ``entmax`` package.
    """
    return _zero_masked(_sparsemax(_fill_masked(scores, mask), dim=-1), mask)


def entmax15(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """1.5-entmax (Peters, Niculae & Martins 2019): Tsallis alpha=1.5 entmax, exact sort-based."""
    return _zero_masked(_entmax15(_fill_masked(scores, mask), dim=-1), mask)


def alpha_entmax(
    scores: Tensor,
    mask: Optional[Tensor] = None,
    *,
    alpha: Union[float, Tensor] = 1.5,
    n_iter: int = 50,
) -> Tensor:
    """alpha-entmax by bisection (Correia, Niculae & Martins 2019, "Adaptively Sparse Transformers").

    ``alpha`` is a float or a tensor broadcastable to ``scores`` with size 1 on
    the last dimension (one alpha per head); it must lie in (1, 2].  The
    result is differentiable with respect to ``alpha``.
    """
    if isinstance(alpha, Tensor):
        alpha = alpha.to(scores.dtype).expand(*scores.shape[:-1], 1)
    weights = _entmax_bisect(_fill_masked(scores, mask), alpha, dim=-1, n_iter=n_iter)
    return _zero_masked(weights, mask)


def topk(scores: Tensor, mask: Optional[Tensor] = None, *, k: int = 8) -> Tensor:
    """Explicit sparse attention (Zhao et al. 2019): top-k, then softmax.

    Per query, keep the scores that are >= the k-th largest unmasked score (so
    ties with the k-th are kept), set the rest to -inf and apply softmax.  With
    k >= the number of keys this is exactly softmax.
    """
    if k < 1:
        raise ValueError(f"top-k attention needs k >= 1, got k={k}")
    filled = _fill_masked(scores, mask)
    if k < scores.size(-1):
        kth_largest = filled.topk(k, dim=-1).values[..., -1:]  # [..., queries, 1]
        filled = filled.masked_fill(filled < kth_largest, torch.finfo(filled.dtype).min)
    return _zero_masked(F.softmax(filled, dim=-1), mask)


def rela(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Rectified linear attention weights (Zhang, Titov & Sennrich 2021).

    ``ReLU(scores)`` with masking by multiplication (masked scores become 0,
    hence weight 0), no row normalisation: a row can be all zeros.  The RMS
    normalisation of the attention *output* lives in the attention module.
    """
    if mask is not None:
        scores = scores.masked_fill(mask, 0.0)
    return F.relu(scores)


@dataclass(frozen=True)
class NormalizerSpec:
    """What the attention module needs to know about one normalizer."""

    name: str
    function: Callable[..., Tensor]
    sums_to_one: bool
    paper: str


NORMALIZERS: Dict[str, NormalizerSpec] = {
    spec.name: spec
    for spec in (
        NormalizerSpec("softmax", softmax, True, "Vaswani et al. 2017"),
        NormalizerSpec("sparsemax", sparsemax, True, "Martins & Astudillo 2016"),
        NormalizerSpec("entmax15", entmax15, True, "Peters, Niculae & Martins 2019"),
        NormalizerSpec("alpha_entmax", alpha_entmax, True, "Correia, Niculae & Martins 2019"),
        NormalizerSpec("topk", topk, True, "Zhao et al. 2019 (Explicit Sparse Transformer)"),
        # ReLA-g and ReLA-i share the weights; they differ in the output normalisation.
        NormalizerSpec("rela", rela, False, "Zhang, Titov & Sennrich 2021 (ReLA-g)"),
        NormalizerSpec("rela_i", rela, False, "Zhang, Titov & Sennrich 2021 (ReLA-i)"),
    )
}

ATTENTION_VARIANTS = tuple(NORMALIZERS)


def get_normalizer(name: str) -> NormalizerSpec:
    """Look up a normalizer by name, with an error that lists the valid names."""
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown attention normalizer {name!r}; choose one of: {', '.join(ATTENTION_VARIANTS)}"
        ) from None


def normalize(name: str, scores: Tensor, mask: Optional[Tensor] = None, **params) -> Tensor:
    """Apply normalizer ``name`` in float32 (or float64) and return weights in that precision.

    Half-precision scores are upcast: sort-based and bisection normalizers are
    not reliable in fp16/bf16 (entmax issue #30).
    """
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()
    return get_normalizer(name).function(scores, mask, **params)
