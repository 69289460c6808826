"""The Markdown report of a mode: machine, command, model-level ratios, attention-level tables.

It reads the results (dicts, or the JSON files of ``out``) and imports neither benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from nmt_common.files import atomic_write_text
from nmt_common.markdown import markdown_table

from .common import ATTENTION_PHASES


def _load(path: Path) -> Optional[Dict[str, object]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _machine(machine: Dict[str, object]) -> str:
    keys = ("cpu_model", "logical_cpus", "cpus_available", "torch_threads", "load_average_at_start",
            "torch", "fairseq", "entmax", "python", "device", "gpu", "cuda", "platform")
    return "\n".join(f"* {key}: {machine[key]}" for key in keys if key in machine)


_CLOCKS = {
    "process_time": "the process's CPU time: on a shared machine a wall-clock share scatters several-fold "
                    "between passes",
    "perf_counter": "wall clock, device synchronized",
}


def _cases(cases: List[Dict[str, object]]) -> str:
    """One row per case: architecture, training batches, decoding batches."""
    rows = []
    for case in cases:
        model, bucket = case["model"], case["bucket"]
        train = ", ".join("x".join(str(n) for n in batch) for batch in bucket["train_batches"])
        decode = ", ".join("x".join(str(n) for n in batch) for batch in bucket["decode_batches"])
        rows.append([
            case["name"],
            f"`<variant>_transformer_{model['size']}` {' '.join(model['extra_args'])}".strip(),
            f"{model['vocab']}",
            f"{model['parameters'] / 1e6:.2f} M",
            f"{train} ({bucket['train_target_tokens_per_round']} target tokens)",
            f"{decode} ({bucket['decode_sentences_per_round']} sentences) → {bucket['decode_length']} tokens",
        ])
    return markdown_table(["case", "architecture", "vocabulary", "parameters (softmax)",
                           "training batches per round: sentences x source x target length",
                           "decoding batches per round: sentences x source length → output length"], rows)


def _ratio_cell(entry: Dict[str, object], key: str) -> str:
    ratio = entry[key]
    return f"**{ratio['median']:.2f}x** [{ratio['min']:.2f}, {ratio['max']:.2f}]"


def _lengths_cell(bucket: Dict[str, object]) -> str:
    """'train 10-32 / 11-32; decode 13-32 -> 20': training source / target lengths, decoding source -> output."""
    def span(pair):
        return f"{pair[0]}-{pair[1]}" if pair[0] != pair[1] else str(pair[0])

    return (f"train {span(bucket['source_lengths'])} / {span(bucket['target_lengths'])}; "
            f"decode {span(bucket['decode_source_lengths'])} → {bucket['decode_length']}")


def model_markdown(result: Dict[str, object]) -> str:
    """Per-case ratio table, then each variant's worst and best case."""
    header = ["case", "lengths (train src / tgt; decode src → out)", "variant",
              "attention share, train* (softmax → variant)", "attention share, decode (softmax → variant)",
              "train / softmax (wall)", "train / softmax (CPU time)",
              "decode / softmax (wall)", "decode / softmax (CPU time)"]
    rows = []
    for case in result["cases"]:
        reference = case["variants"]["softmax"]["attention_share"]
        for index, (variant, entry) in enumerate(case["variants"].items()):
            share = entry["attention_share"]
            shares = [f"{reference[phase]:.0%}" + ("" if variant == "softmax" else f" → {share[phase]:.0%}")
                      for phase in ("train", "decode")]
            rows.append([
                case["name"] if index == 0 else "",
                _lengths_cell(case["bucket"]) if index == 0 else "",
                variant,
                *shares,
                _ratio_cell(entry, "train_ratio_to_softmax"),
                _ratio_cell(entry, "train_cpu_ratio_to_softmax"),
                _ratio_cell(entry, "decode_ratio_to_softmax"),
                _ratio_cell(entry, "decode_cpu_ratio_to_softmax"),
            ])
    per_case = markdown_table(header, rows)

    def extreme(variant: str, key: str, pick) -> str:
        case = pick(result["cases"], key=lambda c: c["variants"][variant][key]["median"])
        return f"**{case['variants'][variant][key]['median']:.2f}x** ({case['name']})"

    variants = [v for v in result["settings"]["variants"] if v != "softmax"]
    rows = [[variant,
             extreme(variant, "train_ratio_to_softmax", min), extreme(variant, "train_ratio_to_softmax", max),
             extreme(variant, "decode_ratio_to_softmax", min), extreme(variant, "decode_ratio_to_softmax", max)]
            for variant in variants]
    extremes = markdown_table(["variant", "train / softmax: worst case", "train / softmax: best case",
                               "decode / softmax: worst case", "decode / softmax: best case"], rows)
    return (per_case
            + "\n\n\\* training share: a replay estimate (each attention call of one step re-run alone, forward "
            "and backward, over the step's time); decoding share: timed by forward hooks during generation.\n\n"
            + "#### Worst and best case per variant (median wall-clock ratio to softmax)\n\n" + extremes)


