"""``python -m benchmarks run --mode quick|full``: both benchmarks, one report.

    python -m benchmarks run --mode full [--only attention|model] [--out results/perf] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from nmt_common.logs import add_verbosity_arguments, setup_logging, verbosity

from . import attention, model
from .common import DEFAULT_OUT, set_threads
from .report import write_report_or_exit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="attention speed benchmarks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the attention and model benchmarks")
    run.add_argument("--mode", choices=("quick", "full", "smoke"), default="quick",
                     help="quick: < 2 min (CI); full: the record (about 23 min on 2 cores); smoke: tests")
    run.add_argument("--only", choices=("attention", "model"), default=None)
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default results/perf)")
    run.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)")
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    run.add_argument("--dtypes", default=None,
                     help="attention benchmark: comma-separated float32,bfloat16,float16 "
                          "(default float32 on CPU, all three on CUDA)")
    model.add_run_options(run)
    add_verbosity_arguments(run)
    args = parser.parse_args(argv)
    setup_logging(verbosity(args), "benchmarks")
    model_options = model.run_options(run, args)
    set_threads(args.threads)
    command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
    written = []
    if args.only in (None, "model"):
        result = model.run_model_benchmark(args.mode, args.device, command=command, **model_options)
        written += model.write_outputs(result, args.out).values()
    if args.only in (None, "attention"):
        result = attention.run_attention_benchmark(
            args.mode, args.device, args.dtypes.split(",") if args.dtypes else None, command=command
        )
        written += attention.write_outputs(result, args.out).values()
    written.append(write_report_or_exit(run, args.out, args.mode))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
