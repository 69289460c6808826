"""Model-level benchmark: fairseq training throughput and beam-search decoding per attention variant.

    python -m benchmarks.model --mode quick|full [--out results/perf] [--threads N] [--device cpu|cuda]

One model per variant (``<variant>_transformer_<size>`` with the same options, built
in-process as ``fairseq-train`` would), all in the same process.  After a warm-up,
R rounds go round-robin over the variants; in each round every variant

* trains on the same synthetic batches (fairseq's label-smoothed cross-entropy
  criterion, eps 0.1, and Adam): **target tokens per second**;
* translates the same synthetic sources with fairseq's ``SequenceGenerator``, beam 4,
  every hypothesis forced to exactly ``decode_length`` tokens (``min_len = max_len``),
  so that every variant does the same work whatever its untrained model prefers:
  **sentences per second**.

Each variant's ratio to softmax is taken per round (same moment, same load) and
reported as median with min/max and quartiles over the rounds.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch

from .common import (
    add_common_arguments,
    save_figure,
    write_outputs as write_common_outputs,
    DEFAULT_OUT,
    PLUGIN_DIR,
    VARIANTS,
    command_line,
    machine_description,
    quiet_logging,
    set_threads,
    summary,
    synchronize,
    write_json,
)


@dataclass(frozen=True)
class ModelSettings:
    size: str  # architecture size: <variant>_transformer_<size>
    extra_args: Tuple[str, ...]  # fairseq options on top of the architecture
    vocab: int
    train_batches: Tuple[Tuple[int, int, int], ...]  # (sentences, source length, target length)
    decode_batches: Tuple[Tuple[int, int], ...]  # (sentences, source length)
    decode_length: int  # every hypothesis decodes exactly this many tokens (+ EOS)
    beam: int
    rounds: int
    warmup_rounds: int
    seed: int = 0


MODES: Dict[str, ModelSettings] = {
    # the record: fairseq's transformer_iwslt_de_en sizes (d 512, FFN 1024, 4 heads) with 3+3 layers
    "full": ModelSettings(
        size="iwslt_de_en", extra_args=("--encoder-layers", "3", "--decoder-layers", "3"), vocab=6000,
        train_batches=((48, 12, 13), (24, 24, 26), (12, 44, 46)), decode_batches=((12, 16), (6, 32)),
        decode_length=20, beam=4, rounds=21, warmup_rounds=1,
    ),
    # CI: the tiny architecture (2+2 layers, d 64), small batches
    "quick": ModelSettings(
        size="tiny", extra_args=(), vocab=1000,
        train_batches=((32, 14, 15), (16, 30, 32)), decode_batches=((8, 16),),
        decode_length=12, beam=4, rounds=3, warmup_rounds=1,
    ),
    # tests
    "smoke": ModelSettings(
        size="tiny", extra_args=("--encoder-layers", "1", "--decoder-layers", "1"), vocab=50,
        train_batches=((4, 6, 7),), decode_batches=((2, 5),), decode_length=4, beam=4, rounds=2, warmup_rounds=0,
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

    def __init__(self, variant: str, settings: ModelSettings, dictionary, device, dtype):
        from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion
        from fairseq.sequence_generator import SequenceGenerator

        self.variant = variant
        self.arch = f"{variant}_transformer_{settings.size}"
        model, self.args = build_model(self.arch, settings.extra_args, dictionary, settings.seed)
        self.model = model.to(device=device, dtype=dtype)
        self.device = device
        task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
        self.criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-8)
        self.generator = SequenceGenerator(
            [self.model], dictionary, beam_size=settings.beam, max_len_a=0,
            max_len_b=settings.decode_length, min_len=settings.decode_length,
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


def check_options(variants: Sequence[str], rounds: Optional[int]) -> None:
    """ValueError naming what is wrong with the variants or the number of rounds."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown attention variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")


def run_model_benchmark(
    mode: str = "quick",
    device: str = "cpu",
    dtype: str = "float32",
    variants: Sequence[str] = VARIANTS,
    log=print,
    command: Optional[str] = None,
    rounds: Optional[int] = None,
) -> Dict[str, object]:
    """``rounds`` overrides the mode's number of measured rounds (a single round's ratio scatters
    by about +-5 % on a shared 2-core machine; by that spread, the median of 21 rounds is good to about
    +-1 %: an estimate, not a measured repeatability)."""
    check_options(variants, rounds)
    settings = MODES[mode] if rounds is None else replace(MODES[mode], rounds=rounds)
    device = torch.device(device)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if "softmax" not in variants:
        variants = ("softmax", *variants)
    started = time.time()
    dictionary = make_dictionary(settings.vocab)
    generator = torch.Generator().manual_seed(settings.seed)
    train_samples = [_move(train_sample(dictionary, *b, generator), device) for b in settings.train_batches]
    decode_samples = [_move(decode_sample(dictionary, *b, generator), device) for b in settings.decode_batches]
    runners = {v: VariantRunner(v, settings, dictionary, device, torch_dtype) for v in variants}
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
        log(f"[model] round {round_index + 1}/{settings.rounds}: "
            + ", ".join(f"{v} {rates['train'][v][-1]:.0f} tok/s {rates['decode'][v][-1]:.2f} sent/s" for v in variants))

    def ratios(key: str, variant: str) -> Dict[str, float]:
        return summary([v / s for v, s in zip(rates[key][variant], rates[key]["softmax"])])

    per_variant = {}
    for variant in variants:
        per_variant[variant] = {
            "arch": runners[variant].arch,
            "parameters": runners[variant].parameters,
            "train_tokens_per_second": summary(rates["train"][variant]),
            "decode_sentences_per_second": summary(rates["decode"][variant]),
            "train_ratio_to_softmax": ratios("train", variant),
            "decode_ratio_to_softmax": ratios("decode", variant),
            "train_tokens_per_cpu_second": summary(rates["train_cpu"][variant]),
            "decode_sentences_per_cpu_second": summary(rates["decode_cpu"][variant]),
            "train_cpu_ratio_to_softmax": ratios("train_cpu", variant),
            "decode_cpu_ratio_to_softmax": ratios("decode_cpu", variant),
            "decode_generated_tokens": generated_tokens[variant],
            "samples": {key: rates[key][variant] for key in rates},
        }
    return {
        "benchmark": "model",
        "mode": mode,
        "command": command or command_line(),
        "settings": {**asdict(settings), "dtype": dtype, "variants": list(variants),
                     "train_target_tokens_per_round": sum(s["ntokens"] for s in train_samples),
                     "decode_sentences_per_round": sum(len(s["id"]) for s in decode_samples)},
        "reference": "softmax",
        "machine": machine_description(device),
        "elapsed_seconds": time.time() - started,
        "variants": per_variant,
    }


