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
    CHECKPOINTS/<name>/<variant>/seed<N>/              fairseq checkpoints, run.json, train.log
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from alignment_eval.io import atomic_write_text

from . import bleu as bleu_module
from .errors import PipelineError
from .files import sha256_file
from .steps import run_step
from .training import TrainingRun, data_fingerprint, normalised_command, train
from .translate import PLUGIN_DIR, translate

BIN = Path(sys.executable).parent
CHECKPOINT_CHOICE = re.compile(r"^(best|last|average-last-(\d+))$")


@dataclass
class GoldSet:
    text: Path  # 'src ||| tgt'
    alignment: Path
    one_based: bool = True
    reverse: bool = False  # the model translates the text's target side


@dataclass
class TestSet:
    """A binarized test subset of the data-bin and its raw reference."""

    subset: str  # fairseq subset name: test, test1, ...
    reference: Path


@dataclass
class AlignerTraining:
    """What the statistical aligners are trained on besides the gold set's own text."""

    label: str  # shown in the report, e.g. "gold text + Multi30k train (29,508 pairs)"
    extra_source: Optional[Path] = None  # tokenised, one sentence a line
    extra_target: Optional[Path] = None


@dataclass
class ExperimentSpec:
    """What to run: the data, the variants and seeds, the shared architecture and stopping rule."""

    name: str
    data_bin: Path
    spm_model: Path
    test_sets: Dict[str, TestSet]  # first = main test set
    out_dir: Path
    variants: Sequence[str] = ("softmax", "rela")
    seeds: Sequence[int] = (1,)
    seed_plan: Mapping[str, Sequence[int]] = field(default_factory=dict)  # per-variant seeds, overriding ``seeds``
    arch: str = "sparse_transformer_tiny"
    arch_args: Sequence[str] = ()
    train_args: Sequence[str] = ()
    max_update: int = 1000
    patience: Optional[int] = None  # validations without a new best validation BLEU before stopping
    valid_bleu: bool = False  # compute validation BLEU every epoch (needed by patience and checkpoint 'best')
    keep_last_epochs: int = 0  # epoch checkpoints to keep (needed by 'average-last-N')
    checkpoint: str = "last"  # best | last | average-last-N
    gold: Optional[GoldSet] = None
    beam: int = 4
    generate_args: Sequence[str] = ()  # extra fairseq-generate options (e.g. a length limit for smoke runs)
    post_process: str = "sentencepiece"  # fairseq-generate --post-process: pieces -> detokenised text
    checkpoint_root: Path = Path("checkpoints")  # kept out of out_dir, which may be committed
    on_change: str = "refuse"  # what to do with a checkpoint folder trained with other settings
    aligner_training: Sequence[AlignerTraining] = ()  # fast_align/eflomal baselines on the gold set
    notes: List[str] = field(default_factory=list)

    def __post_init__(self):
        match = CHECKPOINT_CHOICE.match(self.checkpoint)
        if not match:
            raise PipelineError(f"checkpoint choice {self.checkpoint!r}: use best, last or average-last-N")
        if self.checkpoint == "best" and not self.valid_bleu:
            raise PipelineError("checkpoint 'best' needs validation BLEU (valid_bleu=True)")
        if match.group(2) and int(match.group(2)) > self.keep_last_epochs:
            raise PipelineError(f"{self.checkpoint} needs keep_last_epochs >= {match.group(2)}")
        if self.patience is not None and not self.valid_bleu:
            raise PipelineError("patience counts validations without a better BLEU: it needs valid_bleu=True")

    @property
    def stopping_rule(self) -> str:
        rule = f"at most {self.max_update} updates"
        if self.patience:
            rule += (f"; stopped earlier when validation BLEU (greedy, every epoch) has not improved "
                     f"for {self.patience} epochs")
        return rule


@dataclass
class Run:
    """One (variant, seed) of an experiment."""

    spec: ExperimentSpec
    variant: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.variant} seed {self.seed}"

    @property
    def save_dir(self) -> Path:
        return self.spec.checkpoint_root / self.spec.name / self.variant / f"seed{self.seed}"

    @property
    def out(self) -> Path:
        return self.spec.out_dir / self.variant / f"seed{self.seed}"


