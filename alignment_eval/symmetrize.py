"""Moved to :mod:`alignment_eval.alignments.symmetrize`; kept for one release."""

from .alignments.symmetrize import *  # noqa: F401,F403
