"""Settings of the two aligners: fast_align (Dyer et al. 2013) and eflomal (Östling & Tiedemann 2016)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["EflomalOptions", "FastAlignOptions"]


@dataclass(frozen=True)
class FastAlignOptions:
    """fast_align settings (Dyer et al. 2013); the defaults are the recommended ``-d -o -v``.

    ``threads`` > 1 trains faster but not reproducibly. ``binary`` selects a
    clab/fast_align executable instead of the systran-align library.
    """

    iterations: int = 5
    favor_diagonal: bool = True
    optimize_tension: bool = True
    variational_bayes: bool = True
    alpha: float = 0.01
    diagonal_tension: float = 4.0
    prob_align_null: float = 0.08
    no_null_word: bool = False
    threads: int = 1
    binary: Optional[str] = None

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"fast_align needs at least 1 iteration, not {self.iterations}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if not 0.0 <= self.prob_align_null < 1.0:
            raise ValueError(f"prob_align_null must be in [0, 1), not {self.prob_align_null}")
        if self.variational_bayes and self.alpha <= 0.0:
            raise ValueError(f"alpha must be > 0 with variational Bayes, not {self.alpha}")

    def flags(self) -> str:
        """The settings as fast_align command-line flags, for signatures and reports."""
        parts = []
        if self.favor_diagonal:
            parts.append("d")
        if self.optimize_tension:
            parts.append("o")
        if self.variational_bayes:
            parts.append(f"v,a={self.alpha:g}")
        if self.no_null_word:
            parts.append("N")
        parts.append(f"I={self.iterations}")
        parts.append(f"T={self.diagonal_tension:g}")
        parts.append(f"p0={self.prob_align_null:g}")
        return ",".join(parts)


@dataclass(frozen=True)
class EflomalOptions:
    """eflomal settings (Östling & Tiedemann 2016); the defaults are those of ``eflomal-align``.

    ``model``: 1 = IBM1, 2 = +HMM, 3 = +fertility. ``rel_iterations`` scales the
    automatic, corpus-size dependent number of sampling iterations.
    """

    model: int = 3
    n_samplers: int = 3
    rel_iterations: float = 1.0
    null_prior: float = 0.2

    def __post_init__(self) -> None:
        if self.model not in (1, 2, 3):
            raise ValueError(f"eflomal model must be 1, 2 or 3, not {self.model}")
        if self.n_samplers < 1:
            raise ValueError(f"n_samplers must be at least 1, not {self.n_samplers}")
        if self.rel_iterations <= 0:
            raise ValueError(f"rel_iterations must be > 0, not {self.rel_iterations}")

    def flags(self) -> str:
        """The settings as ``eflomal-align`` flags (-m, --n-samplers, --null-prior, -l), for signatures."""
        return f"m={self.model},n={self.n_samplers},N={self.null_prior:g},l={self.rel_iterations:g}"
