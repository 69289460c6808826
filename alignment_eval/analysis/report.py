"""``alignment-eval report``: one Markdown + JSON report with figures for several models.

Each ``--run NAME=DIR`` names a model and the folder where ``extract`` wrote
``aer.json`` and/or ``stats`` wrote ``stats.json``.  ``--baseline`` adds the
statistical aligners of ``baseline.json``.  Writes ``report.md``, ``report.json``
(everything the Markdown shows, with signatures and source paths),
``aer_per_layer.png``, ``stats.png`` and, with ``--heatmap-checkpoint``,
``attention_heads.png``.  Only the heatmap loads a model (torch); the rest reads JSON.

The figures are drawn by :mod:`.figures`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from nmt_common.files import atomic_write_text, write_json
from nmt_common.markdown import markdown_table

from ..alignments.command_line import print_message
from ..alignments.errors import AlignmentInputError
from ..alignments.induce import METHODS
from ..alignments.io import read_parallel_text
from ..alignments.records import (
    AerReport, AerRow, BaselineReport, LayerStats, OverallStats, StatsReport, best_rows,
)
from ..alignments.version import __version__
from .attention_stats import SUBLAYER_NAMES
from .figures import (
    ATTENTIONS,
    NULL_MARK,
    SentenceAttention,
    plot_aer_per_layer,
    plot_attention_heads,
    plot_attention_statistics,
)
from .model_attention import encode_pairs, load_model, record_pairs

__all__ = [
    "HeatmapRequest", "build_report", "markdown_report", "read_run", "read_baselines", "gdfa_lines",
    "parse_named_path", "record_sentence_attention", "add_command", "run",
]

AER_FILE = "aer.json"
STATS_FILE = "stats.json"
BASELINE_FILE = "baseline.json"
FIGURE_AER = "aer_per_layer.png"
FIGURE_STATS = "stats.png"
FIGURE_HEADS = "attention_heads.png"
#: Direction names a baseline's symmetrised (grow-diag-final-and) result may have, in preference order.
GDFA_NAMES = ("gdfa", "grow-diag-final-and", "grow_diag_final_and")
BASELINE_DIRECTION_ORDER = ("forward", "reverse", *GDFA_NAMES)


@dataclass(frozen=True)
class HeatmapRequest:
    """Which checkpoint and sentence ``attention_heads.png`` shows."""

    model: str
    checkpoint: Path
    text: Path
    sentence: int = 1  # 1-based line of ``text``
    data_dir: Optional[Path] = None
    spm: Optional[Path] = None
    reverse: bool = False


@dataclass(frozen=True)
class RunInputs:
    """The JSON files of one ``--run``."""

    name: str
    directory: Path
    aer_path: Optional[Path]
    aer: Optional[AerReport]
    stats_path: Optional[Path]
    stats: Optional[StatsReport]


# --- reading and checking the inputs ------------------------------------------------------


def parse_named_path(spec: str, option: str) -> Tuple[str, Path]:
    """Split ``NAME=PATH``; raises :class:`AlignmentInputError` naming ``spec`` when malformed."""
    name, separator, path = spec.partition("=")
    name, path = name.strip(), path.strip()
    if not separator or not name or not path:
        raise AlignmentInputError(spec, None, f"{option} expects NAME=PATH (for example rela=runs/rela)")
    return name, Path(path)


def read_run(name: str, directory: Path) -> RunInputs:
    """Read ``aer.json`` / ``stats.json`` of one run folder (at least one must exist) through their schemas."""
    if not directory.is_dir():
        reason = "is a file, not a run folder" if directory.exists() else "run folder not found"
        raise AlignmentInputError(directory, None, f"{reason} (--run {name}=...)")
    aer_path, stats_path = directory / AER_FILE, directory / STATS_FILE
    if not aer_path.is_file() and not stats_path.is_file():
        raise AlignmentInputError(
            directory, None, f"holds neither {AER_FILE} (alignment-eval extract --gold) nor {STATS_FILE} (alignment-eval stats)"
        )
    aer = AerReport.read(aer_path) if aer_path.is_file() else None
    stats = StatsReport.read(stats_path) if stats_path.is_file() else None
    return RunInputs(name, directory, aer_path if aer else None, aer, stats_path if stats else None, stats)


def read_baselines(location: Path) -> Tuple[Path, Dict[str, Dict[str, dict]]]:
    """``{aligner: {direction: scores}}`` from ``baseline.json`` (``location`` is the file or its folder)."""
    path = location / BASELINE_FILE if location.is_dir() else location
    if not path.is_file():
        raise AlignmentInputError(path, None, "baseline file not found (alignment-eval baseline writes it)")
    report = BaselineReport.read(path)
    order = {name: i for i, name in enumerate(BASELINE_DIRECTION_ORDER)}
    aligners: Dict[str, Dict[str, dict]] = {}
    for aligner, entry in report.aligners.items():
        scored = {}
        for direction, score in sorted(entry.results.items(), key=lambda item: order.get(item[0], len(order))):
            scored[direction] = {"aer": score.aer, "precision": score.precision, "recall": score.recall,
                                 "f_measure": score.f_measure, "links": score.links, "signature": score.signature_str}
            if direction in entry.files:
                scored[direction]["alignment_file"] = str(path.parent / entry.files[direction])
        aligners[aligner] = scored
    return path, aligners


# --- summaries --------------------------------------------------------------------------


def _aer_point(row: AerRow, run: RunInputs) -> dict:
    point = {"layer": row.layer, "head": row.head, "aer": row.aer, "precision": row.precision, "recall": row.recall,
             "f_measure": row.f_measure, "links": row.links, "signature": row.signature}
    if row.file:
        point["alignment_file"] = str(run.directory / "alignments" / row.file)
    return point


def aer_per_layer(run: RunInputs, method: str) -> Dict[str, List[dict]]:
    """Per attention ("normal"/"shift"): for each decoder layer, its best single head and the head average."""
    curves: Dict[str, List[dict]] = {}
    rows = run.aer.rows if run.aer else []
    for attention, shift in ATTENTIONS:
        by_layer: Dict[int, dict] = {}
        for row in rows:
            if row.method != method or row.shift != shift:
                continue
            entry = by_layer.setdefault(row.layer, {"layer": row.layer, "best_head": None, "average": None})
            if row.head == "avg":
                entry["average"] = _aer_point(row, run)
            elif entry["best_head"] is None or row.aer < entry["best_head"]["aer"]:
                entry["best_head"] = _aer_point(row, run)
        curves[attention] = [by_layer[layer] for layer in sorted(by_layer)]
    return curves


def best_aer(run: RunInputs) -> Dict[str, dict]:
    """Lowest AER per method, attention and head kind (``argmax.normal.best-head`` ...)."""
    if not run.aer:
        return {}
    return {name: _aer_point(row, run) for name, row in best_rows(run.aer.rows).items()}


def _layer_stats(layer: Union[LayerStats, OverallStats]) -> dict:
    kept = {"sparsity": layer.sparsity, "null_rate": layer.null_rate, "entropy": layer.entropy,
            "js_diversity": layer.js_diversity, "js_excluded_rows": getattr(layer, "js_excluded_rows", None)}
    if isinstance(layer, LayerStats):
        kept["heads"] = len(layer.heads)
        kept["per_head"] = [{"head": head.head, "sparsity": head.sparsity, "null_rate": head.null_rate,
                             "entropy": head.entropy} for head in layer.heads]
    return kept


def attention_summary(run: RunInputs) -> Optional[dict]:
    """Sparsity, null rate, entropy and JS diversity per sublayer (overall and per layer), and learned alpha."""
    if not run.stats:
        return None
    sublayers = {}
    for name, summary in run.stats.sublayers.items():
        layers = [{"layer": layer.layer, **_layer_stats(layer)} for layer in summary.layers]
        overall = _layer_stats(summary.overall)
        overall["js_excluded_rows"] = sum(layer.js_excluded_rows for layer in summary.layers)
        sublayers[name] = {"normalizer": run.stats.normalizers.get(name), "overall": overall, "layers": layers}
    return {"sublayers": sublayers, "alpha": run.stats.alpha}


def _run_summary(run: RunInputs, method: str) -> dict:
    aer, stats = run.aer, run.stats
    return {
        "directory": str(run.directory),
        "aer_file": str(run.aer_path) if run.aer_path else None,
        "stats_file": str(run.stats_path) if run.stats_path else None,
        "checkpoint": aer.checkpoint if aer else stats.checkpoint,
        "text": aer.text if aer else stats.text,
        "gold": aer.gold if aer else None,
        "sentences": aer.sentences if aer else stats.sentences,
        "reverse": aer.reverse if aer else None,
        "subword_rule": aer.subword_rule if aer else None,
        "threshold": aer.threshold if aer else None,
        "best": best_aer(run),
        "aer_per_layer": aer_per_layer(run, method) if run.aer else None,
        "attention": attention_summary(run),
    }


def gdfa_lines(baselines: Dict[str, Dict[str, dict]]) -> List[Tuple[str, float]]:
    """(label, AER) of each aligner's symmetrised (grow-diag-final-and) result, for the AER figure."""
    lines = []
    for aligner, directions in baselines.items():
        for name in GDFA_NAMES:
            if name in directions:
                lines.append((f"{aligner} {name}", float(directions[name]["aer"])))
                break
    return lines