def attention_markdown(result: Dict[str, object]) -> str:
    """Tables of median time (ms) and time relative to softmax_fused, per phase."""
    configs = result["settings"]["configs"]
    parts = []
    for phase in ATTENTION_PHASES:
        header = ["dtype", "B", "H", "L"] + list(configs)
        rows = []
        for point in result["points"]:
            entries = point["phases"][phase]
            cells = []
            for config in configs:
                entry = entries[config]
                ms = entry["seconds"]["median"] * 1e3
                ratio = entry.get("time_vs_softmax_fused", {}).get("median")
                memory = entry.get("peak_memory", {}).get("bytes")
                cell = f"{ms:.2f} ms"
                if ratio is not None:
                    cell += f" ({ratio:.2f}x)"
                if memory is not None:
                    cell += f", {memory / 2**20:.1f} MiB"
                cells.append(cell)
            rows.append([point["dtype"], str(point["batch"]), str(point["heads"]), str(point["keys"])] + cells)
        parts.append(f"#### {phase}: median time per call (time / softmax_fused), peak memory\n\n"
                     + markdown_table(header, rows))
    return "\n\n".join(parts)


def write_report(out: Path, mode: str, attention: Optional[Dict[str, object]] = None,
                 model: Optional[Dict[str, object]] = None) -> Path:
    """Write ``summary_<mode>.md`` from the given results, or those already in ``out``."""
    attention = attention or _load(out / f"attention_{mode}.json")
    model = model or _load(out / f"model_{mode}.json")
    lines = [f"# Attention speed benchmark ({mode} mode)", ""]
    if model is not None and "cases" not in model:
        lines += [f"Model level: `model_{mode}.json` predates the length buckets; rerun it with "
                  f"`python -m benchmarks run --mode {mode} --only model`.", ""]
        model = None
    if model is not None:
        settings = model["settings"]
        lines += [
            "## Model level: fairseq training and beam-search decoding, ratio to softmax",
            "",
            f"Command: `{model['command']}` ({model['elapsed_seconds']:.0f} s)",
            "",
            "Cases: a model (`<variant>_transformer_<size>` with the options shown, built as `fairseq-train` "
            "builds it) x a sentence-length bucket of synthetic batches.",
            "",
            _cases(model["cases"]),
            "",
            f"{settings['dtype']}. Training: one update per batch, label-smoothed cross-entropy (0.1) + Adam; "
            f"decoding: fairseq `SequenceGenerator`, beam {settings['beam']}, every hypothesis exactly the "
            f"bucket's output length. Per case, {settings['rounds']} rounds round-robin over the variants after "
            f"{settings['warmup_rounds']} warm-up round(s); ratios are taken per round (ratio > 1: faster than "
            "softmax), median [min, max] over rounds, from wall-clock time and from the process's CPU time (which "
            "leaves out time the process waited for a core: the steadier figure on a shared machine).",
            "",
            "Attention share: the share of a step spent inside the attention modules (`SparseMultiheadAttention`, "
            "projections included), measured after the timed rounds (hooks cost time) with "
            f"`time.{settings['attention_share_clock']}` ({_CLOCKS[settings['attention_share_clock']]}), median "
            f"over passes repeated until {settings['profile_seconds']} s of step time (at most "
            f"{settings['profile_max_passes']}). Decoding: forward hooks time every attention call of a "
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
            _machine(model["machine"]),
            "",
        ]
    if attention is not None:
        settings = attention["settings"]
        lines += [
            "## Attention level: one SparseMultiheadAttention (self-attention with key padding)",
            "",
            f"Command: `{attention['command']}` ({attention['elapsed_seconds']:.0f} s)",
            "",
            f"d_model {settings['embed_dim']}, queries = keys = L, batch = token budget / L, half of the "
            "sentences padded (the shortest to about L/2). `softmax_fused` is plain softmax through fairseq "
            "(torch's fused scaled_dot_product_attention when no weights are needed) and the reference of the "
            "ratios (time / reference: < 1 is faster); `softmax_python` is softmax with weights requested. "
            f"Median of {settings['repeats']} round-robin samples. Peak memory: bytes allocated above what "
            "was live before the call (CPU: torch profiler allocation events; CUDA: max_memory_allocated).",
            "",
            attention_markdown(attention),
            "",
            f"![attention]({'attention_' + mode + '.png'})",
            "",
        ]
        if model is None:
            lines += ["Machine:", "", _machine(attention["machine"]), ""]
    path = out / f"summary_{mode}.md"
    atomic_write_text(path, "\n".join(lines))
    return path
