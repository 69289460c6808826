"""What an experiment runs: its spec, its (variant, seed) runs, each run's fairseq-train command and
the checkpoint it is evaluated with (:mod:`mt_pipeline.experiment` runs them; :mod:`mt_pipeline.summary`
reports them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from nmt_common.files import atomic_path

from .errors import PipelineError
from .files import sha256_file
from .steps import run_step
from .subprocesses import BIN, PLUGIN_DIR
from .training import TrainingRun, data_fingerprint, normalised_command

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


def runs_of(spec: ExperimentSpec) -> List[Run]:
    return [Run(spec, variant, seed) for variant in spec.variants for seed in spec.seed_plan.get(variant, spec.seeds)]


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
    with atomic_path(output) as temporary:
        torch.save(result, temporary)
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
