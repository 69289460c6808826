"""Train, translate and evaluate several attention variants on one prepared corpus.

One run per variant, all with the same architecture and the same budget:
fairseq-train -> fairseq-generate (detokenised, every sentence) -> sacreBLEU ->
``alignment-eval stats`` (sparsity, null attention, head diversity) -> ``alignment-eval
extract`` (AER per layer/head against a gold set, when given) -> one summary table
(``summary.md`` / ``summary.json``) and ``alignment-eval report`` figures.

Every step is skipped when its output exists (re-running resumes where a run stopped;
fairseq-train itself resumes from ``checkpoint_last.pt``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from alignment_eval.io import atomic_write_text

from . import bleu as bleu_module
from .translate import PLUGIN_DIR, translate

BIN = Path(sys.executable).parent


@dataclass
class GoldSet:
    text: Path  # 'src ||| tgt'
    alignment: Path
    one_based: bool = True
    reverse: bool = False  # the model translates the text's target side


@dataclass
class ExperimentSpec:
    """What to run: the data, the variants, the shared architecture and training budget."""

    name: str
    data_bin: Path
    spm_model: Path
    test_reference: Path  # raw (detokenised) reference of the binarized test set
    out_dir: Path
    variants: Sequence[str] = ("softmax", "rela")
    arch: str = "sparse_transformer_tiny"
    arch_args: Sequence[str] = ()
    train_args: Sequence[str] = ()
    max_update: int = 1000
    seed: int = 1
    gold: Optional[GoldSet] = None
    beam: int = 4
    generate_args: Sequence[str] = ()  # extra fairseq-generate options (e.g. a length limit for smoke runs)
    checkpoint_root: Path = Path("checkpoints")  # kept out of out_dir, which may be committed
    notes: List[str] = field(default_factory=list)


def subprocess_environment() -> dict:
    """The environment for fairseq/alignment-eval subprocesses: one intra-op thread unless the user set one.

    On a small shared CPU machine torch's default (one thread per core) is slower by an order of
    magnitude as soon as anything else runs (measured here: 0.28 vs 5.5 updates/s for the tiny model).
    """
    environment = os.environ.copy()
    environment.setdefault("OMP_NUM_THREADS", "1")
    return environment


def _run(command: Sequence[str], log: Path) -> None:
    """Run ``command``, streaming its output to ``log``; raise with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(f"$ {shlex.join(map(str, command))}\n")
        stream.flush()
        result = subprocess.run(list(map(str, command)), stdout=stream, stderr=subprocess.STDOUT,
                                env=subprocess_environment())
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        raise RuntimeError(f"{Path(command[0]).name} failed (exit {result.returncode}); see {log}:\n{tail}")


def train_command(spec: ExperimentSpec, variant: str, save_dir: Path) -> List[str]:
    return [
        BIN / "fairseq-train", spec.data_bin, "--user-dir", PLUGIN_DIR, "--arch", spec.arch,
        "--attention", variant, *spec.arch_args,
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-8",
        "--lr-scheduler", "inverse_sqrt", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        *spec.train_args, "--max-update", str(spec.max_update), "--seed", str(spec.seed),
        "--save-dir", save_dir, "--no-epoch-checkpoints", "--required-batch-size-multiple", "1",
        "--log-format", "simple", "--log-interval", "50", "--num-workers", "0",
    ]


