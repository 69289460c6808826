"""Moved to :mod:`alignment_eval.analysis.bench_extract`; kept for one release."""

from .analysis.bench_extract import *  # noqa: F401,F403
from .analysis.bench_extract import main

if __name__ == "__main__":
    main()
