"""Markdown sections and figures of ``alignment-eval interpret`` (one per test, and the combined report).

Every function reads the dict that :mod:`alignment_eval.interpretability.experiments`
returns; figures are drawn with matplotlib's object API (no pyplot state) on
:func:`alignment_eval.analysis.figures.new_figure` and written by
:func:`alignment_eval.analysis.figures.save_figure`, like the figures of ``report``: matplotlib is
imported when a figure is drawn, not when this module is (the plotting boundary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from nmt_common.markdown import markdown_table

from ..analysis.figures import new_figure, save_figure

TEST_TITLES = {
    "uniform": "Uniform attention (Wiegreffe & Pinter 2019)",
    "seeds": "Attention across seeds (Wiegreffe & Pinter 2019)",
    "adversarial": "Adversarial attention (Wiegreffe & Pinter 2019)",
    "importance": "Attention vs. feature importance (Jain & Wallace 2019)",
    "coindex": "Co-indexed representations and sparse support (Meister et al. 2021)",
}


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    """The lines of :func:`nmt_common.markdown.markdown_table`, cells by :func:`_number`."""
    return markdown_table(header, [[_number(cell) for cell in row] for row in rows]).split("\n")


# --- uniform ------------------------------------------------------------------------------------


def uniform_markdown(result: Dict[str, Any]) -> List[str]:
    lines = [
        f"Cross-attention replaced by uniform weights over the visible source positions; teacher-forced NLL "
        f"per token (nats, {result['tokens']} tokens), mean total variation of the output distributions "
        f"from the unmodified model's, and BLEU of {result['decoding']} output.", "",
    ]
    rows = [
        [row["condition"], row["nll"], row["delta_nll"], row["output_tvd_mean"], row["bleu"], row["delta_bleu"],
         row["changed_hypotheses"]]
        for row in result["conditions"]
    ]
    lines += _table(["uniform in", "NLL", "ΔNLL", "output TVD", "BLEU", "ΔBLEU", "changed outputs"], rows)
    lines += ["", f"BLEU signature: `{result['bleu_signature']}`"]
    return lines


def plot_uniform(result: Dict[str, Any], path: Path, title: str) -> None:
    rows = result["conditions"][1:]
    names = [row["condition"] for row in rows]
    figure = new_figure(figsize=(2.0 + 0.9 * len(names), 3.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.bar(names, [row["delta_nll"] for row in rows], color="tab:red")
    left.set_ylabel("ΔNLL per token (nats)")
    right.bar(names, [row["delta_bleu"] for row in rows], color="tab:blue")
    right.set_ylabel("ΔBLEU")
    right.axhline(0.0, color="black", linewidth=0.8)
    figure.suptitle(title)
    save_figure(figure, path)


# --- seeds --------------------------------------------------------------------------------------


def seeds_markdown(result: Dict[str, Any]) -> List[str]:
    lines = [
        "Per predicted token and pair of checkpoints: JS divergence between the head-averaged cross-attention "
        "rows (mean over decoder layers; tokens whose rows are null in every layer are counted as null rows) "
        "and JS divergence / total variation between the output distributions.", "",
    ]
    rows = []
    for pair in [*result["pairs"], {"checkpoints": ["all pairs"], **result["overall"]}]:
        rows.append([
            " vs ".join(Path(c).parent.name + "/" + Path(c).name if c != "all pairs" else c for c in pair["checkpoints"]),
            pair["tokens"], pair["null_rows"],
            pair["attention_js"]["mean"], pair["attention_js"]["median"],
            pair["output_js"]["mean"], pair["output_js"]["median"],
            pair["output_tvd"]["mean"], pair["spearman_attention_js_vs_output_tvd"],
        ])
    lines += _table(["models", "tokens", "null rows", "attn JSD mean", "attn JSD median", "out JSD mean",
                     "out JSD median", "out TVD mean", "Spearman(attn JSD, out TVD)"], rows)
    lines += ["", "Mean attention JSD by output TVD (all pairs):", ""]
    lines += _table(["output TVD", "tokens", "attn JSD mean"],
                    [[f"[{b['output_tvd'][0]}, {b['output_tvd'][1]}]", b["tokens"], b["attention_js_mean"]]
                     for b in result["overall"]["attention_js_by_output_tvd"]])
    return lines


def plot_seeds(result: Dict[str, Any], path: Path, title: str) -> None:
    figure = new_figure(figsize=(5.0, 4.0), layout="constrained")
    axes = figure.subplots()
    for points in result["points"]:
        axes.scatter(points["attention_js"], points["output_js"], s=6, alpha=0.5, label=f"models {points['pair']}")
    axes.set_xlabel("attention JSD (head average, mean over layers)")
    axes.set_ylabel("output JSD")
    axes.set_xlim(-0.02, 0.72)
    axes.set_ylim(-0.02, 0.72)
    axes.legend(fontsize="small")
    axes.set_title(title)
    save_figure(figure, path)


# --- adversarial --------------------------------------------------------------------------------


def adversarial_markdown(result: Dict[str, Any]) -> List[str]:
    lines = [
        f"Fine-tuned copies ({result['steps']} Adam steps, lr {result['learning_rate']}, seed {result['seed']}) with "
        f"loss = {result['output_divergence'].upper()}(output_adv, output_base) − λ·KL(attention_adv ‖ attention_base) "
        f"on the cross-attention of layer(s) {', '.join(map(str, result['layers']))} (rows smoothed with weight "
        f"{result['kl_smoothing']}). Attention JSD/KL per head row, output TVD per token.", "",
    ]
    rows = [
        [run["lambda"], run["attention_js"]["mean"], run["attention_kl"]["mean"], run["output_tvd"]["mean"],
         run["output_tvd"]["max"], run["prediction_changed_rate"], run["nll"] - run["base_nll"], run["null_rows"]]
        for run in result["runs"]
    ]
    lines += _table(["λ", "attn JSD mean", "attn KL mean", "out TVD mean", "out TVD max", "argmax changed",
                     "ΔNLL", "null rows"], rows)
    return lines


def plot_adversarial(result: Dict[str, Any], path: Path, title: str) -> None:
    figure = new_figure(figsize=(4.6, 3.6), layout="constrained")
    axes = figure.subplots()
    x = [run["attention_js"]["mean"] or 0.0 for run in result["runs"]]
    y = [run["output_tvd"]["mean"] or 0.0 for run in result["runs"]]
    axes.plot(x, y, marker="o")
    for run, xi, yi in zip(result["runs"], x, y):
        axes.annotate(f"λ={run['lambda']:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize="small")
    axes.set_xlim(-0.02, 0.72)
    axes.set_xlabel("mean attention JSD from the base model")
    axes.set_ylabel("mean output TVD from the base model")
    axes.set_title(title)
    save_figure(figure, path)


# --- importance ---------------------------------------------------------------------------------


def importance_markdown(result: Dict[str, Any]) -> List[str]:
    method_names = {"gradient": "gradient × input", "leave_one_out": "leave-one-out"}
    lines = [
        f"Kendall τ-b per predicted token ({result['sentences']} sentences) between the cross-attention over the "
        "source words and each word's importance. `undefined` = null rows + EOS-only rows + constant attention "
        "rows + constant importance rows (τ undefined, counted apart).", "",
    ]
    rows = []
    for layer in result["layers"]:
        for head, measures in layer["heads"].items():
            if head != "avg":
                continue
            for method in result["methods"]:
                s = measures[method]
                undefined = s["null_rows"] + s["other_keys_only_rows"] + s["constant_attention_rows"] + s["constant_importance_rows"]
                rows.append([layer["layer"], "average", method_names[method], s["tau_mean"], s["tau_median"],
                             s["tau_positive_rate"], s["tau_rows"], s["null_rows"], undefined])
    lines += _table(["layer", "heads", "importance", "τ mean", "τ median", "τ > 0", "rows with τ", "null rows",
                     "undefined"], rows)
    per_head = []
    for layer in result["layers"]:
        for head, measures in layer["heads"].items():
            if head == "avg":
                continue
            per_head.append([layer["layer"], head, *[measures[m]["tau_mean"] for m in result["methods"]],
                             measures[result["methods"][0]]["null_rows"]])
    lines += ["", "Per head (τ mean):", ""]
    lines += _table(["layer", "head", *[method_names[m] for m in result["methods"]], "null rows"], per_head)
    agreement = result.get("gradient_vs_leave_one_out")
    if agreement:
        lines += ["", f"Gradient × input vs. leave-one-out: τ mean {_number(agreement['tau_mean'])}, "
                  f"median {_number(agreement['tau_median'])} over {agreement['tau_rows']} tokens."]
    return lines


def plot_importance(result: Dict[str, Any], path: Path, title: str) -> None:
    methods = result["methods"]
    layers = len(result["layers"])
    figure = new_figure(figsize=(2.6 * layers + 0.6, 2.4 * len(methods) + 0.6), layout="constrained")
    grid = figure.subplots(len(methods), layers, squeeze=False, sharex=True)
    for row, method in enumerate(methods):
        for layer in range(layers):
            axes = grid[row, layer]
            axes.hist(result["taus"][method][layer], bins=20, range=(-1, 1), color="tab:green")
            axes.set_title(f"layer {layer + 1}, {method.replace('_', '-')}", fontsize="small")
            axes.set_xlabel("Kendall τ")
    figure.suptitle(title)
    save_figure(figure, path)


# --- coindex ------------------------------------------------------------------------------------


def coindex_markdown(result: Dict[str, Any]) -> List[str]:
    lines = [
        f"(i) Share of the gradient attribution of encoder output i that falls on input token i "
        f"({result['attribution']}); a representation mixing all inputs evenly would have "
        f"{_number(result['uniform_share_mean'])} on average.", "",
    ]
    lines += _table(
        ["encoder layer", "share mean", "share median", "input i is the top contributor", "undefined"],
        [[l["layer"], l["share"]["mean"], l["share"]["median"], l["top_is_coindexed_rate"], l["undefined_positions"]]
         for l in result["encoder_layers"]],
    )
    lines += ["", "(ii) Support of each cross-attention row over the source words (non-zero weights, |S| = k) against "
              "the k words with the highest gradient × input: overlap |S ∩ top-k| / k, its chance level k/n, Jaccard. "
              "Rows whose support is every word (dense attention: overlap 1 by construction), null rows and "
              "EOS-only rows are counted apart. The last row of each layer compares, instead of the support, the "
              "smallest set of most attended words holding that share of the row's weight (defined for dense "
              "attention too).", ""]
    rows = []
    for layer in result["support_overlap"]:
        mass_kind = f"heads, {layer['heads_mass']['set']}"
        for kind, s in (("heads", layer["heads"]), ("average", layer["avg"]), (mass_kind, layer["heads_mass"])):
            rows.append([layer["layer"], kind, s["overlap_mean"], s["chance_overlap_mean"], s["jaccard_mean"],
                         s["support_size_mean"], s["compared_rows"], s["full_support_rows"], s["null_rows"],
                         s["other_keys_only_rows"]])
    lines += _table(["decoder layer", "set of", "overlap", "chance", "Jaccard", "mean k", "compared rows",
                     "full-support rows", "null rows", "EOS-only rows"], rows)
    return lines


def plot_coindex(result: Dict[str, Any], path: Path, title: str) -> None:
    figure = new_figure(figsize=(8.0, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    encoder = result["encoder_layers"]
    left.bar([l["layer"] for l in encoder], [l["share"]["mean"] or 0.0 for l in encoder], color="tab:purple")
    left.axhline(result["uniform_share_mean"] or 0.0, color="black", linestyle="--", label="even mix")
    left.set_xticks([l["layer"] for l in encoder])
    left.set_xlabel("encoder layer")
    left.set_ylabel("attribution share on co-indexed input")
    left.set_ylim(0, 1)
    left.legend(fontsize="small")
    overlap = result["support_overlap"]
    layers = [l["layer"] for l in overlap]
    bars = [
        ("heads", "overlap_mean", "support ∩ top-k", "tab:blue"),
        ("heads", "chance_overlap_mean", "chance (support)", "lightsteelblue"),
        ("heads_mass", "overlap_mean", f"{overlap[0]['heads_mass']['set']} ∩ top-k" if overlap else "", "tab:orange"),
        ("heads_mass", "chance_overlap_mean", "chance (weight set)", "navajowhite"),
    ]
    width = 0.8 / len(bars)
    for index, (kind, key, label, colour) in enumerate(bars):
        offset = (index - (len(bars) - 1) / 2) * width
        right.bar([x + offset for x in layers], [l[kind][key] or 0.0 for l in overlap], width, label=label, color=colour)
    right.set_xticks(layers)
    right.set_xlabel("decoder layer")
    right.set_ylabel("overlap with top-k inputs (heads)")
    right.set_ylim(0, 1.25)
    right.legend(fontsize="x-small", ncol=2)
    figure.suptitle(title)
    save_figure(figure, path)


MARKDOWN: Dict[str, Callable[[Dict[str, Any]], List[str]]] = {
    "uniform": uniform_markdown, "seeds": seeds_markdown, "adversarial": adversarial_markdown,
    "importance": importance_markdown, "coindex": coindex_markdown,
}
FIGURES: Dict[str, Callable[[Dict[str, Any], Path, str], None]] = {
    "uniform": plot_uniform, "seeds": plot_seeds, "adversarial": plot_adversarial,
    "importance": plot_importance, "coindex": plot_coindex,
}


def result_section(result: Dict[str, Any], figure: Optional[str] = None) -> List[str]:
    """``## title`` and the Markdown of one test, with its figure if any."""
    lines = [f"## {TEST_TITLES[result['test']]}", ""] + MARKDOWN[result["test"]](result)
    if figure:
        lines += ["", f"![{result['test']}]({figure})"]
    return lines + [""]


def write_figure(result: Dict[str, Any], path: Path, model_name: str) -> None:
    FIGURES[result["test"]](result, path, f"{result['test']}: {model_name}")


def header(metadata: Dict[str, Any]) -> List[str]:
    lines = [f"# Is attention an explanation? {metadata['checkpoint']}", ""]
    lines.append(
        f"Cross-attention: **{metadata['normalizer']}**; text `{metadata['text']}`, {metadata['sentences']} sentence "
        f"pairs ({metadata['unknown_rate']:.2%} unknown pieces); alignment-eval {metadata['version']}."
    )
    return lines + [""]
