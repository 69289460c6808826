"""Moved to :mod:`alignment_eval.interpretability.experiments`; kept for one release."""

from .interpretability.experiments import *  # noqa: F401,F403
from .interpretability.cli import check_vocabulary, unknown_rate  # noqa: F401