def subprocess_environment() -> dict:
    """The environment for fairseq/alignment-eval subprocesses: one intra-op thread unless the user set one.

    On a small shared CPU machine torch's default (one thread per core) is slower by an order of
    magnitude as soon as anything else runs (measured here: 0.28 vs 5.5 updates/s for the tiny model).
    """
    environment = os.environ.copy()
    environment.setdefault("OMP_NUM_THREADS", "1")
    return environment


def _run(command: Sequence, log: Path) -> None:
    """Run ``command``, streaming its output to ``log``; raise with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(f"$ {shlex.join(map(str, command))}\n")
        stream.flush()
        result = subprocess.run(list(map(str, command)), stdout=stream, stderr=subprocess.STDOUT,
                                env=subprocess_environment())
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        raise RuntimeError(f"{Path(str(command[0])).name} failed (exit {result.returncode}); see {log}:\n{tail}")


VALID_BLEU_ARGS = ["--eval-bleu", "--eval-bleu-args", '{"beam": 1, "max_len_a": 1.2, "max_len_b": 10}',
                   "--eval-bleu-remove-bpe", "sentencepiece", "--best-checkpoint-metric", "bleu",
                   "--maximize-best-checkpoint-metric"]


def train_command(spec: ExperimentSpec, variant: str, seed: int, save_dir: Path) -> List[str]:
    """The fairseq-train command of one run (JSON log: the curves are read from it)."""
    command = [
        BIN / "fairseq-train", spec.data_bin, "--user-dir", PLUGIN_DIR, "--arch", spec.arch,
        "--attention", variant, *spec.arch_args,
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-8",
        "--lr-scheduler", "inverse_sqrt", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        *spec.train_args, "--max-update", str(spec.max_update), "--seed", str(seed),
        "--save-dir", save_dir, "--required-batch-size-multiple", "1",
        "--log-format", "json", "--log-interval", "50", "--num-workers", "0",
    ]
    if spec.valid_bleu:
        command += VALID_BLEU_ARGS
    if spec.patience is not None:
        command += ["--patience", str(spec.patience)]
    command += ["--keep-last-epochs", str(spec.keep_last_epochs)] if spec.keep_last_epochs else ["--no-epoch-checkpoints"]
    return [str(word) for word in command]


def training_run(run: Run) -> TrainingRun:
    command = train_command(run.spec, run.variant, run.seed, run.save_dir)
    names = {str(run.spec.data_bin): "<data-bin>", str(run.save_dir): "<save-dir>", str(PLUGIN_DIR): "<plugin>"}
    return TrainingRun(save_dir=run.save_dir, command=command, identity=normalised_command(command, names),
                       data=data_fingerprint(run.spec.data_bin))


def train_run(run: Run, log: Callable[[str], None] = print) -> dict:
    """Train (resume, or reuse) one run and copy its record and curve next to its results."""
    from .curves import read_log

    job = training_run(run)
    if job.done() is None:
        log(f"[{run.label}] training {run.spec.arch} ({run.spec.stopping_rule})")
    record = train(job, environment=subprocess_environment(), on_change=run.spec.on_change, log=log)
    history = read_log(job.log_file)
    run.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.out / "train.json", json.dumps(
        {**record, "command": shlex.join(job.command), "checkpoint_dir": str(run.save_dir),
         "device": device_description(subprocess_environment()),
         "history": history.as_dict()}, indent=1) + "\n")
    return record


def device_description(environment: dict) -> str:
    """'CPU <model>, <n> torch thread(s)' for the subprocesses' environment (training here is CPU-only)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {environment.get('OMP_NUM_THREADS', os.cpu_count())} thread(s)"


def average_checkpoints(paths: Sequence[Path], output: Path) -> Path:
    """Mean of the model parameters of ``paths`` (Vaswani et al. 2017, sec. 6.1), written atomically."""
    import torch

    states = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    averaged = {}
    for name, tensor in states[0]["model"].items():
        if tensor.is_floating_point():
            averaged[name] = sum(s["model"][name].double() for s in states).div(len(states)).to(tensor.dtype)
        else:
            averaged[name] = tensor
    result = dict(states[-1])
    result["model"] = averaged
    result["last_optimizer_state"] = None
    temporary = output.with_name(output.name + ".tmp")
    torch.save(result, temporary)
    os.replace(temporary, output)
    return output