def _training_speed(log: Path) -> Dict[str, Optional[float]]:
    """Mean words/s and total training wall time from a fairseq-train log."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    wps = [float(m) for m in re.findall(r"\| train \|.*?\| wps ([\d.]+)", text)]
    wall = re.findall(r"done training in ([\d.]+) seconds", text)
    return {"train_wps": sum(wps) / len(wps) if wps else None, "train_seconds": float(wall[-1]) if wall else None}


def run_variant(spec: ExperimentSpec, variant: str, log=print) -> dict:
    """Every step for one variant; returns its row of the summary table."""
    folder = spec.out_dir / variant
    checkpoints = spec.checkpoint_root / spec.name / variant
    checkpoint = checkpoints / "checkpoint_last.pt"

    if (folder / "train.done").exists() and not checkpoint.exists():
        # outputs of a model that is not here (a clean clone of committed results, or deleted
        # checkpoints): every later step would be skipped and report them as new.  Keep them
        # beside the folder and run the variant again.
        kept = folder.with_name(f"{folder.name}.without-checkpoint-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(kept)
        log(f"[{variant}] {folder} came from a checkpoint no longer at {checkpoint}: kept as {kept}, running again")

    if not (folder / "train.done").exists():
        log(f"[{variant}] training {spec.arch} for {spec.max_update} updates")
        _run(train_command(spec, variant, checkpoints), folder / "train.log")
        atomic_write_text(folder / "train.done", time.strftime("%Y-%m-%d %H:%M:%S\n"))

    hypotheses = folder / "test.hyp"
    if not (folder / "translate.json").exists():
        log(f"[{variant}] translating the test set (beam {spec.beam})")
        translate(spec.data_bin, checkpoint, hypotheses, beam=spec.beam,
                  extra_args=spec.generate_args).write_record(folder / "translate.json")

    if not (folder / "bleu.json").exists():
        scores = bleu_module.score(hypotheses, spec.test_reference)
        atomic_write_text(folder / "bleu.json", json.dumps(scores.as_dict(), indent=1) + "\n")

    if spec.gold is not None:
        model_args = ["--checkpoint", checkpoint, "--data-dir", spec.data_bin, "--spm", spec.spm_model,
                      "--text", spec.gold.text] + (["--reverse"] if spec.gold.reverse else [])
        attention_dir = folder / "attention"  # stats.json, aer.json, alignments/: one alignment-eval report run
        if not (attention_dir / "stats.json").exists():
            log(f"[{variant}] attention statistics on {spec.gold.text.name}")
            _run([BIN / "alignment-eval", "stats", *model_args, "--out-dir", attention_dir], folder / "eval.log")
        if not (attention_dir / "aer.json").exists():
            log(f"[{variant}] alignments and AER against {spec.gold.alignment.name}")
            gold_args = ["--gold", spec.gold.alignment] + (["--gold-one-based"] if spec.gold.one_based else [])
            _run([BIN / "alignment-eval", "extract", *model_args, *gold_args, "--methods", "argmax", "nonzero",
                  "--out-dir", attention_dir], folder / "eval.log")
    row = row_from_outputs(variant, folder)
    atomic_write_text(folder / "row.json", json.dumps(row, indent=1) + "\n")
    return row


def row_from_outputs(variant: str, folder: Path) -> dict:
    """One summary row from a variant's output folder (train.log, translate.json, bleu.json, attention/)."""
    row: dict = {"variant": variant, **_training_speed(folder / "train.log")}
    if (folder / "translate.json").is_file():
        row["decode_sentences_per_second"] = json.loads((folder / "translate.json").read_text())["sentences_per_second"]
    if (folder / "bleu.json").is_file():
        scores = json.loads((folder / "bleu.json").read_text())
        row.update({"bleu": scores["bleu"], "chrf": scores["chrf"], "bleu_signature": scores["signature"]})
    stats_file, aer_file = folder / "attention" / "stats.json", folder / "attention" / "aer.json"
    if stats_file.is_file():
        stats = json.loads(stats_file.read_text())
        sublayers = stats["sublayers"]
        row.update({
            "sparsity_cross": sublayers["cross"]["overall"]["sparsity"],
            "null_rate_cross": sublayers["cross"]["overall"]["null_rate"],
            "js_diversity_cross": sublayers["cross"]["overall"]["js_diversity"],
            "sparsity_all": _mean(sublayers[s]["overall"]["sparsity"] for s in ("encoder", "decoder", "cross")),
            "null_rate_all": _mean(sublayers[s]["overall"]["null_rate"] for s in ("encoder", "decoder", "cross")),
            "alpha": stats.get("alpha") or None,
        })
    if aer_file.is_file():
        aer = json.loads(aer_file.read_text())
        row["aer_best"] = {name: {"aer": r["aer"], "layer": r["layer"], "head": r["head"]}
                           for name, r in aer["best"].items()}
    return row


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary_table(rows: List[dict]) -> List[str]:
    """Markdown table: BLEU, speed (and ratio to softmax), AER, sparsity, null rate, head diversity."""
    softmax = next((r for r in rows if r["variant"] == "softmax"), None)
    with_attention = any("aer_best" in r or "sparsity_cross" in r for r in rows)
    header = "| variant | BLEU | chrF | train words/s | decode sent/s |"
    rule = "|---|---|---|---|---|"
    if with_attention:
        header += (" AER argmax normal (layer, head) | AER argmax shift (layer, head) | AER head-avg normal |"
                   " sparsity (cross) | null rate (cross) | JS diversity (cross) | sparsity (all) | null rate (all) |")
        rule += "---|---|---|---|---|---|---|---|"
    lines = [header, rule]

    def with_ratio(row, key, digits):
        text = _fmt(row.get(key), digits)
        if softmax and row is not softmax and softmax.get(key) and row.get(key):
            text += f" ({row[key] / softmax[key]:.2f}x)"
        return text

    for row in rows:
        line = (f"| {row['variant']} | {_fmt(row.get('bleu'), 2)} | {_fmt(row.get('chrf'), 2)} "
                f"| {with_ratio(row, 'train_wps', 0)} | {with_ratio(row, 'decode_sentences_per_second', 1)} |")
        if with_attention:
            best = row.get("aer_best") or {}

            def cell(name):
                entry = best.get(name)
                return f"{entry['aer']:.3f} ({entry['layer']}, {entry['head']})" if entry else "-"

            line += (f" {cell('argmax.normal.best-head')} | {cell('argmax.shift.best-head')} | "
                     f"{cell('argmax.normal.avg')} | {_fmt(row.get('sparsity_cross'))} | {_fmt(row.get('null_rate_cross'))} | "
                     f"{_fmt(row.get('js_diversity_cross'))} | {_fmt(row.get('sparsity_all'))} | {_fmt(row.get('null_rate_all'))} |")
        lines.append(line)
    lines += ["", "BLEU signatures:", ""]
    lines += [f"- {r['variant']}: `{r['bleu_signature']}`" for r in rows if r.get("bleu_signature")]
    return lines


