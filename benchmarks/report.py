"""The Markdown report of a mode: machine, command, model-level ratios, attention-level tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional


def _load(path: Path) -> Optional[Dict[str, object]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _machine(machine: Dict[str, object]) -> str:
    keys = ("cpu_model", "logical_cpus", "cpus_available", "torch_threads", "load_average_at_start",
            "torch", "fairseq", "entmax", "python", "device", "gpu", "cuda", "platform")
    return "\n".join(f"* {key}: {machine[key]}" for key in keys if key in machine)


def write_report(out: Path, mode: str, attention: Optional[Dict[str, object]] = None,
                 model: Optional[Dict[str, object]] = None) -> Path:
    """Write ``summary_<mode>.md`` from the given results, or those already in ``out``."""
    from . import attention as attention_benchmark
    from . import model as model_benchmark

    attention = attention or _load(out / f"attention_{mode}.json")
    model = model or _load(out / f"model_{mode}.json")
    lines = [f"# Attention speed benchmark ({mode} mode)", ""]
    if model is not None:
        settings = model["settings"]
        any_variant = next(iter(model["variants"].values()))
        lines += [
            "## Model level: fairseq training and beam-search decoding, ratio to softmax",
            "",
            f"Command: `{model['command']}` ({model['elapsed_seconds']:.0f} s)",
            "",
            f"Architecture `<variant>_transformer_{settings['size']}` {' '.join(settings['extra_args'])}, "
            f"vocabulary {settings['vocab']}, {settings['dtype']}, softmax model "
            f"{model['variants']['softmax']['parameters'] / 1e6:.1f} M parameters. "
            f"Training: {len(settings['train_batches'])} synthetic batches per round "
            f"({settings['train_target_tokens_per_round']} target tokens; sentences x source x target length "
            f"{settings['train_batches']}), label-smoothed cross-entropy (0.1) + Adam. "
            f"Decoding: fairseq `SequenceGenerator`, beam {settings['beam']}, "
            f"{settings['decode_sentences_per_round']} sentences per round, every hypothesis exactly "
            f"{settings['decode_length']} tokens. {settings['rounds']} rounds round-robin over the variants "
            f"after {settings['warmup_rounds']} warm-up round(s); ratios are taken per round (ratio > 1: faster "
            "than softmax), median [min, max] over rounds, from wall-clock time and from the process's CPU time "
            "(which leaves out time the process waited for a core: the steadier figure on a shared machine).",
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
        del any_variant
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
