"""Train, translate and evaluate attention variants x seeds on one prepared corpus.

One run per (variant, seed), all with the same architecture and stopping rule:
fairseq-train (fingerprinted, resumable: :mod:`mt_pipeline.training`) -> the stated
checkpoint (best by validation BLEU, last, or the average of the last N epochs) ->
fairseq-generate on every test set (detokenised, every sentence) -> sacreBLEU ->
``alignment-eval stats`` and ``extract`` against a gold set -> summary
(:mod:`mt_pipeline.summary`).

Every evaluation step carries a completion marker whose fingerprint holds the training
run's fingerprint, the checkpoint file's hash and the step's own settings
(:func:`mt_pipeline.steps.run_step`): a step is skipped only when exactly that was done
before, so a rerun with other settings never re-reports old outputs.

Output layout::

    OUT/<variant>/seed<N>/train.json                   training record + curve (copied from the checkpoint folder)
    OUT/<variant>/seed<N>/<test set>/translate.json    + test.hyp (not committed), bleu.json
    OUT/<variant>/seed<N>/attention/                   stats.json, aer.json (alignment-eval)
    OUT/explorer/explorer.html                         every variant's seed-1 attention, side by side
                                                       (alignment-eval explore; holds the text: not committed)
    CHECKPOINTS/<name>/<variant>/seed<N>/              fairseq checkpoints, run.json, train.log
"""

from __future__ import annotations

import dataclasses

import os
import shlex
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from nmt_common.files import write_json
from nmt_common.machine import cpu_model
from nmt_common.records import write_record

from . import bleu as bleu_module
from .files import sha256_file
from .log import log as log_progress
from .spec import ExperimentSpec, Run, chosen_checkpoint, runs_of, training_run
from .steps import run_step
from .subprocesses import BIN, run_logged, subprocess_environment
from .training import train
from .translate import translate


def train_run(run: Run, log: Callable[[str], None] = log_progress) -> dict:
    """Train (resume, or reuse) one run and copy its record and curve next to its results."""
    from .curves import read_log

    job = training_run(run)
    if job.done() is None:
        log(f"[{run.label}] training {run.spec.arch} ({run.spec.stopping_rule})")
    record = train(job, environment=subprocess_environment(), on_change=run.spec.on_change, log=log)
    history = read_log(job.log_file)
    run.out.mkdir(parents=True, exist_ok=True)
    write_json(run.out / "train.json", {
        **record, "train_seconds": history.train_seconds,  # from the whole log, every session
        "command": shlex.join(job.command), "checkpoint_dir": str(run.save_dir),
        "device": device_description(subprocess_environment()), "history": history.as_dict()}, indent=1)
    return record


def device_description(environment: dict) -> str:
    """'CPU <model>, <n> torch thread(s)' for the subprocesses' environment (training here is CPU-only)."""
    return f"CPU {cpu_model()}, {environment.get('OMP_NUM_THREADS', os.cpu_count())} thread(s)"


def evaluate_run(run: Run, log: Callable[[str], None] = log_progress) -> None:
    """Translate every test set with the chosen checkpoint, score it, and (with a gold set) measure attention."""
    spec = run.spec
    checkpoint = chosen_checkpoint(run)
    model = {"training": training_run(run).fingerprint, "checkpoint": spec.checkpoint,
             "checkpoint_sha256": sha256_file(checkpoint)}
    for name, test in spec.test_sets.items():
        folder = run.out / name
        hypotheses = folder / "test.hyp"
        settings = {"beam": spec.beam, "generate_args": list(spec.generate_args), "subset": test.subset,
                    "post_process": spec.post_process}

        def do_translate(test=test, hypotheses=hypotheses, folder=folder, name=name):
            log(f"[{run.label}] translating {name} (beam {spec.beam}, {spec.checkpoint} checkpoint)")
            translation = translate(spec.data_bin, checkpoint, hypotheses, subset=test.subset, beam=spec.beam,
                                    post_process=spec.post_process, extra_args=spec.generate_args)
            translation.write_record(folder / "translate.json")
            return {"sentences": translation.sentences}

        translated, _ = run_step("translate", folder / "translate.done.json", params=settings, inputs=model,
                                 outputs=[hypotheses, folder / "translate.json"], action=do_translate)

        def do_score(test=test, hypotheses=hypotheses, folder=folder):
            scores = bleu_module.score(hypotheses, test.reference)
            dataclasses.replace(scores, checkpoint=spec.checkpoint, beam=spec.beam).write(folder / "bleu.json")

        run_step("bleu", folder / "bleu.done.json", params={"reference": str(test.reference)},
                 inputs={"translation": translated, "reference_sha256": sha256_file(test.reference)},
                 outputs=[folder / "bleu.json"], action=do_score)

    if spec.gold is not None:
        gold = spec.gold
        attention_dir = run.out / "attention"
        model_args = ["--checkpoint", checkpoint, "--data-dir", spec.data_bin, "--spm", spec.spm_model,
                      "--text", gold.text] + (["--reverse"] if gold.reverse else [])
        gold_inputs = {**model, "text_sha256": sha256_file(gold.text), "reverse": gold.reverse}
        run_step("attention stats", attention_dir / "stats.done.json", params={}, inputs=gold_inputs,
                 outputs=[attention_dir / "stats.json"],
                 action=lambda: run_logged([BIN / "alignment-eval", "stats", *model_args, "--out-dir", attention_dir],
                                     run.out / "eval.log"))
        gold_args = ["--gold", gold.alignment] + (["--gold-one-based"] if gold.one_based else [])
        run_step("alignment", attention_dir / "aer.done.json", params={"methods": ["argmax", "nonzero"]},
                 inputs={**gold_inputs, "gold_sha256": sha256_file(gold.alignment)},
                 outputs=[attention_dir / "aer.json"],
                 action=lambda: run_logged([BIN / "alignment-eval", "extract", *model_args, *gold_args, "--methods",
                                      "argmax", "nonzero", "--out-dir", attention_dir], run.out / "eval.log"))


