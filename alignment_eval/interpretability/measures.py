"""Torch-free measures for ``alignment-eval interpret``: divergences, rank correlation, support overlap.

Conventions shared by every interpretability test:

* An attention **row** is the non-negative weight vector of one query over the
  keys.  Rows are compared as distributions after dividing by their sum; an
  all-zero row (ReLA "attends to nothing") is a **null row**: it has no
  distribution, so every measure counts it apart instead of dropping it.
* The **head average** of a layer is the mean of the row-normalised non-null
  heads (as in the head-diversity JS of :mod:`alignment_eval.analysis.attention_stats`);
  it is null only when every head is null.
* Divergences are in nats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.stats import kendalltau

from ..analysis.attention_stats import entropy

#: Share of a row's weight whose smallest holding set is compared with the top inputs (dense rows).
ATTENTION_MASS = 0.9
#: Smoothing of the KL divergence between attention rows (sparse rows have exact zeros).
KL_SMOOTHING = 1e-3


def normalise_rows(weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Row-normalise non-negative ``weights`` [..., keys] -> (distributions, null mask [...]).

    Null (all-zero) rows come back as all-zero rows with ``null`` True.
    """
    weights = np.asarray(weights, dtype=np.float64)
    totals = weights.sum(axis=-1)
    null = totals <= 0
    safe = np.where(null, 1.0, totals)[..., None]
    return np.where(null[..., None], 0.0, weights / safe), null


def head_average(weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """[heads, queries, keys] -> (mean of the row-normalised non-null heads [queries, keys], null [queries])."""
    distributions, null = normalise_rows(weights)
    live = ~null  # [heads, queries]
    n_live = live.sum(axis=0)
    mixture = (distributions * live[..., None]).sum(axis=0) / np.maximum(n_live, 1)[:, None]
    return mixture, n_live == 0


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between distributions along the last axis."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    js = entropy(0.5 * (p + q)) - 0.5 * (entropy(p) + entropy(q))
    return np.clip(js, 0.0, np.log(2.0))


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total variation distance 1/2 sum |p - q| (in [0, 1]) along the last axis."""
    return 0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum(axis=-1)


def describe(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """count, mean, median, standard deviation, min and max (None when empty)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"count": 0, "mean": None, "median": None, "std": None, "min": None, "max": None}
    return {
        "count": int(array.size), "mean": float(array.mean()), "median": float(np.median(array)),
        "std": float(array.std()), "min": float(array.min()), "max": float(array.max()),
    }


def is_constant(values: np.ndarray) -> bool:
    """True when a rank correlation with ``values`` is undefined (fewer than two distinct values)."""
    return values.size < 2 or bool(np.all(values == values[0]))


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b of two score vectors (scipy.stats.kendalltau; handles ties)."""
    return float(kendalltau(a, b).statistic)


@dataclass
class RankCorrelation:
    """Kendall tau between attention rows and importance rows (Jain & Wallace 2019, Sec. 4.1).

    tau is undefined for a null attention row, an attention row that is zero on
    every compared key while attending elsewhere (``other_keys_only_rows``, e.g. all
    of it on the source EOS), a constant attention row and a constant importance
    row; each is counted apart, in that order of precedence.
    """

    taus: List[float] = field(default_factory=list)
    null_rows: int = 0
    other_keys_only_rows: int = 0
    constant_attention_rows: int = 0
    constant_importance_rows: int = 0

    def add(self, attention: np.ndarray, importance: np.ndarray, *, attends_elsewhere: bool = False) -> Optional[float]:
        """Add one row pair; returns tau or None when it is undefined (and counted apart)."""
        attention = np.asarray(attention, dtype=np.float64)
        importance = np.asarray(importance, dtype=np.float64)
        if not attention.any():
            if attends_elsewhere:
                self.other_keys_only_rows += 1
            else:
                self.null_rows += 1
            return None
        if is_constant(attention):
            self.constant_attention_rows += 1
            return None
        if is_constant(importance):
            self.constant_importance_rows += 1
            return None
        tau = kendall_tau(attention, importance)
        self.taus.append(tau)
        return tau

    @property
    def rows(self) -> int:
        return (len(self.taus) + self.null_rows + self.other_keys_only_rows
                + self.constant_attention_rows + self.constant_importance_rows)

    def summary(self) -> dict:
        stats = describe(self.taus)
        taus = np.asarray(self.taus)
        return {
            "rows": self.rows,
            "tau_rows": len(self.taus),
            "null_rows": self.null_rows,
            "other_keys_only_rows": self.other_keys_only_rows,
            "constant_attention_rows": self.constant_attention_rows,
            "constant_importance_rows": self.constant_importance_rows,
            "tau_mean": stats["mean"],
            "tau_median": stats["median"],
            "tau_std": stats["std"],
            "tau_positive_rate": float((taus > 0).mean()) if taus.size else None,
        }


def top_k_positions(importance: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most important positions (ties broken by position, stable)."""
    return np.argsort(-np.asarray(importance, dtype=np.float64), kind="stable")[:k]


