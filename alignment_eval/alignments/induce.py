"""From attention weights to word alignments (NumPy only, no torch).

Conventions
    * Attention of one sentence pair, one layer and one head (or the head
      average) is a matrix ``[decoder positions, source pieces + EOS]``.  Decoder
      position 0 has the BOS/EOS token as input; position k (k >= 1) has target
      piece k-1 as input.
    * **Normal** attention of target piece k is the row where piece k is being
      *predicted*: decoder position k (its input is piece k-1).
    * **Shifted** attention (Shift-Att, Chen et al. 2020, Sec. 3) of target piece k
      is the row where piece k is the decoder *input*: decoder position k + 1.
    * The source EOS column is dropped, as fairseq's ``--print-alignment`` does
      (``utils.extract_hard_alignment`` excludes EOS and padding).

Subword -> word (``rule``)
    * ``any``: induce links between pieces, then link two words when any of their
      pieces are linked (lilt/alignment-scripts' sentencepiece_to_word_alignments
      convention).
    * ``mean``: first build a word x word matrix whose entry is the attention mass
      a target word puts on a source word (sum over the source word's pieces,
      averaged over the target word's pieces), then induce links between words.

Link induction per target row (``method``)
    * ``argmax``: the source position of the largest weight (dense attention's usual
      rule).  A row that is entirely zero (ReLA "attends to nothing") stays unaligned,
      where fairseq's ``--print-alignment`` would force it onto some source word.
    * ``nonzero``: every source position with a weight > 0 (the support of sparse
      attention; for softmax it links everything).
    * ``threshold``: every source position whose weight, divided by the row's sum,
      is >= ``threshold`` (row-normalised so that unnormalised ReLA rows compare).
"""

from __future__ import annotations

from typing import Set, Tuple

import numpy as np

Link = Tuple[int, int]

METHODS = ("argmax", "nonzero", "threshold")
SUBWORD_RULES = ("any", "mean")
DEFAULT_THRESHOLD = 0.3


def target_rows(attention: np.ndarray, n_target_pieces: int, shift: bool) -> np.ndarray:
    """Rows of ``attention`` [..., decoder positions, source+EOS] for the target pieces, EOS column dropped.

    Returns ``[..., n_target_pieces, n_source_pieces]``.
    """
    first = 1 if shift else 0
    rows = attention[..., first:first + n_target_pieces, :-1]
    if rows.shape[-2] != n_target_pieces:
        raise ValueError(
            f"attention has {attention.shape[-2]} decoder positions, too few for {n_target_pieces} "
            f"target pieces{' shifted' if shift else ''}"
        )
    return rows


def row_links(rows: np.ndarray, method: str, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Boolean link matrices [..., targets, sources] from weight rows [..., targets, sources]."""
    if method == "argmax":
        links = np.zeros(rows.shape, dtype=bool)
        if rows.shape[-1] == 0:
            return links
        best = rows.argmax(axis=-1)[..., None]  # [..., targets, 1]
        attended = np.take_along_axis(rows, best, axis=-1) > 0  # all-zero rows stay unaligned
        np.put_along_axis(links, best, attended, axis=-1)
        return links
    if method == "nonzero":
        return rows > 0
    if method == "threshold":
        totals = rows.sum(axis=-1, keepdims=True)
        normalised = rows / np.where(totals > 0, totals, 1.0)
        return (normalised >= threshold) & (rows > 0)
    raise ValueError(f"unknown induction method {method!r}; choose from {', '.join(METHODS)}")


def _one_hot(word_of_piece: np.ndarray, n_words: int) -> np.ndarray:
    """[pieces, words] with a 1 where the piece belongs to the word."""
    matrix = np.zeros((len(word_of_piece), n_words))
    matrix[np.arange(len(word_of_piece)), word_of_piece] = 1.0
    return matrix


def pool_to_words(
    rows: np.ndarray, target_word_of_piece: np.ndarray, source_word_of_piece: np.ndarray,
    n_target_words: int, n_source_words: int,
) -> np.ndarray:
    """Piece rows [..., target pieces, source pieces] -> words [..., target words, source words].

    Entry (t, s): attention mass on source word s (sum over its pieces), averaged over
    the pieces of target word t.
    """
    source_pool = _one_hot(source_word_of_piece, n_source_words)  # [source pieces, source words]
    target_pool = _one_hot(target_word_of_piece, n_target_words).T  # [target words, target pieces]
    target_pool /= np.maximum(target_pool.sum(axis=1, keepdims=True), 1.0)  # average over a word's pieces
    return target_pool @ rows.astype(np.float64) @ source_pool


def word_links_batch(
    rows: np.ndarray,
    target_word_of_piece: np.ndarray,
    source_word_of_piece: np.ndarray,
    n_target_words: int,
    n_source_words: int,
    method: str,
    rule: str = "any",
    threshold: float = DEFAULT_THRESHOLD,
) -> list:
    """Word links of every matrix in ``rows`` [n, target pieces, source pieces].

    Returns a list of n sets ``{(source word, target word)}``.
    """
    if rule == "mean":
        pooled = pool_to_words(rows, target_word_of_piece, source_word_of_piece, n_target_words, n_source_words)
        which, t_word, s_word = np.nonzero(row_links(pooled, method, threshold))
    elif rule == "any":
        which, t_piece, s_piece = np.nonzero(row_links(rows, method, threshold))
        t_word, s_word = target_word_of_piece[t_piece], source_word_of_piece[s_piece]
    else:
        raise ValueError(f"unknown subword rule {rule!r}; choose from {', '.join(SUBWORD_RULES)}")
    links: list = [set() for _ in range(rows.shape[0])]
    for index, s, t in zip(which.tolist(), s_word.tolist(), t_word.tolist()):
        links[index].add((s, t))
    return links


def word_links(
    rows: np.ndarray,
    target_word_of_piece: np.ndarray,
    source_word_of_piece: np.ndarray,
    n_target_words: int,
    n_source_words: int,
    method: str,
    rule: str = "any",
    threshold: float = DEFAULT_THRESHOLD,
) -> Set[Link]:
    """Word links ``{(source word, target word)}`` from piece rows [target pieces, source pieces]."""
    return word_links_batch(
        rows[None], target_word_of_piece, source_word_of_piece, n_target_words, n_source_words,
        method, rule, threshold,
    )[0]