def record_sentence_attention(request: HeatmapRequest) -> SentenceAttention:
    """Load the checkpoint (torch, fairseq) and record the cross-attention of one line of the text."""
    pairs = read_parallel_text(request.text)
    if not 1 <= request.sentence <= len(pairs):
        raise AlignmentInputError(
            request.text, None, f"--heatmap-sentence {request.sentence} is out of range: the file has {len(pairs)} lines"
        )
    loaded = load_model(request.checkpoint, data_dir=request.data_dir, spm=request.spm)
    (encoded,) = encode_pairs(loaded, [pairs[request.sentence - 1]], reverse=request.reverse)
    (_, record), = record_pairs(loaded, [encoded])
    source = [loaded.source_dictionary[int(i)] for i in encoded.source_ids]
    target = [loaded.target_dictionary[int(i)] for i in encoded.target_ids]
    eos = loaded.target_dictionary[loaded.target_dictionary.eos()]
    return SentenceAttention(
        weights=record.cross.numpy().astype(np.float32),
        source_pieces=source,
        decoder_inputs=[eos, *target],
        predicted=[*target, eos],
    )


# --- Markdown ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    """The lines of :func:`nmt_common.markdown.markdown_table` (cells by :func:`_cell`), then a blank line."""
    return markdown_table(header, [[_cell(value) for value in row] for row in rows]).split("\n") + [""]


