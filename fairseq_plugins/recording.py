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

from .attention import SUBLAYERS, attention_modules  # noqa: F401  (SUBLAYERS: part of this API)

@dataclass
class AttentionRecord:
    """Attention of one sentence pair; each tensor is [layers, heads, queries, keys], float32."""

    cross: Tensor
    encoder_self: Optional[Tensor] = None
    decoder_self: Optional[Tensor] = None
    src_tokens: Optional[Tensor] = None
    prev_output_tokens: Optional[Tensor] = None


@contextlib.contextmanager
def recording(model, sublayers: Sequence[str] = ("cross",)) -> Iterator[Dict[str, List[List[Tensor]]]]:
    """Context manager: while active, every forward appends per-head weights.

    Yields ``{sublayer: [per-layer list of [bsz, heads, tgt, src] tensors]}``
    (one entry per forward call in each per-layer list).  A weights hook of each module
    (:meth:`SparseMultiheadAttention.add_weights_hook`) does the recording: it sees the weights
    after the hooks added before it.
    """
    modules = attention_modules(model, sublayers)
    store: Dict[str, List[List[Tensor]]] = {s: [] for s in sublayers}
    removers = []
    try:
        for sublayer, _, module in modules:
            calls: List[Tensor] = []
            store[sublayer].append(calls)

            def record(weights: Tensor, mask: Tensor, calls=calls, heads=module.num_heads) -> None:
                # [bsz*heads, tgt, src] -> [bsz, heads, tgt, src]
                calls.append(weights.detach().view(-1, heads, *weights.shape[1:]))

            removers.append(module.add_weights_hook(record))
        yield store
    finally:
        for remove in removers:
            remove()


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
