"""Shared pieces of the benchmarks: machine description, timers, peak memory, statistics, output files."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch

from nmt_common.logs import add_verbosity_arguments
from nmt_common.machine import cpu_model
from nmt_common.variants import VARIANTS
from nmt_common.version import package_version

from .records import AttentionResult, Machine, ModelResult, PeakMemory, Summary

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO_ROOT / "fairseq_plugins"
DEFAULT_OUT = REPO_ROOT / "results" / "perf"

# The attention configurations every benchmark compares.  ``softmax_fused`` is the
# reference: plain softmax through fairseq's own forward, which hands training-time
# self-attention to torch's fused attention (scaled_dot_product_attention).
# ``softmax_python`` is softmax on our Python path (weights requested).
ATTENTION_CONFIGS = ("softmax_fused", "softmax_python", *VARIANTS[1:])


def set_threads(threads: Optional[int]) -> int:
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def machine_description(device: torch.device) -> Machine:
    """What the numbers were measured on."""
    import fairseq

    from fairseq_plugins import cpu_kernels

    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover
        load = None
    cuda = device.type == "cuda"
    return Machine(
        cpu_model=cpu_model(),
        logical_cpus=os.cpu_count(),
        cpus_available=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        load_average_at_start=load,
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch=torch.__version__,
        fairseq=getattr(fairseq, "__version__", "?"),
        entmax=package_version("entmax", fallback=None),
        device=str(device),
        gpu=torch.cuda.get_device_name(device) if cuda else None,
        cuda=torch.version.cuda if cuda else None,
        cpu_normalizers=cpu_kernels.status(),
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, repeat: int = 1) -> float:
    """Seconds per call of ``fn`` (``repeat`` calls back to back)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeat


def calls_for(seconds_per_call: float, target_seconds: float, cap: int = 50) -> int:
    """How many back-to-back calls make one timed sample of about ``target_seconds``."""
    if seconds_per_call <= 0:
        return cap
    return max(1, min(cap, int(target_seconds / seconds_per_call)))


def interleaved_medians(candidates: Dict[str, Callable[[], object]], repeat: int, device: torch.device,
                        sample_seconds: float = 0.02, cap: int = 100_000) -> Dict[str, float]:
    """Median seconds per call of each candidate over ``repeat`` rounds, the candidates timed in turn
    in every round (same moment, same load); each sample is about ``sample_seconds`` of calls."""
    calls = {}
    for name, fn in candidates.items():  # warm-up call, then the calls per sample from a second one
        fn()
        calls[name] = calls_for(time_call(fn, device), sample_seconds, cap)
    samples: Dict[str, List[float]] = {name: [] for name in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            samples[name].append(time_call(fn, device, calls[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


# --- peak memory ------------------------------------------------------------------------


def _profiler_peak_bytes(fn: Callable[[], object]) -> Optional[int]:
    """Peak of torch's live CPU tensor bytes while ``fn`` runs, above what was live before.

    Read from the allocation events of torch's profiler (``profile_memory=True``): every
    allocation and free of a tensor's storage is an event with its size, so the running
    sum in time order gives the live bytes and its maximum the peak.  Tensors that
    existed before the call (parameters, inputs) are not counted.
    """
    try:
        from torch._C._profiler import _EventType
        from torch.profiler import ProfilerActivity, profile
    except ImportError:  # pragma: no cover
        return None
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        roots = prof.profiler.kineto_results.experimental_event_tree()
    except Exception:  # pragma: no cover - private API, may change
        return None
    sizes = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            sizes.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    if not sizes:
        return None
    sizes.sort()
    live = peak = 0
    for _, size in sizes:
        live += size
        peak = max(peak, live)
    return peak


def peak_memory(fn: Callable[[], object], device: torch.device) -> PeakMemory:
    """Peak memory of one call of ``fn``: bytes above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated`` (exact, caching allocator).  CPU: the
    profiler's allocation events (exact for tensors; see :func:`_profiler_peak_bytes`),
    or else the growth of the process's maximum resident set size (an upper-bound-ish
    approximation that only sees new high-water marks).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return PeakMemory(int(torch.cuda.max_memory_allocated(device) - before), "cuda_max_memory_allocated")
    peak = _profiler_peak_bytes(fn)
    if peak is not None:
        return PeakMemory(int(peak), "torch_profiler_allocations")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return PeakMemory(int(max(0, after - before) * 1024), "ru_maxrss_delta")


# --- statistics ------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> Summary:
    """median, min, max, quartiles and count of a list of samples."""
    values = [float(v) for v in values]
    return Summary(
        median=statistics.median(values) if values else float("nan"),
        min=min(values) if values else float("nan"),
        max=max(values) if values else float("nan"),
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
        n=len(values),
    )


def command_line() -> str:
    """The command that produced the results, as a user would type it."""
    module = sys.argv[0]
    if module.endswith("__main__.py"):
        module = "-m " + Path(module).parent.name
    elif module.endswith(".py") and Path(module).resolve().is_relative_to(REPO_ROOT):
        relative = Path(module).resolve().relative_to(REPO_ROOT).with_suffix("")
        module = "-m " + ".".join(relative.parts)
    return " ".join(["python", module, *sys.argv[1:]])


Result = Union[AttentionResult, ModelResult]


def write_outputs(result: Result, out: Path, plot: Callable[[Result, Path], None]) -> Dict[str, Path]:
    """``<benchmark>_<mode>.json`` and ``.png`` in ``out``."""
    stem = f"{result.benchmark}_{result.mode}"
    paths = {"json": out / f"{stem}.json", "png": out / f"{stem}.png"}
    result.write(paths["json"])
    plot(result, paths["png"])
    return paths


def add_common_arguments(parser, modes: Sequence[str]) -> None:
    """--mode, --out, --threads, --device, -v/-q: shared by the attention and model benchmarks."""
    add_verbosity_arguments(parser)
    parser.add_argument("--mode", choices=sorted(modes), default="quick")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default results/perf)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")