def _best_aer_section(report: dict) -> List[str]:
    def order(key: str) -> tuple:
        method, attention, kind = key.split(".")
        return method != report["method"], method, attention != "normal", kind != "best-head"

    keys = sorted({key for run in report["runs"].values() for key in run["best"]}, key=order)
    rows = []
    for key in keys:
        method, attention, kind = key.split(".")
        attention = "shifted" if attention == "shift" else attention
        competitors = {name: run["best"][key] for name, run in report["runs"].items() if key in run["best"]}
        lowest = min(point["aer"] for point in competitors.values())
        for name, point in competitors.items():
            aer = f"**{point['aer']:.3f}**" if len(competitors) > 1 and point["aer"] == lowest else point["aer"]
            rows.append([method, attention, "best head" if kind == "best-head" else "head average", name,
                         point["layer"], point["head"], aer, point["precision"], point["recall"]])
    if not rows:
        return []
    lines = ["## Best AER", "",
             "Lowest AER over decoder layers, per link-induction method, attention row (normal / shifted) and "
             "head choice (best single head / average of the heads); **bold**: best model of the group.", ""]
    return lines + _table(["method", "attention", "heads", "model", "layer", "head", "AER", "precision", "recall"], rows)


def _baseline_section(report: dict) -> List[str]:
    baselines = report.get("baselines")
    if not baselines:
        return []
    rows = [[aligner, direction, scores.get("aer"), scores.get("precision"), scores.get("recall"), scores.get("links")]
            for aligner, directions in baselines["aligners"].items() for direction, scores in directions.items()]
    return ["## Baselines", "", f"Statistical aligners from `{baselines['file']}`.", ""] + _table(
        ["aligner", "direction", "AER", "precision", "recall", "links"], rows)


