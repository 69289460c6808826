"""Torch side of ``alignment-eval interpret``: teacher forcing, attention hooks, decoding, gradients.

Every function takes a :class:`~alignment_eval.analysis.model_attention.LoadedModel` (or its
``model``) and :class:`~alignment_eval.analysis.model_attention.EncodedPair` lists.  The
decoder input is EOS followed by the target pieces and the predicted tokens are
the target pieces followed by EOS, as in fairseq's teacher forcing; the model is
used in eval mode (no dropout).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from fairseq.data import data_utils
from fairseq.sequence_generator import SequenceGenerator
from torch import Tensor

from fairseq_plugins.attention import attention_modules

from ..analysis.model_attention import EncodedPair, LoadedModel

WeightsHook = Callable[[Tensor, Tensor], Optional[Tensor]]


@dataclass
class TeacherForcedBatch:
    """Collated sentence pairs: left-padded sources, right-padded decoder inputs and targets."""

    src_tokens: Tensor  # [bsz, src_len]
    src_lengths: Tensor  # [bsz]
    prev_output_tokens: Tensor  # [bsz, tgt_len]: EOS + target pieces
    target: Tensor  # [bsz, tgt_len]: target pieces + EOS
    target_mask: Tensor  # bool [bsz, tgt_len], True at real target tokens
    pad: int

    @property
    def source_mask(self) -> Tensor:
        """bool [bsz, src_len], True at real source tokens (EOS included)."""
        return self.src_tokens.ne(self.pad)


def collate(loaded: LoadedModel, pairs: Sequence[EncodedPair]) -> TeacherForcedBatch:
    """Batch ``pairs`` like fairseq's language-pair collater (left-padded source)."""
    pad, eos = loaded.source_dictionary.pad(), loaded.source_dictionary.eos()
    src_tokens = data_utils.collate_tokens([p.source_ids for p in pairs], pad, eos, left_pad=True)
    decoder_inputs = [torch.cat([p.target_ids.new_tensor([eos]), p.target_ids]) for p in pairs]
    targets = [torch.cat([p.target_ids, p.target_ids.new_tensor([eos])]) for p in pairs]
    prev_output_tokens = data_utils.collate_tokens(decoder_inputs, pad, eos, left_pad=False)
    target = data_utils.collate_tokens(targets, pad, eos, left_pad=False)
    return TeacherForcedBatch(
        src_tokens=src_tokens,
        src_lengths=torch.tensor([len(p.source_ids) for p in pairs]),
        prev_output_tokens=prev_output_tokens,
        target=target,
        target_mask=target.ne(pad),
        pad=pad,
    )


def batches(loaded: LoadedModel, pairs: Sequence[EncodedPair], batch_size: int) -> Iterator[TeacherForcedBatch]:
    for start in range(0, len(pairs), batch_size):
        yield collate(loaded, pairs[start:start + batch_size])


def output_log_probs(model, batch: TeacherForcedBatch, token_embeddings: Optional[Tensor] = None) -> Tensor:
    """Teacher-forced log-probabilities [bsz, tgt_len, vocab] (float32)."""
    encoder_out = model.encoder(batch.src_tokens, src_lengths=batch.src_lengths, token_embeddings=token_embeddings)
    decoder_out = model.decoder(batch.prev_output_tokens, encoder_out=encoder_out)
    return model.get_normalized_probs(decoder_out, log_probs=True).float()


