"""The experiment report: per-variant table over seeds, significance against softmax, curves, verdicts.

Reads only what :mod:`mt_pipeline.experiment` wrote (``train.json``, ``<test>/bleu.json``,
``attention/{stats,aer}.json``, ``baselines/baseline.json``) and writes
``summary.md``, ``summary.json``, ``curves.png`` and (with a gold set) the
``alignment-eval report`` figures. A run that has not finished is listed as such,
never filled in from older outputs.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from nmt_common.files import atomic_write_text
from nmt_common.markdown import markdown_table
from nmt_common.records import RecordError, from_json

from alignment_eval.alignments.errors import AlignmentInputError
from alignment_eval.alignments.records import AerReport, AerRow, StatsReport

from .bleu import BleuInputError, BleuRecord, read_lines
from .errors import PipelineError, PipelineRecord
from .log import log as log_progress
from .significance import PairedBootstrap, mean_and_sd, paired_bootstrap

SUBLAYERS = ("encoder", "decoder", "cross")
REFERENCE_VARIANT = "softmax"
PARITY_MARGIN = 1.0  # BLEU: the parity verdict asks whether ReLA is within this of softmax


MeanSd = Tuple[Optional[float], Optional[float]]  # mean and sample sd over seeds; sd None for one seed
AER_KEYS = ("argmax.normal.best-head", "argmax.shift.best-head", "argmax.normal.avg", "argmax.shift.avg")


@dataclass(frozen=True)
class VariantRow:
    """One variant over its finished seeds: a row of ``summary.json`` (and of ``summary.md``'s tables)."""

    variant: str
    seeds: List[int]  # finished
    seeds_planned: List[int]
    bleu: Dict[str, MeanSd]  # test set -> sacreBLEU
    bleu_signature: Optional[str]  # of the main test set's BLEU
    updates: MeanSd
    epochs: MeanSd
    train_hours: MeanSd  # wall clock of the training sessions (log timestamps), summed
    stopped_by: List[str]
    sparsity: Dict[str, MeanSd]  # sublayer (encoder, decoder, cross) -> share of exact zeros
    null_rate: Dict[str, MeanSd]  # sublayer -> share of all-zero query rows
    js_diversity: Dict[str, MeanSd]  # sublayer -> mean Jensen-Shannon divergence between heads (nats)
    aer: Dict[str, MeanSd]  # AER_KEYS -> lowest AER
    aer_where: Dict[str, List[str]]  # AER_KEYS -> "L<layer>H<head>" per seed
    bootstrap: Optional[PairedBootstrap] = None  # main test set, against softmax
    bootstrap_error: Optional[str] = None  # why the bootstrap could not run (translations not here)


@dataclass(frozen=True)
class AlignerSummary:
    """One statistical aligner's grow-diag-final-and AER: an entry of ``baselines/summary.json``."""

    aligner: str
    aer: float
    trained_on: str
    training_pairs: int


@dataclass(frozen=True)
class RunSummary:
    """One (variant, seed) of ``summary.json``: its training record (without the curve) and BLEU per test set."""

    variant: str
    seed: int
    train: Dict[str, Any]  # train.json without "history"
    bleu: Dict[str, float]


@dataclass(frozen=True)
class SummaryRecord(PipelineRecord):
    """``summary.json`` of an experiment (:func:`write_summary`)."""

    command: str
    checkpoint: str
    stopping_rule: str
    rows: List[VariantRow]
    pending: List[str]  # "<variant> seed <n>" not finished
    baselines: Optional[List[AlignerSummary]]
    runs: List[RunSummary]


def read_aligner_summary(path: Path) -> Optional[List[AlignerSummary]]:
    """``baselines/summary.json`` (a list of :class:`AlignerSummary`), None when there is none."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise RecordError("", "must be a list of aligner summaries")
        return [from_json(AlignerSummary, entry, f"[{index}]") for index, entry in enumerate(data)]
    except (ValueError, RecordError) as error:
        raise PipelineError(f"{path}: not a baselines summary ({error})") from None


@dataclass
class RunResult:
    variant: str
    seed: int
    folder: Path
    train: Optional[dict] = None
    bleu: Dict[str, BleuRecord] = field(default_factory=dict)  # test set -> its bleu.json
    stats: Optional[StatsReport] = None  # attention/stats.json
    aer: Optional[AerReport] = None  # attention/aer.json

    @property
    def complete(self) -> bool:
        return self.train is not None and bool(self.bleu)


def _json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_alignment_record(cls, path: Path):
    """``aer.json``/``stats.json`` through its schema; a damaged or foreign file is a PipelineError naming it."""
    try:
        return cls.read(path)
    except AlignmentInputError as error:
        raise PipelineError(str(error)) from None


def _bleu_record(path: Path) -> BleuRecord:
    """``bleu.json`` through its schema; a damaged or foreign file is a PipelineError naming it."""
    try:
        return BleuRecord.read(path)
    except BleuInputError as error:
        raise PipelineError(str(error)) from None


def collect(spec) -> List[RunResult]:
    """Every (variant, seed) of ``spec`` with the outputs that belong to its current model.

    An output counts only when its step marker names this run's training fingerprint and the
    hash of the checkpoint it is evaluated with now; anything else (a committed folder whose
    checkpoints are not here, a run trained with other settings) is left out, and the run
    is listed as not finished.
    """
    from .files import sha256_file
    from .spec import chosen_checkpoint, runs_of, training_run
    from .steps import read_marker

    results = []
    for run in runs_of(spec):
        result = RunResult(run.variant, run.seed, run.out)
        results.append(result)
        job = training_run(run)
        record = _json(run.out / "train.json")
        if job.done() is None or not record or record.get("fingerprint") != job.fingerprint:
            continue
        result.train = record
        try:
            model = {"training": job.fingerprint, "checkpoint": spec.checkpoint,
                     "checkpoint_sha256": sha256_file(chosen_checkpoint(run))}
        except Exception:  # noqa: BLE001 - no checkpoint to evaluate: nothing after training counts
            continue

        def current(marker: Path, expected: dict) -> bool:
            content = read_marker(marker)
            return content is not None and all(content["inputs"].get(k) == v for k, v in expected.items())

        for name in spec.test_sets:
            folder = run.out / name
            translated = read_marker(folder / "translate.done.json")
            if translated is None or not current(folder / "translate.done.json", model):
                continue
            if current(folder / "bleu.done.json", {"translation": translated["fingerprint"]}):
                result.bleu[name] = _bleu_record(folder / "bleu.json")
        attention = run.out / "attention"
        if current(attention / "stats.done.json", model):
            result.stats = read_alignment_record(StatsReport, attention / "stats.json")
        if current(attention / "aer.done.json", model):
            result.aer = read_alignment_record(AerReport, attention / "aer.json")
    return results


def _fmt(mean: Optional[float], sd: Optional[float] = None, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def _mean_sd(values: List[float]):
    return mean_and_sd(values) if values else (None, None)


def sublayer_value(stats: StatsReport, sublayer: str, key: str) -> Optional[float]:
    return getattr(stats.overall(sublayer), key)


def best_aer(aer: Optional[AerReport], key: str) -> Optional[AerRow]:
    return aer.best.get(key) if aer else None


def variant_rows(spec, results: List[RunResult]) -> List[VariantRow]:
    """One row per variant: means ± sd over its finished seeds, and the bootstrap test against softmax."""
    main_test = next(iter(spec.test_sets))
    by_variant: Dict[str, List[RunResult]] = {}
    for result in results:
        by_variant.setdefault(result.variant, []).append(result)
    reference = [r for r in by_variant.get(REFERENCE_VARIANT, []) if r.complete]
    rows = []
    for variant, runs in by_variant.items():
        done = [r for r in runs if r.complete]
        with_stats = [r for r in done if r.stats]

        def over_stats(key: str, sublayer: str) -> MeanSd:
            values = [sublayer_value(r.stats, sublayer, key) for r in with_stats]
            return _mean_sd([value for value in values if value is not None])

        best = {key: [best_aer(r.aer, key) for r in done if best_aer(r.aer, key)] for key in AER_KEYS}
        bootstrap = bootstrap_error = None
        if variant != REFERENCE_VARIANT and done and reference:
            try:
                bootstrap = paired_bootstrap(
                    [read_lines(r.folder / main_test / "test.hyp") for r in done],
                    [read_lines(r.folder / main_test / "test.hyp") for r in reference],
                    read_lines(spec.test_sets[main_test].reference))
            except BleuInputError as error:  # translations are not committed: a clean clone has only the stored result
                bootstrap_error = f"{error}; rerun to translate"
        rows.append(VariantRow(
            variant=variant,
            seeds=[r.seed for r in done],
            seeds_planned=[r.seed for r in runs],
            bleu={name: _mean_sd([r.bleu[name].bleu for r in done if name in r.bleu]) for name in spec.test_sets},
            bleu_signature=next((r.bleu[main_test].signature for r in done if main_test in r.bleu), None),
            updates=_mean_sd([r.train["updates"] for r in done]),
            epochs=_mean_sd([r.train["epochs"] for r in done]),
            train_hours=_mean_sd([(r.train.get("train_seconds") or 0) / 3600 for r in done]),
            stopped_by=sorted({r.train.get("stopped_by", "?") for r in done}),
            sparsity={sublayer: over_stats("sparsity", sublayer) for sublayer in SUBLAYERS},
            null_rate={sublayer: over_stats("null_rate", sublayer) for sublayer in SUBLAYERS},
            js_diversity={sublayer: over_stats("js_diversity", sublayer) for sublayer in SUBLAYERS},
            aer={key: _mean_sd([entry.aer for entry in entries]) for key, entries in best.items()},
            aer_where={key: [entry.where for entry in entries] for key, entries in best.items()},
            bootstrap=bootstrap,
            bootstrap_error=bootstrap_error,
        ))
    return rows


def parity_verdict(row: VariantRow) -> str:
    test = row.bootstrap
    if not test:
        return "not tested yet"
    within = test.ci_low >= -PARITY_MARGIN
    outside = test.ci_high < -PARITY_MARGIN
    word = "yes" if within else ("no" if outside else "undecided")
    return (f"{word}: {row.variant} - softmax = {test.delta:+.2f} BLEU, 95% CI [{test.ci_low:+.2f}, "
            f"{test.ci_high:+.2f}], p = {test.p_value:.3f} ({test.system_seeds} vs {test.baseline_seeds} seeds)")


def verdicts(rows: List[VariantRow], baselines: Optional[List[AlignerSummary]]) -> List[str]:
    """One line each, with the numbers: parity, sparsity ordering, null rate, alignment, aligners."""
    by = {r.variant: r for r in rows}
    lines = []
    for variant in ("rela", "rela_i"):
        if variant in by:
            lines.append(f"**BLEU parity ({variant} within {PARITY_MARGIN:g} BLEU of softmax, bootstrap CI above "
                         f"-{PARITY_MARGIN:g}).** {parity_verdict(by[variant])}")
    if all(v in by for v in ("rela", "entmax15", "softmax")):
        parts = []
        for sublayer in SUBLAYERS:
            values = [by[v].sparsity[sublayer][0] for v in ("rela", "entmax15", "softmax")]
            if None in values:
                parts.append(f"{sublayer}: not measured")
                continue
            holds = values[0] > values[1] > values[2]
            parts.append(f"{sublayer} {'holds' if holds else 'does not hold'} "
                         f"(rela {values[0]:.3f}, entmax15 {values[1]:.3f}, softmax {values[2]:.3f})")
        lines.append("**Sparsity ordering ReLA > 1.5-entmax > softmax.** " + "; ".join(parts))
    measured = [r for r in rows if r.null_rate["cross"][0] is not None]
    if measured:
        nonzero = [r.variant for r in measured if any((r.null_rate[s][0] or 0) > 0 for s in SUBLAYERS)]
        relu = {"rela", "rela_i"}
        word = "yes" if set(nonzero) <= relu and nonzero else "no"
        lines.append(f"**Null attention only for ReLA.** {word}: null rate > 0 for {', '.join(nonzero) or 'no variant'}"
                     " (per layer and sublayer in the table below).")

    def best_head(row: VariantRow, shift: str) -> Optional[float]:
        return row.aer[f"argmax.{shift}.best-head"][0]

    if "softmax" in by and best_head(by["softmax"], "normal") is not None:
        parts = []
        for shift in ("normal", "shift"):
            reference = best_head(by["softmax"], shift)
            better = [f"{r.variant} {best_head(r, shift):.3f}" for r in rows
                      if r.variant != "softmax" and best_head(r, shift) is not None and best_head(r, shift) < reference]
            parts.append(f"{shift}: softmax best head {reference:.3f}; lower: {', '.join(better) or 'none'}")
        lines.append("**Alignment (best head, argmax, AER; lower is better).** " + "; ".join(parts))
    if baselines:
        lowest = {r.variant: min(x for x in (best_head(r, "shift"), best_head(r, "normal")) if x is not None)
                  for r in rows if best_head(r, "shift") is not None or best_head(r, "normal") is not None}
        if lowest:
            variant = min(lowest, key=lowest.get)
            aligners = "; ".join(f"{entry.aligner} {entry.aer:.3f} (trained on {entry.trained_on})"
                                 for entry in baselines)
            lines.append(f"**Attention vs statistical aligners.** best attention head: {variant} "
                         f"{lowest[variant]:.3f}; {aligners}.")
    return lines


def per_layer_table(results: List[RunResult], key: str) -> List[str]:
    """Markdown: one row per variant (seed 1... mean over seeds), one column per sublayer x layer."""
    columns = {}
    values: Dict[str, Dict[str, List[float]]] = {}
    for result in results:
        if not result.stats:
            continue
        for sublayer in SUBLAYERS:
            for layer in result.stats.sublayers[sublayer].layers:
                column = f"{sublayer} L{layer.layer}"
                columns[column] = None
                values.setdefault(result.variant, {}).setdefault(column, []).append(getattr(layer, key))
    if not values:
        return []
    rows = [[variant, *(_fmt(*_mean_sd(by_column[c]), digits=3) if by_column.get(c) else "-" for c in columns)]
            for variant, by_column in values.items()]
    return markdown_table(["variant", *columns], rows).split("\n")


def device_line(results: List[RunResult]) -> str:
    devices = sorted({(r.train or {}).get("device", "?") for r in results if r.train})
    return "; ".join(devices) or platform.processor()


def write_summary(spec, command: str, log: Callable[[str], None] = log_progress) -> Path:
    """Write summary.md / summary.json / curves.png (and the alignment report) for ``spec``."""
    from .curves import History, ValidPoint, plot_curves
    from .subprocesses import BIN, run_logged

    results = collect(spec)
    rows = variant_rows(spec, results)
    baselines = read_aligner_summary(spec.out_dir / "baselines" / "summary.json")
    main_test = next(iter(spec.test_sets))
    curves = {}
    for result in results:
        if result.train and result.train.get("history"):
            history = History(valid=[ValidPoint(**p) for p in result.train["history"]["valid"]])
            curves.setdefault(result.variant, []).append(history)
    if curves:
        plot_curves(curves, spec.out_dir / "curves.png", title=f"{spec.name}: validation curves (one line per seed)")

    lines = [f"# {spec.name}: attention variants compared", "", f"Command: `{command}`", ""]
    lines += [f"- {note}" for note in spec.notes]
    lines += [f"- Architecture `{spec.arch}` {' '.join(spec.arch_args)}; training {' '.join(spec.train_args)}; "
              f"{spec.stopping_rule}.",
              f"- Evaluated checkpoint: **{spec.checkpoint}**"
              + (" (highest validation BLEU)" if spec.checkpoint == "best" else "") + f"; beam {spec.beam}.",
              f"- Device: {device_line(results)}.", ""]
    pending = [f"{r.variant} seed {r.seed}" for r in results if not r.complete]
    if pending:
        lines += [f"**Not finished yet (not in the table):** {', '.join(pending)}.", ""]
    if any(row.seeds for row in rows):
        lines += ["## Verdicts", ""] + [f"- {v}" for v in verdicts(rows, baselines)] + [""]
    tests = list(spec.test_sets)
    bleu_rows = []
    for row in rows:
        test = row.bootstrap
        delta = f"{test.delta:+.2f} [{test.ci_low:+.2f}, {test.ci_high:+.2f}]" if test else "-"
        p_value = f"{test.p_value:.3f}" if test else "-"
        bleu_rows.append([row.variant, ",".join(map(str, row.seeds)) or "-",
                          *(_fmt(*row.bleu[t]) for t in tests), delta, p_value,
                          _fmt(*row.updates, digits=0), _fmt(*row.epochs, digits=0), _fmt(*row.train_hours),
                          ", ".join(row.stopped_by) or "-"])
    lines += ["## BLEU (sacreBLEU, mean ± sd over seeds)", "",
              markdown_table(["variant", "seeds", *tests, f"Δ {main_test} vs softmax [95% CI]", "p", "updates",
                              "epochs", "train h (1 core)", "stopped by"], bleu_rows)]
    signature = next((r.bleu_signature for r in rows if r.bleu_signature), None)
    test_signature = next((r.bootstrap.signature for r in rows if r.bootstrap), None)
    lines += ["", f"BLEU signature: `{signature}`" if signature else "",
              f"Significance: `{test_signature}` (paired bootstrap of the seed-mean BLEU on {main_test}; "
              "p from sacreBLEU's test statistic)" if test_signature else "", ""]
    finished = [r for r in results if r.complete]
    if finished:
        run_rows = [[r.variant, r.seed, *(_fmt(r.bleu[t].bleu) if t in r.bleu else "-" for t in tests),
                     r.train["updates"], r.train["epochs"], _fmt(r.train.get("best_valid_bleu")),
                     _fmt((r.train.get("train_seconds") or 0) / 3600), r.train.get("stopped_by", "-"),
                     r.train.get("device", "-")] for r in finished]
        lines += ["## Runs", "", markdown_table(["variant", "seed", *tests, "updates", "epochs", "best valid BLEU",
                                                 "training wall (h)", "stopped by", "device"], run_rows), "",
                  "Training hours (`train h` above, `training wall` here): the wall clock of the "
                  "fairseq-train sessions (first to last timestamp of each session's log, validation "
                  "included), summed over sessions; fairseq's own `train_wall` restarts at 0 on every "
                  "resume. It includes any time the run was paused or shared its core (background runs "
                  "were paused while speed benchmarks ran), so compare updates and epochs across "
                  "variants, not hours.", ""]
    if curves:
        lines += ["## Training curves", "", "![validation loss and BLEU against updates](curves.png)", ""]
    if any(r.stats for r in results):
        attention_rows = []
        for row in rows:
            where = lambda k: f" ({', '.join(row.aer_where[k])})" if row.aer_where[k] else ""  # noqa: E731
            attention_rows.append([
                row.variant,
                _fmt(*row.aer["argmax.normal.best-head"], digits=3) + where("argmax.normal.best-head"),
                _fmt(*row.aer["argmax.shift.best-head"], digits=3) + where("argmax.shift.best-head"),
                _fmt(*row.aer["argmax.normal.avg"], digits=3), _fmt(*row.aer["argmax.shift.avg"], digits=3),
                " / ".join(_fmt(row.sparsity[s][0], digits=3) for s in SUBLAYERS),
                " / ".join(_fmt(row.null_rate[s][0], digits=3) for s in SUBLAYERS),
                _fmt(*row.js_diversity["cross"], digits=3)])
        lines += ["## Attention (RWTH gold text, teacher forcing; mean ± sd over seeds)", "",
                  markdown_table(["variant", "AER best head normal", "AER best head shifted", "AER head-avg normal",
                                  "AER head-avg shifted", "sparsity enc / dec / cross", "null rate enc / dec / cross",
                                  "JS diversity cross"], attention_rows)]
        lines += ["", "Null-attention rate per sublayer and layer (share of query rows that are all zero):", ""]
        lines += per_layer_table(results, "null_rate")
        lines += ["", "Sparsity per sublayer and layer (share of exact zeros among allowed positions):", ""]
        lines += per_layer_table(results, "sparsity")
        lines += ["", "AER per decoder layer (best head solid, head average dashed; seed 1 of each variant): "
                  "[alignment-report/report.md](alignment-report/report.md)", ""]
    if baselines:
        lines += ["## Statistical aligners on the same gold set (grow-diag-final-and)", "",
                  markdown_table(["aligner", "AER", "trained on"],
                                 [[entry.aligner, f"{entry.aer:.3f}", entry.trained_on] for entry in baselines]),
                  ""]
    atomic_write_text(spec.out_dir / "summary.md", "\n".join(lines))
    SummaryRecord(
        command=command, checkpoint=spec.checkpoint, stopping_rule=spec.stopping_rule, rows=rows, pending=pending,
        baselines=baselines,
        runs=[RunSummary(variant=r.variant, seed=r.seed,
                         train={k: v for k, v in (r.train or {}).items() if k != "history"},
                         bleu={k: v.bleu for k, v in r.bleu.items()}) for r in results],
    ).write(spec.out_dir / "summary.json")
    if spec.gold is not None:
        firsts = {}
        for result in results:
            if result.aer and result.variant not in firsts:
                firsts[result.variant] = result
        if firsts:
            arguments = []
            for variant, result in firsts.items():
                arguments += ["--run", f"{variant}={result.folder / 'attention'}"]
            run_logged([BIN / "alignment-eval", "report", *arguments, "--out-dir", spec.out_dir / "alignment-report"],
                 spec.out_dir / "report.log")
    log(f"summary: {spec.out_dir / 'summary.md'} ({len(results) - len(pending)} of {len(results)} runs finished)")
    return spec.out_dir / "summary.md"
