"""ReLA's gated RMS norm: the hand-written backward against autograd's, one run, interleaved.

    python -m benchmarks.norm [--rows 624] [--dim 512] [--repeat 31]

Prints the median time per call of :func:`fairseq_plugins.attention.rms_norm_gate` and of
:func:`~fairseq_plugins.attention.rms_norm_gate_reference` (the same formula left to autograd),
forward and forward+backward, and their ratio.  624 rows x 512 is one training batch of the
record model of ``python -m benchmarks run`` (24 sentences x 26 target tokens).
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
    functions = {"hand-written backward": rms_norm_gate, "autograd": rms_norm_gate_reference}
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=624)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args.rows, args.dim, args.repeat)
    print(f"gated RMS norm, {args.rows} x {args.dim}, float32, {torch.get_num_threads()} thread(s), "
          f"median of {args.repeat}")
    for phase, times in results.items():
        ours, reference = times["hand-written backward"], times["autograd"]
        print(f"{phase:>17}: hand-written {ours * 1e6:8.0f} us   autograd {reference * 1e6:8.0f} us   "
              f"speed-up {reference / ours:.2f}x")


if __name__ == "__main__":
    main()