def _per_layer_section(report: dict) -> List[str]:
    rows = []
    for name, run in report["runs"].items():
        for attention, points in (run["aer_per_layer"] or {}).items():
            for point in points:
                best, average = point["best_head"] or {}, point["average"] or {}
                rows.append([name, attention, point["layer"], best.get("head"), best.get("aer"), average.get("aer")])
    lines = [f"## AER per decoder layer ({report['method']})", ""]
    if report["figures"].get("aer_per_layer"):
        lines += [f"![AER per decoder layer]({report['figures']['aer_per_layer']})", ""]
    return lines + _table(["model", "attention", "layer", "best head", "best-head AER", "head-average AER"], rows)


def _statistics_section(report: dict) -> List[str]:
    rows, alphas = [], []
    for name, run in report["runs"].items():
        attention = run["attention"]
        if not attention:
            continue
        for sublayer, summary in attention["sublayers"].items():
            label = SUBLAYER_NAMES.get(sublayer, sublayer)
            for layer in [*summary["layers"], {**summary["overall"], "layer": "all"}]:
                rows.append([name, label, summary["normalizer"], layer["layer"], layer["sparsity"], layer["null_rate"],
                             layer["entropy"], layer["js_diversity"], layer.get("js_excluded_rows")])
        for module, values in attention["alpha"].items():
            sublayer, _, index = module.partition(".")
            layer = int(index) + 1 if index.isdigit() else "-"  # learned_alphas() numbers layers from 0
            alphas.append([name, SUBLAYER_NAMES.get(sublayer, module), layer,
                           ", ".join(f"{value:.3f}" for value in values)])
    if not rows:
        return []
    lines = ["## Attention statistics", "",
             "Teacher-forced. Sparsity: share of exact zeros among allowed positions; null rate: share of query rows "
             "that are all zero (the head attends to nothing); entropy (nats) of the non-null rows, row-normalised; "
             "JS diversity: Jensen-Shannon divergence between the non-null heads of a layer, in [0, ln heads] nats; "
             "JS-excluded: query rows with fewer than two non-null heads.", ""]
    if report["figures"].get("stats"):
        lines += [f"![Attention statistics]({report['figures']['stats']})", ""]
    lines += _table(["model", "sublayer", "normalizer", "layer", "sparsity", "null rate", "entropy",
                     "JS diversity", "JS-excluded rows"], rows)
    if alphas:
        lines += ["### Learned α (alpha-entmax)", ""] + _table(["model", "sublayer", "layer", "α per head"], alphas)
    return lines


def _heatmap_section(report: dict) -> List[str]:
    heatmap = report.get("heatmap")
    if not heatmap:
        return []
    null_heads = ", ".join(f"layer {c['layer']} head {c['head']} ({c['null_rows']})" for c in heatmap["null_rows"])
    return [
        "## Cross-attention of every head", "",
        f"Model `{heatmap['model']}` (`{heatmap['checkpoint']}`), sentence {heatmap['sentence']} of "
        f"`{heatmap['text']}`. Rows: decoder positions (input EOS + target pieces); columns: source pieces + EOS; "
        f"white = exactly 0; red hatched rows marked {NULL_MARK} are null (all weights 0).", "",
        f"Heads with null rows: {null_heads or 'none'}.", "",
        f"![Cross-attention per layer and head]({report['figures']['attention_heads']})", "",
    ]


def _inputs_section(report: dict) -> List[str]:
    rows = [[name, run["aer_file"], run["stats_file"], run["checkpoint"], run["text"], run["gold"], run["sentences"]]
            for name, run in report["runs"].items()]
    return ["## Inputs", ""] + _table(["model", "aer.json", "stats.json", "checkpoint", "text", "gold", "sentences"], rows)


