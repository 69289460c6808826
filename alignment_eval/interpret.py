"""Moved to :mod:`alignment_eval.interpretability.cli`; kept for one release."""

from .interpretability.cli import *  # noqa: F401,F403
