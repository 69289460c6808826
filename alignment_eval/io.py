"""Moved to :mod:`alignment_eval.alignments.io`; kept for one release."""

from .alignments.io import *  # noqa: F401,F403
from .alignments.io import TEXT_SEPARATOR, UTF8_BOM  # noqa: F401
