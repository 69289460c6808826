"""Moved to :mod:`alignment_eval.interpretability.report`; kept for one release."""

from .interpretability.report import *  # noqa: F401,F403
