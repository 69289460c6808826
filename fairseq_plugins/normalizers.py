"""Attention normalizers: scaled scores -> attention weights.

Every normalizer is a small pure function with the same contract::

    weights = normalizer(scores, mask, **params)

* ``scores``: float tensor ``[..., queries, keys]`` of scaled dot products.
* ``mask``: optional bool tensor broadcastable to ``scores``; ``True`` marks a
  key the query may not see (padding or a future position).  A score of
  ``-inf`` is a masked key too (the form fairseq's attention produces), so
  ``normalizer(scores_with_neginf)`` needs no mask at all.
* ``weights``: same shape as ``scores``; masked positions are exactly 0, and a
  query row whose keys are all masked is all zeros (never NaN, with zero
  gradients) for every normalizer.

The softmax family (softmax, sparsemax, 1.5-entmax, alpha-entmax, top-k) gives
rows that sum to 1; ReLA gives unnormalised, possibly all-zero rows.  Callers
compute in float32 (see :func:`normalize`), whatever the model's dtype.

Implementation notes (speed; see ``benchmarks/``):

* Masked keys are handled as ``-inf`` scores inside each normalizer, without
  materialising a mask or filling/zeroing passes.
* sparsemax and 1.5-entmax find their threshold without sorting: Newton steps on
  ``sum_i [z_i - tau]_+^(1 or 2) = 1`` from below (Michelot 1986; Condat 2016), each one
  pass over the row into the output buffer plus row reductions, exact once the support
  settles (3-8 passes); the sort-based algorithms of the ``entmax`` package (Martins &
  Astudillo 2016; Peters et al. 2019) are the fallback for rows that do not settle.
* On CPU, sparsemax, 1.5-entmax, top-k and alpha-entmax (forward and backward) run through C++
  row kernels (:mod:`.cpu_kernels`) that
  solve each row with the same thresholds in a few passes and no temporaries; the PyTorch
  formulations below are their reference and the path for other devices (or when the kernels
  cannot be built).
* alpha-entmax finds its threshold by safeguarded Newton iterations on the
  convex function ``||[z - tau]_+||_p - 1`` (p = 1/(alpha-1)), which reach float
  precision in 4-9 steps where bisection takes 50, long rows again from their
  largest entries first; the backward pass is the one of ``entmax.entmax_bisect``
  (Correia et al. 2019), made NaN-free on rows whose keys are all masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch.autograd import Function

from nmt_common.variants import VARIANTS

from . import cpu_kernels

Tensor = torch.Tensor

# alpha-entmax: rows of at least PARTIAL_SORT_MIN_KEYS keys are first solved on their
# ALPHA_ENTMAX_PARTIAL_SORT largest entries (torch.topk), enough for the support of most rows;
# rows whose support fills them are then solved in full.
PARTIAL_SORT_MIN_KEYS = 384  # measured: full Newton is faster at 256 keys, the partial solve at 512
ALPHA_ENTMAX_PARTIAL_SORT = 64
# alpha-entmax: the power-free starting point is solved to this step size (then exact Newton steps)
ALPHA_ENTMAX_START_TOLERANCE = 1e-3
# sparsemax and 1.5-entmax: rows whose sort-free threshold has not settled after this many
# passes are solved by sorting (exact either way).
SORT_FREE_MAX_STEPS = 12
# Below this many scores (e.g. one decoding step) sorting is faster: each sort-free pass is a
# dozen small operations, whose fixed cost then outweighs the work.
SORT_FREE_MIN_SCORES = 8192


def _differentiable(*tensors: Tensor) -> bool:
    """Whether autograd records this call.  When it does not (decoding, evaluation), the
    normalizers run their forward without an autograd Function and keep nothing for a backward:
    on one decoding step's small tensors that overhead is a large share of the call."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _with_mask(scores: Tensor, mask: Optional[Tensor]) -> Tensor:
    """``scores`` with ``-inf`` at masked keys (a new tensor when there is a mask)."""
    if mask is None:
        return scores
    return scores.masked_fill(mask, float("-inf"))


def _row_max(scores: Tensor):
    """(row maximum with 0 on rows whose keys are all masked, bool tensor of those rows), both ``[..., 1]``."""
    max_val = scores.amax(dim=-1, keepdim=True)
    dead = torch.isneginf(max_val)
    return max_val.masked_fill(dead, 0.0), dead


