"""Alignment error rate, precision, recall and F-measure (Och & Ney 2003, section 5).

Same semantics as the field's reference script, lilt/alignment-scripts
``scripts/aer.py`` (neulab/awesome-align ships the same in ``tools/aer.py``):

* S = sure gold links, P = sure ∪ possible gold links (so S ⊆ P), A = hypothesis
  links (a hypothesis's possible marks are ignored: every link counts).
* Counts are summed over the corpus, not averaged over sentences::

      precision = |A∩P| / |A|
      recall    = |A∩S| / |S|
      AER       = 1 − (|A∩S| + |A∩P|) / (|A| + |S|)
      F         = 1 / (α / precision + (1 − α) / recall)      (α = 0.5: harmonic mean)

* Human output, as the reference prints it::

      <hypothesis path>: <AER %, 1 decimal>% (<precision %>%/<recall %>%/<number of hypothesis links>)
      F-Measure: <F, 3 decimals>

Defined values where the reference divides by zero (it crashes on a hypothesis
without links): every ratio with a zero denominator is taken as 0. So an empty
hypothesis has precision 0.0, recall 0.0 and AER = 1 − 0 = 1.0; a gold without
sure links has recall 0.0; and F is 0.0 whenever precision or recall is 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from .io import GoldAlignment, Link, PathLike, read_alignments, read_gold_alignments, read_parallel_text
from .signature import POSSIBLE_MODES, Signature

__all__ = [
    "AER",
    "AERCounts",
    "AERResult",
    "count_links",
    "metrics_from_counts",
    "score_alignments",
    "apply_possible_mode",
    "evaluate_files",
    "DEFAULT_F_ALPHA",
]

#: The reference script's F-measure weight (awesome-align default): 0.5 = harmonic mean.
DEFAULT_F_ALPHA = 0.5


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` with 0/0 (and x/0) taken as 0.0."""
    return numerator / denominator if denominator else 0.0


