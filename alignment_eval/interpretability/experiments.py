"""The five interpretability tests of ``alignment-eval interpret``; each returns a JSON-ready dict.

* :func:`uniform_attention_test`: Wiegreffe & Pinter 2019, Sec. 3.1 (uniform-weights baseline).
* :func:`seeds_test`: Wiegreffe & Pinter 2019, Sec. 3.2 (variance across random seeds).
* :func:`adversarial_test`: Wiegreffe & Pinter 2019, Sec. 4 (model-consistent adversarial attention).
* :func:`importance_test`: Jain & Wallace 2019, Sec. 4.1 (attention vs. feature importance, Kendall tau).
* :func:`coindex_test`: Meister et al. 2021, Sec. 4-5 (co-indexed representations; sparse support vs.
  influential inputs).

Source positions compared with importance (tests 4 and 5 ii) are the source words:
the source EOS is left out, since leaving it out of the input is not defined and
attention often parks on it; rows whose whole weight is on it are counted as
``other_keys_only_rows``.  Test 2 and 3 compare full attention rows, EOS included.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from sacrebleu.metrics import BLEU
from scipy.stats import spearmanr

from fairseq_plugins.recording import recording

from ..alignments.errors import AlignmentInputError
from ..analysis.model_attention import EncodedPair, LoadedModel, record_pairs
from .measures import (
    ATTENTION_MASS,
    KL_SMOOTHING,
    RankCorrelation,
    SupportOverlap,
    coindexed_shares,
    describe,
    head_average,
    js_divergence,
    normalise_rows,
    total_variation,
)
from .model import (
    batches,
    captured_cross_attention,
    cross_attention_hook,
    cross_attention_modules,
    encoder_attribution,
    gradient_times_input,
    leave_one_out,
    output_log_probs,
    target_log_probs,
    translate,
    uniform_weights,
)

#: Output total-variation bins of the seeds test: (low, high) with high exclusive except the last.
TVD_BINS = ((0.0, 0.1), (0.1, 0.5), (0.5, 1.0))


def cross_normalizer(loaded: LoadedModel) -> str:
    return cross_attention_modules(loaded.model)[0].normalizer


# --- 1. uniform attention ---------------------------------------------------------------------


def uniform_attention_test(
    loaded: LoadedModel,
    encoded: Sequence[EncodedPair],
    references: Sequence[str],
    *,
    beam: int = 1,
    batch_size: int = 32,
) -> Dict[str, Any]:
    """Replace the cross-attention of each layer, then of all layers, by uniform weights.

    Wiegreffe & Pinter 2019 (Sec. 3.1): if uniform weights hardly change the
    output, the learned attention is not needed to explain it.  Reports per
    condition the teacher-forced NLL per token (nats), the mean total variation
    between its output distributions and the unmodified model's, and sacreBLEU
    of greedy (``beam`` 1) or beam-search output against ``references``.
    """
    model = loaded.model.eval()
    layers = len(cross_attention_modules(model))
    conditions: List[tuple] = [("none", None)] + [(f"layer{l + 1}", [l]) for l in range(layers)]
    conditions.append(("all", list(range(layers))))
    nll = {name: 0.0 for name, _ in conditions}
    tvd = {name: 0.0 for name, _ in conditions}
    tokens = 0
    with torch.no_grad():
        for batch in batches(loaded, encoded, batch_size):
            base = output_log_probs(model, batch)
            mask = batch.target_mask
            tokens += int(mask.sum())
            for name, chosen in conditions:
                if chosen is None:
                    log_probs = base
                else:
                    with cross_attention_hook(model, uniform_weights, chosen):
                        log_probs = output_log_probs(model, batch)
                nll[name] -= float(target_log_probs(log_probs, batch).sum())
                change = 0.5 * (log_probs.exp() - base.exp()).abs().sum(-1)
                tvd[name] += float(change[mask].sum())
    bleu = BLEU()
    base_hypotheses: List[str] = []
    rows = []
    for name, chosen in conditions:
        if chosen is None:
            hypotheses = translate(loaded, encoded, beam=beam, batch_size=batch_size)
            base_hypotheses = hypotheses
        else:
            with cross_attention_hook(model, uniform_weights, chosen):
                hypotheses = translate(loaded, encoded, beam=beam, batch_size=batch_size)
        score = bleu.corpus_score(hypotheses, [list(references)]).score
        rows.append({
            "condition": name,
            "layers": [l + 1 for l in chosen] if chosen is not None else [],
            "nll": nll[name] / tokens,
            "output_tvd_mean": tvd[name] / tokens,
            "bleu": score,
            "changed_hypotheses": sum(h != b for h, b in zip(hypotheses, base_hypotheses)),
        })
    for row in rows:
        row["delta_nll"] = row["nll"] - rows[0]["nll"]
        row["delta_bleu"] = row["bleu"] - rows[0]["bleu"]
    return {
        "test": "uniform",
        "paper": "Wiegreffe & Pinter 2019, Sec. 3.1",
        "decoding": "greedy" if beam == 1 else f"beam {beam}",
        "tokens": tokens,
        "bleu_signature": str(bleu.get_signature()),
        "conditions": rows,
    }


# --- 2. seeds -----------------------------------------------------------------------------------


def _check_same_setup(models: Sequence[LoadedModel]) -> None:
    first = models[0]
    layers = len(cross_attention_modules(first.model))
    for other in models[1:]:
        for side in ("source_dictionary", "target_dictionary"):
            if getattr(other, side).symbols != getattr(first, side).symbols:
                raise AlignmentInputError(
                    other.checkpoint, None,
                    f"its {side.replace('_', ' ')} differs from {first.checkpoint}'s: seeds must share the vocabulary",
                )
        if len(cross_attention_modules(other.model)) != layers:
            raise AlignmentInputError(other.checkpoint, None, f"has a different number of decoder layers than {first.checkpoint}")


def _teacher_forced_with_attention(model, batch) -> tuple:
    """(output probabilities [bsz, T, V], cross-attention [layers, bsz, heads, T, S]) without gradients."""
    with torch.no_grad(), recording(model, ("cross",)) as store:
        probs = output_log_probs(model, batch).exp()
    return probs, torch.stack([calls[-1] for calls in store["cross"]])


def seeds_test(
    models: Sequence[LoadedModel],
    encoded: Sequence[EncodedPair],
    *,
    batch_size: int = 32,
) -> Dict[str, Any]:
    """Relate attention divergence to output divergence between models trained with different seeds.

    Wiegreffe & Pinter 2019 (Sec. 3.2).  Per predicted token and pair of models:
    attention JSD = mean over decoder layers of the JS divergence between the two
    models' head averages (full source rows, EOS included; layers where either
    row is null are left out, a token with no usable layer is a ``null_rows``
    token); output JSD and TVD between the two output distributions.  Heads are
    averaged before comparing because head h of one seed has no counterpart in
    another.  ``points`` (for the scatter plot) holds every token's triple.
    """
    if len(models) < 2:
        raise AlignmentInputError("--checkpoints", None, f"the seeds test needs at least 2 checkpoints, got {len(models)}")
    _check_same_setup(models)
    pairs_of_models = list(itertools.combinations(range(len(models)), 2))
    per_pair: Dict[tuple, Dict[str, list]] = {
        pair: {"attention_js": [], "output_js": [], "output_tvd": [], "attention_js_layers": []} for pair in pairs_of_models
    }
    null_tokens = {pair: 0 for pair in pairs_of_models}
    for batch in batches(models[0], encoded, batch_size):
        outputs = [_teacher_forced_with_attention(loaded.model.eval(), batch) for loaded in models]
        source_mask = batch.source_mask.numpy()
        target_mask = batch.target_mask.numpy()
        for a, b in pairs_of_models:
            probs_a, attention_a = (x.numpy() for x in outputs[a])
            probs_b, attention_b = (x.numpy() for x in outputs[b])
            for s in range(source_mask.shape[0]):
                rows = target_mask[s]
                keys = source_mask[s]
                p_a, p_b = probs_a[s][rows], probs_b[s][rows]
                per_pair[(a, b)]["output_js"].extend(js_divergence(p_a, p_b).tolist())
                per_pair[(a, b)]["output_tvd"].extend(total_variation(p_a, p_b).tolist())
                layer_js = []
                usable = []
                for layer in range(attention_a.shape[0]):
                    mix_a, null_a = head_average(attention_a[layer, s][:, rows][:, :, keys])
                    mix_b, null_b = head_average(attention_b[layer, s][:, rows][:, :, keys])
                    layer_js.append(js_divergence(mix_a, mix_b))
                    usable.append(~null_a & ~null_b)
                layer_js_array, usable_array = np.stack(layer_js), np.stack(usable)  # [layers, tokens]
                count = usable_array.sum(axis=0)
                mean_js = np.where(count > 0, (layer_js_array * usable_array).sum(axis=0) / np.maximum(count, 1), np.nan)
                null_tokens[(a, b)] += int((count == 0).sum())
                per_pair[(a, b)]["attention_js"].extend(mean_js.tolist())
                per_pair[(a, b)]["attention_js_layers"].extend(np.where(usable_array, layer_js_array, np.nan).T.tolist())
    results = []
    points = []
    for (a, b), values in per_pair.items():
        attention_js = np.asarray(values["attention_js"])
        output_js = np.asarray(values["output_js"])
        output_tvd = np.asarray(values["output_tvd"])
        results.append({
            "checkpoints": [models[a].checkpoint, models[b].checkpoint],
            "same_checkpoint": models[a].checkpoint == models[b].checkpoint,
            **_relate(attention_js, output_js, output_tvd),
            "null_rows": null_tokens[(a, b)],
            "attention_js_per_layer": [
                describe(column[~np.isnan(column)])["mean"]
                for column in np.asarray(values["attention_js_layers"]).reshape(len(attention_js), -1).T
            ],
        })
        points.append({"pair": f"{a + 1}-{b + 1}", "attention_js": attention_js.tolist(),
                       "output_js": output_js.tolist(), "output_tvd": output_tvd.tolist()})
    all_attention = np.concatenate([np.asarray(p["attention_js"]) for p in points])
    all_js = np.concatenate([np.asarray(p["output_js"]) for p in points])
    all_tvd = np.concatenate([np.asarray(p["output_tvd"]) for p in points])
    return {
        "test": "seeds",
        "paper": "Wiegreffe & Pinter 2019, Sec. 3.2",
        "checkpoints": [m.checkpoint for m in models],
        "pairs": results,
        "overall": {**_relate(all_attention, all_js, all_tvd), "null_rows": sum(null_tokens.values())},
        "points": points,
    }


def _relate(attention_js: np.ndarray, output_js: np.ndarray, output_tvd: np.ndarray) -> Dict[str, Any]:
    """Summaries of per-token attention JSD (NaN = null) against output JSD and TVD."""
    defined = ~np.isnan(attention_js)
    correlation = None
    x, y = attention_js[defined], output_tvd[defined]
    if x.size >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
        correlation = float(spearmanr(x, y).statistic)
    bins = []
    for low, high in TVD_BINS:
        inside = defined & (output_tvd >= low) & ((output_tvd < high) | (high == TVD_BINS[-1][1]))
        bins.append({"output_tvd": [low, high], "tokens": int(inside.sum()),
                     "attention_js_mean": describe(attention_js[inside])["mean"]})
    return {
        "tokens": int(attention_js.size),
        "attention_js": describe(attention_js[defined]),
        "output_js": describe(output_js),
        "output_tvd": describe(output_tvd),
        "spearman_attention_js_vs_output_tvd": correlation,
        "attention_js_by_output_tvd": bins,
    }


# --- 3. adversarial attention -------------------------------------------------------------------


def _attention_distributions(weights: torch.Tensor) -> tuple:
    """[..., keys] -> (row-normalised weights, non-null mask [...]); differentiable."""
    totals = weights.sum(dim=-1)
    live = totals > 0
    return weights / totals.clamp_min(torch.finfo(weights.dtype).tiny).unsqueeze(-1), live


def _smoothed(p: torch.Tensor, keys: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mix each row with the uniform distribution over its visible keys (``keys`` bool [..., S])."""
    visible = keys.to(p.dtype)
    n = visible.sum(-1, keepdim=True).clamp_min(1.0)
    return ((1.0 - smoothing) * p + smoothing / n) * visible


