"""Installed versions: the toolkit's own (``sparse-attention-nmt``) and any other distribution's."""

from __future__ import annotations

from importlib import metadata
from typing import Optional

DISTRIBUTION = "sparse-attention-nmt"
UNKNOWN = "0+unknown"


def package_version(distribution: str = DISTRIBUTION, fallback: Optional[str] = UNKNOWN) -> Optional[str]:
    """The installed version of ``distribution`` (the toolkit by default), or ``fallback`` when it is
    not installed (a bare checkout on ``PYTHONPATH``)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return fallback


__version__ = package_version()
