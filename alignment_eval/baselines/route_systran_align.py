"""fast_align (Dyer, Chahuneau & Smith 2013, IBM Model 2 with a diagonal prior) through systran-align.

The default fast_align route: the ``systran-align`` package (its bundled fast_align
library). ``systran_align.generate_alignment_probabilities`` trains both directions (the
usual ``-d -o -v`` settings, 5 EM iterations) and writes the lexical tables t(f|e)
unpruned (:mod:`.systran_table` reads them). Its ``Aligner`` only returns its own
symmetrised links, so the directional Viterbi links are decoded here from those tables
with fast_align's decision rule (:mod:`.viterbi`), with the tension λ fast_align
reached in training (parsed from its log): the links ``fast_align -d -o -v`` prints
after its final iteration, up to float32 rounding of the stored table. Training runs
in a child process with ``OMP_NUM_THREADS=1`` by default: with more threads
fast_align's unsynchronised count updates make the tables (and the AER) change from
run to run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..alignments.io import Link
from .aligner_io import IndexedCorpus, fast_align_words, stderr_tail, write_fast_align_corpus
from .errors import AlignerFailedError, AlignerUnavailableError
from .options import FastAlignOptions
from .systran_table import NULL_WORD, read_lexical_table
from .viterbi import fast_align_viterbi

__all__ = ["SYSTRAN_MODULE", "SYSTRAN_PACKAGE", "final_tensions", "run_fast_align_systran"]

SYSTRAN_PACKAGE = "systran-align"
SYSTRAN_MODULE = "systran_align"
# systran-align prunes t(f|e) below a beam when writing its tables; this keeps every entry.
KEEP_WHOLE_TABLE = -1000.0
_TENSION_RE = re.compile(r"final tension:\s*([-+0-9.eE]+)")
_TABLE_WRITTEN_RE = re.compile(r"conditional probabilities:\s*(.+?)\s*$")
TRAIN_SCRIPT = (
    "import importlib, json, sys\n"
    "aligner = importlib.import_module(sys.argv[1])\n"
    "aligner.generate_alignment_probabilities(**json.loads(sys.argv[2]))\n"
)


def final_tensions(log: str, default: float) -> dict[str, float]:
    """Table path -> the diagonal tension fast_align reached before writing that table."""
    tensions: dict[str, float] = {}
    current = default
    for line in log.splitlines():
        match = _TENSION_RE.search(line)
        if match:
            current = float(match.group(1))
            continue
        match = _TABLE_WRITTEN_RE.search(line)
        if match:
            tensions[match.group(1)] = current
            current = default
    return tensions


def run_fast_align_systran(
    corpus: IndexedCorpus, options: FastAlignOptions, workdir: Path
) -> tuple[list[set[Link]], list[set[Link]], dict[str, Any]]:
    """Forward and reverse source-target links of the wanted sentences, and the trained tensions."""
    if importlib.util.find_spec(SYSTRAN_MODULE) is None:
        hint = ""
        found = shutil.which("fast_align")
        if found:
            hint = f"; or use the fast_align binary found at {found} with --fast-align-binary {found}"
        raise AlignerUnavailableError(
            "fast_align needs the systran-align package (pip install systran-align==3.5.0) "
            f"or a clab/fast_align binary passed with --fast-align-binary PATH{hint}"
        )
    src_ids, tgt_ids, wanted = corpus.src_ids, corpus.tgt_ids, corpus.wanted
    corpus_path = workdir / "fast_align.corpus"
    write_fast_align_corpus(corpus_path, src_ids, "s", tgt_ids, "t", corpus.trainable)
    forward_table, reverse_table = workdir / "forward.probs", workdir / "reverse.probs"
    parameters = {
        "input_path": str(corpus_path),
        "forward_probs_path": str(forward_table),
        "backward_probs_path": str(reverse_table),
        "verbose": True,
        "iterations": options.iterations,
        "favor_diagonal": options.favor_diagonal,
        "beam_threshold": KEEP_WHOLE_TABLE,
        "diagonal_tension": options.diagonal_tension,
        "optimize_tension": options.optimize_tension,
        "variational_bayes": options.variational_bayes,
        "alpha": options.alpha,
        "no_null_word": options.no_null_word,
        "prob_align_null": options.prob_align_null,
    }
    environment = dict(os.environ, OMP_NUM_THREADS=str(options.threads))
    process = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, SYSTRAN_MODULE, json.dumps(parameters)],
        capture_output=True,
        text=True,
        errors="replace",
        env=environment,
        cwd=workdir,
    )
    if process.returncode != 0 or not forward_table.is_file() or not reverse_table.is_file():
        raise AlignerFailedError(
            f"systran-align training failed (exit status {process.returncode}):\n{stderr_tail(process.stderr)}"
        )
    tensions = final_tensions(process.stderr, options.diagonal_tension)
    forward_tension = tensions.get(str(forward_table), options.diagonal_tension)
    reverse_tension = tensions.get(str(reverse_table), options.diagonal_tension)

    src_words = {word for k in wanted for word in fast_align_words(src_ids[k], "s")} | {NULL_WORD}
    tgt_words = {word for k in wanted for word in fast_align_words(tgt_ids[k], "t")} | {NULL_WORD}
    forward_t = read_lexical_table(forward_table, src_words)
    reverse_t = read_lexical_table(reverse_table, tgt_words)
    trainable_set = set(corpus.trainable)
    forward: list[set[Link]] = []
    reverse: list[set[Link]] = []
    for k in wanted:
        if k not in trainable_set:
            forward.append(set())
            reverse.append(set())
            continue
        source, target = fast_align_words(src_ids[k], "s"), fast_align_words(tgt_ids[k], "t")
        forward.append(fast_align_viterbi(source, target, forward_t, forward_tension, options))
        # The reverse model conditions on the target: its links are (target, source); flip them.
        tgt_src = fast_align_viterbi(target, source, reverse_t, reverse_tension, options)
        reverse.append({(s, t) for t, s in tgt_src})
    details = {"diagonal_tension": {"forward": forward_tension, "reverse": reverse_tension}}
    return forward, reverse, details
