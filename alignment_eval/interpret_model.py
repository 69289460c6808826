"""Moved to :mod:`alignment_eval.interpretability.model`; kept for one release."""

from .interpretability.model import *  # noqa: F401,F403
