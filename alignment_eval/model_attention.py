"""Moved to :mod:`alignment_eval.analysis.model_attention`; kept for one release."""

from .analysis.model_attention import *  # noqa: F401,F403
