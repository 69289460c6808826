"""fast_align's Viterbi decision rule (Dyer et al. 2013), applied to a trained t(f|e) table."""

from __future__ import annotations

import math
from typing import Sequence

from .options import FastAlignOptions
from .systran_table import NULL_WORD, LexicalTable

__all__ = ["UNSEEN_PAIR_PROB", "fast_align_viterbi"]

#: fast_align looks up pairs it never saw with this probability (clab/fast_align TTable).
UNSEEN_PAIR_PROB = 1e-9


def fast_align_viterbi(
    conditioning: Sequence[str],
    generated: Sequence[str],
    table: LexicalTable,
    tension: float,
    options: FastAlignOptions,
) -> set[tuple[int, int]]:
    """fast_align's Viterbi links (Dyer et al. 2013) as 0-based (conditioning, generated) pairs.

    Each generated word j picks argmax over NULL and the conditioning words i of
    prior(i | j, m, n) · t(f_j | e_i), taking the first of equal candidates.
    """
    n, m = len(conditioning), len(generated)
    use_null = not options.no_null_word
    p_null = options.prob_align_null
    rows = [table.row(word) for word in conditioning]
    null_row = table.row(NULL_WORD)
    links: set[tuple[int, int]] = set()
    for j, word in enumerate(generated, start=1):
        f = table.word_ids.get(word, -1)
        if options.favor_diagonal:
            weights = [math.exp(-abs(i / n - j / m) * tension) for i in range(1, n + 1)]
            scale = (1.0 - p_null) / sum(weights)
            priors = [w * scale for w in weights]
            null_prior = p_null
        else:
            uniform = 1.0 / (n + use_null)
            priors = [uniform] * n
            null_prior = uniform
        best, best_score = -1, -1.0
        if use_null:
            best, best_score = -1, null_prior * null_row.get(f, UNSEEN_PAIR_PROB)
        for i in range(n):
            score = priors[i] * rows[i].get(f, UNSEEN_PAIR_PROB)
            if score > best_score:
                best, best_score = i, score
        if best >= 0:
            links.add((best, j - 1))
    return links
