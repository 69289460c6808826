"""Moved to :mod:`alignment_eval.analysis.attention_stats`; kept for one release."""

from .analysis.attention_stats import *  # noqa: F401,F403
from .analysis.attention_stats import entropy as _entropy  # noqa: F401
