"""Moved to :mod:`alignment_eval.interpretability.measures`; kept for one release."""

from .interpretability.measures import *  # noqa: F401,F403
