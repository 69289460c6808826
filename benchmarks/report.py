"""The Markdown report of a mode: machine, command, model-level ratios, attention-level tables.

It reads the results (records, or the JSON files of ``out`` through :mod:`benchmarks.records`)
and imports neither benchmark, nor torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional, Type, TypeVar

from nmt_common.files import InputFileError, atomic_write_text
from nmt_common.markdown import markdown_table

from .records import ATTENTION_PHASES, AttentionResult, CaseBucket, CaseResult, Machine, ModelResult, Summary
from .records import VariantResult

Result = TypeVar("Result", AttentionResult, ModelResult)


def _read(cls: Type[Result], path: Path) -> Optional[Result]:
    """The record in ``path``, None when there is no such file (InputFileError when it is not ``cls``)."""
    return cls.read(path) if path.exists() else None


def _machine(machine: Machine) -> str:
    keys = ("cpu_model", "logical_cpus", "cpus_available", "torch_threads", "load_average_at_start",
            "torch", "fairseq", "entmax", "python", "device", "gpu", "cuda", "platform", "cpu_normalizers")
    optional = ("gpu", "cuda", "cpu_normalizers")  # absent on CPU / in older records
    return "\n".join(f"* {key}: {getattr(machine, key)}" for key in keys
                     if key not in optional or getattr(machine, key) is not None)


_CLOCKS = {
    "process_time": "the process's CPU time: on a shared machine a wall-clock share scatters several-fold "
                    "between passes",
    "perf_counter": "wall clock, device synchronized",
}


def _cases(cases: List[CaseResult]) -> str:
    """One row per case: architecture, training batches, decoding batches."""
    rows = []
    for case in cases:
        model, bucket = case.model, case.bucket
        train = ", ".join("x".join(str(n) for n in batch) for batch in bucket.train_batches)
        decode = ", ".join("x".join(str(n) for n in batch) for batch in bucket.decode_batches)
        rows.append([
            case.name,
            f"`<variant>_transformer_{model.size}` {' '.join(model.extra_args)}".strip(),
            f"{model.vocab}",
            f"{model.parameters / 1e6:.2f} M",
            f"{train} ({bucket.train_target_tokens_per_round} target tokens)",
            f"{decode} ({bucket.decode_sentences_per_round} sentences) → {bucket.decode_length} tokens",
        ])
    return markdown_table(["case", "architecture", "vocabulary", "parameters (softmax)",
                           "training batches per round: sentences x source x target length",
                           "decoding batches per round: sentences x source length → output length"], rows)


def _ratio_cell(ratio: Summary) -> str:
    return f"**{ratio.median:.2f}x** [{ratio.min:.2f}, {ratio.max:.2f}]"


def _lengths_cell(bucket: CaseBucket) -> str:
    """'train 10-32 / 11-32; decode 13-32 -> 20': training source / target lengths, decoding source -> output."""
    def span(pair):
        return f"{pair[0]}-{pair[1]}" if pair[0] != pair[1] else str(pair[0])

    return (f"train {span(bucket.source_lengths)} / {span(bucket.target_lengths)}; "
            f"decode {span(bucket.decode_source_lengths)} → {bucket.decode_length}")


def model_markdown(result: ModelResult) -> str:
    """Per-case ratio table, then each variant's worst and best case."""
    header = ["case", "lengths (train src / tgt; decode src → out)", "variant",
              "attention share, train* (softmax → variant)", "attention share, decode (softmax → variant)",
              "train / softmax (wall)", "train / softmax (CPU time)",
              "decode / softmax (wall)", "decode / softmax (CPU time)"]
    rows = []
    for case in result.cases:
        reference = case.variants["softmax"].attention_share
        for index, (variant, entry) in enumerate(case.variants.items()):
            share = entry.attention_share
            shares = [f"{reference.train:.0%}" + ("" if variant == "softmax" else f" → {share.train:.0%}"),
                      f"{reference.decode:.0%}" + ("" if variant == "softmax" else f" → {share.decode:.0%}")]
            rows.append([
                case.name if index == 0 else "",
                _lengths_cell(case.bucket) if index == 0 else "",
                variant,
                *shares,
                _ratio_cell(entry.train_ratio_to_softmax),
                _ratio_cell(entry.train_cpu_ratio_to_softmax),
                _ratio_cell(entry.decode_ratio_to_softmax),
                _ratio_cell(entry.decode_cpu_ratio_to_softmax),
            ])
    per_case = markdown_table(header, rows)

    def extreme(variant: str, ratio, pick) -> str:
        """``pick`` (min or max) over the cases of ``ratio(variant's entry)``'s median, and its case."""
        case = pick(result.cases, key=lambda c: ratio(c.variants[variant]).median)
        return f"**{ratio(case.variants[variant]).median:.2f}x** ({case.name})"

    def train(entry: VariantResult) -> Summary:
        return entry.train_ratio_to_softmax

    def decode(entry: VariantResult) -> Summary:
        return entry.decode_ratio_to_softmax

    variants = [v for v in result.settings.variants if v != "softmax"]
    rows = [[variant, extreme(variant, train, min), extreme(variant, train, max),
             extreme(variant, decode, min), extreme(variant, decode, max)]
            for variant in variants]
    extremes = markdown_table(["variant", "train / softmax: worst case", "train / softmax: best case",
                               "decode / softmax: worst case", "decode / softmax: best case"], rows)
    return (per_case
            + "\n\n\\* training share: a replay estimate (each attention call of one step re-run alone, forward "
            "and backward, over the step's time); decoding share: timed by forward hooks during generation.\n\n"
            + "#### Worst and best case per variant (median wall-clock ratio to softmax)\n\n" + extremes)