def chosen_checkpoint(run: Run) -> Path:
    """The checkpoint the run is evaluated with, per ``spec.checkpoint`` (averaged on demand)."""
    choice = run.spec.checkpoint
    if choice in ("best", "last"):
        path = run.save_dir / f"checkpoint_{choice}.pt"
        if not path.is_file():
            raise PipelineError(f"{path}: missing; the training run did not save it")
        return path
    count = int(CHECKPOINT_CHOICE.match(choice).group(2))
    epochs = sorted((int(m.group(1)), p) for p in run.save_dir.glob("checkpoint*.pt")
                    if (m := re.fullmatch(r"checkpoint(\d+)\.pt", p.name)))
    if len(epochs) < count:
        raise PipelineError(f"{run.save_dir}: {choice} needs {count} epoch checkpoints, found {len(epochs)}")
    chosen = [p for _, p in epochs[-count:]]
    output = run.save_dir / f"checkpoint_{choice}.pt"
    marker = run.save_dir / f"checkpoint_{choice}.done.json"
    run_step(f"average {choice}", marker, params={"count": count},
             inputs={p.name: sha256_file(p) for p in chosen}, outputs=[output],
             action=lambda: {"averaged": [p.name for p in chosen]} if average_checkpoints(chosen, output) else None)
    return output


def evaluate_run(run: Run, log: Callable[[str], None] = print) -> None:
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
            atomic_write_text(folder / "bleu.json", json.dumps(
                {**scores.as_dict(), "checkpoint": spec.checkpoint, "beam": spec.beam}, indent=1) + "\n")

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
                 action=lambda: _run([BIN / "alignment-eval", "stats", *model_args, "--out-dir", attention_dir],
                                     run.out / "eval.log"))
        gold_args = ["--gold", gold.alignment] + (["--gold-one-based"] if gold.one_based else [])
        run_step("alignment", attention_dir / "aer.done.json", params={"methods": ["argmax", "nonzero"]},
                 inputs={**gold_inputs, "gold_sha256": sha256_file(gold.alignment)},
                 outputs=[attention_dir / "aer.json"],
                 action=lambda: _run([BIN / "alignment-eval", "extract", *model_args, *gold_args, "--methods",
                                      "argmax", "nonzero", "--out-dir", attention_dir], run.out / "eval.log"))


def aligner_baselines(spec: ExperimentSpec, log: Callable[[str], None] = print) -> Optional[dict]:
    """fast_align and eflomal (grow-diag-final-and) on the gold set, once per ``spec.aligner_training``.

    Writes OUT/baselines/<n>/baseline.json (alignment-eval baseline) and OUT/baselines/summary.json:
    ``[{"aligner": ..., "aer": ..., "trained_on": label, "training_pairs": ...}, ...]``.
    """
    if spec.gold is None or not spec.aligner_training:
        return None
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
            _run([BIN / "alignment-eval", "baseline", "--text", gold.text, "--gold", gold.alignment,
                  *(["--gold-one-based"] if gold.one_based else []), *extra, "--out-dir", folder],
                 folder / "baseline.log")

        run_step("aligner baselines", folder / "baseline.done.json", params={"label": training.label}, inputs=inputs,
                 outputs=[folder / "baseline.json"], action=align)
        report = json.loads((folder / "baseline.json").read_text(encoding="utf-8"))
        for name, entry in report["aligners"].items():
            summary.append({"aligner": name, "aer": entry["results"]["gdfa"]["aer"], "trained_on": training.label,
                            "training_pairs": entry["training_sentences"]})
    atomic_write_text(spec.out_dir / "baselines" / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def runs_of(spec: ExperimentSpec) -> List[Run]:
    return [Run(spec, variant, seed) for variant in spec.variants for seed in spec.seed_plan.get(variant, spec.seeds)]


def run_experiment(spec: ExperimentSpec, command: str, log: Callable[[str], None] = print, *,
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
             action=lambda: _run(command, run.out / "interpret.log"))
    return out_dir / "interpret.md"
