"""The figures of ``alignment-eval report`` (and the PNG conventions :mod:`alignment_eval.interpretability.report` shares).

Drawn with matplotlib's object API (no pyplot state) and written atomically as PNG at :data:`FIGURE_DPI`.

Plotting boundary: matplotlib is imported only inside the functions that draw (:func:`new_figure`,
through :func:`nmt_common.figures.pyplot`: Agg backend, quiet font logging), so importing this module,
and every command module that uses it, does not import matplotlib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Tuple

import numpy as np

from nmt_common import figures as common_figures

from .attention_stats import SUBLAYER_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "ATTENTIONS", "FIGURE_DPI", "NULL_MARK", "SentenceAttention", "new_figure", "plot_aer_per_layer",
    "plot_attention_heads", "plot_attention_statistics", "quiet_matplotlib", "save_figure",
]

#: The two attention rows of a target piece: the one that predicts it and the shifted one (Chen et al. 2020).
ATTENTIONS = (("normal", False), ("shift", True))
NULL_MARK = "\u2205"  # ∅
FIGURE_DPI = 110


@dataclass(frozen=True)
class SentenceAttention:
    """Cross-attention of one sentence: ``weights`` [layers, heads, decoder positions, source pieces + EOS]."""

    weights: np.ndarray
    source_pieces: List[str]  # model source pieces, then the source EOS
    decoder_inputs: List[str]  # EOS (the BOS of fairseq's decoder), then the target pieces
    predicted: List[str]  # what each decoder position predicts: the target pieces, then EOS


def quiet_matplotlib() -> None:
    """Set matplotlib up for files (:func:`nmt_common.figures.pyplot`: Agg, font search off stderr).

    Kept for one release: :func:`new_figure` does it when a figure is drawn.
    """
    common_figures.pyplot()


def new_figure(**options: Any) -> "Figure":
    """A matplotlib ``Figure`` (object API, no pyplot state): the plotting boundary, where matplotlib is imported."""
    common_figures.pyplot()
    from matplotlib.figure import Figure

    return Figure(**options)


def _model_colours(names: Sequence[str]) -> Dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def save_figure(figure: "Figure", path: Path) -> None:
    """Write ``figure`` as PNG at :data:`FIGURE_DPI`, atomically (:func:`nmt_common.figures.save_figure`;
    the figure keeps its own layout engine: no ``tight_layout``)."""
    common_figures.save_figure(figure, path, dpi=FIGURE_DPI, tight=False)


# With more models the head labels would stack above the panels: the table in report.md names the heads.
MAX_LABELLED_MODELS = 3
# Legend columns before wrapping (each column: a model's best head above its head average).
MAX_LEGEND_MODELS = 4


def _integer_layer_axis(axes, layers: Sequence[int], label: str) -> None:
    if layers:
        axes.set_xticks(sorted(set(layers)))
        axes.set_xlim(min(layers) - 0.3, max(layers) + 0.3)
    axes.set_xlabel(label)


def plot_aer_per_layer(
    curves: Dict[str, Dict[str, List[dict]]], baselines: Sequence[Tuple[str, float]], method: str, path: Path
) -> None:
    """Two panels (normal, shifted attention): AER per decoder layer, best head solid, head average dashed."""
    colours = _model_colours(list(curves))
    figure = new_figure(figsize=(11, 4.8), layout="constrained")
    panels = figure.subplots(1, 2, sharey=True)
    titles = {
        "normal": "normal attention\n(row that predicts the target piece)",
        "shift": "shifted attention (Chen et al. 2020)\n(row whose input is the target piece)",
    }
    highest = max([0.0] + [aer for _, aer in baselines])
    for axes, (attention, _) in zip(panels, ATTENTIONS):
        layers: List[int] = []
        for index, (model, per_attention) in enumerate(curves.items()):
            points = per_attention.get(attention, [])
            best = [(p["layer"], p["best_head"]) for p in points if p["best_head"]]
            average = [(p["layer"], p["average"]["aer"]) for p in points if p["average"]]
            if best:
                xs = [layer for layer, _ in best]
                ys = [point["aer"] for _, point in best]
                axes.plot(xs, ys, "-o", color=colours[model], label=f"{model}: best head")
                for x, (_, point) in zip(xs if len(curves) <= MAX_LABELLED_MODELS else [], best):
                    # staggered per model so that labels of models with close AERs do not cover each other
                    axes.annotate(f"h{point['head']}", (x, point["aer"]), textcoords="offset points",
                                  xytext=(7, 3 + 10 * index), ha="left", va="bottom", fontsize=7,
                                  color=colours[model], bbox={"boxstyle": "round,pad=0.1", "facecolor": "white",
                                                              "edgecolor": "none", "alpha": 0.8})
                layers += xs
                highest = max(highest, *ys)
            if average:
                axes.plot([x for x, _ in average], [y for _, y in average], "--s", color=colours[model],
                          markersize=4, label=f"{model}: head average")
                layers += [x for x, _ in average]
                highest = max(highest, *(y for _, y in average))
        for index, (label, aer) in enumerate(baselines):
            colour = str(0.15 + 0.2 * (index % 4))
            axes.axhline(aer, color=colour, linestyle=(0, (1, 1.5 + index)), linewidth=1.2,
                         label=f"{label} (AER {aer:.3f})")
            axes.annotate(label, (1.0, aer), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                          textcoords="offset points", ha="right", va="bottom", fontsize=7, color=colour)
        _integer_layer_axis(axes, layers, "decoder layer")
        axes.set_title(titles[attention], fontsize=10)
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel(f"AER ({method} links; lower is better)")
    panels[0].set_ylim(-0.02, min(1.02, highest * 1.15 + 0.03))  # below 0 so that a baseline at AER 0 shows
    legend_entries: Dict[str, Any] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend_entries.setdefault(label, handle)
    handles, labels = list(legend_entries.values()), list(legend_entries)
    if handles:
        # two legend rows, filled column by column: each model's best head above its head average, then baselines
        columns = min(len(curves), MAX_LEGEND_MODELS) + math.ceil(len(baselines) / 2)
        figure.legend(handles, labels, loc="outside lower center", ncols=columns, fontsize=8, frameon=False)
    labelled = "; labels hN = best head" if len(curves) <= MAX_LABELLED_MODELS else "; best heads in report.md"
    figure.suptitle(f"AER per decoder layer ({method}{labelled})", fontsize=11)
    save_figure(figure, path)


STAT_PANELS = (
    ("sparsity", "sparsity rate"),
    ("null_rate", "null-attention rate"),
    ("js_diversity", "JS head diversity (nats)"),
)


def plot_attention_statistics(attention: Dict[str, dict], path: Path) -> None:
    """Small multiples: sparsity, null rate and JS diversity (rows) per sublayer (columns), a line per model."""
    colours = _model_colours(list(attention))
    sublayers = [s for s in SUBLAYER_NAMES if any(s in a["sublayers"] for a in attention.values())]
    sublayers += sorted({s for a in attention.values() for s in a["sublayers"]} - set(sublayers))
    figure = new_figure(figsize=(3.7 * len(sublayers) + 0.5, 7.6), layout="constrained")
    grid = figure.subplots(len(STAT_PANELS), len(sublayers), squeeze=False, sharex="col")
    for column, sublayer in enumerate(sublayers):
        heads = 0  # the most heads of a layer, for the JS bound ln(heads); 0 when stats.json does not say
        layers_seen: List[int] = []
        for index, (model, summary) in enumerate(attention.items()):
            layers = summary["sublayers"].get(sublayer, {}).get("layers", [])
            layers_seen += [layer["layer"] for layer in layers]
            dodge = 0.05 * (index - (len(attention) - 1) / 2)  # keeps models with equal values apart
            xs = [layer["layer"] + dodge for layer in layers]
            heads = max([heads] + [layer.get("heads", 0) for layer in layers])
            for row, (key, _) in enumerate(STAT_PANELS):
                ys = [np.nan if layer.get(key) is None else layer[key] for layer in layers]
                grid[row, column].plot(xs, ys, "-o", color=colours[model], markersize=4, label=model)
        for row, (key, label) in enumerate(STAT_PANELS):
            axes = grid[row, column]
            axes.grid(True, alpha=0.3)
            if key == "js_diversity" and heads > 1:
                bound = math.log(heads)
                axes.axhline(bound, color="0.4", linestyle=":", linewidth=1)
                axes.annotate(f"upper bound ln {heads} = {bound:.2f}", (0.02, bound), xycoords=("axes fraction", "data"),
                              xytext=(0, -10), textcoords="offset points", fontsize=7, color="0.3")
                axes.set_ylim(0, bound * 1.12)
            elif key != "js_diversity":
                axes.set_ylim(-0.03, 1.03)
            if column == 0:
                axes.set_ylabel(label)
            if row == len(STAT_PANELS) - 1:
                _integer_layer_axis(axes, layers_seen, "layer")
        grid[0, column].set_title(SUBLAYER_NAMES.get(sublayer, sublayer), fontsize=10)
    handles, labels = grid[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(6, len(handles)), frameon=False)
    figure.suptitle("Attention statistics per layer", fontsize=11)
    save_figure(figure, path)


def plot_attention_heads(attention: SentenceAttention, title: str, path: Path) -> None:
    """Every layer (rows) x head (columns) of one sentence's cross-attention; null rows hatched and marked ∅."""
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    layers, heads, queries, keys = attention.weights.shape
    colour_map = colormaps["viridis"].with_extremes(bad="white")
    top = float(attention.weights.max()) or 1.0
    cell_width = max(1.7, 0.2 * keys + 0.4)
    cell_height = max(1.5, 0.2 * queries + 0.3)
    height = cell_height * layers + 2.0
    figure = new_figure(figsize=(cell_width * heads + 2.6, height), layout="constrained")
    grid = figure.subplots(layers, heads, squeeze=False, sharex=True, sharey=True)
    image = None
    for layer in range(layers):
        for head in range(heads):
            axes = grid[layer, head]
            weights = attention.weights[layer, head]
            image = axes.imshow(np.ma.masked_equal(weights, 0.0), cmap=colour_map, vmin=0.0, vmax=top,
                                aspect="auto", interpolation="nearest")
            null_rows = np.flatnonzero(~(weights > 0).any(axis=1))
            for row in null_rows:
                axes.add_patch(Rectangle((-0.5, row - 0.5), keys, 1, fill=False, hatch="///", edgecolor="red",
                                         linewidth=0.8))
                axes.text(keys / 2 - 0.5, row, NULL_MARK, color="red", fontsize=8, fontweight="bold",
                          ha="center", va="center",
                          bbox={"boxstyle": "round,pad=0.05", "facecolor": "white", "edgecolor": "none"})
            summary = f"{len(null_rows)} null row{'s' if len(null_rows) != 1 else ''}" if len(null_rows) else ""
            axes.set_title(f"layer {layer + 1}, head {head + 1}" + (f"\n{NULL_MARK} {summary}" if summary else ""),
                           fontsize=8, color="red" if summary else "black")
            axes.set_xticks(range(keys), attention.source_pieces, rotation=90, fontsize=7)
            axes.set_yticks(range(queries), attention.decoder_inputs, fontsize=7)
            axes.tick_params(length=2, labelbottom=layer == layers - 1, labelleft=head == 0)
            if head == heads - 1:
                predicted = axes.secondary_yaxis("right")
                predicted.set_yticks(range(queries), attention.predicted, fontsize=7)
                predicted.tick_params(length=2)
                predicted.set_ylabel("predicts", fontsize=8)
            if head == 0:
                axes.set_ylabel("decoder input", fontsize=8)
            if layer == layers - 1:
                axes.set_xlabel("source pieces", fontsize=8)
    colour_bar = figure.colorbar(image, ax=grid, shrink=min(1.0, max(0.3, 6.0 / height)), aspect=30)
    colour_bar.set_label("attention weight (white = exactly 0)", fontsize=8)
    any_null = not (attention.weights > 0).any(axis=-1).all()
    legend = (f"red hatched rows marked {NULL_MARK} are null: the head attends to nothing at that position"
              if any_null else "no null rows: every head attends somewhere at every position")
    figure.suptitle(f"{title}\n{legend}", fontsize=10)
    save_figure(figure, path)
