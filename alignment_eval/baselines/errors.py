"""Errors of the aligner baselines: an aligner that is not installed, or one that failed."""

from __future__ import annotations

__all__ = ["AlignerFailedError", "AlignerUnavailableError"]


class AlignerUnavailableError(RuntimeError):
    """An aligner's package or binary is missing; the message says what to install."""


class AlignerFailedError(RuntimeError):
    """An aligner ran but failed, or wrote output that does not fit the input."""