#: Sentence pairs on the explorer page of an experiment (the first of the gold or test text): a page of
#: every variant stays small (about 3 MB per tiny model) and quick to build; ``alignment-eval explore``
#: without --sentences covers a whole text.
EXPLORER_SENTENCES = 100


def explorer_text(spec: ExperimentSpec, folder: Path) -> Optional[tuple]:
    """(text, gold args, inputs) for the explorer page: the gold set, else the prepared test set
    (written to ``folder/text.src-tgt`` as 'source ||| reference'); None when there is neither."""
    if spec.gold is not None:
        gold = spec.gold
        arguments = ["--gold", gold.alignment] + (["--gold-one-based"] if gold.one_based else [])
        arguments += ["--reverse"] if gold.reverse else []
        return gold.text, arguments, {"text_sha256": sha256_file(gold.text), "gold_sha256": sha256_file(gold.alignment),
                                      "reverse": gold.reverse}
    from .errors import PipelineError
    from .prepare import PreparedData

    try:
        text = explorer_test_text(PreparedData.load(spec.data_bin), folder)
    except PipelineError:
        return None
    return (text, [], {"text_sha256": sha256_file(text)}) if text is not None else None


def explorer_test_text(prepared, folder: Path) -> Optional[Path]:
    """The first :data:`EXPLORER_SENTENCES` raw test pairs of a prepared corpus as ``folder/text.src-tgt``
    ('source ||| reference', written atomically); None when it has no test set."""
    from nmt_common.files import atomic_write_text

    if prepared.test_source is None or prepared.test_reference is None:
        return None
    sources = prepared.test_source.read_text(encoding="utf-8").splitlines()[:EXPLORER_SENTENCES]
    targets = prepared.test_reference.read_text(encoding="utf-8").splitlines()[:EXPLORER_SENTENCES]
    text = folder / "text.src-tgt"
    atomic_write_text(text, "".join(f"{s.strip()} ||| {t.strip()}\n" for s, t in zip(sources, targets)))
    return text


def explorer_page(spec: ExperimentSpec, runs: Sequence[Run], log: Callable[[str], None] = log_progress) -> Optional[Path]:
    """``alignment-eval explore`` on every variant's seed-1 run (its lowest seed without one) -> OUT/explorer/.

    One page, the variants side by side, on the first :data:`EXPLORER_SENTENCES` pairs of the gold text (with
    its links) or of the test set. Fingerprinted like every step (checkpoints' hashes, text, settings): a rerun
    skips it. It contains the text, so OUT/explorer/ is not committed (.gitignore). A page that cannot be
    built is reported and skipped: it never stops an experiment.
    """
    from .errors import PipelineError

    chosen = {}
    for run in sorted(runs, key=lambda r: (r.seed != 1, r.seed)):
        if run.variant not in chosen and training_run(run).done() is not None:
            chosen[run.variant] = run
    folder = spec.out_dir / "explorer"
    try:
        checkpoints = {variant: chosen_checkpoint(run) for variant, run in chosen.items()}
        text = explorer_text(spec, folder) if checkpoints else None
    except (PipelineError, OSError) as exc:
        log(f"[explorer] page skipped: {exc}")
        return None
    if text is None:
        if checkpoints:
            log(f"[explorer] page skipped: no gold set and no prepared test set in {spec.data_bin}")
        return None
    text_path, gold_args, text_inputs = text
    page = folder / "explorer.html"
    command = [BIN / "alignment-eval", "explore", "--data-dir", spec.data_bin, "--text", text_path, *gold_args,
               "--sentences", str(EXPLORER_SENTENCES), "--title", f"{spec.name}: attention of seed-1 models",
               "--out", page]
    if Path(spec.spm_model).is_file():
        command += ["--spm", spec.spm_model]
    for variant, checkpoint in checkpoints.items():
        command += ["--checkpoint", checkpoint, "--label", f"{variant} (seed {chosen[variant].seed})"]
    inputs = {**text_inputs, "checkpoints": {variant: sha256_file(c) for variant, c in checkpoints.items()}}
    try:
        run_step("explorer page", folder / "explorer.done.json", params={"sentences": EXPLORER_SENTENCES},
                 inputs=inputs, outputs=[page],
                 action=lambda: run_logged(command, folder / "explore.log"))
    except RuntimeError as exc:  # the log's tail names the problem
        log(f"[explorer] page not built: {exc}")
        return None
    return page


