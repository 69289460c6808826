"""Score each aligner on a gold set: forward, reverse and grow-diag-final-and links and their AER.

Training text = gold-set pairs first, then the extra pairs; only the gold-set pairs
are decoded and scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..alignments.aer import AER, AERResult
from ..alignments.io import GoldAlignment, Link, SentencePair
from ..alignments.records import AlignerEntry, BaselineScore
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

    def entry(self, files: dict[str, str]) -> AlignerEntry:
        """This aligner's ``baseline.json`` entry (no links): how it ran, its three scores and ``files``."""
        return AlignerEntry(
            aligner=self.run.aligner,
            implementation=self.run.implementation,
            options=self.run.options,
            deterministic=self.run.deterministic,
            training_sentences=self.run.training_sentences,
            seconds=round(self.run.seconds, 3),
            details=self.run.details,
            results={direction: BaselineScore.from_result(self.scores[direction]) for direction in DIRECTIONS},
            files=files,
        )


def _provenance(run: AlignerRun, direction: str, *, lowercase: bool) -> dict[str, Any]:
    """What an aligner's links went through, for the AER metric object's signature."""
    return {
        "symmetrization": SYMMETRIZATION if direction == "gdfa" else "none",
        "aligner": run.aligner,
        "impl": run.implementation,
        "dir": "both" if direction == "gdfa" else direction,
        "lc": lowercase,
        "train": run.training_sentences,
        "opts": run.options,
    }


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
    if not aligners:
        raise ValueError("no aligner given")
    for aligner in aligners:
        check_aligner(aligner)
    metric = AER(gold, gold_name, gold_one_based=gold_one_based, possible=possible)  # checks ``possible``
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
            direction: metric.score(links[direction], **_provenance(run, direction, lowercase=lowercase))
            for direction in DIRECTIONS
        }
        results[aligner] = AlignerBaseline(run=run, gdfa=gdfa, scores=scores)
    return results