def markdown(result: Dict[str, object]) -> str:
    from .common import markdown_table

    def cell(entry, key):
        ratio = entry[key]
        return f"**{ratio['median']:.2f}x** [{ratio['min']:.2f}, {ratio['max']:.2f}]"

    header = ["variant", "train tok/s", "train / softmax (wall)", "train / softmax (CPU time)",
              "decode sent/s", "decode / softmax (wall)", "decode / softmax (CPU time)"]
    rows = []
    for variant, entry in result["variants"].items():
        rows.append([
            variant,
            f"{entry['train_tokens_per_second']['median']:.0f}",
            cell(entry, "train_ratio_to_softmax"),
            cell(entry, "train_cpu_ratio_to_softmax"),
            f"{entry['decode_sentences_per_second']['median']:.2f}",
            cell(entry, "decode_ratio_to_softmax"),
            cell(entry, "decode_cpu_ratio_to_softmax"),
        ])
    return markdown_table(header, rows)


def plot(result: Dict[str, object], path: Path) -> None:
    quiet_logging()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(result["variants"])
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), squeeze=False)
    positions = list(range(len(variants)))
    for axis, phase, title in zip(axes[0], ("train", "decode"),
                                  ("training throughput / softmax", "decoding speed (beam 4) / softmax")):
        for offset, (suffix, label, colour) in zip((-0.2, 0.2), (("", "wall clock", "tab:blue"),
                                                                 ("_cpu", "CPU time", "tab:orange"))):
            key = f"{phase}{suffix}_ratio_to_softmax"
            medians = [result["variants"][v][key]["median"] for v in variants]
            lows = [m - result["variants"][v][key]["min"] for v, m in zip(variants, medians)]
            highs = [result["variants"][v][key]["max"] - m for v, m in zip(variants, medians)]
            axis.bar([p + offset for p in positions], medians, width=0.4, yerr=[lows, highs], capsize=3,
                     color=colour, alpha=0.8, label=label)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks(positions)
        axis.set_xticklabels(variants, rotation=30)
        axis.set_title(title)
        axis.set_ylabel("ratio (median, min-max over rounds)")
        axis.grid(True, axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{result['variants'][variants[0]]['arch'].replace(variants[0] + '_', '<variant>_')}"
                    f" {' '.join(result['settings']['extra_args'])}", fontsize=9)
    save_figure(figure, path)


def write_outputs(result: Dict[str, object], out: Path) -> Dict[str, Path]:
    return write_common_outputs(result, out, "model", plot)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The model benchmark's own options (``python -m benchmarks run`` and ``python -m benchmarks.model``)."""
    parser.add_argument("--model-dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--variants", default=None,
                        help="model benchmark: comma-separated variants to compare with softmax "
                             f"(default all: {','.join(VARIANTS)})")
    parser.add_argument("--rounds", type=int, default=None,
                        help="model benchmark: measured rounds (default: the mode's, 21 in full mode)")


def run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Dict[str, object]:
    """Keyword arguments of :func:`run_model_benchmark` from parsed options; a usage error when invalid."""
    variants = tuple(v for v in args.variants.split(",") if v) if args.variants else VARIANTS
    try:
        check_options(variants, args.rounds)
    except ValueError as error:
        parser.error(str(error))
    return {"dtype": args.model_dtype, "variants": variants, "rounds": args.rounds}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, MODES)
    add_run_options(parser)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    options = run_options(parser, args)
    set_threads(args.threads)
    command = " ".join(["python -m benchmarks.model", *(sys.argv[1:] if argv is None else argv)])
    result = run_model_benchmark(args.mode, args.device, command=command, **options)
    from .report import write_report

    paths = write_outputs(result, args.out)
    report = write_report(args.out, args.mode, model=result)
    print(f"wrote {paths['json']}, {paths['png']}, {report}")


if __name__ == "__main__":
    main()
