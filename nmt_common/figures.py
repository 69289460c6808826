"""matplotlib for files, not screens: the Agg backend and quiet font logging, set up once; atomic saving.

matplotlib is imported only when a function here is called, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .files import PathLike, atomic_path

_ready = False


def pyplot():
    """``matplotlib.pyplot``, on the Agg backend, with matplotlib's and PIL's debug logging kept quiet
    (fairseq sets the root logger to DEBUG when imported; the font search would flood stderr)."""
    global _ready
    if not _ready:
        for name in ("matplotlib", "PIL"):
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        import matplotlib

        matplotlib.use("Agg")
        _ready = True
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: PathLike, *, dpi: int = 100, tight: bool = True) -> Path:
    """Write ``figure`` to ``path`` atomically (format from the suffix, PNG by default; the folder is
    created), after ``tight_layout`` unless ``tight`` is False, and close it."""
    plt = pyplot()
    path = Path(path)
    try:
        if tight:
            figure.tight_layout()
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        plt.close(figure)
    return path