def attention_kl_terms(adversary: torch.Tensor, base: torch.Tensor, keys: torch.Tensor, queries: torch.Tensor,
                       smoothing: float = KL_SMOOTHING) -> tuple:
    """Per-row KL(adversary || base) of smoothed attention rows, and which rows count.

    ``adversary``/``base`` [bsz, heads, T, S]; ``keys`` bool [bsz, S]; ``queries`` bool [bsz, T].
    Rows null in either model do not count (KL undefined).
    """
    p, live_p = _attention_distributions(adversary)
    q, live_q = _attention_distributions(base)
    visible = keys[:, None, None, :].expand_as(p)
    p_s, q_s = _smoothed(p, visible, smoothing), _smoothed(q, visible, smoothing)
    safe_p, safe_q = p_s.masked_fill(~visible, 1.0), q_s.masked_fill(~visible, 1.0)
    kl = (p_s * (safe_p.log() - safe_q.log())).sum(-1)
    counted = live_p & live_q & queries[:, None, :]
    return kl, counted


def _output_divergence(adversary_log_probs, base_log_probs, kind: str) -> torch.Tensor:
    """Per-token TVD, or KL(base || adversary), between output distributions [bsz, T]."""
    if kind == "tvd":
        return 0.5 * (adversary_log_probs.exp() - base_log_probs.exp()).abs().sum(-1)
    return (base_log_probs.exp() * (base_log_probs - adversary_log_probs)).sum(-1)