def _sparsemax_threshold(scores: Tensor):
    """Threshold and support size of sparsemax for rows ``scores [rows, keys]``, by sorting.

    The threshold is ``max_r (cumsum_r - 1) / r`` over the sorted entries (the maximiser is the
    support size; Duchi et al. 2008).  Masked (-inf) entries never win the maximum; a row whose
    keys are all masked gets ``tau = -inf``, and its output ``-inf - (-inf)`` is NaN: callers
    zero it.  Fewer operations than shifting by the row maximum first, which matters for small
    tensors (one decoding step), where each operation's fixed cost dominates.  The reference and
    fallback of :func:`_sparsemax_sort_free`.
    """
    ranked = scores.sort(dim=-1, descending=True).values
    rho = torch.arange(1, ranked.size(-1) + 1, device=scores.device, dtype=scores.dtype)
    tau, index = ranked.cumsum_(dim=-1).sub_(1).div_(rho).max(dim=-1, keepdim=True)
    return tau, index + 1


def _entmax15_threshold(scores: Tensor):
    """Threshold (of ``scores / 2``) and support size of 1.5-entmax for rows ``scores [rows, keys]``;
    the sort-based algorithm of Peters et al. (2019), relative to the row maximum.  The reference
    and fallback of :func:`_entmax15_sort_free`."""
    ranked = scores.sort(dim=-1, descending=True).values
    top = ranked[:, :1]
    dead = torch.isneginf(top)
    top = top.masked_fill(dead, 0.0)
    ranked = (ranked - top).mul_(0.5)
    rho = torch.arange(1, ranked.size(-1) + 1, device=scores.device, dtype=scores.dtype)
    mean = ranked.cumsum(dim=-1).div_(rho)
    mean_sq = (ranked * ranked).cumsum_(dim=-1).div_(rho)
    delta = (1 - rho * (mean_sq - mean * mean)) / rho
    tau = mean - torch.sqrt(delta.clamp_(min=0))
    # -inf entries make tau NaN, which compares False: they are never counted
    support = (tau <= ranked).sum(dim=-1, keepdim=True, dtype=torch.int32).long().clamp_(min=1)
    tau = tau.gather(-1, support - 1).add_(top * 0.5).masked_fill_(dead, float("inf"))
    return tau, support


def _support_size(output: Tensor, scratch: Tensor) -> Tensor:
    """Number of positive entries per row of ``output [rows, keys]``, ``[rows, 1]`` in its dtype.

    A sum of signs in a reused buffer: about 20x faster on CPU than ``count_nonzero`` or a
    boolean sum, which reduce in int64 element by element."""
    return torch.sign(output, out=scratch).sum(dim=-1, keepdim=True)


def _finish_by_sorting(rows: Tensor, output: Tensor, support: Optional[Tensor], unsettled: Tensor,
                       solve, half: bool) -> None:
    """Rows the sort-free iteration left ``unsettled`` ([rows, 1] bool) solved by ``solve`` (sort-based),
    written into ``output`` (and ``support``, a float count, when given) in place; ``half``: the
    threshold is of ``rows / 2``."""
    index = unsettled.squeeze(1).nonzero().squeeze(1)
    if not index.numel():
        return
    subset = rows.index_select(0, index)
    tau_sorted, support_sorted = solve(subset)
    if support is not None:
        support.index_copy_(0, index, support_sorted.to(support.dtype))
    scaled = subset * 0.5 if half else subset
    output.index_copy_(0, index, (scaled - tau_sorted).clamp_(min=0).nan_to_num_(nan=0.0))  # NaN: all masked


def _sparsemax_sort_free(rows: Tensor):
    """Sparsemax of ``rows [rows, keys]`` (-inf: masked) without sorting.

    Newton's method on the piecewise-linear ``f(tau) = sum_i [z_i - tau]_+ - 1`` (Michelot 1986;
    Condat 2016): from ``tau = max z - 1`` (where ``f >= 0``) each step
    ``tau <- (sum_{z_i > tau} z_i - 1) / |{z_i > tau}|`` rises monotonically to the root and is
    exact once the support stops shrinking, usually after 3-8 passes over the row.  Rows still
    moving after ``SORT_FREE_MAX_STEPS`` are solved by the sort-based algorithm.

    Returns ``output [rows, keys]`` and the support size ``[rows, 1]`` (>= 1).
    """
    top, _ = _row_max(rows)
    tau = top - 1
    output, scratch = torch.empty_like(rows), torch.empty_like(rows)
    previous = None
    for _ in range(SORT_FREE_MAX_STEPS):
        torch.sub(rows, tau, out=output).clamp_(min=0)
        support = _support_size(output, scratch)
        if previous is not None:
            settled = support == previous  # tau came from this very support: exact
            if bool(settled.all()):
                return output, support.clamp_(min=1)
        total = output.sum(dim=-1, keepdim=True)
        tau = tau + (total - 1) / support.clamp(min=1)
        previous = support
    # the last tau is unchecked: recompute the output there for settled rows, sort the rest
    torch.sub(rows, tau, out=output).clamp_(min=0)
    support = _support_size(output, scratch)
    _finish_by_sorting(rows, output, support, support != previous, _sparsemax_threshold, half=False)
    return output, support.clamp_(min=1)


