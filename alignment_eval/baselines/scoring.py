"""Score each aligner on a gold set: forward, reverse and grow-diag-final-and links and their AER.

Training text = gold-set pairs first, then the extra pairs; only the gold-set pairs
are decoded and scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..alignments.aer import AERResult, apply_possible_mode, score_alignments
from ..alignments.io import GoldAlignment, Link, SentencePair
from ..alignments.signature import POSSIBLE_MODES, Signature
from ..alignments.symmetrize import symmetrize
from .aligners import ALIGNERS, AlignerRun, check_aligner, run_aligner
from .options import EflomalOptions, FastAlignOptions

__all__ = ["DIRECTIONS", "SYMMETRIZATION", "AlignerBaseline", "run_baseline"]

#: Result keys of one aligner: the two directional runs and their symmetrisation.
DIRECTIONS: tuple[str, ...] = ("forward", "reverse", "gdfa")
SYMMETRIZATION = "grow-diag-final-and"


@dataclass(frozen=True)
class AlignerBaseline:
    """One aligner's baseline on a gold set: links and scores for forward, reverse and gdfa."""

    run: AlignerRun
    gdfa: list[set[Link]]
    scores: dict[str, AERResult]

    @property
    def aligner(self) -> str:
        return self.run.aligner

    def links(self, direction: str) -> list[set[Link]]:
        """The links of ``forward``, ``reverse`` or ``gdfa``."""
        if direction == "forward":
            return self.run.forward
        if direction == "reverse":
            return self.run.reverse
        if direction == "gdfa":
            return self.gdfa
        raise ValueError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no links): implementation, options, timing and the three scores."""
        return {
            "aligner": self.run.aligner,
            "implementation": self.run.implementation,
            "options": self.run.options,
            "deterministic": self.run.deterministic,
            "training_sentences": self.run.training_sentences,
            "seconds": round(self.run.seconds, 3),
            "details": self.run.details,
            "results": {direction: self.scores[direction].as_dict() for direction in DIRECTIONS},
        }


def _signature(
    run: AlignerRun,
    direction: str,
    *,
    gold_name: str,
    gold_one_based: bool,
    possible: str,
    lowercase: bool,
) -> Signature:
    base = Signature.for_aer(
        gold_name,
        gold_one_based=gold_one_based,
        hyp_one_based=False,
        possible=possible,
        symmetrization=SYMMETRIZATION if direction == "gdfa" else "none",
    )
    return base.with_items(
        **{
            "aligner": run.aligner,
            "impl": run.implementation,
            "dir": "both" if direction == "gdfa" else direction,
            "lc": lowercase,
            "train": run.training_sentences,
            "opts": run.options,
        }
    )


def run_baseline(
    pairs: Sequence[SentencePair],
    gold: Sequence[GoldAlignment],
    aligners: Sequence[str] = ALIGNERS,
    extra_pairs: Sequence[SentencePair] = (),
    *,
    lowercase: bool = False,
    possible: str = "p-includes-s",
    gold_name: str = "gold",
    gold_one_based: bool = False,
    fast_align: Optional[FastAlignOptions] = None,
    eflomal: Optional[EflomalOptions] = None,
) -> dict[str, AlignerBaseline]:
    """Run each aligner on ``pairs`` + ``extra_pairs`` and score the ``pairs`` against ``gold``.

    Returns aligner name -> :class:`AlignerBaseline` with forward, reverse and
    grow-diag-final-and links (Koehn et al. 2003, our Moses implementation) and
    their AER (Och & Ney 2003). ``gold_name``/``gold_one_based`` only go into the
    signatures. The gold must be 0-based ``(source, target)`` and line up with ``pairs``.
    """
    if len(pairs) != len(gold):
        raise ValueError(f"{len(pairs)} sentence pairs but {len(gold)} gold alignments")
    if possible not in POSSIBLE_MODES:
        raise ValueError(f"unknown possible-link mode {possible!r}; choose from {sorted(POSSIBLE_MODES)}")
    if not aligners:
        raise ValueError("no aligner given")
    for aligner in aligners:
        check_aligner(aligner)
    scored_gold = apply_possible_mode(gold, possible)
    training = list(pairs) + list(extra_pairs)
    sources = [pair.source for pair in training]
    targets = [pair.target for pair in training]
    gold_indices = range(len(pairs))
    results: dict[str, AlignerBaseline] = {}
    for aligner in dict.fromkeys(aligners):
        run = run_aligner(
            aligner,
            sources,
            targets,
            lowercase=lowercase,
            output_indices=gold_indices,
            fast_align=fast_align,
            eflomal=eflomal,
        )
        gdfa = [
            symmetrize(fwd, rev, SYMMETRIZATION, len(pair.source), len(pair.target))
            for fwd, rev, pair in zip(run.forward, run.reverse, pairs)
        ]
        links = {"forward": run.forward, "reverse": run.reverse, "gdfa": gdfa}
        scores = {
            direction: score_alignments(
                scored_gold,
                links[direction],
                signature=_signature(
                    run,
                    direction,
                    gold_name=gold_name,
                    gold_one_based=gold_one_based,
                    possible=possible,
                    lowercase=lowercase,
                ),
            )
            for direction in DIRECTIONS
        }
        results[aligner] = AlignerBaseline(run=run, gdfa=gdfa, scores=scores)
    return results