def adversarial_test(
    loaded: LoadedModel,
    encoded: Sequence[EncodedPair],
    *,
    lambdas: Sequence[float] = (0.01, 0.1, 1.0),
    steps: int = 200,
    learning_rate: float = 5e-4,
    layer: Optional[int] = None,
    output_divergence: str = "tvd",
    batch_size: int = 16,
    seed: int = 0,
    smoothing: float = KL_SMOOTHING,
) -> Dict[str, Any]:
    """Fine-tune copies of the model so that its attention moves away while its outputs stay.

    Wiegreffe & Pinter 2019 (Sec. 4): loss = D(output_adv, output_base) - lambda *
    KL(attention_adv || attention_base), D = TVD (or KL(base || adv)), attention =
    cross-attention of ``layer`` (0-based; None = every layer), every head, rows
    smoothed with the uniform distribution (weight ``smoothing``) so that the KL of
    sparse rows stays finite.  Each lambda starts from the same copy, seed and batch
    order (Adam, eval mode: no dropout), so runs are deterministic.  Reports, on
    ``encoded``, how far attention moved (mean JSD and KL per row) at what output
    cost (mean and max TVD per token, change of argmax predictions, NLL).
    """
    if output_divergence not in ("tvd", "kl"):
        raise ValueError(f"output divergence must be 'tvd' or 'kl', not {output_divergence!r}")
    base = loaded.model.eval()
    n_layers = len(cross_attention_modules(base))
    if layer is not None and not 0 <= layer < n_layers:
        raise AlignmentInputError("--layer", None, f"layer {layer + 1} does not exist (the model has {n_layers} decoder layers)")
    layers = list(range(n_layers)) if layer is None else [layer]
    fixed = list(batches(loaded, encoded, batch_size))
    references = []
    for batch in fixed:
        with torch.no_grad(), captured_cross_attention(base, layers) as store:
            log_probs = output_log_probs(base, batch)
        references.append((log_probs, [store[l][-1].detach() for l in layers]))
    base_nll = _nll(base, fixed)
    order = np.random.default_rng(seed).permutation(np.resize(np.arange(len(fixed)), max(steps, 1)))[:steps]
    runs = []
    for strength in lambdas:
        torch.manual_seed(seed)
        adversary = copy.deepcopy(base).eval()
        for parameter in adversary.parameters():
            parameter.requires_grad_(True)
        optimizer = torch.optim.Adam(adversary.parameters(), lr=learning_rate)
        losses = []
        for index in order:
            batch, (base_log_probs, base_attention) = fixed[index], references[index]
            with torch.enable_grad(), captured_cross_attention(adversary, layers) as store:
                log_probs = output_log_probs(adversary, batch)
                output_term = _output_divergence(log_probs, base_log_probs, output_divergence)[batch.target_mask].mean()
                kl_sum, kl_rows = 0.0, 0
                for l, reference in zip(layers, base_attention):
                    kl, counted = attention_kl_terms(store[l][-1], reference, batch.source_mask, batch.target_mask, smoothing)
                    kl_sum = kl_sum + kl[counted].sum()
                    kl_rows += int(counted.sum())
                attention_term = kl_sum / max(kl_rows, 1)
                loss = output_term - strength * attention_term
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            losses.append(float(loss.detach()))
        runs.append({"lambda": strength, **_adversary_effect(adversary, fixed, references, layers, smoothing),
                     "nll": _nll(adversary, fixed), "base_nll": base_nll,
                     "final_loss": losses[-1] if losses else None})
    return {
        "test": "adversarial",
        "paper": "Wiegreffe & Pinter 2019, Sec. 4",
        "layers": [l + 1 for l in layers],
        "steps": steps,
        "learning_rate": learning_rate,
        "output_divergence": output_divergence,
        "kl_smoothing": smoothing,
        "seed": seed,
        "runs": runs,
    }