def _entmax15_sort_free(rows: Tensor):
    """``root = [rows / 2 - tau]_+`` of 1.5-entmax (output ``root ** 2``) for ``rows [rows, keys]``
    (-inf: masked) without sorting.

    Newton steps on the convex, decreasing ``f(tau) = sum_i [x_i - tau]_+^2 - 1``, ``x = z / 2``,
    from ``tau = max x - 1`` (where ``f >= 0``) rise monotonically towards the root without
    passing it.  Once two iterates share a support S, ``tau`` is set to the exact root of
    ``sum_{i in S} (x_i - tau)^2 = 1`` (the sort-based formula of Peters et al. 2019 on S, from
    the same row sums); it is the solution where its own support is S again.  Usually 3-7
    passes; rows that do not settle are solved by sorting.
    """
    top, _ = _row_max(rows)
    tau = top * 0.5 - 1.0
    half = rows * 0.5
    root, scratch = torch.empty_like(rows), torch.empty_like(rows)
    previous = None
    for _ in range(SORT_FREE_MAX_STEPS):
        torch.sub(half, tau, out=root).clamp_(min=0)
        support = _support_size(root, scratch)
        if previous is not None and torch.equal(support, previous):
            break
        previous = support
        # sum_i y_i >= sum_i y_i^2 >= 1 on live rows (0 <= y <= 1 while tau <= the root); 1 on all-masked rows
        total = root.sum(dim=-1, keepdim=True).clamp_(min=1.0)
        squares = torch.linalg.vector_norm(root, dim=-1, keepdim=True).square_()
        tau = tau.addcdiv(squares.sub_(1.0), total, value=0.5)  # Newton: tau - f / f'
    else:  # out of steps: the root and support at the last tau
        torch.sub(half, tau, out=root).clamp_(min=0)
        support = _support_size(root, scratch)
    # exact root on the settled support S: sum_S (y_i - d)^2 = 1 for y = [x - tau]_+, the smaller d
    total = root.sum(dim=-1, keepdim=True)
    squares = torch.linalg.vector_norm(root, dim=-1, keepdim=True).square_()
    count = support.clamp(min=1.0)
    discriminant = total * total - count * (squares - 1.0)  # < 0: S is too wide to hold a root
    tau = tau.addcdiv(total - discriminant.clamp(min=0).sqrt(), count)
    torch.sub(half, tau, out=root).clamp_(min=0)
    settled = (_support_size(root, scratch) == support) & (discriminant >= 0)
    _finish_by_sorting(rows, root, None, ~settled, _entmax15_threshold, half=True)
    return root


def _sparsemax_forward(scores: Tensor, need_support: bool):
    """Sparsemax of ``scores [..., keys]``, and (``need_support``) its support size ``[..., 1]``
    in the scores' dtype; sorting below ``SORT_FREE_MIN_SCORES`` scores, sort-free above."""
    rows = scores.reshape(-1, scores.size(-1))  # [..., keys] -> [rows, keys]
    kernels = cpu_kernels.usable(rows)
    if kernels is not None:
        output, support = kernels.sparsemax_rows(rows)
        support = support.clamp_(min=1) if need_support else None
    elif rows.numel() < SORT_FREE_MIN_SCORES:
        tau, support = _sparsemax_threshold(rows)
        output = (rows - tau).clamp_(min=0).nan_to_num_(nan=0.0)  # NaN: rows whose keys are all masked
        support = support.to(rows.dtype) if need_support else None
    else:
        output, support = _sparsemax_sort_free(rows)
    if support is not None:
        support = support.view(scores.shape[:-1] + (1,))  # [rows, 1] -> [..., 1]
    return output.view_as(scores), support


class _Sparsemax(Function):
    """Sparsemax over the last dimension; ``-inf`` entries get 0, all-``-inf`` rows get zeros."""

    @staticmethod
    def forward(ctx, scores: Tensor) -> Tensor:
        output, support = _sparsemax_forward(scores, need_support=True)
        ctx.save_for_backward(output, support)
        return output

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        output, support = ctx.saved_tensors
        in_support = torch.sign(output)  # 1 on the support, 0 elsewhere
        grad = grad_output * in_support
        mean = grad.sum(dim=-1, keepdim=True) / support
        return grad.addcmul_(in_support, mean, value=-1)


