"""Moved to :mod:`alignment_eval.baselines` (one module per job); kept for one release."""

from .baselines import *  # noqa: F401,F403
from .baselines.route_systran_align import SYSTRAN_MODULE as _SYSTRAN_MODULE  # noqa: F401
from .baselines.viterbi import fast_align_viterbi as _fast_align_viterbi  # noqa: F401