@dataclass(frozen=True)
class AERCounts:
    """Corpus-level link counts: a = |A|, s = |S|, p = |P|, a_and_s = |A∩S|, a_and_p = |A∩P|."""

    a: int
    s: int
    p: int
    a_and_s: int
    a_and_p: int
    sentences: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class AERResult:
    """AER, precision, recall and F-measure (fractions in [0, 1]) with the counts behind them."""

    aer: float
    precision: float
    recall: float
    f_measure: float
    f_alpha: float
    counts: AERCounts
    signature: Optional[Signature] = None

    @property
    def links(self) -> int:
        """Number of hypothesis links |A| (the reference's last printed number)."""
        return self.counts.a

    @property
    def sentences(self) -> int:
        return self.counts.sentences

    def reference_lines(self, label: str) -> list[str]:
        """The reference script's output lines, ``label`` standing for the hypothesis path."""
        return [
            f"{label}: {self.aer * 100.0:.1f}% ({self.precision * 100.0:.1f}%/{self.recall * 100.0:.1f}%/{self.links})",
            f"F-Measure: {self.f_measure:.3f}",
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict: aer, precision, recall, f_measure, f_alpha, links, sentences, counts, signature."""
        return {
            "aer": self.aer,
            "precision": self.precision,
            "recall": self.recall,
            "f_measure": self.f_measure,
            "f_alpha": self.f_alpha,
            "links": self.links,
            "sentences": self.sentences,
            "counts": self.counts.as_dict(),
            "signature": self.signature.as_dict() if self.signature is not None else None,
            "signature_str": str(self.signature) if self.signature is not None else None,
        }


def count_links(gold: Sequence[GoldAlignment], hyp: Sequence[Iterable[Link]]) -> AERCounts:
    """Sum |A|, |S|, |P|, |A∩S| and |A∩P| over all sentences (duplicate links count once)."""
    if len(gold) != len(hyp):
        raise ValueError(f"gold has {len(gold)} sentences but the hypothesis has {len(hyp)}")
    a = s = p = a_and_s = a_and_p = 0
    for gold_sentence, hyp_links in zip(gold, hyp):
        links = hyp_links if isinstance(hyp_links, (set, frozenset)) else set(hyp_links)
        sure = gold_sentence.sure
        a += len(links)
        s += len(sure)
        p += len(sure) + len(gold_sentence.possible)
        in_sure = len(links & sure)
        a_and_s += in_sure
        a_and_p += in_sure + len(links & gold_sentence.possible)
    return AERCounts(a=a, s=s, p=p, a_and_s=a_and_s, a_and_p=a_and_p, sentences=len(gold))


def metrics_from_counts(
    counts: AERCounts, *, f_alpha: float = DEFAULT_F_ALPHA, signature: Optional[Signature] = None
) -> AERResult:
    """Turn corpus counts into AER/precision/recall/F (Och & Ney 2003), zero denominators giving 0."""
    if not 0.0 <= f_alpha <= 1.0:
        raise ValueError(f"f_alpha must be in [0, 1], not {f_alpha}")
    precision = _ratio(counts.a_and_p, counts.a)
    recall = _ratio(counts.a_and_s, counts.s)
    aer = 1.0 - _ratio(counts.a_and_s + counts.a_and_p, counts.a + counts.s)
    if precision == 0.0 or recall == 0.0:
        f_measure = 0.0
    else:
        f_measure = 1.0 / (f_alpha / precision + (1.0 - f_alpha) / recall)
    return AERResult(
        aer=aer,
        precision=precision,
        recall=recall,
        f_measure=f_measure,
        f_alpha=f_alpha,
        counts=counts,
        signature=signature,
    )


def score_alignments(
    gold: Sequence[GoldAlignment],
    hyp: Sequence[Iterable[Link]],
    *,
    f_alpha: float = DEFAULT_F_ALPHA,
    signature: Optional[Signature] = None,
) -> AERResult:
    """Score hypothesis links against gold links over a whole corpus (Och & Ney 2003).

    ``gold`` and ``hyp`` are aligned sentence by sentence, with 0-based
    ``(source, target)`` links. See the module docstring for the formulas and the
    values used where a denominator is zero.
    """
    return metrics_from_counts(count_links(gold, hyp), f_alpha=f_alpha, signature=signature)


def apply_possible_mode(gold: Sequence[GoldAlignment], mode: str) -> list[GoldAlignment]:
    """Re-label gold links: ``p-includes-s`` (unchanged), ``all-sure`` or ``ignore-possible``.

    The two alternatives mirror awesome-align's ``--allSure`` and ``--ignorePossible``.
    """
    if mode not in POSSIBLE_MODES:
        raise ValueError(f"unknown possible-link mode {mode!r}; choose from {sorted(POSSIBLE_MODES)}")
    if mode == "all-sure":
        return [GoldAlignment(g.all_links, frozenset()) for g in gold]
    if mode == "ignore-possible":
        return [GoldAlignment(g.sure, frozenset()) for g in gold]
    return list(gold)


@dataclass(frozen=True, eq=False)
class AER:
    """The AER metric object: a gold set and the settings that score against it, fixed once.

    As with sacreBLEU's ``BLEU``, :meth:`score` returns an :class:`AERResult` whose signature is
    :meth:`signature`: derived from this object's settings plus the hypothesis's provenance
    (``layer``, ``head``, ``method``, ``shift``, ``subword``, ``symmetrization`` and any extra
    ``key=value``), so no caller assembles a signature by hand. ``gold`` is 0-based
    ``(source, target)``; ``gold_name``/``gold_one_based``/``reverse_gold`` say how it was read.
    """

    gold: Sequence[GoldAlignment]
    gold_name: str
    gold_one_based: bool = False
    reverse_gold: bool = False
    possible: str = "p-includes-s"
    f_alpha: float = DEFAULT_F_ALPHA

    def __post_init__(self) -> None:
        # S and P as the possible-link mode defines them (raises on an unknown mode)
        object.__setattr__(self, "_scored_gold", apply_possible_mode(self.gold, self.possible))

    def signature(self, *, hyp_one_based: bool = False, reverse_hyp: bool = False, layer: Optional[int] = None,
                  head: Optional[int | str] = None, method: Optional[str] = None,
                  shift: Optional[bool | int] = None, subword: Optional[str] = None,
                  symmetrization: Optional[str] = None, **extra: Any) -> Signature:
        """The signature of a hypothesis scored by this object (``extra`` keys go before ``version``)."""
        signature = Signature.for_aer(
            self.gold_name, gold_one_based=self.gold_one_based, hyp_one_based=hyp_one_based,
            reverse_gold=self.reverse_gold, reverse_hyp=reverse_hyp, possible=self.possible,
            layer=layer, head=head, method=method, shift=shift, subword=subword, symmetrization=symmetrization,
        )
        return signature.with_items(**extra) if extra else signature

    def score(self, hyp: Sequence[Iterable[Link]], **provenance: Any) -> AERResult:
        """Score ``hyp`` (0-based links, one set per gold sentence); ``provenance`` goes into the signature."""
        return score_alignments(self._scored_gold, hyp, f_alpha=self.f_alpha, signature=self.signature(**provenance))


def evaluate_files(
    gold_path: PathLike,
    hyp_path: PathLike,
    *,
    gold_one_based: bool = False,
    hyp_one_based: bool = False,
    reverse_gold: bool = False,
    reverse_hyp: bool = False,
    text_path: Optional[PathLike] = None,
    possible: str = "p-includes-s",
    f_alpha: float = DEFAULT_F_ALPHA,
    signature_extra: Optional[dict[str, Any]] = None,
) -> AERResult:
    """Read, validate and score a gold and a hypothesis file; the result carries the signature.

    With ``text_path`` (a ``SOURCE ||| TARGET`` file) every index of both files is
    checked against the sentence lengths. Line counts of all files must agree.
    ``signature_extra`` adds the optional signature keys of
    :meth:`Signature.for_aer` (``layer``, ``head``, ``method``, ``shift``,
    ``subword``, ``symmetrization``). Raises :class:`AlignmentInputError` on bad input.
    """
    texts = read_parallel_text(text_path) if text_path is not None else None
    gold = read_gold_alignments(
        gold_path, one_based=gold_one_based, reverse=reverse_gold, texts=texts, text_path=text_path
    )
    hyp = read_alignments(
        hyp_path,
        one_based=hyp_one_based,
        reverse=reverse_hyp,
        texts=texts,
        text_path=text_path,
        expect_lines=len(gold),
        expect_lines_from=gold_path,
    )
    metric = AER(gold, Path(gold_path).name, gold_one_based=gold_one_based, reverse_gold=reverse_gold,
                 possible=possible, f_alpha=f_alpha)
    return metric.score(hyp, hyp_one_based=hyp_one_based, reverse_hyp=reverse_hyp, **(signature_extra or {}))