@dataclass
class SupportOverlap:
    """Does the support of a sparse attention row pick the most influential inputs? (Meister et al. 2021, Sec. 5)

    For a row with support S (non-zero keys, |S| = k) and the top-k keys T by
    importance: overlap |S ∩ T| / k (precision = recall), Jaccard |S ∩ T| / |S ∪ T|,
    and the overlap a random k-subset would get, k / n.  Null rows, rows attending
    only to keys outside the comparison and rows whose support is every key (dense
    attention: overlap 1 by construction) are counted apart.

    With ``mass`` (e.g. 0.9) the compared set is instead the smallest set of most
    attended keys holding that share of the row's weight, so that dense (softmax)
    rows can be compared too.
    """

    mass: Optional[float] = None

    overlaps: List[float] = field(default_factory=list)
    jaccards: List[float] = field(default_factory=list)
    chance: List[float] = field(default_factory=list)
    support_sizes: List[int] = field(default_factory=list)
    null_rows: int = 0
    other_keys_only_rows: int = 0
    full_support_rows: int = 0

    def add(self, attention: np.ndarray, importance: np.ndarray, *, attends_elsewhere: bool = False) -> Optional[float]:
        attention = np.asarray(attention, dtype=np.float64)
        support = attention > 0
        if self.mass is not None and support.any():
            order = np.argsort(-attention, kind="stable")
            cumulative = np.cumsum(attention[order]) / attention.sum()
            held = int(np.searchsorted(cumulative, self.mass - 1e-9)) + 1
            support = np.zeros_like(support)
            support[order[:min(held, attention.size)]] = True
        k = int(support.sum())
        if k == 0:
            if attends_elsewhere:
                self.other_keys_only_rows += 1
            else:
                self.null_rows += 1
            return None
        if k == support.size:
            self.full_support_rows += 1
            return None
        top = np.zeros_like(support)
        top[top_k_positions(importance, k)] = True
        shared = int((support & top).sum())
        self.overlaps.append(shared / k)
        self.jaccards.append(shared / (2 * k - shared))
        self.chance.append(k / support.size)
        self.support_sizes.append(k)
        return shared / k

    @property
    def rows(self) -> int:
        return len(self.overlaps) + self.null_rows + self.other_keys_only_rows + self.full_support_rows

    def summary(self) -> dict:
        return {
            "set": "support" if self.mass is None else f"{self.mass:g} of the weight",
            "rows": self.rows,
            "compared_rows": len(self.overlaps),
            "null_rows": self.null_rows,
            "other_keys_only_rows": self.other_keys_only_rows,
            "full_support_rows": self.full_support_rows,
            "overlap_mean": describe(self.overlaps)["mean"],
            "jaccard_mean": describe(self.jaccards)["mean"],
            "chance_overlap_mean": describe(self.chance)["mean"],
            "support_size_mean": describe(self.support_sizes)["mean"],
        }


def coindexed_shares(attribution: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Share of each position's attribution on its own input, and whether that input is the top one.

    ``attribution`` [positions i, inputs j] (non-negative).  Returns
    (share [i] = a[i, i] / sum_j a[i, j], NaN where the row is all zero;
    top [i] = argmax_j a[i, j] == i).
    """
    attribution = np.asarray(attribution, dtype=np.float64)
    totals = attribution.sum(axis=1)
    diagonal = np.diagonal(attribution)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, diagonal / np.where(totals > 0, totals, 1.0), np.nan)
    top = attribution.argmax(axis=1) == np.arange(attribution.shape[0])
    return share, top
