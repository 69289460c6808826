"""Run one aligner on tokenised sentence pairs: its forward and reverse links, as 0-based (source, target).

Directions
    *forward* (src→tgt) gives every target word at most one source word, *reverse*
    (tgt→src) every source word at most one target word; both are returned as
    0-based ``(source, target)`` links. Each run is checked for this shape, which
    catches a reverse run read the wrong way round.

Text handling
    Tokens are those of :func:`alignment_eval.alignments.io.split_tokens`; they are
    handed to the aligners as integer ids, so tabs, U+3000 or a literal ``|||``
    inside a token cannot change the tokenisation (eflomal's own reader splits on
    any whitespace). ``lowercase`` (default off) lowercases both sides for both
    aligners; note that the ``eflomal-align`` script always lowercases. Sentence
    pairs with an empty side are left out of training (fast_align rejects them) and
    get no links.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..alignments.io import Link
from .aligner_io import index_corpus
from .errors import AlignerFailedError
from .options import EflomalOptions, FastAlignOptions
from .route_eflomal import EFLOMAL_PACKAGE, run_eflomal
from .route_fast_align_binary import run_fast_align_binary
from .route_systran_align import SYSTRAN_PACKAGE, run_fast_align_systran

__all__ = ["ALIGNERS", "AlignerRun", "align_with", "check_aligner", "run_aligner"]

#: Supported aligners, in the default run order.
ALIGNERS: tuple[str, ...] = ("fast_align", "eflomal")


@dataclass(frozen=True)
class AlignerRun:
    """Directional links of one aligner run, 0-based ``(source, target)``, one set per output sentence."""

    aligner: str
    implementation: str
    forward: list[set[Link]]
    reverse: list[set[Link]]
    options: str
    deterministic: bool
    training_sentences: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


def _package_version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _check_shape(links: Sequence[set[Link]], direction: str, aligner: str) -> None:
    """Forward runs give each target word ≤ 1 source word, reverse runs each source word ≤ 1 target word."""
    position = 1 if direction == "forward" else 0
    for number, sentence in enumerate(links, start=1):
        seen: set[int] = set()
        for link in sentence:
            if link[position] in seen:
                side = "target" if direction == "forward" else "source"
                raise AlignerFailedError(
                    f"{aligner} {direction} run, sentence {number}: a {side} word has two links, "
                    f"which a {direction} run cannot produce (directions mixed up?)"
                )
            seen.add(link[position])


def check_aligner(aligner: str) -> None:
    """Raise ``ValueError`` unless ``aligner`` is one of :data:`ALIGNERS`."""
    if aligner not in ALIGNERS:
        raise ValueError(f"unknown aligner {aligner!r}; choose from {', '.join(ALIGNERS)}")


def run_aligner(
    aligner: str,
    src_sentences: Sequence[Sequence[str]],
    tgt_sentences: Sequence[Sequence[str]],
    *,
    lowercase: bool = False,
    output_indices: Optional[Sequence[int]] = None,
    fast_align: Optional[FastAlignOptions] = None,
    eflomal: Optional[EflomalOptions] = None,
) -> AlignerRun:
    """Train ``aligner`` on all sentence pairs and return its directional links with run metadata.

    Links are 0-based ``(source, target)`` for the sentences in ``output_indices``
    (default: all), in that order. Pairs with an empty side are not trained on and
    get no links. Raises :class:`AlignerUnavailableError` when the aligner is not
    installed and :class:`AlignerFailedError` when it fails.
    """
    check_aligner(aligner)
    if len(src_sentences) != len(tgt_sentences):
        raise ValueError(f"{len(src_sentences)} source sentences but {len(tgt_sentences)} target sentences")
    wanted = list(range(len(src_sentences))) if output_indices is None else list(output_indices)
    for k in wanted:
        if not 0 <= k < len(src_sentences):
            raise ValueError(f"output index {k} is outside the {len(src_sentences)} sentence pairs")
    corpus = index_corpus(src_sentences, tgt_sentences, wanted, lowercase)
    if not corpus.trainable:
        raise ValueError("no sentence pair has words on both sides; there is nothing to train on")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alignment-baseline-") as temp:
        workdir = Path(temp)
        if aligner == "fast_align":
            settings = fast_align or FastAlignOptions()
            if settings.binary is not None:
                forward, reverse, details = run_fast_align_binary(corpus, settings, workdir)
                implementation = f"binary-{Path(settings.binary).name}"
            else:
                forward, reverse, details = run_fast_align_systran(corpus, settings, workdir)
                implementation = f"{SYSTRAN_PACKAGE}-{_package_version(SYSTRAN_PACKAGE)}"
            options_text = settings.flags()
            deterministic = settings.threads == 1
        else:
            settings_e = eflomal or EflomalOptions()
            forward, reverse, details = run_eflomal(corpus, settings_e, workdir)
            implementation = f"{EFLOMAL_PACKAGE}-{_package_version(EFLOMAL_PACKAGE)}"
            options_text = settings_e.flags()
            deterministic = False
    _check_shape(forward, "forward", aligner)
    _check_shape(reverse, "reverse", aligner)
    return AlignerRun(
        aligner=aligner,
        implementation=implementation.replace("|", "/"),
        forward=forward,
        reverse=reverse,
        options=options_text,
        deterministic=deterministic,
        training_sentences=len(corpus.trainable),
        seconds=time.perf_counter() - start,
        details=details,
    )


def align_with(
    aligner: str,
    src_sentences: Sequence[Sequence[str]],
    tgt_sentences: Sequence[Sequence[str]],
    *,
    lowercase: bool = False,
    output_indices: Optional[Sequence[int]] = None,
    fast_align: Optional[FastAlignOptions] = None,
    eflomal: Optional[EflomalOptions] = None,
) -> tuple[list[set[Link]], list[set[Link]]]:
    """Forward (src→tgt) and reverse (tgt→src) links of ``aligner``, both as 0-based ``(source, target)``.

    See :func:`run_aligner` for the arguments.
    """
    run = run_aligner(
        aligner,
        src_sentences,
        tgt_sentences,
        lowercase=lowercase,
        output_indices=output_indices,
        fast_align=fast_align,
        eflomal=eflomal,
    )
    return run.forward, run.reverse
