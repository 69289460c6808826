"""One multi-head attention module with pluggable normalizers.

:class:`SparseMultiheadAttention` subclasses fairseq's ``MultiheadAttention``
and keeps its parameter names (``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``), so a softmax checkpoint loads unchanged.  It reuses fairseq's
projections, incremental-state caching and masking by asking the parent for the
masked scores (``before_softmax=True``) and replaces only the step that turns
scores into weights, plus, for ReLA, the RMS normalisation of the output.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.modules import MultiheadAttention
from torch import Tensor

from . import cpu_kernels
from .normalizers import NormalizerSpec, get_normalizer

WeightsHook = Callable[[Tensor, Tensor], Optional[Tensor]]
"""``hook(weights [bsz*heads, tgt, src] float32, mask same shape) -> replacement or None``."""

# RMSNorm epsilon of the ReLA authors' code (bzhangGo/zero, utils/dtype.py).
RELA_RMS_EPS = 1e-8


def _at_least_float32(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32 and float64 unchanged (no copy)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _rms_norm_gate_forward(z: Tensor, scale: Tensor, gate: Optional[Tensor], eps: float
                           ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """float32 or float64 ``z [..., d]`` -> ``(y, r [..., 1], s or None)`` with
    ``r = (mean(z^2) + eps)^-1/2``, ``s = sigmoid(gate * z)`` and ``y = scale * z * r * s``."""
    # sum of squares in one reduction (no z^2 temporary): [..., d] -> [..., 1]
    r = torch.linalg.vector_norm(z, dim=-1, keepdim=True).square_().div_(z.size(-1)).add_(eps).rsqrt_()
    y = torch.mul(z, r).mul_(scale)
    if gate is None:
        return y, r, None
    s = torch.mul(z, gate).sigmoid_()
    return y.mul_(s), r, s


class RMSNormGateFunction(torch.autograd.Function):
    """``scale * RMSNorm(z) * sigmoid(gate * z)`` (``gate`` None: ``scale * RMSNorm(z)``) over
    the last dimension, in float32 (float64 stays float64), with a hand-written backward.

    Autograd's backward of the same expression allocates a fresh ``[..., d]`` tensor for
    each of about 20 elementwise steps. On CPU (float32/float64, kernels built) forward and
    backward are two C++ passes over each row each (``rms_norm_gate_rows_forward`` /
    ``_backward`` of :mod:`fairseq_plugins.cpu_kernels`; only ``r`` is kept, ``s`` is
    recomputed); elsewhere the backward allocates two tensors and writes the rest in place.
    Reference (tested equal, float64 gradcheck): :func:`rms_norm_gate_reference`.

    With ``n = z r``, ``t = dy s``, ``c = mean(t scale n)`` over d:

    * ``d scale = sum_rows(t n)``
    * ``d gate = sum_rows(t n scale s(1 - s) z)``
    * ``dz = r (t scale - n c) + t n scale (1 - s) gate``  (since ``ds = s(1 - s) d(gate z)``)
    """

    @staticmethod
    def forward(ctx, z: Tensor, scale: Tensor, gate: Optional[Tensor], eps: float) -> Tensor:
        z32 = _at_least_float32(z)
        scale32 = scale.to(z32.dtype)
        gate32 = gate.to(z32.dtype) if gate is not None else None
        ctx.param_dtypes = (scale.dtype, gate.dtype if gate is not None else None)
        rows = z32.reshape(-1, z32.size(-1))  # [..., d] -> [rows, d]
        kernels = cpu_kernels.usable(rows)
        ctx.kernels = kernels
        if kernels is not None:
            # CPU: two C++ passes forward, two backward; only r [rows] is kept (s is recomputed)
            y, r = kernels.rms_norm_gate_rows_forward(rows, scale32, gate32, eps)
            ctx.save_for_backward(z, r, None, scale32, gate32)
            return y.view(z32.shape).to(z.dtype)
        y, r, s = _rms_norm_gate_forward(z32, scale32, gate32, eps)
        ctx.save_for_backward(z, r, s, scale32, gate32)
        return y.to(z.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: Tensor):
        z, r, s, scale, gate = ctx.saved_tensors
        z32 = _at_least_float32(z)
        scale_dtype, gate_dtype = ctx.param_dtypes
        if ctx.kernels is not None:
            rows = z32.reshape(-1, z32.size(-1))  # [..., d] -> [rows, d]
            grad_rows = grad_y.to(z32.dtype).reshape(rows.shape)  # [..., d] -> [rows, d]
            grad_z, grad_scale, grad_gate = ctx.kernels.rms_norm_gate_rows_backward(grad_rows, rows, r, scale, gate)
            return (grad_z.view(z.shape).to(z.dtype) if ctx.needs_input_grad[0] else None,
                    grad_scale.to(scale_dtype) if ctx.needs_input_grad[1] else None,
                    grad_gate.to(gate_dtype) if grad_gate is not None and ctx.needs_input_grad[2] else None,
                    None)
        dim = z32.size(-1)
        rows = tuple(range(z32.dim() - 1))  # every dimension but the last
        grad_y = grad_y.to(z32.dtype)
        # two fresh [..., d] tensors; everything else is written in place
        t = grad_y * s if s is not None else grad_y  # gradient of scale * n (grad_y itself is never written)
        tn = torch.mul(z32, r).mul_(t)  # t * n
        grad_scale = tn.sum(rows) if ctx.needs_input_grad[1] else None
        c = torch.matmul(tn, scale).div_(dim).unsqueeze(-1)  # mean over d of t * scale * n: [..., 1]
        v = None
        if s is not None:
            v = tn.mul_(scale)  # t * scale * n = dL/ds * s
            v.addcmul_(v, s, value=-1.0)  # * (1 - s) = dL/d(gate * z)
        grad_z = None
        if ctx.needs_input_grad[0]:
            grad_z = t.mul_(scale) if s is not None else torch.mul(t, scale)  # dL/dn
            # r * (dL/dn - n c) = r dL/dn - z (r^2 c)
            grad_z.mul_(r).addcmul_(z32, c.mul_(r.square()), value=-1.0)
            if v is not None:
                grad_z.addcmul_(v, gate)
            grad_z = grad_z.to(z.dtype)
        grad_gate = v.mul_(z32).sum(rows) if v is not None and ctx.needs_input_grad[2] else None
        if grad_scale is not None:
            grad_scale = grad_scale.to(scale_dtype)
        if grad_gate is not None:
            grad_gate = grad_gate.to(gate_dtype)
        return grad_z, grad_scale, grad_gate, None


def rms_norm_gate(z: Tensor, scale: Tensor, gate: Optional[Tensor] = None, eps: float = 1e-8) -> Tensor:
    """``scale * z / sqrt(mean(z^2) + eps) * sigmoid(gate * z)`` over the last dimension of ``z``
    (no gate factor when ``gate`` is None), computed in float32 (or float64) and returned in ``z``'s dtype.

    ReLA's output normalisation (Zhang et al. 2021, Sec. 3; the authors' code ``modules/rela.py``).
    """
    if torch.is_grad_enabled() and (z.requires_grad or scale.requires_grad
                                    or (gate is not None and gate.requires_grad)):
        return RMSNormGateFunction.apply(z, scale, gate, eps)
    z32 = _at_least_float32(z)
    rows = z32.reshape(-1, z32.size(-1))  # [..., d] -> [rows, d] (a view: z is contiguous in the model)
    kernels = cpu_kernels.usable(rows)
    if kernels is not None:
        # inference on CPU (decoding): one C++ operator, two passes over each row
        y = kernels.rms_norm_gate_rows(rows, scale.to(z32.dtype), None if gate is None else gate.to(z32.dtype), eps)
        return y.view(z32.shape).to(z.dtype)
    # inference elsewhere: torch's rms_norm, then the gate: 4 operations instead of 8
    y = F.rms_norm(z32, (z32.size(-1),), weight=scale.to(z32.dtype), eps=eps)
    if gate is not None:
        y = y.mul_(torch.mul(z32, gate.to(z32.dtype)).sigmoid_())
    return y.to(z.dtype)


def rms_norm_gate_reference(z: Tensor, scale: Tensor, gate: Optional[Tensor] = None, eps: float = 1e-8) -> Tensor:
    """:func:`rms_norm_gate` written plainly (autograd differentiates it): the tests' reference."""
    z32 = _at_least_float32(z)
    out = z32 * torch.rsqrt(z32.pow(2).mean(-1, keepdim=True) + eps) * scale.to(z32.dtype)
    if gate is not None:
        out = out * torch.sigmoid(gate.to(z32.dtype) * z32)
    return out.to(z.dtype)


