"""Moved to :mod:`alignment_eval.alignments.bench_aer`; kept for one release."""

import sys

from .alignments.bench_aer import *  # noqa: F401,F403
from .alignments.bench_aer import main

if __name__ == "__main__":
    sys.exit(main())