def aligner_baselines(spec: ExperimentSpec, log: Callable[[str], None] = log_progress) -> Optional[list]:
    """fast_align and eflomal (grow-diag-final-and) on the gold set, once per ``spec.aligner_training``.

    Writes OUT/baselines/<n>/baseline.json (alignment-eval baseline) and OUT/baselines/summary.json,
    a list of :class:`mt_pipeline.summary.AlignerSummary`, which it returns.
    """
    if spec.gold is None or not spec.aligner_training:
        return None
    from alignment_eval.alignments.records import BaselineReport

    from .summary import AlignerSummary, read_alignment_record

    gold = spec.gold
    summary = []
    for index, training in enumerate(spec.aligner_training, 1):
        folder = spec.out_dir / "baselines" / str(index)
        extra = []
        inputs = {"text": sha256_file(gold.text), "gold": sha256_file(gold.alignment)}
        if training.extra_source is not None:
            extra = ["--extra-src", training.extra_source, "--extra-tgt", training.extra_target]
            inputs.update(extra_source=sha256_file(training.extra_source), extra_target=sha256_file(training.extra_target))

        def align(folder=folder, extra=extra, training=training):
            log(f"[aligners] fast_align and eflomal on {training.label}")
            run_logged([BIN / "alignment-eval", "baseline", "--text", gold.text, "--gold", gold.alignment,
                  *(["--gold-one-based"] if gold.one_based else []), *extra, "--out-dir", folder],
                 folder / "baseline.log")

        run_step("aligner baselines", folder / "baseline.done.json", params={"label": training.label}, inputs=inputs,
                 outputs=[folder / "baseline.json"], action=align)
        report = read_alignment_record(BaselineReport, folder / "baseline.json")
        for name, entry in report.aligners.items():
            summary.append(AlignerSummary(aligner=name, aer=entry.results["gdfa"].aer, trained_on=training.label,
                                          training_pairs=entry.training_sentences))
    write_record(spec.out_dir / "baselines" / "summary.json", summary, indent=1)
    return summary


def run_experiment(spec: ExperimentSpec, command: str, log: Callable[[str], None] = log_progress, *,
                   train_only: bool = False, jobs: int = 1, finished_only: bool = False) -> List[Run]:
    """Train, evaluate and summarise every (variant, seed); resumes wherever a previous call stopped.

    ``jobs`` > 1 trains that many runs at a time (each fairseq-train on one thread).
    ``finished_only`` evaluates and reports the runs whose training has finished, and trains nothing.
    """
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    runs = runs_of(spec)
    if finished_only:  # report what is done; unfinished runs are listed as pending, never trained here
        runs = [run for run in runs if training_run(run).done() is not None]
    if jobs > 1:  # training runs side by side, one thread each (the subprocess environment's default)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(train_run, run, log) for run in runs]:
                future.result()
    for run in runs:
        train_run(run, log)
        if not train_only:
            evaluate_run(run, log)
    if not train_only:
        from .summary import write_summary

        explorer_page(spec, runs, log)
        aligner_baselines(spec, log)
        write_summary(spec, command, log)
    return runs


def interpret_battery(run: Run, text: Path, *, seed_runs: Sequence[Run] = (), max_sentences: int = 60,
                      lambdas: Sequence[str] = ("0.1", "1"), steps: int = 100, projections: int = 16) -> Path:
    """``alignment-eval interpret all`` on a run's chosen checkpoint -> OUT/<variant>/seed<N>/interpret/.

    uniform, importance, coindex and adversarial; plus the seeds test (Wiegreffe & Pinter 2019)
    over ``seed_runs`` when there are at least two. Keyed, like every step, by the checkpoints'
    hashes and the settings: other checkpoints or settings run it again.
    """
    spec = run.spec
    checkpoint = chosen_checkpoint(run)
    seed_checkpoints = [chosen_checkpoint(r) for r in seed_runs] if len(seed_runs) >= 2 else []
    out_dir = run.out / "interpret"
    command = [BIN / "alignment-eval", "interpret", "all", "--checkpoint", checkpoint, "--data-dir", spec.data_bin,
               "--spm", spec.spm_model, "--text", text, "--max-sentences", str(max_sentences),
               "--lambdas", *lambdas, "--steps", str(steps), "--projections", str(projections), "--out-dir", out_dir]
    if seed_checkpoints:
        command += ["--checkpoints", *seed_checkpoints]
    settings = {"max_sentences": max_sentences, "lambdas": list(lambdas), "steps": steps, "projections": projections}
    inputs = {"checkpoint": sha256_file(checkpoint), "seeds": [sha256_file(c) for c in seed_checkpoints],
              "text": sha256_file(text)}
    run_step("interpret", out_dir / "interpret.done.json", params=settings, inputs=inputs,
             outputs=[out_dir / "interpret.json", out_dir / "interpret.md"],
             action=lambda: run_logged(command, run.out / "interpret.log"))
    return out_dir / "interpret.md"