class AttentionOutputRMSNorm(nn.Module):
    """RMS normalisation of the concatenated heads, as ReLA needs (Zhang et al. 2021, Sec. 3).

    ``z`` is the attention output ``[..., d_model]`` (all heads concatenated),
    ``RMSNorm(z) = z / sqrt(mean(z^2) + eps)``; computed by :func:`rms_norm_gate`.

    * gated (ReLA-g, the authors' code ``modules/rela.py``):
      ``scale * RMSNorm(z) * sigmoid(gate * z)`` with ``scale`` initialised to
      ones and ``gate`` a per-dimension vector drawn like the authors' default
      initialiser (uniform unit scaling: U(-sqrt(3/d), sqrt(3/d))).
    * ReLA-i: ``scale * RMSNorm(z)`` with no gate; the paper stabilises training
      instead by a specialised initialisation of the gain.  We initialise
      ``scale`` from the Xavier-uniform distribution of a d-vector,
      U(-sqrt(3/d), sqrt(3/d)), so that the output starts at the scale
      (RMS ~ 1/sqrt(d)) of a Xavier-initialised projection instead of RMS 1.
      The paper text itself was not available offline to check this against;
      two public re-implementations agree on the sqrt(3/d) bound.  Change
      :meth:`reset_parameters` if your reading of the paper differs.
    """

    def __init__(self, dim: int, gated: bool, eps: float = RELA_RMS_EPS):
        super().__init__()
        self.dim = dim
        self.gated = gated
        self.eps = eps
        self.scale = nn.Parameter(torch.empty(dim))
        self.gate = nn.Parameter(torch.empty(dim)) if gated else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(3.0 / self.dim)
        if self.gated:
            nn.init.ones_(self.scale)
            nn.init.uniform_(self.gate, -bound, bound)
        else:
            nn.init.uniform_(self.scale, -bound, bound)

    def forward(self, z: Tensor) -> Tensor:
        return rms_norm_gate(z, self.scale, self.gate, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, gated={self.gated}, eps={self.eps}"


def padding_additive_mask(padded: Tensor, num_heads: int, dtype: torch.dtype) -> Tensor:
    """Bool key-padding mask [bsz, src] -> additive mask [bsz*heads, 1, src] (0, or -inf at padded
    keys) in fairseq's head folding, broadcast over queries as ``torch.baddbmm``'s input."""
    bsz, src_len = padded.shape
    # [bsz, src] -> [bsz, 1, 1, src] -> [bsz, heads, 1, src] -> [bsz*heads, 1, src]
    return (
        torch.zeros(bsz, 1, 1, src_len, dtype=dtype, device=padded.device)
        .masked_fill_(padded.view(bsz, 1, 1, src_len), float("-inf"))
        .expand(bsz, num_heads, 1, src_len)
        .reshape(bsz * num_heads, 1, src_len)
    )


class SparseMultiheadAttention(MultiheadAttention):
    """fairseq ``MultiheadAttention`` whose score -> weight step is a chosen normalizer.

    Args beyond fairseq's:
        normalizer: one of :data:`fairseq_plugins.normalizers.ATTENTION_VARIANTS`.
        topk: k of top-k attention.
        alpha_init: initial alpha of ``alpha_entmax`` (learned per head, kept in
            (1, 2) as ``1 + sigmoid(alpha_logit)``; Correia et al. 2019).
        alpha_n_iter: maximum root-finding iterations of ``alpha_entmax``.

    Plain softmax without requested weights takes fairseq's own code path
    (which uses torch's fused attention); everything else takes the Python
    path, so weights can be returned per head and recorded.  Without incremental
    state (training, teacher forcing) the module computes its scores itself
    (:meth:`_own_scores`: no masked_fill over the score tensor); with incremental
    state (decoding) it asks fairseq for the masked scores.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *args,
        normalizer: str = "softmax",
        topk: int = 8,
        alpha_init: float = 1.5,
        alpha_n_iter: int = 50,
        **kwargs,
    ):
        if kwargs.get("add_bias_kv") or kwargs.get("add_zero_attn"):
            raise ValueError("SparseMultiheadAttention does not support add_bias_kv / add_zero_attn")
        super().__init__(embed_dim, num_heads, *args, **kwargs)
        self.spec: NormalizerSpec = get_normalizer(normalizer)  # fails early on an unknown name
        self.normalizer = normalizer
        self.topk = topk
        self.alpha_n_iter = alpha_n_iter
        if "alpha" in self.spec.params:
            if not 1.0 < alpha_init < 2.0:
                raise ValueError(f"alpha_init must lie in (1, 2), got {alpha_init}")
            # alpha = 1 + sigmoid(alpha_logit): logit(alpha_init - 1)
            logit = math.log((alpha_init - 1.0) / (2.0 - alpha_init))
            self.alpha_logit = nn.Parameter(torch.full((num_heads,), logit))
        else:
            self.alpha_logit = None
        if self.spec.output_norm not in (None, "gated", "plain"):
            raise ValueError(f"{normalizer}: unknown output norm {self.spec.output_norm!r}")
        self.output_norm: Optional[AttentionOutputRMSNorm] = None
        if self.spec.output_norm is not None:
            self.output_norm = AttentionOutputRMSNorm(embed_dim, gated=self.spec.output_norm == "gated")
        # Without incremental state: scores computed here (see _own_scores); False forces
        # fairseq's code path (tests compare the two).
        self.fused_scores = True
        # Hooks that see (and may replace) the weights of every forward, with their autograd
        # graph, in the order added (:meth:`add_weights_hook`): recording, interpretability
        # tests (uniform or frozen attention, attention losses).
        self.weights_hooks: List[WeightsHook] = []

    @property
    def weights_hook(self) -> Optional[WeightsHook]:
        """The single hook, for code that sets one: assigning replaces every hook (None: removes them)."""
        return self.weights_hooks[0] if len(self.weights_hooks) == 1 else None

    @weights_hook.setter
    def weights_hook(self, hook: Optional[WeightsHook]) -> None:
        self.weights_hooks = [] if hook is None else [hook]

    def add_weights_hook(self, hook: WeightsHook) -> Callable[[], None]:
        """Append ``hook``; returns a function that removes it."""
        self.weights_hooks.append(hook)
        return lambda: self.weights_hooks.remove(hook)

    def _normalizer_params(self, bsz: int) -> Dict[str, object]:
        """The keyword parameters of this variant's normalizer (``spec.params``)."""
        params: Dict[str, object] = {}
        if "k" in self.spec.params:
            params["k"] = self.topk
        if "alpha" in self.spec.params:
            # [heads] -> [bsz*heads, 1, 1], the order of fairseq's head folding
            params["alpha"] = self.alpha.repeat(bsz).view(-1, 1, 1)
        if "n_iter" in self.spec.params:
            params["n_iter"] = self.alpha_n_iter
        return params

    @property
    def alpha(self) -> Optional[Tensor]:
        """Per-head alpha of alpha_entmax, shape [heads]; None for other normalizers."""
        if self.alpha_logit is None:
            return None
        return 1.0 + torch.sigmoid(self.alpha_logit)

    def extra_repr(self) -> str:
        extra = f"normalizer={self.normalizer}"
        if self.normalizer == "topk":
            extra += f", k={self.topk}"
        return extra

    def _masked_scores(self, query, key, value, key_padding_mask, incremental_state, static_kv, attn_mask):
        """fairseq's scores [bsz*heads, tgt, src] (-inf at masked keys) and values [kv_bsz*heads, src, head_dim]."""
        # skip_embed_dim_check makes fairseq's forward skip torch's fused path, which ignores
        # before_softmax
        previous = self.skip_embed_dim_check
        self.skip_embed_dim_check = True
        try:
            return super().forward(
                query, key, value, key_padding_mask, incremental_state, False,
                static_kv, attn_mask, True, False,
            )
        finally:
            self.skip_embed_dim_check = previous

    def _own_scores(self, query, key, value, key_padding_mask, attn_mask):
        """Scores [bsz*heads, tgt, src] (-inf or, for ReLU weights, 0 at masked keys) and values
        [bsz*heads, src, head_dim], with the projections as fairseq computes them but without its
        masked_fill over the score tensor, which costs more than the product itself (``python -m
        benchmarks.rows``, masking table: one training batch of the tiny model). Masks enter the
        product: ReLU weights (ReLA) get padded keys zeroed in ``k`` (score exactly 0, hence
        weight 0 and zero gradient); the other normalizers get -inf at padded keys, and every
        normalizer the additive attention mask (-inf: future positions), through the input of
        ``torch.baddbmm``."""
        tgt_len, bsz, embed_dim = query.size()
        if self.self_attention:
            key = value = query
        elif self.encoder_decoder_attention:
            value = key
        kv_bsz = key.size(1)
        # Projections of 2-D inputs [len*bsz, embed_dim]: their outputs are the products themselves, so
        # the in-place scaling and masking below need no copy. (torch's linear of a 3-D input returns a
        # view of its product; an in-place op on that view makes autograd copy the whole gradient back
        # (CopySlices): about 5 ms of 65 per forward+backward of a 16x60-token encoder attention, d 512,
        # torch profiler.)
        q = self.q_proj(query.reshape(-1, embed_dim))  # [tgt*bsz, dim]
        k = self.k_proj(key.reshape(-1, embed_dim))  # [src*kv_bsz, dim]
        v = self.v_proj(value.reshape(-1, embed_dim))  # [src*kv_bsz, dim]
        q.mul_(self.scaling)  # in place: the projection's backward does not need its output
        additive: Optional[Tensor] = None
        if key_padding_mask is not None:
            padded = key_padding_mask.to(torch.bool)
            if self.spec.relu_weights:
                # [kv_bsz, src] -> [src, kv_bsz] -> [src*kv_bsz, 1], the row order of k, broadcast over its dim
                k.masked_fill_(padded.t().reshape(-1, 1), 0.0)
            else:
                additive = padding_additive_mask(padded, self.num_heads, q.dtype)
        if attn_mask is not None:
            mask = attn_mask.to(q.dtype)  # [tgt, src] (or [bsz*heads, tgt, src])
            additive = mask if additive is None else additive + mask  # [bsz*heads, tgt, src]
        # [len*bsz, dim] -> [len, bsz*heads, head_dim] -> [bsz*heads, len, head_dim]
        q = q.view(tgt_len, bsz * self.num_heads, self.head_dim).transpose(0, 1)
        k = k.view(-1, kv_bsz * self.num_heads, self.head_dim).transpose(0, 1)
        v = v.view(-1, kv_bsz * self.num_heads, self.head_dim).transpose(0, 1)
        if additive is not None:
            scores = torch.baddbmm(additive, q, k.transpose(1, 2))
        else:
            scores = torch.bmm(q, k.transpose(1, 2))
        return scores, v

    def _weights(self, scores: Tensor, bsz: int) -> Tensor:
        """Masked scores [bsz*heads, tgt, src] (-inf = masked) -> float32 weights, same shape,
        through the variant's normalizer and then every weights hook.

        The normalizers take ``-inf`` as the mask, so no mask tensor is built unless a hook
        wants one.
        """
        if scores.dtype not in (torch.float32, torch.float64):
            scores = scores.float()  # as normalize() does: normalizers run in float32
        if self.spec.relu_weights and not self.weights_hooks:
            # ReLU(-inf) = 0 with zero gradient: the mask needs no extra pass.  In place: the
            # scores are a fresh tensor whose producers (bmm, masked_fill) do not need them back.
            weights = scores.relu_()
        else:
            weights = self.spec.function(scores, **self._normalizer_params(bsz))
        if self.weights_hooks:
            mask = torch.isneginf(scores)
            for hook in list(self.weights_hooks):
                replacement = hook(weights, mask)
                if replacement is not None:
                    weights = replacement
        return weights

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor],
        value: Optional[Tensor],
        key_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        need_weights: bool = True,
        static_kv: bool = False,
        attn_mask: Optional[Tensor] = None,
        before_softmax: bool = False,
        need_head_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Same signature and return value as fairseq's ``MultiheadAttention.forward``."""
        need_weights = need_weights or need_head_weights
        passthrough = before_softmax or (self.normalizer == "softmax" and not need_weights and not self.weights_hooks)
        if passthrough:
            return super().forward(
                query, key, value, key_padding_mask, incremental_state, need_weights,
                static_kv, attn_mask, before_softmax, need_head_weights,
            )

        tgt_len, bsz, _ = query.size()
        own_scores = (
            self.fused_scores and incremental_state is None and self.beam_size == 1 and not self.onnx_trace
            and (attn_mask is None or attn_mask.is_floating_point())
            # hooks receive the mask as the -inf scores, which ReLU weights' own scores do not have
            and not (self.spec.relu_weights and self.weights_hooks)
        )
        if own_scores:
            scores, v = self._own_scores(query, key, value, key_padding_mask, attn_mask)
        else:
            scores, v = self._masked_scores(query, key, value, key_padding_mask, incremental_state, static_kv,
                                            attn_mask)
        if own_scores and self.spec.relu_weights:
            probs = scores.relu_()  # in the model's dtype: ReLU is exact there
            weights_float = probs if probs.dtype in (torch.float32, torch.float64) else None
        else:
            weights_float = self._weights(scores, bsz)
            probs = weights_float if weights_float.dtype == v.dtype else weights_float.to(v.dtype)
        src_len = probs.size(-1)
        if weights_float is None and need_weights:
            weights_float = probs.float()
        if self.dropout_module.p > 0:
            probs = self.dropout_module(probs)

        kv_bsz = v.size(0) // self.num_heads
        if kv_bsz != bsz:
            # beamable cross-attention: keys stored once per sentence, queries per beam
            # probs: [kv_bsz, beam, heads, tgt, src] x v: [kv_bsz, heads, src, head_dim]
            attn = torch.einsum(
                "bxhts,bhsd->bxhtd",
                probs.view(kv_bsz, -1, self.num_heads, tgt_len, src_len),
                v.view(kv_bsz, self.num_heads, src_len, self.head_dim),
            ).reshape(bsz * self.num_heads, tgt_len, self.head_dim)
        else:
            attn = torch.bmm(probs, v)  # [bsz*heads, tgt, head_dim]
        # [bsz*heads, tgt, head_dim] -> [tgt, bsz*heads, head_dim] -> [tgt, bsz, embed_dim]
        attn = attn.transpose(0, 1).contiguous().view(tgt_len, bsz, self.embed_dim)
        if self.output_norm is not None:
            attn = self.output_norm(attn)
        attn = self.out_proj(attn)

        returned: Optional[Tensor] = None
        if need_weights:
            # [bsz*heads, tgt, src] -> [heads, bsz, tgt, src]
            returned = weights_float.view(bsz, self.num_heads, tgt_len, src_len).transpose(1, 0)
            if not need_head_weights:
                returned = returned.mean(dim=0)  # [bsz, tgt, src], averaged over heads
        return attn, returned


