"""Paired bootstrap resampling of BLEU between a system and a baseline, over one or several seeds.

Koehn (2004); the test of sacreBLEU's ``--paired-bs`` (Moses'
``bootstrap-hypothesis-difference-significance.pl``): the same resampled sentence
indices for both systems, p-value from the centred absolute differences, 1000 resamples,
RNG seed 12345. With one hypothesis file per side this reproduces sacreBLEU's p-value
exactly (tested). With several seeds per side, each resample scores every seed's
translation of the same sentences and compares the seed means, so seed variance is
part of the test; we also report the 95% interval of the difference (system - baseline),
which sacreBLEU does not print.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from sacrebleu.metrics import BLEU

N_SAMPLES = 1000
RNG_SEED = 12345  # sacreBLEU's default (SACREBLEU_SEED)


@dataclass
class PairedBootstrap:
    """Result of :func:`paired_bootstrap`: observed delta, its 95% interval, p-value, and the test's signature."""

    system_bleu: float  # mean over the system's seeds of corpus BLEU
    baseline_bleu: float
    delta: float  # system - baseline
    ci_low: float  # 2.5th percentile of the resampled delta
    ci_high: float  # 97.5th percentile
    p_value: float
    system_seeds: int
    baseline_seeds: int
    samples: int
    signature: str

    def as_dict(self) -> dict:
        return asdict(self)


def _statistics(metric: BLEU, hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-sentence BLEU sufficient statistics: [sentences, 2 + 4 * 2] (sacreBLEU's own extraction)."""
    return np.array(metric._extract_corpus_statistics(list(hypotheses), [list(references)]), dtype="float64")


def _corpus_scores(metric: BLEU, statistics: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """BLEU of every resample: statistics [sentences, k], indices [samples, sentences] -> [samples]."""
    sums = statistics[indices].sum(axis=1)  # [samples, k]
    return np.array([metric._compute_score_from_stats(list(row)).score for row in sums])


def paired_bootstrap(system: Sequence[Sequence[str]], baseline: Sequence[Sequence[str]],
                     references: Sequence[str], *, samples: int = N_SAMPLES, seed: int = RNG_SEED) -> PairedBootstrap:
    """Paired bootstrap of mean-over-seeds BLEU: ``system`` and ``baseline`` are lists of hypothesis lists."""
    if not system or not baseline:
        raise ValueError("paired bootstrap needs at least one hypothesis list per side")
    count = len(references)
    for hypotheses in (*system, *baseline):
        if len(hypotheses) != count:
            raise ValueError(f"a hypothesis list has {len(hypotheses)} lines for {count} references")
    metric = BLEU()
    rng = np.random.default_rng(seed)
    indices = rng.choice(count, size=(samples, count), replace=True)  # [samples, sentences]

    def side(hypothesis_lists):
        statistics = [_statistics(metric, h, references) for h in hypothesis_lists]
        observed = np.mean([metric._compute_score_from_stats(list(s.sum(axis=0))).score for s in statistics])
        resampled = np.mean([_corpus_scores(metric, s, indices) for s in statistics], axis=0)  # [samples]
        return observed, resampled

    system_bleu, system_samples = side(system)
    baseline_bleu, baseline_samples = side(baseline)
    delta = system_bleu - baseline_bleu
    differences = system_samples - baseline_samples  # [samples]
    centred = np.abs(differences) - np.abs(differences).mean()
    if not np.any(differences):  # identical outputs: sacreBLEU's statistic would give 1/(n+1); no evidence at all
        p_value = 1.0
    else:
        p_value = (int(np.sum(centred > abs(delta))) + 1) / (samples + 1)
    low, high = np.percentile(differences, [2.5, 97.5])
    signature = (f"paired-bs|n:{samples}|rng:{seed}|seeds:{len(system)}v{len(baseline)}|"
                 f"{metric.get_signature()}")
    return PairedBootstrap(system_bleu=round(float(system_bleu), 2), baseline_bleu=round(float(baseline_bleu), 2),
                           delta=round(float(delta), 2), ci_low=round(float(low), 2), ci_high=round(float(high), 2),
                           p_value=round(p_value, 4), system_seeds=len(system), baseline_seeds=len(baseline),
                           samples=samples, signature=signature)


def mean_and_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5

