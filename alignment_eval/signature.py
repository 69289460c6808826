"""Moved to :mod:`alignment_eval.alignments.signature`; kept for one release."""

from .alignments.signature import *  # noqa: F401,F403
from .alignments.signature import SignatureValue  # noqa: F401
