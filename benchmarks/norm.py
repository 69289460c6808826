"""ReLA's gated RMS norm: the C++ training kernels and the hand-written PyTorch backward against
autograd's, and the decoding kernel against torch's operators; one run, interleaved.

    python -m benchmarks.norm [--rows 624] [--dim 512] [--decode-rows 32] [--repeat 31]

Prints the median time per call of :func:`fairseq_plugins.attention.rms_norm_gate` with the C++
kernels (CPU training: two passes over each row forward, two backward) and without them (PyTorch,
hand-written backward), and of :func:`~fairseq_plugins.attention.rms_norm_gate_reference` (the
same formula left to autograd), forward and forward+backward, and the ratios to autograd.  624 rows x 512 is one training batch of the
record model of ``python -m benchmarks run`` (24 sentences x 26 target tokens).  Then, without
gradients (decoding: ``--decode-rows`` hypotheses, one token each), ``rms_norm_gate`` through the
C++ row kernel against the same call with the kernels off (``F.rms_norm`` and three operators).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def measure(rows: int, dim: int, repeat: int, calls: int = 10) -> dict:
    from fairseq_plugins.attention import rms_norm_gate, rms_norm_gate_reference

    torch.manual_seed(0)
    z = torch.randn(rows, dim, requires_grad=True)
    scale = torch.ones(dim, requires_grad=True)
    gate = (torch.randn(dim) * (3.0 / dim) ** 0.5).requires_grad_()
    grad_y = torch.randn(rows, dim)
    from fairseq_plugins import cpu_kernels

    def pytorch_path(*args):
        with cpu_kernels.enabled(False):
            return rms_norm_gate(*args)

    functions = {"C++ kernels": rms_norm_gate, "PyTorch": pytorch_path, "autograd": rms_norm_gate_reference}
    if cpu_kernels.kernels() is None:
        del functions["C++ kernels"]
    for function in functions.values():  # warm-up: first calls pay one-off setup
        function(z, scale, gate).backward(grad_y)
    results = {}
    for phase in ("forward", "forward+backward"):
        samples = {name: [] for name in functions}
        for _ in range(repeat):
            for name, function in functions.items():  # interleaved: same moment, same load
                start = time.perf_counter()
                for _ in range(calls):
                    y = function(z, scale, gate)
                    if phase == "forward+backward":
                        y.backward(grad_y)
                samples[name].append((time.perf_counter() - start) / calls)
        results[phase] = {name: statistics.median(values) for name, values in samples.items()}
    return results


def measure_inference(rows: int, dim: int, repeat: int) -> dict:
    """Median seconds per call of ``rms_norm_gate`` without gradients: C++ kernel against torch's operators."""
    from fairseq_plugins import cpu_kernels
    from fairseq_plugins.attention import rms_norm_gate

    from .common import interleaved_medians

    torch.manual_seed(0)
    z = torch.randn(1, rows, dim)  # one decoding step: [tgt 1, hypotheses, dim]
    scale, gate = torch.ones(dim), torch.randn(dim) * (3.0 / dim) ** 0.5

    def call(kernel: bool):
        with cpu_kernels.enabled(kernel):
            return rms_norm_gate(z, scale, gate)

    with torch.no_grad():
        return interleaved_medians({"kernel": lambda: call(True), "torch operators": lambda: call(False)},
                                   repeat, torch.device("cpu"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=624)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--decode-rows", type=int, default=32, help="hypotheses of the decoding case (8 x beam 4)")
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.rows, args.dim, args.decode_rows, args.repeat) < 1 or args.threads < 0:
        parser.error("--rows, --dim, --decode-rows and --repeat must be >= 1, --threads >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args.rows, args.dim, args.repeat)
    print(f"gated RMS norm, {args.rows} x {args.dim}, float32, {torch.get_num_threads()} thread(s), "
          f"median of {args.repeat}")
    for phase, times in results.items():
        reference = times["autograd"]
        cells = [f"{name} {seconds * 1e6:8.0f} us ({reference / seconds:.2f}x)" for name, seconds in times.items()]
        print(f"{phase:>17}: " + "   ".join(cells))
    from fairseq_plugins import cpu_kernels

    if cpu_kernels.kernels() is None:
        print(f"inference: no C++ kernel ({cpu_kernels.unavailable_reason()})")
        return
    for dim in sorted({64, args.dim}):
        times = measure_inference(args.decode_rows, dim, args.repeat)
        ours, reference = times["kernel"], times["torch operators"]
        print(f"inference, {args.decode_rows} x {dim:<4}: kernel {ours * 1e6:8.1f} us   torch operators {reference * 1e6:8.1f} us   "
              f"speed-up {reference / ours:.2f}x")


if __name__ == "__main__":
    main()