def _entmax15_root(scores: Tensor) -> Tensor:
    """``[scores / 2 - tau]_+`` of 1.5-entmax (output: its square) for ``scores [..., keys]``;
    sorting below ``SORT_FREE_MIN_SCORES`` scores, sort-free above."""
    rows = scores.reshape(-1, scores.size(-1))  # [..., keys] -> [rows, keys]
    kernels = cpu_kernels.usable(rows)
    if kernels is not None:
        root = kernels.entmax15_root_rows(rows)
    elif rows.numel() < SORT_FREE_MIN_SCORES:
        root = torch.add(_entmax15_threshold(rows)[0].neg(), rows, alpha=0.5).clamp_(min=0)
    else:
        root = _entmax15_sort_free(rows)
    return root.view_as(scores)


class _Entmax15(Function):
    """1.5-entmax over the last dimension; ``-inf`` entries get 0, all-``-inf`` rows get zeros."""

    @staticmethod
    def forward(ctx, scores: Tensor) -> Tensor:
        root = _entmax15_root(scores)  # 1.5-entmax(z) = root^2; root = 1 / g''(output)
        ctx.save_for_backward(root)
        return root * root

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (root,) = ctx.saved_tensors
        grad = grad_output * root
        total = root.sum(dim=-1, keepdim=True)
        q = grad.sum(dim=-1, keepdim=True) / total.masked_fill_(total == 0, 1.0)
        return grad.addcmul_(q, root, value=-1)


def _alpha_entmax_start(z: Tensor) -> Tensor:
    """Starting threshold of alpha-entmax's Newton iteration for rows ``z [rows, n]`` (row maxima 0),
    found without powers: the root of ``sum_i [z_i - tau]_+^2 = 1`` (exact at alpha = 1.5), by
    Newton steps from -1 to within ``ALPHA_ENTMAX_START_TOLERANCE``.

    Below the root, ``0 <= y <= 1``: ``y^2 <= y^p`` for ``p <= 2`` (alpha >= 1.5), so the start lies
    at or below alpha-entmax's threshold, and at or above it for alpha < 1.5.  Either is safe:
    from above the root, the first tangent step of the convex ``g`` lands below it.  A step of
    this solver is a few cheap passes where a step of the exact one needs a power.
    """
    tau = torch.full((z.size(0), 1), -1.0, dtype=z.dtype, device=z.device)
    y = torch.empty_like(z)
    for _ in range(SORT_FREE_MAX_STEPS):
        torch.sub(z, tau, out=y).clamp_(min=0)
        squares = torch.linalg.vector_norm(y, dim=-1, keepdim=True).square_()
        # Newton on sum y^2 - 1 rises from the left; clamped at 0 for rows whose keys are all masked
        step = squares.sub_(1.0).div_(y.sum(dim=-1, keepdim=True).mul_(2.0).clamp_(min=torch.finfo(z.dtype).tiny))
        tau = tau + step.clamp_(min=0)
        if not float(step.amax()) > ALPHA_ENTMAX_START_TOLERANCE:
            break
    return tau


def _alpha_entmax_evaluate(z: Tensor, tau: Tensor, exponent: Tensor, alpha_two: bool,
                           y: Tensor, powered: Tensor) -> None:
    """Write ``u = [z - tau]_+ / -tau`` (scaled by the largest, the row maximum's: u <= 1) and
    ``powered = u^(p-1)`` (``exponent`` = p - 1) into the given buffers; ``alpha_two``: some row has
    alpha = 2, where 0^0 = 1 must not put masked keys in the support.  Unscaled, ``y^p`` underflows
    float32 near alpha = 1 (p = 100 at 1.01) and the iteration stalls with every weight 0."""
    torch.sub(z, tau, out=y).clamp_(min=0).div_(tau.neg())  # tau < 0 (module notes)
    torch.pow(y, exponent, out=powered)
    if alpha_two:
        powered.masked_fill_(y == 0, 0.0)