def attention_markdown(result: AttentionResult) -> str:
    """Tables of median time (ms) and time relative to softmax_fused, per phase."""
    configs = result.settings.configs
    parts = []
    for phase in ATTENTION_PHASES:
        header = ["dtype", "B", "H", "L"] + list(configs)
        rows = []
        for point in result.points:
            timings = getattr(point.phases, phase)
            cells = []
            for config in configs:
                timing = timings[config]
                cell = f"{timing.seconds.median * 1e3:.2f} ms"
                if timing.time_vs_softmax_fused is not None:
                    cell += f" ({timing.time_vs_softmax_fused.median:.2f}x)"
                if timing.peak_memory is not None:
                    cell += f", {timing.peak_memory.bytes / 2**20:.1f} MiB"
                cells.append(cell)
            rows.append([point.dtype, str(point.batch), str(point.heads), str(point.keys)] + cells)
        parts.append(f"#### {phase}: median time per call (time / softmax_fused), peak memory\n\n"
                     + markdown_table(header, rows))
    return "\n\n".join(parts)


def write_report(out: Path, mode: str, attention: Optional[AttentionResult] = None,
                 model: Optional[ModelResult] = None) -> Path:
    """Write ``summary_<mode>.md`` from the given results, or those already in ``out``.

    A result file in ``out`` that is not its schema is an InputFileError naming the file and the field.
    """
    attention = attention or _read(AttentionResult, out / f"attention_{mode}.json")
    model = model or _read(ModelResult, out / f"model_{mode}.json")
    lines = [f"# Attention speed benchmark ({mode} mode)", ""]
    if model is not None:
        settings = model.settings
        lines += [
            "## Model level: fairseq training and beam-search decoding, ratio to softmax",
            "",
            f"Command: `{model.command}` ({model.elapsed_seconds:.0f} s)",
            "",
            "Cases: a model (`<variant>_transformer_<size>` with the options shown, built as `fairseq-train` "
            "builds it) x a sentence-length bucket of synthetic batches.",
            "",
            _cases(model.cases),
            "",
            f"{settings.dtype}. Training: one update per batch, label-smoothed cross-entropy (0.1) + Adam; "
            f"decoding: fairseq `SequenceGenerator`, beam {settings.beam}, every hypothesis exactly the "
            f"bucket's output length. Per case, {settings.rounds} rounds round-robin over the variants after "
            f"{settings.warmup_rounds} warm-up round(s); ratios are taken per round (ratio > 1: faster than "
            "softmax), median [min, max] over rounds, from wall-clock time and from the process's CPU time (which "
            "leaves out time the process waited for a core: the steadier figure on a shared machine).",
            "",
            "Attention share: the share of a step spent inside the attention modules (`SparseMultiheadAttention`, "
            "projections included), measured after the timed rounds (hooks cost time) with "
            f"`time.{settings.attention_share_clock}` ({_CLOCKS[settings.attention_share_clock]}), median "
            f"over passes repeated until {settings.profile_seconds} s of step time (at most "
            f"{settings.profile_max_passes}). Decoding: forward hooks time every attention call of a "
            "generation pass. Training: a replay estimate (backward hooks cannot time these modules): every "
            "attention call of one training step is captured with its inputs, then re-run alone, forward and "
            "backward, and the sum is divided by the time of one full training step (forward, backward, "
            "optimizer) over the same batches.",
            "",
            model_markdown(model),
            "",
            f"![model]({'model_' + mode + '.png'})",
            "",
            "Machine:",
            "",
            _machine(model.machine),
            "",
        ]
    if attention is not None:
        settings = attention.settings
        lines += [
            "## Attention level: one SparseMultiheadAttention (self-attention with key padding)",
            "",
            f"Command: `{attention.command}` ({attention.elapsed_seconds:.0f} s)",
            "",
            f"d_model {settings.embed_dim}, queries = keys = L, batch = token budget / L, half of the "
            "sentences padded (the shortest to about L/2). `softmax_fused` is plain softmax through fairseq "
            "(torch's fused scaled_dot_product_attention when no weights are needed) and the reference of the "
            "ratios (time / reference: < 1 is faster); `softmax_python` is softmax with weights requested. "
            f"Median of {settings.repeats} round-robin samples. Peak memory: bytes allocated above what "
            "was live before the call (CPU: torch profiler allocation events; CUDA: max_memory_allocated).",
            "",
            attention_markdown(attention),
            "",
            f"![attention]({'attention_' + mode + '.png'})",
            "",
        ]
        if model is None:
            lines += ["Machine:", "", _machine(attention.machine), ""]
    path = out / f"summary_{mode}.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def write_report_or_exit(parser: argparse.ArgumentParser, out: Path, mode: str,
                         attention: Optional[AttentionResult] = None, model: Optional[ModelResult] = None) -> Path:
    """:func:`write_report` for a command line: a result file in ``out`` that is not its schema ends the
    command as a usage error does (``<prog>: error: <file>: ...`` on stderr, status 2), not with a traceback."""
    try:
        return write_report(out, mode, attention=attention, model=model)
    except InputFileError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
