"""Moved to :mod:`alignment_eval.alignments.aer`; kept for one release."""

from .alignments.aer import *  # noqa: F401,F403
