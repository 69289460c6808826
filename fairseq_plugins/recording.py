"""Record every layer's per-head attention under teacher forcing.

>>> records = record_attention(model, src_tokens, src_lengths, prev_output_tokens,
...                            pad=task.source_dictionary.pad(), include_self=True)
>>> records[0].cross.shape        # [layers, heads, target, source] of sentence 0
>>> records[0].encoder_self.shape # [layers, heads, source, source]

Weights are the normalizer's output before attention dropout, per head, never
averaged, cut to each sentence's real (unpadded) tokens: source includes its
EOS, target rows are the decoder input positions (BOS/EOS first, as fairseq
feeds ``prev_output_tokens``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor

from .attention import SparseMultiheadAttention

SUBLAYERS = ("encoder", "decoder", "cross")


@dataclass
class AttentionRecord:
    """Attention of one sentence pair; each tensor is [layers, heads, queries, keys], float32."""

    cross: Tensor
    encoder_self: Optional[Tensor] = None
    decoder_self: Optional[Tensor] = None
    src_tokens: Optional[Tensor] = None
    prev_output_tokens: Optional[Tensor] = None


def _attention_modules(model, sublayer: str) -> List[SparseMultiheadAttention]:
    """The attention modules of one sublayer kind, in layer order."""
    if sublayer == "encoder":
        modules = [layer.self_attn for layer in model.encoder.layers]
    elif sublayer == "decoder":
        modules = [layer.self_attn for layer in model.decoder.layers]
    else:
        modules = [layer.encoder_attn for layer in model.decoder.layers if layer.encoder_attn is not None]
    for module in modules:
        if not isinstance(module, SparseMultiheadAttention):
            raise TypeError(
                f"{sublayer} attention is {type(module).__name__}, not SparseMultiheadAttention: "
                "record_attention needs a model of the sparse_transformer family"
            )
    return modules


@contextlib.contextmanager
def recording(model, sublayers: Sequence[str] = ("cross",)) -> Iterator[Dict[str, List[List[Tensor]]]]:
    """Context manager: while active, every forward appends per-head weights.

    Yields ``{sublayer: [per-layer list of [bsz, heads, tgt, src] tensors]}``
    (one entry per forward call in each per-layer list).
    """
    unknown = set(sublayers) - set(SUBLAYERS)
    if unknown:
        raise ValueError(f"unknown sublayer(s) {sorted(unknown)}; choose from {SUBLAYERS}")
    modules = {s: _attention_modules(model, s) for s in sublayers}
    store: Dict[str, List[List[Tensor]]] = {s: [] for s in sublayers}
    for sublayer, layer_modules in modules.items():
        for module in layer_modules:
            module.recorded_weights = []
            store[sublayer].append(module.recorded_weights)
    try:
        yield store
    finally:
        for layer_modules in modules.values():
            for module in layer_modules:
                module.recorded_weights = None


@torch.no_grad()
def record_attention(
    model,
    src_tokens: Tensor,
    src_lengths: Tensor,
    prev_output_tokens: Tensor,
    *,
    pad: int,
    include_self: bool = False,
) -> List[AttentionRecord]:
    """Teacher-forced forward of ``model``; per-sentence, per-layer, per-head attention.

    ``src_tokens`` [bsz, src_len] (left- or right-padded), ``prev_output_tokens``
    [bsz, tgt_len] (right-padded), as in a fairseq ``sample['net_input']``.
    The model is run in eval mode and restored to its previous mode.
    """
    sublayers = ("cross", "encoder", "decoder") if include_self else ("cross",)
    was_training = model.training
    model.eval()
    try:
        with recording(model, sublayers) as store:
            model(src_tokens, src_lengths, prev_output_tokens)
    finally:
        model.train(was_training)

    # per sublayer: [layers, bsz, heads, queries, keys]
    stacked = {s: torch.stack([calls[-1] for calls in store[s]]) for s in sublayers}
    src_keep = src_tokens.ne(pad)  # [bsz, src_len]
    tgt_keep = prev_output_tokens.ne(pad)  # [bsz, tgt_len]
    records = []
    for b in range(src_tokens.size(0)):
        s_idx = src_keep[b].nonzero().squeeze(1)
        t_idx = tgt_keep[b].nonzero().squeeze(1)

        def cut(weights: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
            # [layers, heads, queries, keys] restricted to real tokens
            return weights[:, b].index_select(2, rows).index_select(3, cols).contiguous()

        records.append(
            AttentionRecord(
                cross=cut(stacked["cross"], t_idx, s_idx),
                encoder_self=cut(stacked["encoder"], s_idx, s_idx) if include_self else None,
                decoder_self=cut(stacked["decoder"], t_idx, t_idx) if include_self else None,
                src_tokens=src_tokens[b, s_idx],
                prev_output_tokens=prev_output_tokens[b, t_idx],
            )
        )
    return records
