"""Model-level benchmark: fairseq training throughput and beam-search decoding per attention variant.

    python -m benchmarks.model --mode quick|full [--cases small/long,...] [--out results/perf] [--threads N]

A mode is a tuple of cases: a model (``<variant>_transformer_<size>`` with extra fairseq
options, built in-process as ``fairseq-train`` would) x a sentence-length bucket.  Per
case, one model per variant lives in the same process; after a warm-up, R rounds go
round-robin over the variants; in each round every variant

* trains on the same synthetic batches (fairseq's label-smoothed cross-entropy
  criterion, eps 0.1, and Adam): **target tokens per second**;
* translates the same synthetic sources with fairseq's ``SequenceGenerator``, beam 4,
  every hypothesis forced to exactly ``decode_length`` tokens (``min_len = max_len``),
  so that every variant does the same work whatever its untrained model prefers:
  **sentences per second**.

Each variant's ratio to softmax is taken per round (same moment, same load) and
reported as median with min/max and quartiles over the rounds.

After the timed rounds, a separate profiling pass (hooks cost time, so never inside
the rounds) measures the **share of step time spent in the attention modules**
(``SparseMultiheadAttention``, projections included):

* decoding: forward pre-/post-hooks time every attention call of a generation pass;
  share = time inside attention / generation time;
* training: backward hooks do not time these modules, so the share is a replay
  estimate: every attention call of one training step is captured (inputs copied), then
  replayed alone, forward and backward; share = replay time / time of one training step
  (forward, backward, optimizer) over the same batches.

Each share is the median over a few passes, timed on the process's CPU time on CPU
(see :func:`share_clock`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from nmt_common.figures import pyplot, save_figure
from nmt_common.logs import setup_logging, verbosity
from nmt_common.variants import VARIANTS

from .common import PLUGIN_DIR, add_common_arguments, command_line, machine_description, set_threads, summary
from .common import synchronize, write_outputs as write_common_outputs
from .records import AttentionShare, CaseBucket, CaseModel, CaseResult, ModelResult, ModelRunSettings, RoundRates
from .records import Summary, VariantResult
from .report import write_report_or_exit

logger = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class ModelConfig:
    label: str
    size: str  # architecture size: <variant>_transformer_<size>
    extra_args: Tuple[str, ...]  # fairseq options on top of the architecture
    vocab: int


@dataclass(frozen=True)
class LengthBucket:
    label: str
    train_batches: Tuple[Tuple[int, int, int], ...]  # (sentences, source length, target length)
    decode_batches: Tuple[Tuple[int, int], ...]  # (sentences, source length)
    decode_length: int  # every hypothesis decodes exactly this many tokens (+ EOS)


@dataclass(frozen=True)
class Case:
    model: ModelConfig
    bucket: LengthBucket

    @property
    def name(self) -> str:
        return f"{self.model.label}/{self.bucket.label}"


@dataclass(frozen=True)
class ModelSettings:
    """One mode of the model benchmark."""

    cases: Tuple[Case, ...]
    beam: int
    rounds: int  # measured rounds per case
    warmup_rounds: int  # per case
    profile_seconds: float  # attention shares: passes until this much step time, median (see attention_share)
    seed: int = 0


def _cases(models: Sequence[ModelConfig], buckets: Sequence[LengthBucket]) -> Tuple[Case, ...]:
    return tuple(Case(model, bucket) for model in models for bucket in buckets)


# fairseq's transformer_iwslt_de_en sizes (d 512, FFN 1024, 4 heads) with 3+3 layers
RECORD = ModelConfig("record", "iwslt_de_en", ("--encoder-layers", "3", "--decoder-layers", "3"), 6000)
# the tiny architecture (2+2 layers, d 64, 4 heads): attention is a large share of the work
SMALL = ModelConfig("small", "tiny", (), 1000)
# about 1,500-1,800 target tokens per training round in every bucket, and 1,536 source tokens per
# decoding round, batched as `fairseq-generate --max-tokens 1536` would (the runner decodes with
# --batch-size 64).  Smaller decoding batches (--decode-sentences) are the per-call-overhead worst case.
SHORT = LengthBucket("short", train_batches=((48, 12, 13), (24, 24, 26), (16, 30, 32)),
                     decode_batches=((48, 16), (24, 32)), decode_length=20)
MEDIUM = LengthBucket("medium", train_batches=((16, 56, 58), (12, 64, 66)),
                      decode_batches=((24, 64),), decode_length=48)
LONG = LengthBucket("long", train_batches=((7, 128, 130), (3, 256, 250)),
                    decode_batches=((8, 192),), decode_length=64)

MAX_PROFILE_PASSES = 10  # attention-share passes per phase, whatever profile_seconds asks

MODES: Dict[str, ModelSettings] = {
    # 9 rounds: about 19 min at 1 thread on the 2-core machine (the model level of a 23-min `make bench`)
    "full": ModelSettings(cases=_cases((RECORD, SMALL), (SHORT, MEDIUM, LONG)), beam=4, rounds=9, warmup_rounds=1,
                          profile_seconds=0.5),
    # CI: the small model, shortest and longest bucket
    "quick": ModelSettings(cases=_cases((SMALL,), (SHORT, LONG)), beam=4, rounds=3, warmup_rounds=1,
                           profile_seconds=0.5),
    # tests
    "smoke": ModelSettings(
        cases=_cases(
            (ModelConfig("tiny", "tiny", ("--encoder-layers", "1", "--decoder-layers", "1"), 50),),
            (LengthBucket("len6", train_batches=((4, 6, 7),), decode_batches=((2, 5),), decode_length=4),
             LengthBucket("len20", train_batches=((2, 20, 21),), decode_batches=((2, 20),), decode_length=6)),
        ),
        beam=4, rounds=2, warmup_rounds=0, profile_seconds=0.05,
    ),
}


def build_model(arch: str, extra_args: Sequence[str], dictionary, seed: int):
    """``arch`` exactly as ``fairseq-train`` builds it (argparse and the architecture's defaults)."""
    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    import fairseq_plugins  # noqa: F401  (registers the architectures)

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, ["unused-data-dir", "--arch", arch, "--user-dir", str(PLUGIN_DIR), *extra_args]
    )
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    torch.manual_seed(seed)
    return ARCH_MODEL_REGISTRY[arch].build_model(args, task), args


