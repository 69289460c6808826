"""Moved to :mod:`alignment_eval.analysis.extract`; kept for one release."""

from .analysis.extract import *  # noqa: F401,F403