def _nll(model, fixed) -> float:
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in fixed:
            total -= float(target_log_probs(output_log_probs(model, batch), batch).sum())
            tokens += int(batch.target_mask.sum())
    return total / tokens


def _adversary_effect(adversary, fixed, references, layers, smoothing) -> Dict[str, Any]:
    tvd, changed, js, kl = [], 0, [], []
    null_rows = 0
    for batch, (base_log_probs, base_attention) in zip(fixed, references):
        with torch.no_grad(), captured_cross_attention(adversary, layers) as store:
            log_probs = output_log_probs(adversary, batch)
        mask = batch.target_mask
        tvd.extend(_output_divergence(log_probs, base_log_probs, "tvd")[mask].tolist())
        changed += int((log_probs.argmax(-1) != base_log_probs.argmax(-1))[mask].sum())
        for l, reference in zip(layers, base_attention):
            row_kl, counted = attention_kl_terms(store[l][-1], reference, batch.source_mask, mask, smoothing)
            kl.extend(row_kl[counted].tolist())
            p, _ = normalise_rows(store[l][-1].numpy())
            q, _ = normalise_rows(reference.numpy())
            js.extend(js_divergence(p, q)[counted.numpy()].tolist())
            null_rows += int((~counted & mask[:, None, :]).sum())
    return {
        "attention_js": describe(js),
        "attention_kl": describe(kl),
        "output_tvd": describe(tvd),
        "prediction_changed_rate": changed / len(tvd) if tvd else None,
        "null_rows": null_rows,
    }


