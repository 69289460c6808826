"""Attention-level benchmark: each normalizer inside ``SparseMultiheadAttention``.

    python -m benchmarks.attention --mode quick|full [--out results/perf] [--threads N] [--device cpu|cuda]

For every (batch, heads, length) point and every attention configuration it measures,
on self-attention with key padding (an encoder layer's attention, projections included):

* ``forward``: training mode, autograd recording (dropout 0);
* ``forward_backward``: the same plus ``backward`` to the input and all parameters;
* ``inference``: eval mode under ``torch.inference_mode``;

their time per call (median of R samples, taken round-robin over the configurations so
that load changes hit every configuration alike) and peak memory (see
:func:`benchmarks.common.peak_memory`).  ``softmax_fused`` -- plain softmax through
fairseq's forward, i.e. torch's fused ``scaled_dot_product_attention`` when no weights
are needed -- is the reference of every ratio; ``softmax_python`` is softmax on our
Python path (``need_weights=True``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from nmt_common.figures import pyplot, save_figure
from nmt_common.logs import setup_logging, verbosity

from .common import ATTENTION_CONFIGS, add_common_arguments, calls_for, command_line, machine_description
from .common import peak_memory, set_threads, summary, time_call
from .common import write_outputs as write_common_outputs
from .records import ATTENTION_PHASES as PHASES
from .records import AttentionPhases, AttentionPoint, AttentionResult, AttentionRunSettings, ConfigTiming
from .report import write_report_or_exit

logger = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class AttentionSettings:
    """One mode of the attention benchmark."""

    points: Tuple[Tuple[int, int, int], ...]  # (batch, heads, keys); self-attention so queries == keys
    embed_dim: int
    repeats: int  # round-robin samples per configuration and phase
    sample_seconds: float  # target duration of one timed sample (several calls back to back)
    warmup_calls: int
    memory: bool  # also measure peak memory (one extra call under the profiler)
    dtypes: Tuple[str, ...] = ("float32",)


def _points(lengths: Sequence[int], tokens: int, heads: Sequence[int], max_batch: int) -> Tuple[Tuple[int, int, int], ...]:
    """batch = tokens // length (a fixed token budget per batch), for every head count."""
    return tuple(
        (max(1, min(max_batch, tokens // length)), h, length) for h in heads for length in lengths
    )


MODES: Dict[str, AttentionSettings] = {
    # CI smoke test and a first look: seconds.
    "quick": AttentionSettings(
        points=_points((16, 64, 256), tokens=512, heads=(8,), max_batch=32),
        embed_dim=256, repeats=3, sample_seconds=0.02, warmup_calls=1, memory=True,
    ),
    # The record: 16 .. 1024 keys, 2048 tokens per batch, 4 and 8 heads, d_model 512.
    "full": AttentionSettings(
        points=_points((16, 64, 256, 1024), tokens=2048, heads=(4, 8), max_batch=128),
        embed_dim=512, repeats=5, sample_seconds=0.15, warmup_calls=2, memory=True,
    ),
    # For tests: tiny tensors, one sample.
    "smoke": AttentionSettings(
        points=((2, 2, 16), (1, 2, 32)), embed_dim=16, repeats=2, sample_seconds=0.0,
        warmup_calls=0, memory=True,
    ),
}

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_module(config: str, embed_dim: int, heads: int, device, dtype) -> torch.nn.Module:
    from fairseq_plugins.attention import SparseMultiheadAttention

    normalizer = "softmax" if config.startswith("softmax") else config
    torch.manual_seed(0)
    module = SparseMultiheadAttention(embed_dim, heads, self_attention=True, dropout=0.0, normalizer=normalizer)
    return module.to(device=device, dtype=dtype)


def make_inputs(batch: int, length: int, embed_dim: int, device, dtype, seed: int = 0):
    """x [length, batch, embed_dim] and a key padding mask: sentence b has length
    ``length - b * length // (2 * batch)`` (the longest is unpadded, the shortest about half)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(length, batch, embed_dim, generator=generator).to(device=device, dtype=dtype)
    lengths = torch.tensor([length - (b * length) // (2 * batch) for b in range(batch)])
    padding = torch.arange(length).view(1, length) >= lengths.view(batch, 1)
    grad = torch.randn(length, batch, embed_dim, generator=generator).to(device=device, dtype=dtype)
    return x, padding.to(device), grad


def phase_function(module, config: str, phase: str, x, padding, grad):
    """A zero-argument callable running one ``phase`` of ``module``."""
    need_weights = config == "softmax_python"
    if phase == "inference":
        module.eval()

        def run():
            with torch.inference_mode():
                return module(x, x, x, key_padding_mask=padding, need_weights=need_weights)[0]

        return run
    module.train()
    x_grad = x.detach().clone().requires_grad_(True)
    if phase == "forward":

        def run():
            return module(x_grad, x_grad, x_grad, key_padding_mask=padding, need_weights=need_weights)[0]

        return run

    def run():
        module.zero_grad(set_to_none=True)
        x_grad.grad = None
        out = module(x_grad, x_grad, x_grad, key_padding_mask=padding, need_weights=need_weights)[0]
        out.backward(grad)

    return run


def run_attention_benchmark(
    mode: str = "quick",
    device: str = "cpu",
    dtypes: Optional[Sequence[str]] = None,
    configs: Sequence[str] = ATTENTION_CONFIGS,
    log=logger.info,
    command: Optional[str] = None,
) -> AttentionResult:
    """Run the attention benchmark and return its results; progress goes to ``log``."""
    settings = MODES[mode]
    device = torch.device(device)
    if dtypes is None:
        dtypes = ("float32", "float16", "bfloat16") if device.type == "cuda" else settings.dtypes
    started = time.time()
    results: List[AttentionPoint] = []
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for batch, heads, length in settings.points:
            x, padding, grad = make_inputs(batch, length, settings.embed_dim, device, dtype)
            modules = {c: build_module(c, settings.embed_dim, heads, device, dtype) for c in configs}
            phases: Dict[str, Dict[str, ConfigTiming]] = {}
            for phase in PHASES:
                functions = {c: phase_function(modules[c], c, phase, x, padding, grad) for c in configs}
                calls: Dict[str, int] = {}
                for config, fn in functions.items():  # warm-up, then size the samples
                    for _ in range(settings.warmup_calls):
                        fn()
                    calls[config] = calls_for(time_call(fn, device), settings.sample_seconds)
                samples: Dict[str, List[float]] = {c: [] for c in configs}
                for _ in range(settings.repeats):  # round-robin over the configurations
                    for config, fn in functions.items():
                        samples[config].append(time_call(fn, device, calls[config]))
                timings = {}
                reference = samples.get("softmax_fused")
                for config in configs:
                    timings[config] = ConfigTiming(
                        seconds=summary(samples[config]),
                        calls_per_sample=calls[config],
                        # time relative to the reference, paired by round (same moment, same load)
                        time_vs_softmax_fused=(summary([s / r for s, r in zip(samples[config], reference)])
                                               if reference else None),
                        peak_memory=peak_memory(functions[config], device) if settings.memory else None,
                    )
                phases[phase] = timings
                log(
                    f"[attention] {dtype_name} B={batch} H={heads} L={length} {phase}: "
                    + ", ".join(f"{c} {timings[c].seconds.median * 1e3:.2f}ms" for c in configs)
                )
            results.append(AttentionPoint(dtype=dtype_name, batch=batch, heads=heads, keys=length, queries=length,
                                          embed_dim=settings.embed_dim, phases=AttentionPhases(**phases)))
    return AttentionResult(
        benchmark="attention",
        mode=mode,
        command=command or command_line(),
        settings=AttentionRunSettings(
            points=list(settings.points), embed_dim=settings.embed_dim, repeats=settings.repeats,
            sample_seconds=settings.sample_seconds, warmup_calls=settings.warmup_calls, memory=settings.memory,
            dtypes=list(dtypes), configs=list(configs),
        ),
        reference="softmax_fused",
        machine=machine_description(device),
        elapsed_seconds=time.time() - started,
        points=results,
    )


def plot(result: AttentionResult, path: Path) -> None:
    """Time per call against key length, one panel per phase (first dtype, largest head count)."""
    plt = pyplot()
    points = result.points
    if not points:
        return
    dtype = points[0].dtype
    heads = max(p.heads for p in points if p.dtype == dtype)
    chosen = sorted((p for p in points if p.dtype == dtype and p.heads == heads), key=lambda p: p.keys)
    figure, axes = plt.subplots(1, len(PHASES), figsize=(5 * len(PHASES), 4), squeeze=False)
    for axis, phase in zip(axes[0], PHASES):
        for config in result.settings.configs:
            lengths = [p.keys for p in chosen]
            seconds = [getattr(p.phases, phase)[config].seconds for p in chosen]
            values = [s.median * 1e3 for s in seconds]
            lows = [s.min * 1e3 for s in seconds]
            highs = [s.max * 1e3 for s in seconds]
            line, = axis.plot(lengths, values, marker="o", label=config,
                              linestyle="--" if config.startswith("softmax") else "-")
            axis.fill_between(lengths, lows, highs, color=line.get_color(), alpha=0.15)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("keys = queries (batch = token budget / length)")
        axis.set_ylabel("ms per call")
        axis.set_title(f"{phase} ({dtype}, {heads} heads)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    save_figure(figure, path)


def write_outputs(result: AttentionResult, out: Path) -> Dict[str, Path]:
    return write_common_outputs(result, out, plot)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, MODES)
    parser.add_argument("--dtypes", default=None,
                        help="comma-separated float32,bfloat16,float16 (default: float32 on CPU, all three on CUDA)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(verbosity(args), "benchmarks")
    set_threads(args.threads)
    command = " ".join(["python -m benchmarks.attention", *(sys.argv[1:] if argv is None else argv)])
    result = run_attention_benchmark(args.mode, args.device, args.dtypes.split(",") if args.dtypes else None,
                                    command=command)
    paths = write_outputs(result, args.out)
    report = write_report_or_exit(parser, args.out, args.mode, attention=result)
    print(f"wrote {paths['json']}, {paths['png']}, {report}")


if __name__ == "__main__":
    main()