def summary_markdown(spec: ExperimentSpec, rows: List[dict], command: str) -> str:
    lines = [f"# {spec.name}: attention variants compared", "", f"Command: `{command}`", ""]
    lines += [f"- {note}" for note in spec.notes]
    lines += ["", f"Architecture `{spec.arch}` {' '.join(spec.arch_args)}; {spec.max_update} updates each, seed {spec.seed}; "
              f"beam {spec.beam}.", ""]
    lines += summary_table(rows)
    lines += ["", "Speeds come from the training/decoding runs above, on a shared machine: see `results/perf/` "
              "for controlled, interleaved measurements.", ""]
    return "\n".join(lines)


def interpret_battery(checkpoint: Path, data_bin: Path, spm_model: Path, text: Path, out_dir: Path, *,
                      max_sentences: int = 200, lambdas: Sequence[str] = ("0.1", "1"), steps: int = 100,
                      projections: int = 16, log_file: Optional[Path] = None) -> dict:
    """``alignment-eval interpret all`` (uniform, importance, coindex, adversarial) on one checkpoint."""
    if not (out_dir / "interpret.json").exists():
        _run([BIN / "alignment-eval", "interpret", "all", "--checkpoint", checkpoint, "--data-dir", data_bin,
              "--spm", spm_model, "--text", text, "--max-sentences", str(max_sentences),
              "--lambdas", *lambdas, "--steps", str(steps), "--projections", str(projections),
              "--out-dir", out_dir],
             log_file or out_dir.parent / "interpret.log")
    return json.loads((out_dir / "interpret.json").read_text())


def run_experiment(spec: ExperimentSpec, command: str, log=print) -> List[dict]:
    """Run (or resume) every variant, then write summary.md / summary.json and the alignment report."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    rows = [run_variant(spec, variant, log) for variant in spec.variants]
    atomic_write_text(spec.out_dir / "summary.json", json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    atomic_write_text(spec.out_dir / "summary.md", summary_markdown(spec, rows, command))
    if spec.gold is not None:
        runs = []
        for variant in spec.variants:
            runs += ["--run", f"{variant}={spec.out_dir / variant / 'attention'}"]
        _run([BIN / "alignment-eval", "report", *runs, "--out-dir", spec.out_dir / "alignment-report"],
             spec.out_dir / "report.log")
    return rows