# --- 4. attention vs. feature importance --------------------------------------------------------


@dataclass
class SentenceImportance:
    """Teacher-forced attention and source-token importance of one sentence pair.

    ``attention`` [layers, heads, predicted tokens, source positions (+ EOS)];
    ``gradient`` [predicted tokens, source positions (+ EOS)];
    ``leave_one_out`` [predicted tokens, source words] or None.
    """

    attention: np.ndarray
    gradient: np.ndarray
    leave_one_out: Optional[np.ndarray] = None


def sentence_importances(
    loaded: LoadedModel,
    encoded: Sequence[EncodedPair],
    *,
    leave_one_out_mode: Optional[str] = "unk",
    batch_size: int = 32,
) -> List[SentenceImportance]:
    """Attention, gradient x input and (unless ``leave_one_out_mode`` is None) leave-one-out per sentence."""
    model = loaded.model.eval()
    pad, unk = loaded.source_dictionary.pad(), loaded.source_dictionary.unk()
    results = []
    for index, record in record_pairs(loaded, encoded, batch_size=batch_size):
        pair = encoded[index]
        loo = None
        if leave_one_out_mode is not None:
            loo = leave_one_out(model, pair, pad, unk, mode=leave_one_out_mode).numpy()
        results.append(SentenceImportance(
            attention=record.cross.numpy(),
            gradient=gradient_times_input(model, pair, pad).numpy(),
            leave_one_out=loo,
        ))
    return results


