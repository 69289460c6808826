"""The Markdown report of a mode: machine, command, model-level ratios, attention-level tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from .common import markdown_table


def _load(path: Path) -> Optional[Dict[str, object]]:
    try:
        return json.loads(path.read_text())
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


def write_report(out: Path, mode: str, attention: Optional[Dict[str, object]] = None,
                 model: Optional[Dict[str, object]] = None) -> Path:
    """Write ``summary_<mode>.md`` from the given results, or those already in ``out``."""
    from . import attention as attention_benchmark
    from . import model as model_benchmark

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
            model_benchmark.markdown(model),
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
            attention_benchmark.markdown(attention),
            "",
            f"![attention]({'attention_' + mode + '.png'})",
            "",
        ]
        if model is None:
            lines += ["Machine:", "", _machine(attention["machine"]), ""]
    path = out / f"summary_{mode}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