SUBLAYERS = ("encoder", "decoder", "cross")
"""Attention sublayers: encoder self-attention, decoder self-attention, encoder-decoder attention."""


def attention_modules(model, sublayers: Iterable[str] = SUBLAYERS) -> List[Tuple[str, int, SparseMultiheadAttention]]:
    """``(sublayer, layer index, module)`` of every attention module of a fairseq encoder-decoder
    ``model`` of the ``sparse_transformer`` family, for the chosen ``sublayers``, in model order
    (encoder layers, then per decoder layer its self- and cross-attention): the one enumeration
    the recording API, the analyses and the benchmarks use."""
    chosen = set(sublayers)
    unknown = chosen - set(SUBLAYERS)
    if unknown:
        raise ValueError(f"unknown sublayer(s) {sorted(unknown)}; choose from {SUBLAYERS}")
    found: List[Tuple[str, int, nn.Module]] = []
    if "encoder" in chosen:
        found += [("encoder", i, layer.self_attn) for i, layer in enumerate(model.encoder.layers)]
    for i, layer in enumerate(model.decoder.layers):
        if "decoder" in chosen:
            found.append(("decoder", i, layer.self_attn))
        if "cross" in chosen and getattr(layer, "encoder_attn", None) is not None:
            found.append(("cross", i, layer.encoder_attn))
    for sublayer, _, module in found:
        if not isinstance(module, SparseMultiheadAttention):
            raise TypeError(
                f"{sublayer} attention is {type(module).__name__}, not SparseMultiheadAttention: "
                "a model of the sparse_transformer family (fairseq_plugins) is needed"
            )
    return found