def target_log_probs(log_probs: Tensor, batch: TeacherForcedBatch) -> Tensor:
    """log p(reference token) [bsz, tgt_len]; 0 at padding."""
    picked = log_probs.gather(-1, batch.target.unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(~batch.target_mask, 0.0)


def cross_attention_modules(model) -> List:
    """The decoder's cross-attention modules (SparseMultiheadAttention), in layer order."""
    return [module for _, _, module in attention_modules(model, ("cross",))]


@contextlib.contextmanager
def cross_attention_hook(model, hook: WeightsHook, layers: Optional[Sequence[int]] = None) -> Iterator[None]:
    """Add ``hook`` to the weights hooks of the cross-attention of ``layers`` (0-based; None = all),
    after any hook already there (e.g. a recording), for the duration of the context."""
    modules = cross_attention_modules(model)
    chosen = range(len(modules)) if layers is None else layers
    removers = []
    try:
        for index in chosen:
            removers.append(modules[index].add_weights_hook(hook))
        yield
    finally:
        for remove in removers:
            remove()


def uniform_weights(weights: Tensor, mask: Tensor) -> Tensor:
    """Uniform attention over the unmasked keys of every query (Wiegreffe & Pinter 2019, Sec. 3.1).

    Each row gets 1/n on its n visible keys (also for ReLA, whose rows are not
    normalised: the uniform distribution is the baseline), 0 on masked keys.
    """
    visible = (~mask).to(weights.dtype)
    return visible / visible.sum(dim=-1, keepdim=True).clamp(min=1.0)


@contextlib.contextmanager
def captured_cross_attention(model, layers: Optional[Sequence[int]] = None) -> Iterator[Dict[int, List[Tensor]]]:
    """Collect the cross-attention weights *with their autograd graph*, per layer and forward call.

    Yields ``{layer (0-based): [weights [bsz, heads, tgt, src], ...]}``.
    """
    modules = cross_attention_modules(model)
    chosen = list(range(len(modules))) if layers is None else list(layers)
    store: Dict[int, List[Tensor]] = {index: [] for index in chosen}
    hooks = []
    for index in chosen:
        module = modules[index]

        def keep(weights: Tensor, mask: Tensor, _index: int = index, _heads: int = module.num_heads) -> None:
            bsz = weights.size(0) // _heads
            store[_index].append(weights.view(bsz, _heads, weights.size(1), weights.size(2)))
            return None

        hooks.append(cross_attention_hook(model, keep, [index]))
    with contextlib.ExitStack() as stack:
        for hook in hooks:
            stack.enter_context(hook)
        yield store


def translate(
    loaded: LoadedModel,
    pairs: Sequence[EncodedPair],
    *,
    beam: int = 1,
    batch_size: int = 32,
    max_len_a: float = 2.0,
    max_len_b: int = 10,
) -> List[str]:
    """Greedy (beam 1) or beam-search translations, detokenised with the target SentencePiece model if any."""
    generator = SequenceGenerator(
        [loaded.model], loaded.target_dictionary, beam_size=beam, max_len_a=max_len_a, max_len_b=max_len_b,
    )
    hypotheses: List[str] = []
    for batch in batches(loaded, pairs, batch_size):
        sample = {"net_input": {"src_tokens": batch.src_tokens, "src_lengths": batch.src_lengths}}
        with torch.no_grad():
            outputs = generator.generate([loaded.model], sample)
        for best in (output[0] for output in outputs):
            pieces = loaded.target_dictionary.string(best["tokens"])
            if loaded.target_spm is not None:
                hypotheses.append(loaded.target_spm.decode(pieces.split()))
            else:
                hypotheses.append(pieces)
    return hypotheses


def sentence_copies(pair: EncodedPair, pad: int, sources: Tensor) -> TeacherForcedBatch:
    """One pair's decoder side under each of ``sources`` [copies, src_len] (same length, no padding)."""
    eos = int(pair.source_ids[-1])
    copies = sources.size(0)
    prev = torch.cat([pair.target_ids.new_tensor([eos]), pair.target_ids])
    target = torch.cat([pair.target_ids, pair.target_ids.new_tensor([eos])])
    return TeacherForcedBatch(
        src_tokens=sources,
        src_lengths=torch.full((copies,), sources.size(1), dtype=torch.long),
        prev_output_tokens=prev.unsqueeze(0).expand(copies, -1).contiguous(),
        target=target.unsqueeze(0).expand(copies, -1).contiguous(),
        target_mask=torch.ones(copies, target.numel(), dtype=torch.bool),
        pad=pad,
    )


def identical_copies(pair: EncodedPair, pad: int, copies: int) -> TeacherForcedBatch:
    """``copies`` identical rows of one pair."""
    return sentence_copies(pair, pad, pair.source_ids.unsqueeze(0).expand(copies, -1).contiguous())


def gradient_times_input(model, pair: EncodedPair, pad: int, *, chunk: int = 64) -> Tensor:
    """Source-token importance for every predicted token by gradient x input (Jain & Wallace 2019, Sec. 4.1).

    importance[t, j] = | sum_d  d log p(y_t) / d e_j,d  *  e_j,d |, with e_j the
    token embedding of source position j (before scaling and positions).
    Returns [predicted tokens (target pieces + EOS), source positions (+ EOS)].
    One backward pass per ``chunk`` predicted tokens (each copy of the sentence
    back-propagates the log-probability of its own token).
    """
    n_predicted = len(pair.target_ids) + 1
    rows: List[Tensor] = []
    for start in range(0, n_predicted, chunk):
        steps = torch.arange(start, min(start + chunk, n_predicted))
        batch = identical_copies(pair, pad, len(steps))
        embeddings = model.encoder.embed_tokens(batch.src_tokens).detach().requires_grad_(True)
        with torch.enable_grad():
            log_probs = output_log_probs(model, batch, token_embeddings=embeddings)
            chosen = log_probs[torch.arange(len(steps)), steps, batch.target[0, steps]]
            (gradient,) = torch.autograd.grad(chosen.sum(), embeddings)
        rows.append((gradient * embeddings.detach()).sum(dim=-1).abs())
    return torch.cat(rows).float()


def leave_one_out(model, pair: EncodedPair, pad: int, unk: int, *, mode: str = "unk", chunk: int = 64) -> Tensor:
    """|change of log p(y_t)| when source word j is replaced by <unk> (``mode='unk'``) or dropped (``'drop'``).

    Jain & Wallace 2019, Sec. 4.1.  Returns [predicted tokens, source words]
    (the source EOS is not left out).
    """
    if mode not in ("unk", "drop"):
        raise ValueError(f"leave-one-out mode must be 'unk' or 'drop', not {mode!r}")
    with torch.no_grad():
        full = identical_copies(pair, pad, 1)
        reference = target_log_probs(output_log_probs(model, full), full)[0]  # [T]
        n_words = len(pair.source_ids) - 1
        variants = []
        for j in range(n_words):
            if mode == "unk":
                variant = pair.source_ids.clone()
                variant[j] = unk
            else:
                variant = torch.cat([pair.source_ids[:j], pair.source_ids[j + 1:]])
            variants.append(variant)
        changes = []
        for start in range(0, n_words, chunk):
            group = variants[start:start + chunk]
            batch = sentence_copies(pair, pad, torch.stack(group))
            changed = target_log_probs(output_log_probs(model, batch), batch)  # [len(group), T]
            changes.append((reference.unsqueeze(0) - changed).abs())
    if not changes:
        return torch.zeros(len(pair.target_ids) + 1, 0)
    return torch.cat(changes).transpose(0, 1).float()


def encoder_attribution(
    model, pair: EncodedPair, *, projections: int = 64, seed: int = 0, chunk: int = 256,
) -> Tensor:
    """Gradient attribution of every encoder layer's outputs to the input tokens (Brunner et al. 2020).

    attribution[l, i, j] = || d h_l[i] / d e_j ||_F, the Frobenius norm of the
    Jacobian of encoder layer l's output at position i with respect to the token
    embedding at position j.  With ``projections`` >= d_model it is exact (one
    backward row per output dimension); otherwise it is estimated with that many
    Rademacher vectors v (E ||v^T J||^2 = ||J||_F^2), drawn with ``seed``.
    Returns [encoder layers, positions, positions] (positions include the EOS).
    """
    n_positions = len(pair.source_ids)
    layers = len(model.encoder.layers)
    dim = model.encoder.embed_tokens.embedding_dim
    if projections >= dim:
        vectors = torch.eye(dim)
    else:
        generator = torch.Generator().manual_seed(seed)
        vectors = torch.randint(0, 2, (projections, dim), generator=generator).float() * 2.0 - 1.0
    n_vectors = vectors.size(0)
    # one copy of the sentence per (layer, position, vector)
    grid = torch.cartesian_prod(torch.arange(layers), torch.arange(n_positions), torch.arange(n_vectors))
    squared = torch.zeros(layers, n_positions, n_positions)
    for start in range(0, len(grid), chunk):
        part = grid[start:start + chunk]
        copies = len(part)
        src = pair.source_ids.unsqueeze(0).expand(copies, -1).contiguous()
        lengths = torch.full((copies,), n_positions, dtype=torch.long)
        embeddings = model.encoder.embed_tokens(src).detach().requires_grad_(True)
        with torch.enable_grad():
            out = model.encoder(src, src_lengths=lengths, return_all_hiddens=True, token_embeddings=embeddings)
            states = torch.stack(out["encoder_states"][1:])  # [layers, positions, copies, dim]
            chosen = states[part[:, 0], part[:, 1], torch.arange(copies)]  # [copies, dim]
            (gradient,) = torch.autograd.grad((chosen * vectors[part[:, 2]]).sum(), embeddings)
        norms = gradient.pow(2).sum(dim=-1)  # [copies, positions j]
        squared.index_put_((part[:, 0], part[:, 1]), norms, accumulate=True)
    return (squared / n_vectors).sqrt()
