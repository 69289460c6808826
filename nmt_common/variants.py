"""The seven attention variants of the toolkit, by name: the one list every package imports.

``fairseq_plugins.normalizers.NORMALIZERS`` holds what each name computes (and a test checks that
its keys are exactly these); this module is torch-free, so that command lines, configs and reports
can name the variants without loading torch.
"""

from __future__ import annotations

from typing import Tuple

VARIANTS: Tuple[str, ...] = ("softmax", "rela", "rela_i", "sparsemax", "entmax15", "alpha_entmax", "topk")
"""In report order: the softmax baseline first, then ReLA-g and ReLA-i (Zhang, Titov & Sennrich 2021),
sparsemax (Martins & Astudillo 2016), 1.5-entmax (Peters et al. 2019), learned-alpha entmax (Correia
et al. 2019), top-k (Zhao et al. 2019)."""

BASELINE = "softmax"


def check_variant(name: str) -> str:
    """``name`` if it is a variant, else ValueError listing the valid names."""
    if name not in VARIANTS:
        raise ValueError(f"unknown attention variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return name