def make_dictionary(size: int):
    from fairseq.data import Dictionary

    dictionary = Dictionary()
    for i in range(size - dictionary.nspecial):
        dictionary.add_symbol(f"w{i}")
    return dictionary


def _lengths(count: int, longest: int, generator) -> torch.Tensor:
    """Lengths as after fairseq's length bucketing: the longest, the rest a little shorter."""
    jitter = torch.randint(0, max(1, longest // 5) + 1, (count,), generator=generator)
    jitter[0] = 0
    return (longest - jitter).clamp(min=2)


def train_sample(dictionary, sentences: int, src_len: int, tgt_len: int, generator) -> Dict[str, object]:
    """A fairseq training sample: left-padded sources, right-padded targets, shifted decoder input."""
    pad, eos, first = dictionary.pad(), dictionary.eos(), dictionary.nspecial
    src_lengths = _lengths(sentences, src_len, generator)
    tgt_lengths = _lengths(sentences, tgt_len, generator)
    src = torch.full((sentences, src_len), pad)
    target = torch.full((sentences, tgt_len), pad)
    prev = torch.full((sentences, tgt_len), pad)
    for b in range(sentences):
        s, t = int(src_lengths[b]), int(tgt_lengths[b])
        src[b, src_len - s:] = torch.randint(first, len(dictionary), (s,), generator=generator)
        src[b, -1] = eos
        words = torch.randint(first, len(dictionary), (t - 1,), generator=generator)
        target[b, : t - 1] = words
        target[b, t - 1] = eos
        prev[b, 0] = eos
        prev[b, 1:t] = words
    return {
        "id": torch.arange(sentences),
        "nsentences": sentences,
        "ntokens": int(tgt_lengths.sum()),
        "net_input": {"src_tokens": src, "src_lengths": src_lengths, "prev_output_tokens": prev},
        "target": target,
    }


def decode_sample(dictionary, sentences: int, src_len: int, generator) -> Dict[str, object]:
    sample = train_sample(dictionary, sentences, src_len, 2, generator)
    return {"id": sample["id"], "net_input": {k: sample["net_input"][k] for k in ("src_tokens", "src_lengths")}}


def _move(sample, device):
    if isinstance(sample, dict):
        return {k: _move(v, device) for k, v in sample.items()}
    return sample.to(device) if torch.is_tensor(sample) else sample


class VariantRunner:
    """One variant's model, criterion, optimizer and generator."""

    def __init__(self, variant: str, case: Case, beam: int, seed: int, dictionary, device, dtype):
        from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion
        from fairseq.sequence_generator import SequenceGenerator

        self.variant = variant
        self.arch = f"{variant}_transformer_{case.model.size}"
        model, self.args = build_model(self.arch, case.model.extra_args, dictionary, seed)
        self.model = model.to(device=device, dtype=dtype)
        self.device = device
        task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
        self.criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-8)
        length = case.bucket.decode_length
        self.generator = SequenceGenerator(
            [self.model], dictionary, beam_size=beam, max_len_a=0, max_len_b=length, min_len=length,
        )
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def train(self, samples) -> Tuple[float, float, int]:
        """Wall seconds, process CPU seconds and target tokens of one update per sample."""
        self.model.train()
        tokens = 0
        synchronize(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for sample in samples:
            self.optimizer.zero_grad(set_to_none=True)
            loss, sample_size, _ = self.criterion(self.model, sample)
            (loss / sample_size).backward()
            self.optimizer.step()
            tokens += sample["ntokens"]
        synchronize(self.device)
        return time.perf_counter() - start, time.process_time() - cpu_start, tokens

    def decode(self, samples) -> Tuple[float, float, int, int]:
        """Wall seconds, process CPU seconds, sentences and generated tokens (best hypotheses, EOS included)."""
        self.model.eval()
        sentences = generated = 0
        synchronize(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for sample in samples:
            hypotheses = self.generator.generate([self.model], sample)
            sentences += len(hypotheses)
            generated += sum(int(h[0]["tokens"].numel()) for h in hypotheses)
        synchronize(self.device)
        return time.perf_counter() - start, time.process_time() - cpu_start, sentences, generated

    def attention_modules(self) -> List[torch.nn.Module]:
        """Every attention module of the model (encoder, decoder and cross), in model order."""
        from fairseq_plugins.attention import attention_modules

        return [module for _, _, module in attention_modules(self.model)]

    def _seconds(self, fn: Callable[[], object]) -> float:
        """Seconds of ``fn()`` on the attention-share clock (:func:`share_clock`), device synchronized."""
        clock = share_clock(self.device)
        synchronize(self.device)
        start = clock()
        fn()
        synchronize(self.device)
        return clock() - start

    def attention_share(self, train_samples, decode_samples, target_seconds: float) -> AttentionShare:
        """Share of a training step and of a generation pass spent in the attention modules.

        Each phase's share is the median over passes, repeated until ``target_seconds`` of
        step (generation) time are measured, at most :data:`MAX_PROFILE_PASSES` passes.
        """
        calls = self._attention_calls(train_samples)
        shares = AttentionShare(
            train=_median_share(lambda: self._train_share(calls, train_samples), target_seconds),
            decode=_median_share(lambda: self._decode_share(decode_samples), target_seconds),
        )
        self.optimizer.zero_grad(set_to_none=True)
        return shares

    def _attention_calls(self, samples) -> List[Tuple[torch.nn.Module, tuple, dict]]:
        """Every attention call of one training step: the module and leaf copies of its inputs."""
        calls = []

        def capture(module, args, kwargs):
            copies: Dict[int, torch.Tensor] = {}
            calls.append((module, _leaves(args, copies, clone=True), _leaves(kwargs, copies, clone=True)))

        handles = [m.register_forward_pre_hook(capture, with_kwargs=True) for m in self.attention_modules()]
        try:
            self.train(samples)
        finally:
            for handle in handles:
                handle.remove()
        return calls

    def _train_share(self, calls, samples) -> Tuple[float, float]:
        """(replay estimate of the attention share, seconds of the step): one training step without
        hooks, then every captured attention call alone, forward and backward."""
        step_seconds = self._seconds(lambda: self.train(samples))  # leaves the model in training mode
        replay_seconds = 0.0
        for module, args, kwargs in calls:
            module.zero_grad(set_to_none=True)  # as after the step's zero_grad: gradients assigned, not added
            copies: Dict[int, torch.Tensor] = {}  # fresh leaves: no gradient left from an earlier pass
            args, kwargs = _leaves(args, copies, clone=False), _leaves(kwargs, copies, clone=False)
            replay_seconds += self._seconds(functools.partial(_forward_backward, module, args, kwargs))
        return replay_seconds / step_seconds, step_seconds

    def _decode_share(self, samples) -> Tuple[float, float]:
        """(share of one generation pass spent inside the attention modules, seconds of the pass)."""
        with _time_inside(self.attention_modules(), self.device) as inside:
            total = self._seconds(lambda: self.decode(samples))
        return inside[0] / total, total


def share_clock(device: torch.device) -> Callable[[], float]:
    """The clock of the attention shares: the process's CPU time on CPU (a share of wall-clock time
    scatters several-fold between passes on a shared machine: the process waits for a core in
    some timed calls and not in others), wall clock on an accelerator (CPU time misses its work)."""
    return time.process_time if device.type == "cpu" else time.perf_counter


def _median_share(measure: Callable[[], Tuple[float, float]], target_seconds: float) -> float:
    """Median share over calls of ``measure`` (-> share, seconds), repeated until ``target_seconds``."""
    shares, spent = [], 0.0
    while spent < target_seconds and len(shares) < MAX_PROFILE_PASSES:
        share, seconds = measure()
        shares.append(share)
        spent += seconds
    return statistics.median(shares)


def _leaves(value, copies: Dict[int, torch.Tensor], clone: bool):
    """``value`` (nested tuples, lists, dicts) with every tensor replaced by a new leaf (on a copy of
    its data when ``clone``) that requires grad where the original did; one leaf per distinct
    tensor (``copies``: id -> leaf), so that ``query is key is value`` still holds."""
    if torch.is_tensor(value):
        if id(value) not in copies:
            data = value.detach()
            copies[id(value)] = (data.clone() if clone else data).requires_grad_(value.requires_grad)
        return copies[id(value)]
    if isinstance(value, (tuple, list)):
        return type(value)(_leaves(v, copies, clone) for v in value)
    if isinstance(value, dict):
        return {k: _leaves(v, copies, clone) for k, v in value.items()}
    return value


def _forward_backward(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    output, _ = module(*args, **kwargs)
    output.backward(torch.ones_like(output))


@contextmanager
def _time_inside(modules: Sequence[torch.nn.Module], device: torch.device) -> Iterator[List[float]]:
    """Yields ``[seconds]``: time spent inside any of ``modules`` while the block runs (nested calls
    counted once), on the attention-share clock."""
    clock = share_clock(device)
    inside = [0.0]
    depth = 0
    entered = 0.0

    def enter(module, args):
        nonlocal depth, entered
        if depth == 0:
            synchronize(device)
            entered = clock()
        depth += 1

    def leave(module, args, output):
        nonlocal depth
        depth -= 1
        if depth == 0:
            synchronize(device)
            inside[0] += clock() - entered

    handles = [h for m in modules for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        yield inside
    finally:
        for handle in handles:
            handle.remove()


def check_options(mode: str, variants: Sequence[str], rounds: Optional[int], cases: Optional[Sequence[str]]) -> None:
    """ValueError naming what is wrong with the variants, the number of rounds or the cases."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown attention variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = [case.name for case in MODES[mode].cases]
    unknown = [c for c in cases or () if c not in names]
    if unknown:
        raise ValueError(f"unknown case(s) {', '.join(unknown)} in {mode} mode; choose from {', '.join(names)}")


def _length_range(lengths: Sequence[torch.Tensor]) -> Tuple[int, int]:
    every = torch.cat([length.flatten() for length in lengths])
    return int(every.min()), int(every.max())


def run_case(case: Case, settings: ModelSettings, variants: Sequence[str], device, dtype,
             log=logger.info) -> CaseResult:
    """One case: warm-up, round-robin rounds over the variants, then the attention-share pass."""
    started = time.time()
    bucket = case.bucket
    dictionary = make_dictionary(case.model.vocab)
    generator = torch.Generator().manual_seed(settings.seed)
    train_samples = [_move(train_sample(dictionary, *b, generator), device) for b in bucket.train_batches]
    decode_samples = [_move(decode_sample(dictionary, *b, generator), device) for b in bucket.decode_batches]
    runners = {v: VariantRunner(v, case, settings.beam, settings.seed, dictionary, device, dtype) for v in variants}
    for _ in range(settings.warmup_rounds):
        for runner in runners.values():
            runner.train(train_samples)
            runner.decode(decode_samples)
    # rates per round: wall clock (what a user waits for) and process CPU time (what the
    # computation costs; less sensitive to other processes on a shared machine)
    rates = {key: {v: [] for v in variants} for key in ("train", "decode", "train_cpu", "decode_cpu")}
    generated_tokens: Dict[str, int] = {}
    for round_index in range(settings.rounds):
        # rotate the starting variant each round so no variant always runs first
        order = list(variants[round_index % len(variants):]) + list(variants[: round_index % len(variants)])
        for variant in order:
            runner = runners[variant]
            wall, cpu, tokens = runner.train(train_samples)
            rates["train"][variant].append(tokens / wall)
            rates["train_cpu"][variant].append(tokens / cpu)
            wall, cpu, sentences, generated = runner.decode(decode_samples)
            rates["decode"][variant].append(sentences / wall)
            rates["decode_cpu"][variant].append(sentences / cpu)
            generated_tokens[variant] = generated
        log(f"[model] {case.name} round {round_index + 1}/{settings.rounds}: "
            + ", ".join(f"{v} {rates['train'][v][-1]:.0f} tok/s {rates['decode'][v][-1]:.2f} sent/s" for v in variants))
    shares = {v: runners[v].attention_share(train_samples, decode_samples, settings.profile_seconds)
              for v in variants}
    log(f"[model] {case.name} attention share train/decode: "
        + ", ".join(f"{v} {s.train:.0%}/{s.decode:.0%}" for v, s in shares.items()))

    def ratios(key: str, variant: str) -> Summary:
        return summary([v / s for v, s in zip(rates[key][variant], rates[key]["softmax"])])

    per_variant = {}
    for variant in variants:
        per_variant[variant] = VariantResult(
            arch=runners[variant].arch,
            parameters=runners[variant].parameters,
            train_tokens_per_second=summary(rates["train"][variant]),
            decode_sentences_per_second=summary(rates["decode"][variant]),
            train_ratio_to_softmax=ratios("train", variant),
            decode_ratio_to_softmax=ratios("decode", variant),
            train_tokens_per_cpu_second=summary(rates["train_cpu"][variant]),
            decode_sentences_per_cpu_second=summary(rates["decode_cpu"][variant]),
            train_cpu_ratio_to_softmax=ratios("train_cpu", variant),
            decode_cpu_ratio_to_softmax=ratios("decode_cpu", variant),
            decode_generated_tokens=generated_tokens[variant],
            attention_share=shares[variant],
            samples=RoundRates(**{key: rates[key][variant] for key in rates}),
        )
    pad = dictionary.pad()
    return CaseResult(
        name=case.name,
        model=CaseModel(label=case.model.label, size=case.model.size, extra_args=list(case.model.extra_args),
                        vocab=case.model.vocab, parameters=runners["softmax"].parameters),
        bucket=CaseBucket(
            label=bucket.label,
            train_batches=list(bucket.train_batches),
            decode_batches=list(bucket.decode_batches),
            decode_length=bucket.decode_length,
            train_target_tokens_per_round=sum(s["ntokens"] for s in train_samples),
            decode_sentences_per_round=sum(len(s["id"]) for s in decode_samples),
            source_lengths=_length_range([s["net_input"]["src_lengths"] for s in train_samples]),
            target_lengths=_length_range([(s["target"] != pad).sum(1) for s in train_samples]),
            decode_source_lengths=_length_range([s["net_input"]["src_lengths"] for s in decode_samples]),
        ),
        elapsed_seconds=time.time() - started,
        variants=per_variant,
    )


def run_model_benchmark(
    mode: str = "quick",
    device: str = "cpu",
    dtype: str = "float32",
    variants: Sequence[str] = VARIANTS,
    log=logger.info,
    command: Optional[str] = None,
    rounds: Optional[int] = None,
    cases: Optional[Sequence[str]] = None,
    decode_sentences: Optional[int] = None,
) -> ModelResult:
    """``rounds`` overrides the mode's number of measured rounds per case; ``cases`` picks cases by
    name (default all); ``decode_sentences`` sets the sentences of every decoding batch (the modes
    decode about 1,500 source tokens per batch, as ``fairseq-generate --max-tokens 1536`` would;
    a batch of one or two sentences, as in interactive translation, is where each operation's
    fixed cost dominates).  A single round's ratio scatters by about +-5 % on a shared 2-core machine;
    by that spread, the median of 9 rounds is good to about +-2 % (an estimate, not a measured
    repeatability)."""
    check_options(mode, variants, rounds, cases)
    settings = MODES[mode] if rounds is None else replace(MODES[mode], rounds=rounds)
    device = torch.device(device)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if "softmax" not in variants:
        variants = ("softmax", *variants)
    started = time.time()
    chosen = [case for case in settings.cases if cases is None or case.name in cases]
    if decode_sentences is not None:
        chosen = [replace(case, bucket=replace(case.bucket, decode_batches=tuple(
            (decode_sentences, length) for _, length in case.bucket.decode_batches))) for case in chosen]
    return ModelResult(
        benchmark="model",
        mode=mode,
        command=command or command_line(),
        machine=machine_description(device),
        reference="softmax",
        settings=ModelRunSettings(
            dtype=dtype, variants=list(variants), rounds=settings.rounds, warmup_rounds=settings.warmup_rounds,
            beam=settings.beam, seed=settings.seed, profile_seconds=settings.profile_seconds,
            profile_max_passes=MAX_PROFILE_PASSES, attention_share_clock=share_clock(device).__name__,
            decode_sentences=decode_sentences,
        ),
        cases=[run_case(case, settings, variants, device, torch_dtype, log) for case in chosen],
        elapsed_seconds=time.time() - started,
    )


def plot(result: ModelResult, path: Path) -> None:
    """Median ratio to softmax (wall clock) per variant, one bar per case; one panel per phase."""
    plt = pyplot()

    variants = result.settings.variants
    cases = result.cases
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5), squeeze=False)
    positions = range(len(variants))
    width = 0.8 / max(1, len(cases))
    panels = (("training throughput / softmax", lambda entry: entry.train_ratio_to_softmax),
              ("decoding speed (beam 4) / softmax", lambda entry: entry.decode_ratio_to_softmax))
    for axis, (title, ratio) in zip(axes[0], panels):
        for index, case in enumerate(cases):
            ratios = [ratio(case.variants[v]) for v in variants]
            medians = [r.median for r in ratios]
            errors = [[r.median - r.min for r in ratios], [r.max - r.median for r in ratios]]
            offset = (index - (len(cases) - 1) / 2) * width
            axis.bar([p + offset for p in positions], medians, width=width, yerr=errors, capsize=2,
                     alpha=0.85, label=case.name)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks(list(positions))
        axis.set_xticklabels(variants, rotation=30)
        axis.set_title(f"{title} (wall clock)")
        axis.set_ylabel("ratio (median, min-max over rounds)")
        axis.grid(True, axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, ncol=2)
    save_figure(figure, path)


def write_outputs(result: ModelResult, out: Path) -> Dict[str, Path]:
    return write_common_outputs(result, out, plot)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The model benchmark's own options (``python -m benchmarks run`` and ``python -m benchmarks.model``)."""
    parser.add_argument("--model-dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--variants", default=None,
                        help="model benchmark: comma-separated variants to compare with softmax "
                             f"(default all: {','.join(VARIANTS)})")
    parser.add_argument("--rounds", type=int, default=None,
                        help="model benchmark: measured rounds per case "
                             f"(default: the mode's, {MODES['full'].rounds} in full mode)")
    parser.add_argument("--decode-sentences", type=int, default=None,
                        help="model benchmark: sentences in every decoding batch (default: the mode's, "
                             "about 1,536 source tokens per batch)")
    parser.add_argument("--cases", default=None,
                        help="model benchmark: comma-separated cases <model>/<bucket> (default all of the mode's; "
                             f"full mode: {','.join(c.name for c in MODES['full'].cases)})")


def run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Dict[str, object]:
    """Keyword arguments of :func:`run_model_benchmark` from parsed options; a usage error when invalid."""
    variants = tuple(v for v in args.variants.split(",") if v) if args.variants else VARIANTS
    cases = tuple(c for c in args.cases.split(",") if c) if args.cases else None
    try:
        check_options(args.mode, variants, args.rounds, cases)
    except ValueError as error:
        parser.error(str(error))
    if args.decode_sentences is not None and args.decode_sentences < 1:
        parser.error(f"decode-sentences must be >= 1, got {args.decode_sentences}")
    return {"dtype": args.model_dtype, "variants": variants, "rounds": args.rounds, "cases": cases,
            "decode_sentences": args.decode_sentences}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, MODES)
    add_run_options(parser)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(verbosity(args), "benchmarks")
    options = run_options(parser, args)
    set_threads(args.threads)
    command = " ".join(["python -m benchmarks.model", *(sys.argv[1:] if argv is None else argv)])
    result = run_model_benchmark(args.mode, args.device, command=command, **options)
    paths = write_outputs(result, args.out)
    report = write_report_or_exit(parser, args.out, args.mode, model=result)
    print(f"wrote {paths['json']}, {paths['png']}, {report}")


if __name__ == "__main__":
    main()
