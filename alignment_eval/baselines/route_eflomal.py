"""eflomal: Bayesian IBM1 + HMM + fertility models with collapsed Gibbs sampling.

Östling & Tiedemann 2016, "Efficient Word Alignment with Markov Chain Monte Carlo",
PBML 106, through the ``eflomal`` package's ``align`` function with the
``eflomal-align`` defaults (model 3, 3 samplers, null prior 0.2, iterations scaled by
corpus size). Its reverse links come out in source-target order. eflomal 2.0 seeds
its samplers from ``/dev/urandom`` and has no seed option, so its numbers vary
slightly between runs (De-En gdfa AER 39.0-39.6 over six runs). The package is
optional: it is imported when this route runs, and its absence is reported as
:class:`~alignment_eval.baselines.errors.AlignerUnavailableError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..alignments.io import Link
from .aligner_io import IndexedCorpus, links_per_sentence, parse_aligner_line
from .errors import AlignerFailedError, AlignerUnavailableError
from .options import EflomalOptions

__all__ = ["EFLOMAL_PACKAGE", "run_eflomal"]

EFLOMAL_PACKAGE = "eflomal"


def run_eflomal(
    corpus: IndexedCorpus, options: EflomalOptions, workdir: Path
) -> tuple[list[set[Link]], list[set[Link]], dict[str, Any]]:
    """Forward and reverse source-target links of the wanted sentences."""
    try:
        import eflomal
    except ImportError as exc:
        raise AlignerUnavailableError(
            f"eflomal needs the eflomal package (pip install eflomal==2.0.0): {exc}"
        ) from None
    src_ids, tgt_ids, trainable = corpus.src_ids, corpus.tgt_ids, corpus.trainable
    src_path, tgt_path = workdir / "eflomal.src", workdir / "eflomal.tgt"
    forward_path, reverse_path = workdir / "eflomal.fwd", workdir / "eflomal.rev"
    for path, ids, size in ((src_path, src_ids, corpus.src_vocab_size), (tgt_path, tgt_ids, corpus.tgt_vocab_size)):
        with open(path, "wb") as stream:
            eflomal.write_text(stream, tuple(np.asarray(ids[k], dtype=np.uint32) for k in trainable), size)
    eflomal.align(
        str(src_path),
        str(tgt_path),
        links_filename_fwd=str(forward_path),
        links_filename_rev=str(reverse_path),
        model=options.model,
        n_samplers=options.n_samplers,
        rel_iterations=options.rel_iterations,
        null_prior=options.null_prior,
        quiet=True,
    )
    outputs = []
    for path in (forward_path, reverse_path):
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        if len(lines) != len(trainable):
            raise AlignerFailedError(
                f"eflomal wrote {len(lines)} lines to {path.name} for {len(trainable)} sentence pairs "
                "(its binary may have crashed: run eflomal-align by hand to see why)"
            )
        outputs.append(lines)

    def parse(k: int, number: int) -> tuple[set[Link], set[Link]]:
        n, m = len(src_ids[k]), len(tgt_ids[k])
        # eflomal writes both directions as source-target links.
        return (
            parse_aligner_line(outputs[0][number], n, m, "eflomal forward run", number + 1),
            parse_aligner_line(outputs[1][number], n, m, "eflomal reverse run", number + 1),
        )

    forward, reverse = links_per_sentence(corpus, parse)
    return forward, reverse, {}