def _signature_section(report: dict) -> List[str]:
    lines = ["## Signatures", ""]
    for name, run in report["runs"].items():
        for key, point in run["best"].items():
            if point.get("signature"):
                lines.append(f"- {_cell(name)} {key}: `{point['signature']}`")
    for aligner, directions in (report.get("baselines") or {}).get("aligners", {}).items():
        for direction, scores in directions.items():
            if scores.get("signature"):
                lines.append(f"- {_cell(aligner)} {direction}: `{scores['signature']}`")
    return lines + [""] if len(lines) > 2 else []


def markdown_report(report: dict) -> str:
    """The Markdown rendering of :func:`build_report`'s dictionary."""
    lines = [f"# {report['title']}", "", f"Produced by alignment-eval {report['version']} with:", "",
             "```sh", report["command"], "```", ""]
    for note in report["notes"]:
        lines += [f"> Note: {note}", ""]
    for section in (_inputs_section, _best_aer_section, _baseline_section, _per_layer_section,
                    _statistics_section, _heatmap_section, _signature_section):
        if section is _per_layer_section and not any(run["aer_per_layer"] for run in report["runs"].values()):
            continue
        lines += section(report)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- API ---------------------------------------------------------------------------------


def build_report(
    runs: Dict[str, Path],
    out_dir: Path,
    *,
    baseline_dir: Optional[Path] = None,
    method: str = "argmax",
    command: str,
    heatmap: Optional[HeatmapRequest] = None,
    title: Optional[str] = None,
) -> dict:
    """Read the runs (and baselines), write report.md, report.json and the figures into ``out_dir``.

    ``runs`` maps a model label to its run folder; ``command`` is the command line
    shown in the report.  Returns the dictionary written as report.json.
    """
    if not runs:
        raise ValueError("build_report needs at least one run")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    inputs = [read_run(name, Path(directory)) for name, directory in runs.items()]
    baseline_file, baselines = read_baselines(Path(baseline_dir)) if baseline_dir is not None else (None, {})
    attention = record_sentence_attention(heatmap) if heatmap is not None else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    notes = []
    report: dict = {
        "title": title or f"Attention and alignment report: {', '.join(runs)}",
        "command": command,
        "version": __version__,
        "method": method,
        "runs": {run.name: _run_summary(run, method) for run in inputs},
        "baselines": {"file": str(baseline_file), "aligners": baselines} if baselines else None,
        "figures": {},
        "heatmap": None,
        "notes": notes,
    }
    curves = {name: run["aer_per_layer"] for name, run in report["runs"].items()
              if run["aer_per_layer"] and any(run["aer_per_layer"].values())}
    for run in inputs:
        if run.aer and run.name not in curves:
            notes.append(f"{run.aer_path} has no '{method}' rows; {run.name} is left out of {FIGURE_AER}")
    if curves:
        plot_aer_per_layer(curves, gdfa_lines(baselines), method, out_dir / FIGURE_AER)
        report["figures"]["aer_per_layer"] = FIGURE_AER
    statistics = {name: run["attention"] for name, run in report["runs"].items() if run["attention"]}
    if statistics:
        plot_attention_statistics(statistics, out_dir / FIGURE_STATS)
        report["figures"]["stats"] = FIGURE_STATS
    if attention is not None:
        plot_attention_heads(attention, f"Cross-attention of {heatmap.model}, sentence {heatmap.sentence} of "
                                        f"{heatmap.text.name}", out_dir / FIGURE_HEADS)
        report["figures"]["attention_heads"] = FIGURE_HEADS
        null = ~(attention.weights > 0).any(axis=-1)  # [layers, heads, decoder positions]
        report["heatmap"] = {
            "model": heatmap.model, "checkpoint": str(heatmap.checkpoint), "text": str(heatmap.text),
            "sentence": heatmap.sentence, "reverse": heatmap.reverse,
            "source_pieces": attention.source_pieces, "decoder_inputs": attention.decoder_inputs,
            "null_rows": [{"layer": layer + 1, "head": head + 1, "null_rows": int(null[layer, head].sum())}
                          for layer in range(null.shape[0]) for head in range(null.shape[1]) if null[layer, head].any()],
        }
    write_json(out_dir / "report.json", report, indent=1)
    atomic_write_text(out_dir / "report.md", markdown_report(report))
    return report