def _word_rows(attention: np.ndarray, head: Optional[int]) -> tuple:
    """Attention of one layer [heads, T, S+1] -> (word rows [T, S], whether each row has weight on the EOS only).

    ``head`` None = head average of the row-normalised heads that attend to some word.
    """
    words = attention[..., :-1]
    on_eos = attention[..., -1] > 0
    if head is None:
        mixture, null = head_average(words)
        elsewhere = null & on_eos.any(axis=0)
        return mixture, elsewhere
    rows = words[head]
    return rows, ~rows.any(axis=-1) & on_eos[head]


def importance_test(importances: Sequence[SentenceImportance]) -> Dict[str, Any]:
    """Kendall tau between cross-attention and source-word importance, per predicted token.

    Jain & Wallace 2019 (Sec. 4.1): for every decoder layer, for the head average
    and every head, tau-b between the attention row of a predicted token over the
    source words and (a) gradient x input, (b) leave-one-out importance of those
    words.  Also tau between the two importance measures (how much they agree
    with each other).  Undefined taus (null, EOS-only or constant rows) are
    counted apart, see :class:`~alignment_eval.interpretability.measures.RankCorrelation`.
    ``taus`` keeps the head-average taus per layer for the histogram.
    """
    if not importances:
        raise ValueError("no sentences")
    n_layers, n_heads = importances[0].attention.shape[:2]
    heads: List[Optional[int]] = [None, *range(n_heads)]
    methods = ["gradient"] + (["leave_one_out"] if importances[0].leave_one_out is not None else [])
    correlations = {(l, h, m): RankCorrelation() for l in range(n_layers) for h in heads for m in methods}
    agreement = RankCorrelation()
    for sentence in importances:
        measures = {"gradient": sentence.gradient[:, :-1], "leave_one_out": sentence.leave_one_out}
        if sentence.leave_one_out is not None:
            for t in range(sentence.gradient.shape[0]):
                agreement.add(measures["gradient"][t], sentence.leave_one_out[t])
        for l in range(n_layers):
            for h in heads:
                rows, elsewhere = _word_rows(sentence.attention[l], h)
                for m in methods:
                    for t in range(rows.shape[0]):
                        correlations[(l, h, m)].add(rows[t], measures[m][t], attends_elsewhere=bool(elsewhere[t]))
    layers = []
    for l in range(n_layers):
        layers.append({
            "layer": l + 1,
            "heads": {("avg" if h is None else str(h + 1)): {m: correlations[(l, h, m)].summary() for m in methods}
                      for h in heads},
        })
    return {
        "test": "importance",
        "paper": "Jain & Wallace 2019, Sec. 4.1",
        "sentences": len(importances),
        "methods": methods,
        "layers": layers,
        "gradient_vs_leave_one_out": agreement.summary() if "leave_one_out" in methods else None,
        "taus": {m: [correlations[(l, None, m)].taus for l in range(n_layers)] for m in methods},
    }