def _alpha_entmax_newton(z: Tensor, am1: Tensor, n_iter: int):
    """``[z - tau]_+`` at the alpha-entmax threshold for rows ``z [rows, n]`` (row maxima 0,
    ``-inf`` masked; ``am1`` = alpha - 1, ``[rows, 1]``), by Newton's method on
    ``g(tau) = ||[z - tau]_+||_p - 1``, ``p = 1 / (alpha - 1)``.

    ``g`` is convex and decreasing on ``[-1, 0)``, ``g(-1) >= 0``: from any start
    (:func:`_alpha_entmax_start`) the tangent step ``tau += (T - T^(2 - alpha)) / S``
    (``T = sum y^p``, ``S = sum y^(p-1)``, ``y = [z - tau]_+``) lands at or below the root (kept
    >= -1), and from there each step rises to it, quadratically once the support settles.  It is
    computed scaled by ``m = -tau`` (:func:`_alpha_entmax_evaluate`): with ``u = y / m``,
    ``U = sum u^p`` and ``V = sum u^(p-1)``, the step is ``(m U - U^(2 - alpha)) / V`` exactly
    (``p (2 - alpha) = p - 1``), and ``U >= 1`` never underflows.  When every
    row's step is below sqrt(eps) the next point is exact to about eps: the loop evaluates it and
    stops (typically 2 evaluations at alpha = 1.5, 4-8 elsewhere; at most ``n_iter``).

    Returns ``tau [rows, 1]``, ``u`` and ``u^(p-1)`` at it (two ``[rows, n]`` buffers).
    """
    exponent = (1 - am1) / am1  # p - 1 = (2 - alpha) / (alpha - 1)
    alpha_two = bool((exponent == 0).any())  # 0^0 = 1 would put masked keys in the support
    tau = _alpha_entmax_start(z)
    tolerance = torch.finfo(z.dtype).eps ** 0.5
    # two buffers reused by every step (a fresh large tensor per step costs page faults on CPU)
    y, powered = torch.empty_like(z), torch.empty_like(z)
    converged = False
    for iteration in range(max(1, n_iter)):
        _alpha_entmax_evaluate(z, tau, exponent, alpha_two, y, powered)
        if converged or iteration == n_iter - 1:
            break
        slope = powered.sum(dim=-1, keepdim=True)  # V; 0 only on rows whose keys are all masked
        total = powered.mul_(y).sum(dim=-1, keepdim=True)  # U; powered is recomputed next step
        shrink = total.pow(1 - am1)
        if alpha_two:
            shrink.masked_fill_(total == 0, 0.0)
        step = (total * tau.neg() - shrink).div_(slope.clamp_(min=torch.finfo(z.dtype).tiny))  # 0 on all-masked rows
        tau = (tau + step).clamp_(min=-1.0)
        converged = not float(step.abs().amax()) > tolerance  # then evaluate tau once more and stop
    return tau, y, powered


def _alpha_entmax_forward(scores: Tensor, alpha: Tensor, n_iter: int, need_backward: bool = True):
    """alpha-entmax of ``scores [..., keys]`` (``alpha`` broadcast to ``[..., 1]``): returns the
    output and (``need_backward``, else None) ``output^(2 - alpha)`` (= 1 / g''(output), which
    the backward needs), both ``scores``' shape.

    With ``z = (x - max x)(alpha - 1)`` the output is ``y^p / sum y^p``, ``y = [z - tau]_+``, which
    is ``u^p / U`` in the solver's scaled terms; ``output^(2 - alpha) = u^(p-1) * U^(alpha - 2)``
    comes from the solver's last ``u^(p-1)`` without another power.  Rows of at least ``PARTIAL_SORT_MIN_KEYS`` keys are solved on their
    ``ALPHA_ENTMAX_PARTIAL_SORT`` largest entries first (the support is usually much smaller),
    and in full only where the support reaches the smallest of them.
    """
    keys = scores.size(-1)
    rows = scores.reshape(-1, keys)  # [..., keys] -> [rows, keys]
    # CPU: the same iteration in C++, over the keys with z > -1 alone (cpu_kernels: alpha_entmax_rows)
    kernels = cpu_kernels.usable(rows)
    if kernels is not None:
        alpha_rows = alpha.reshape(-1).to(rows.dtype).contiguous()  # [..., 1] -> [rows]
        output, gppr = kernels.alpha_entmax_rows(rows, alpha_rows, n_iter, need_backward,
                                                 ALPHA_ENTMAX_START_TOLERANCE, SORT_FREE_MAX_STEPS)
        return output.view_as(scores), gppr.view_as(scores) if need_backward else None
    am1 = alpha.reshape(-1, 1) - 1  # [..., 1] -> [rows, 1]
    max_val, _ = _row_max(rows)
    z = (rows - max_val).mul_(am1)  # <= 0, row maxima 0, -inf masked
    if keys >= PARTIAL_SORT_MIN_KEYS and keys > 2 * ALPHA_ENTMAX_PARTIAL_SORT:
        # the threshold from each row's largest entries; rows whose smallest such entry is
        # still in the support are solved again in full
        candidates = z.topk(ALPHA_ENTMAX_PARTIAL_SORT, dim=-1).values  # [rows, candidates]
        tau = _alpha_entmax_newton(candidates, am1, n_iter)[0]
        unsolved = (candidates[:, -1:] > tau).squeeze(1).nonzero().squeeze(1)
        if unsolved.numel():
            tau_full = _alpha_entmax_newton(z.index_select(0, unsolved), am1.index_select(0, unsolved), n_iter)[0]
            tau = tau.index_copy(0, unsolved, tau_full)
        exponent = (1 - am1) / am1
        y, powered = z, torch.empty_like(z)  # z is not needed after this: y overwrites it
        _alpha_entmax_evaluate(z, tau, exponent, bool((exponent == 0).any()), y, powered)
    else:
        _, y, powered = _alpha_entmax_newton(z, am1, n_iter)
    output = y.mul_(powered)  # y^p
    total = output.sum(dim=-1, keepdim=True)
    total.masked_fill_(total == 0, 1.0)  # all-masked rows: output 0
    output = output.div_(total).view_as(scores)
    if not need_backward:
        return output, None
    gppr = powered.mul_(total.pow(am1 - 1)).view_as(scores)
    return output, gppr


