"""``alignment-eval stats``: what the attention does, per sublayer, layer and head.

Measures (Zhang, Titov & Sennrich 2021, Sec. 5; Correia et al. 2019, Sec. 5.2):

* **sparsity rate**: share of exact zeros among the positions a query may attend
  to (all keys for encoder self- and cross-attention, keys up to the query for
  decoder self-attention).
* **null-attention rate**: share of query rows whose weights are all zero (a head
  that "attends to nothing"; only ReLA can do this).
* **entropy**: mean Shannon entropy (nats) of the non-null rows, each divided by
  its sum (so unnormalised ReLA rows are comparable).
* **head diversity**: Jensen-Shannon divergence between the heads of a layer,
  JS = H(mean_h p_h) - mean_h H(p_h) over the (row-normalised) heads of one query,
  averaged over queries (Correia et al. 2019).  Heads whose row is null are left
  out of that query's JS; a query with fewer than two non-null heads has no JS
  and is counted in ``js_excluded_rows`` instead of being dropped silently.
* **alpha**: the learned alpha of every alpha_entmax head.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from nmt_common.files import atomic_write_text, json_text
from nmt_common.markdown import markdown_table
from nmt_common.records import to_json

from ..alignments.io import read_parallel_text
from ..alignments.records import HeadStats, LayerStats, OverallStats, StatsReport, SublayerStats
from .extract import add_model_arguments, load_from_args
from .model_attention import encode_pairs, record_pairs

SUBLAYER_NAMES = {"encoder": "encoder self-attention", "decoder": "decoder self-attention", "cross": "cross-attention"}


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis of distributions ``p``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -(p * logs).sum(axis=-1)


@dataclass
class HeadCounts:
    """Running sums for one head of one layer (or, summed, for a whole layer)."""

    positions: int = 0
    zeros: int = 0
    rows: int = 0
    null_rows: int = 0
    entropy_sum: float = 0.0

    def add(self, other: "HeadCounts") -> None:
        self.positions += other.positions
        self.zeros += other.zeros
        self.rows += other.rows
        self.null_rows += other.null_rows
        self.entropy_sum += other.entropy_sum

    def summary(self) -> Dict[str, float]:
        non_null = self.rows - self.null_rows
        return {
            "sparsity": self.zeros / self.positions if self.positions else 0.0,
            "null_rate": self.null_rows / self.rows if self.rows else 0.0,
            "entropy": self.entropy_sum / non_null if non_null else 0.0,
            "positions": self.positions,
            "rows": self.rows,
            "null_rows": self.null_rows,
        }


@dataclass
class LayerCounts:
    heads: List[HeadCounts]
    js_sum: float = 0.0
    js_rows: int = 0
    js_excluded_rows: int = 0


def allowed_positions(sublayer: str, queries: int, keys: int) -> np.ndarray:
    """Bool [queries, keys]: where a query may attend (causal for decoder self-attention)."""
    if sublayer == "decoder":
        return np.tril(np.ones((queries, keys), dtype=bool))
    return np.ones((queries, keys), dtype=bool)


def count_layer(weights: np.ndarray, allowed: np.ndarray) -> LayerCounts:
    """Statistics of one layer of one sentence: ``weights`` [heads, queries, keys]."""
    masked = np.where(allowed, weights, 0.0)
    totals = masked.sum(axis=-1)  # [heads, queries]
    null = totals <= 0  # all-zero rows (weights are non-negative)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(null[..., None], 0.0, masked / np.where(null, 1.0, totals)[..., None])
    entropies = entropy(p)  # [heads, queries]
    heads = []
    for h in range(weights.shape[0]):
        heads.append(HeadCounts(
            positions=int(allowed.sum()),
            zeros=int(((weights[h] == 0) & allowed).sum()),
            rows=int(weights.shape[1]),
            null_rows=int(null[h].sum()),
            entropy_sum=float(entropies[h][~null[h]].sum()),
        ))
    # Jensen-Shannon divergence between the non-null heads of each query
    live = ~null  # [heads, queries]
    n_live = live.sum(axis=0)  # [queries]
    usable = n_live >= 2
    mean_p = (p * live[..., None]).sum(axis=0) / np.maximum(n_live, 1)[:, None]  # [queries, keys]
    mean_entropy = (entropies * live).sum(axis=0) / np.maximum(n_live, 1)
    js = entropy(mean_p) - mean_entropy
    return LayerCounts(
        heads=heads,
        js_sum=float(np.clip(js[usable], 0.0, None).sum()),
        js_rows=int(usable.sum()),
        js_excluded_rows=int((~usable).sum()),
    )


@dataclass
class SublayerStatistics:
    """Accumulates :func:`count_layer` over sentences for every layer of one sublayer."""

    sublayer: str
    layers: List[LayerCounts] = field(default_factory=list)

    def add_sentence(self, weights: np.ndarray) -> None:
        """``weights``: [layers, heads, queries, keys] of one sentence."""
        allowed = allowed_positions(self.sublayer, weights.shape[2], weights.shape[3])
        for index, layer_weights in enumerate(weights):
            counts = count_layer(layer_weights, allowed)
            if index == len(self.layers):
                self.layers.append(counts)
                continue
            total = self.layers[index]
            for head_total, head in zip(total.heads, counts.heads):
                head_total.add(head)
            total.js_sum += counts.js_sum
            total.js_rows += counts.js_rows
            total.js_excluded_rows += counts.js_excluded_rows

    def summary(self) -> SublayerStats:
        layers = []
        overall = HeadCounts()
        js_sum, js_rows = 0.0, 0
        for number, layer in enumerate(self.layers, start=1):
            layer_total = HeadCounts()
            for head in layer.heads:
                layer_total.add(head)
            overall.add(layer_total)
            js_sum += layer.js_sum
            js_rows += layer.js_rows
            layers.append(LayerStats(
                layer=number,
                **layer_total.summary(),
                js_diversity=layer.js_sum / layer.js_rows if layer.js_rows else None,
                js_rows=layer.js_rows,
                js_excluded_rows=layer.js_excluded_rows,
                heads=[HeadStats(head=h, **head.summary()) for h, head in enumerate(layer.heads, start=1)],
            ))
        return SublayerStats(
            layers=layers,
            overall=OverallStats(**overall.summary(), js_diversity=js_sum / js_rows if js_rows else None),
        )


def attention_statistics(loaded, pairs, *, reverse: bool = False, batch_size: int = 32,
                         text: Optional[str] = None) -> StatsReport:
    """Statistics of every sublayer of ``loaded`` (see :func:`~alignment_eval.analysis.model_attention.load_model`)."""
    encoded = encode_pairs(loaded, pairs, reverse=reverse)
    per_sublayer = {name: SublayerStatistics(name) for name in ("encoder", "decoder", "cross")}
    for _, record in record_pairs(loaded, encoded, batch_size=batch_size, include_self=True):
        per_sublayer["encoder"].add_sentence(record.encoder_self.numpy())
        per_sublayer["decoder"].add_sentence(record.decoder_self.numpy())
        per_sublayer["cross"].add_sentence(record.cross.numpy())
    model = loaded.model
    normalizers = {}
    for sublayer, _, module in model.attention_modules():
        normalizers.setdefault(sublayer, module.normalizer)
    return StatsReport(
        checkpoint=str(loaded.checkpoint),
        sentences=len(pairs),
        unknown_pieces=sum(p.unknown_pieces for p in encoded),
        normalizers=normalizers,
        alpha=model.learned_alphas(),
        sublayers={name: stats.summary() for name, stats in per_sublayer.items()},
        text=text,
    )


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown_report(statistics: StatsReport) -> str:
    lines = [f"# Attention statistics of {statistics.checkpoint}", "",
             f"{statistics.sentences} sentence pairs, teacher forcing.", ""]
    rows = []
    for name, summary in statistics.sublayers.items():
        normalizer = statistics.normalizers.get(name, "?")
        for label, layer in [*((layer.layer, layer) for layer in summary.layers), ("all", summary.overall)]:
            rows.append([SUBLAYER_NAMES[name], normalizer, label, _fmt(layer.sparsity),
                         _fmt(layer.null_rate), _fmt(layer.entropy), _fmt(layer.js_diversity)])
    header = ["sublayer", "normalizer", "layer", "sparsity", "null rate", "entropy", "JS diversity"]
    lines += markdown_table(header, rows).split("\n")
    if statistics.alpha:
        lines += ["", "Learned alpha per head:", ""]
        lines += [f"- {name}: " + ", ".join(f"{a:.3f}" for a in alphas) for name, alphas in statistics.alpha.items()]
    return "\n".join(lines) + "\n"


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="sparsity, null-attention rate, entropy and head diversity of every sublayer, layer and head",
        description="Teacher-forced attention statistics of a checkpoint on a 'SOURCE ||| TARGET' text.",
    )
    add_model_arguments(parser)
    parser.add_argument("--out-dir", required=True, help="folder for stats.json and stats.md")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pairs = read_parallel_text(args.text)
    statistics = attention_statistics(load_from_args(args), pairs, reverse=args.reverse, batch_size=args.batch_size,
                                      text=str(args.text))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    statistics.write(out_dir / "stats.json")
    report = markdown_report(statistics)
    atomic_write_text(out_dir / "stats.md", report)
    print(json_text(to_json(statistics), indent=1) if args.json else report, end="")
    return 0