# --- 5. co-indexed representations and sparse support ------------------------------------------


def coindex_test(
    loaded: LoadedModel,
    encoded: Sequence[EncodedPair],
    importances: Sequence[SentenceImportance],
    *,
    projections: int = 64,
    seed: int = 0,
    attention_mass: float = ATTENTION_MASS,
) -> Dict[str, Any]:
    """Meister et al. 2021: are attended representations about their co-indexed inputs, and does
    sparse attention pick out a sparse set of influential inputs?

    (i) For every encoder layer and source position i (EOS included), the share of
    the gradient attribution of h_l[i] that falls on input token i
    (:func:`~alignment_eval.interpretability.model.encoder_attribution`), against the
    share 1/n of a representation that mixes all n inputs evenly, and how often
    input i is the top contributor.
    (ii) For every decoder layer, each cross-attention row's support over the
    source words against the same number of top words by gradient x input
    (:class:`~alignment_eval.interpretability.measures.SupportOverlap`), pooled over heads
    and for the head average; and, so that dense attention is comparable, the
    smallest set of most attended words holding ``attention_mass`` of each head's row.
    """
    model = loaded.model.eval()
    n_encoder_layers = len(model.encoder.layers)
    shares: List[List[float]] = [[] for _ in range(n_encoder_layers)]
    tops: List[List[bool]] = [[] for _ in range(n_encoder_layers)]
    chance: List[float] = []
    undefined = [0] * n_encoder_layers
    for pair in encoded:
        attribution = encoder_attribution(model, pair, projections=projections, seed=seed).numpy()
        chance.extend([1.0 / len(pair.source_ids)] * len(pair.source_ids))
        for l in range(n_encoder_layers):
            share, top = coindexed_shares(attribution[l])
            undefined[l] += int(np.isnan(share).sum())
            shares[l].extend(share[~np.isnan(share)].tolist())
            tops[l].extend(top[~np.isnan(share)].tolist())
    encoder_layers = [
        {"layer": l + 1, "share": describe(shares[l]),
         "top_is_coindexed_rate": float(np.mean(tops[l])) if tops[l] else None,
         "undefined_positions": undefined[l]}
        for l in range(n_encoder_layers)
    ]
    n_layers, n_heads = importances[0].attention.shape[:2]
    pooled = [SupportOverlap() for _ in range(n_layers)]
    pooled_mass = [SupportOverlap(mass=attention_mass) for _ in range(n_layers)]
    averaged = [SupportOverlap() for _ in range(n_layers)]
    for sentence in importances:
        gradient = sentence.gradient[:, :-1]
        for l in range(n_layers):
            for h in range(n_heads):
                rows, elsewhere = _word_rows(sentence.attention[l], h)
                for t in range(rows.shape[0]):
                    pooled[l].add(rows[t], gradient[t], attends_elsewhere=bool(elsewhere[t]))
                    pooled_mass[l].add(rows[t], gradient[t], attends_elsewhere=bool(elsewhere[t]))
            rows, elsewhere = _word_rows(sentence.attention[l], None)
            for t in range(rows.shape[0]):
                averaged[l].add(rows[t], gradient[t], attends_elsewhere=bool(elsewhere[t]))
    return {
        "test": "coindex",
        "paper": "Meister et al. 2021, Sec. 4-5",
        "attribution": "Frobenius norm of the Jacobian d h_l[i] / d e_j" + (
            " (exact)" if projections >= model.encoder.embed_tokens.embedding_dim
            else f" (estimated with {projections} Rademacher projections, seed {seed})"),
        "encoder_layers": encoder_layers,
        "uniform_share_mean": describe(chance)["mean"],
        "support_overlap": [
            {"layer": l + 1, "heads": pooled[l].summary(), "avg": averaged[l].summary(),
             "heads_mass": pooled_mass[l].summary()}
            for l in range(n_layers)
        ],
    }