class _AlphaEntmax(Function):
    """alpha-entmax over the last dimension (:func:`_alpha_entmax_forward`); the backward is the
    one of ``entmax.entmax_bisect`` (Correia et al. 2019), made NaN-free on all-masked rows."""

    @staticmethod
    def forward(ctx, scores: Tensor, alpha: Tensor, n_iter: int) -> Tensor:
        output, gppr = _alpha_entmax_forward(scores, alpha, n_iter)
        ctx.save_for_backward(output, gppr, alpha)
        return output

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        output, gppr, alpha = ctx.saved_tensors  # gppr = output^(2 - alpha), 0 off the support
        keys = output.size(-1)
        kernels = cpu_kernels.usable(output)
        if kernels is not None:
            # CPU: the same sums in two C++ passes over each row (alpha_entmax_rows_backward)
            grad_rows, grad_alpha_rows = kernels.alpha_entmax_rows_backward(
                grad_output.reshape(-1, keys), output.reshape(-1, keys), gppr.reshape(-1, keys),  # [..., keys] -> [rows, keys]
                alpha.reshape(-1).to(output.dtype), ctx.needs_input_grad[1])  # [..., 1] -> [rows]
            grad_alpha = grad_alpha_rows.view_as(alpha) if grad_alpha_rows is not None else None  # [rows] -> [..., 1]
            return grad_rows.view_as(output), grad_alpha, None
        gppr_sum = gppr.sum(dim=-1, keepdim=True)
        gppr_sum = gppr_sum.masked_fill_(gppr_sum == 0, 1.0)  # all-masked rows
        grad = grad_output * gppr
        q = grad.sum(dim=-1, keepdim=True) / gppr_sum
        grad_scores = grad.addcmul_(q, gppr, value=-1)
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            # d output / d alpha (Correia et al. 2019, Prop. 2; as in entmax.entmax_bisect), summed over
            # the row: with s = gppr / sum(gppr) and H = sum(p log p), sum_i g_i s_i = q, so
            # sum_i g_i [(p_i - s_i) / (a-1)^2 - (p_i log p_i - s_i H) / (a-1)] needs only row sums
            shannon = torch.special.xlogy(output, output)  # p log p, 0 at p = 0
            entropy = shannon.sum(dim=-1, keepdim=True)
            g_shannon = shannon.mul_(grad_output).sum(dim=-1, keepdim=True)
            g_output = torch.mul(grad_output, output).sum(dim=-1, keepdim=True)
            am1 = alpha - 1
            grad_alpha = (g_output - q) / (am1 * am1) - (g_shannon - entropy * q) / am1
        return grad_scores, grad_alpha, None


def _softmax_family_rows(weights: Tensor, scores: Tensor, fallback: Callable[[], Tensor]) -> Tensor:
    """``weights`` from F.softmax, unless a row had every key masked (NaN): then ``fallback()``."""
    if weights.numel() and bool(torch.isnan(weights[..., :1]).any()):
        return fallback()
    return weights