# --- command -----------------------------------------------------------------------------


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="Markdown/JSON report with figures comparing the extract/stats results of several models",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                        help="model label and the folder holding its aer.json and/or stats.json (repeatable)")
    parser.add_argument("--baseline", metavar="DIR", help="folder holding baseline.json (or the file itself)")
    parser.add_argument("--out-dir", required=True, help="folder for report.md, report.json and the PNGs")
    parser.add_argument("--method", choices=METHODS, default="argmax",
                        help="link-induction method of the AER-per-layer figure (default: %(default)s)")
    parser.add_argument("--title", help="report title")
    parser.add_argument("--heatmap-checkpoint", metavar="NAME=CKPT",
                        help="draw attention_heads.png: every cross-attention head of this checkpoint")
    parser.add_argument("--heatmap-text", metavar="FILE", help="'SOURCE ||| TARGET' file of the heatmap sentence")
    parser.add_argument("--heatmap-sentence", type=int, default=1, metavar="N",
                        help="1-based line of --heatmap-text (default: %(default)s)")
    parser.add_argument("--heatmap-reverse", action="store_true",
                        help="the heatmap model translates the text's TARGET side into its SOURCE side")
    parser.add_argument("--data-dir", help="binarized data folder of the heatmap checkpoint (default: the checkpoint's)")
    parser.add_argument("--spm", help="joint SentencePiece model of the heatmap checkpoint")
    parser.set_defaults(func=run)


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed (``sys.argv``), or rebuilt from ``args`` when ``main`` was called in-process."""
    if sys.argv[1:2] == ["report"]:
        return shlex.join(sys.argv)
    words = ["alignment-eval", "report"]
    for spec in args.run:
        words += ["--run", spec]
    options = [("--baseline", args.baseline), ("--out-dir", args.out_dir), ("--method", args.method),
               ("--title", args.title), ("--heatmap-checkpoint", args.heatmap_checkpoint),
               ("--heatmap-text", args.heatmap_text), ("--data-dir", args.data_dir), ("--spm", args.spm)]
    if args.heatmap_checkpoint:
        options.append(("--heatmap-sentence", str(args.heatmap_sentence)))
    for option, value in options:
        if value is not None:
            words += [option, value]
    if args.heatmap_reverse:
        words.append("--heatmap-reverse")
    return shlex.join(words)


def _heatmap_request(args: argparse.Namespace) -> Optional[HeatmapRequest]:
    if args.heatmap_checkpoint is None:
        if args.heatmap_text is not None:
            raise AlignmentInputError(args.heatmap_text, None, "--heatmap-text needs --heatmap-checkpoint NAME=CKPT")
        return None
    model, checkpoint = parse_named_path(args.heatmap_checkpoint, "--heatmap-checkpoint")
    if args.heatmap_text is None:
        raise AlignmentInputError(checkpoint, None, "--heatmap-checkpoint needs --heatmap-text FILE")
    if args.heatmap_sentence < 1:
        raise AlignmentInputError(args.heatmap_text, None, "--heatmap-sentence is 1-based: use 1 or more")
    return HeatmapRequest(
        model=model, checkpoint=checkpoint, text=Path(args.heatmap_text), sentence=args.heatmap_sentence,
        data_dir=Path(args.data_dir) if args.data_dir else None, spm=Path(args.spm) if args.spm else None,
        reverse=args.heatmap_reverse,
    )


def run(args: argparse.Namespace) -> int:
    runs: Dict[str, Path] = {}
    for spec in args.run:
        name, directory = parse_named_path(spec, "--run")
        if name in runs:
            raise AlignmentInputError(spec, None, f"model name {name!r} is given twice")
        runs[name] = directory
    report = build_report(
        runs, Path(args.out_dir), baseline_dir=Path(args.baseline) if args.baseline else None, method=args.method,
        command=_command_line(args), heatmap=_heatmap_request(args), title=args.title,
    )
    for note in report["notes"]:
        print_message("note", note)
    written = ["report.md", "report.json", *report["figures"].values()]
    print(f"wrote {', '.join(written)} to {args.out_dir}")
    return 0
