"""Moved to :mod:`alignment_eval.alignments.errors`; kept for one release."""

from .alignments.errors import *  # noqa: F401,F403