def softmax(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Softmax attention (Vaswani et al. 2017, Eq. 1)."""
    scores = _with_mask(scores, mask)
    weights = F.softmax(scores, dim=-1)
    return _softmax_family_rows(weights, scores, lambda: _safe_softmax(scores))


def _safe_softmax(scores: Tensor) -> Tensor:
    """Softmax that gives all-zero rows (and zero gradients) where every score is -inf."""
    _, dead = _row_max(scores)
    return F.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(torch.isneginf(scores), 0.0)


def sparsemax(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Sparsemax (Martins & Astudillo 2016): argmin_p ||p - z||^2 over the simplex.

    Exact: the threshold of the sort-based algorithm (as in the ``entmax`` package), found without
    sorting (module notes).
    """
    scores = _with_mask(scores, mask)
    if _differentiable(scores):
        return _Sparsemax.apply(scores)
    return _sparsemax_forward(scores, need_support=False)[0]


def entmax15(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """1.5-entmax (Peters, Niculae & Martins 2019): Tsallis alpha=1.5 entmax; exact, the threshold of
    their sort-based algorithm (module notes)."""
    scores = _with_mask(scores, mask)
    if _differentiable(scores):
        return _Entmax15.apply(scores)
    root = _entmax15_root(scores)
    return root.mul_(root)


def alpha_entmax(
    scores: Tensor,
    mask: Optional[Tensor] = None,
    *,
    alpha: Union[float, Tensor] = 1.5,
    n_iter: int = 50,
) -> Tensor:
    """alpha-entmax (Correia, Niculae & Martins 2019, "Adaptively Sparse Transformers").

    ``alpha`` is a float or a tensor broadcastable to ``scores`` with size 1 on
    the last dimension (one alpha per head); it must lie in (1, 2].  The
    result is differentiable with respect to ``alpha``.  ``n_iter`` is the
    maximum number of root-finding iterations (safeguarded Newton; it stops
    earlier once the threshold is exact to float precision, typically after
    5-10), the same solution as ``entmax.entmax_bisect`` to within its tolerance.
    """
    if isinstance(alpha, Tensor):
        alpha = alpha.to(scores.dtype)
    else:
        alpha = torch.tensor(float(alpha), dtype=scores.dtype, device=scores.device)
    # expanded here, not inside the Function, so that autograd sums the gradient back to alpha's shape
    alpha = alpha.expand(*scores.shape[:-1], 1)
    scores = _with_mask(scores, mask)
    if _differentiable(scores, alpha):
        return _AlphaEntmax.apply(scores, alpha, n_iter)
    return _alpha_entmax_forward(scores, alpha, n_iter, need_backward=False)[0]


#: Rows of this many keys find their k-th largest score in two stages (:func:`_kth_largest`); measured on
#: CPU: 1.6x faster than one torch.topk at 256 and 384 keys, slower from 512 keys (torch selects
#: differently there) and no faster at 64.
TOPK_TWO_STAGE_KEYS = range(128, 385)
TOPK_BLOCK = 4  # keys per block of the first stage


def _kth_largest(scores: Tensor, k: int) -> Tensor:
    """The k-th largest score of each row, ``[..., 1]`` (-inf when fewer than k keys are unmasked).

    Rows of :data:`TOPK_TWO_STAGE_KEYS` keys take two cheaper selections instead of one over the
    row: cut it into blocks of ``b`` keys and keep the k blocks with the largest maxima; the k-th
    largest of those k*b scores is the row's. Exact: if every kept block's maximum is >= the row's
    k-th largest v, the k maxima are k scores >= v; otherwise every block holding a score >= v was
    kept. Either way the kept scores include k that are >= v, and they are a subset of the row.
    """
    keys, block = scores.size(-1), TOPK_BLOCK
    if keys not in TOPK_TWO_STAGE_KEYS or keys < 2 * k * block:
        # the k-th largest = the smallest of the k largest (unsorted selection is cheaper)
        return scores.topk(k, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)
    padding = -keys % block
    if padding:  # -inf keys are never among a row's k largest finite scores
        scores = F.pad(scores, (0, padding), value=float("-inf"))
    blocks = scores.reshape(*scores.shape[:-1], -1, block)  # [..., keys / block, block]
    kept = blocks.amax(dim=-1).topk(k, dim=-1, sorted=False).indices  # [..., k] block numbers
    # [..., k, block] -> [..., k * block]: the scores of the kept blocks
    candidates = blocks.gather(-2, kept.unsqueeze(-1).expand(*kept.shape, block)).flatten(-2)
    return candidates.topk(k, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)


def _topk_softmax(scores: Tensor, k: int) -> Tensor:
    """Softmax over each row's scores >= its k-th largest (``k`` < keys)."""
    kernels = cpu_kernels.usable(scores)
    if kernels is not None:
        # [..., keys] -> [rows, keys] -> [..., keys]
        return kernels.topk_softmax_rows(scores.reshape(-1, scores.size(-1)), k).view_as(scores)
    kth_largest = _kth_largest(scores, k)  # [..., queries, 1]
    kept = scores.masked_fill(scores < kth_largest, float("-inf"))
    return _softmax_family_rows(F.softmax(kept, dim=-1), kept, lambda: _safe_softmax(kept))


class _TopkSoftmax(Function):
    """Softmax over each row's scores >= its k-th largest.  The backward is softmax's alone
    (torch's fused kernel): entries outside the top k have weight 0, hence gradient 0, so no
    mask is kept for a masked_fill backward."""

    @staticmethod
    def forward(ctx, scores: Tensor, k: int) -> Tensor:
        weights = _topk_softmax(scores, k)
        ctx.save_for_backward(weights)
        return weights

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (weights,) = ctx.saved_tensors
        return torch._softmax_backward_data(grad_output.contiguous(), weights, -1, weights.dtype), None


def topk(scores: Tensor, mask: Optional[Tensor] = None, *, k: int = 8) -> Tensor:
    """Explicit sparse attention (Zhao et al. 2019): top-k, then softmax.

    Per query, keep the scores that are >= the k-th largest unmasked score (so
    ties with the k-th are kept), set the rest to -inf and apply softmax.  With
    k >= the number of keys this is exactly softmax.
    """
    if k < 1:
        raise ValueError(f"top-k attention needs k >= 1, got k={k}")
    scores = _with_mask(scores, mask)
    if k < scores.size(-1):
        return _TopkSoftmax.apply(scores, k) if _differentiable(scores) else _topk_softmax(scores, k)
    weights = F.softmax(scores, dim=-1)
    return _softmax_family_rows(weights, scores, lambda: _safe_softmax(scores))


def rela(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Rectified linear attention weights (Zhang, Titov & Sennrich 2021).

    ``ReLU(scores)``: masked keys (``-inf`` or in ``mask``) get 0, no row
    normalisation: a row can be all zeros.  The RMS normalisation of the
    attention *output* lives in the attention module.
    """
    if mask is not None:
        scores = scores.masked_fill(mask, 0.0)
    return F.relu(scores)


@dataclass(frozen=True)
class NormalizerSpec:
    """One attention variant: everything the attention module needs to know about it.

    * ``function(scores, mask=None, **params)``: scores -> weights (see the module docstring);
    * ``params``: the keyword parameters ``function`` takes from the attention module:
      ``k`` (top-k), ``alpha`` (learned per head) and ``n_iter`` (alpha-entmax);
    * ``output_norm``: RMS normalisation of the attention output, ``"gated"`` (ReLA-g),
      ``"plain"`` (ReLA-i) or None;
    * ``sums_to_one``: whether every row with an unmasked key sums to 1;
    * ``relu_weights``: the weights are ``ReLU(scores)``, so a key whose score is exactly 0 gets
      weight 0: padded keys can be zeroed in the key projection instead of filling the scores.
    """

    name: str
    function: Callable[..., Tensor]
    paper: str
    sums_to_one: bool = True
    params: Tuple[str, ...] = ()
    output_norm: Optional[str] = None
    relu_weights: bool = False


NORMALIZERS: Dict[str, NormalizerSpec] = {
    spec.name: spec
    for spec in (
        NormalizerSpec("softmax", softmax, "Vaswani et al. 2017"),
        # ReLA-g and ReLA-i share the weights; they differ in the output normalisation.
        NormalizerSpec("rela", rela, "Zhang, Titov & Sennrich 2021 (ReLA-g)", sums_to_one=False,
                       output_norm="gated", relu_weights=True),
        NormalizerSpec("rela_i", rela, "Zhang, Titov & Sennrich 2021 (ReLA-i)", sums_to_one=False,
                       output_norm="plain", relu_weights=True),
        NormalizerSpec("sparsemax", sparsemax, "Martins & Astudillo 2016"),
        NormalizerSpec("entmax15", entmax15, "Peters, Niculae & Martins 2019"),
        NormalizerSpec("alpha_entmax", alpha_entmax, "Correia, Niculae & Martins 2019", params=("alpha", "n_iter")),
        NormalizerSpec("topk", topk, "Zhao et al. 2019 (Explicit Sparse Transformer)", params=("k",)),
    )
}

ATTENTION_VARIANTS = VARIANTS  # the registry defines exactly these, in this order (tested)


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

    Half-precision scores are upcast: sort-based and iterative normalizers are
    not reliable in fp16/bf16 (entmax issue #30).  ``-inf`` scores count as masked.
    """
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()
    return get_normalizer(name).function(scores, mask, **params)
