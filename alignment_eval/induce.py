"""Moved to :mod:`alignment_eval.alignments.induce`; kept for one release."""

from .alignments.induce import *  # noqa: F401,F403
