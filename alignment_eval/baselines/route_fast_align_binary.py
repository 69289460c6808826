"""fast_align through a clab/fast_align executable, run once on ``src ||| tgt`` and once on ``tgt ||| src``.

No ``-r``: the reverse run reads the swapped corpus and its target-source links are
flipped. A binary on PATH is never picked up silently (``--fast-align-binary PATH``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..alignments.io import Link
from .aligner_io import IndexedCorpus, links_per_sentence, parse_aligner_line, stderr_tail, write_fast_align_corpus
from .errors import AlignerFailedError, AlignerUnavailableError
from .options import FastAlignOptions

__all__ = ["run_fast_align_binary"]


def run_fast_align_binary(
    corpus: IndexedCorpus, options: FastAlignOptions, workdir: Path
) -> tuple[list[set[Link]], list[set[Link]], dict[str, Any]]:
    """Forward and reverse source-target links of the wanted sentences, and the path of ``options.binary``."""
    executable = shutil.which(options.binary or "")
    if executable is None:
        raise AlignerUnavailableError(
            f"fast_align binary {options.binary!r} not found or not executable "
            "(build it from https://github.com/clab/fast_align, or drop --fast-align-binary to use systran-align)"
        )
    if options.prob_align_null != FastAlignOptions.prob_align_null:
        raise ValueError("the fast_align binary route supports only the default p0 (its flag differs between versions)")
    flags = ["-I", str(options.iterations), "-T", f"{options.diagonal_tension:g}"]
    if options.favor_diagonal:
        flags.append("-d")
    if options.optimize_tension:
        flags.append("-o")
    if options.variational_bayes:
        flags += ["-v", "-a", f"{options.alpha:g}"]
    if options.no_null_word:
        flags.append("-N")
    environment = dict(os.environ, OMP_NUM_THREADS=str(options.threads))
    src_ids, tgt_ids, trainable = corpus.src_ids, corpus.tgt_ids, corpus.trainable

    def run(name: str, first_side: str) -> list[str]:
        corpus_path = workdir / f"fast_align.{name}"
        if first_side == "s":
            write_fast_align_corpus(corpus_path, src_ids, "s", tgt_ids, "t", trainable)
        else:
            write_fast_align_corpus(corpus_path, tgt_ids, "t", src_ids, "s", trainable)
        process = subprocess.run(
            [executable, "-i", str(corpus_path), *flags],
            capture_output=True,
            text=True,
            errors="replace",
            env=environment,
            cwd=workdir,
        )
        lines = process.stdout.splitlines()
        if process.returncode != 0 or len(lines) != len(trainable):
            raise AlignerFailedError(
                f"{executable} {name} run failed (exit status {process.returncode}, {len(lines)} output lines "
                f"for {len(trainable)} sentence pairs):\n{stderr_tail(process.stderr)}"
            )
        return lines

    forward_lines = run("src-tgt", "s")
    # Run on the swapped corpus: its output is target-source and is flipped below.
    reverse_lines = run("tgt-src", "t")

    def parse(k: int, number: int) -> tuple[set[Link], set[Link]]:
        n, m = len(src_ids[k]), len(tgt_ids[k])
        tgt_src = parse_aligner_line(reverse_lines[number], m, n, "fast_align tgt-src run", number + 1)
        return (
            parse_aligner_line(forward_lines[number], n, m, "fast_align src-tgt run", number + 1),
            {(s, t) for t, s in tgt_src},
        )

    forward, reverse = links_per_sentence(corpus, parse)
    return forward, reverse, {"binary": executable}
