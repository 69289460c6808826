"""Statistical word-aligner baselines: fast_align and eflomal, symmetrised and scored against a gold set.

``alignment-eval baseline`` trains each aligner on the gold set's own text (plus any
extra parallel text), aligns in both directions, symmetrises with our Moses
grow-diag-final-and (:func:`alignment_eval.symmetrize.symmetrize`, never the
aligner's own symmetriser) and scores forward, reverse and symmetrised links with
:func:`alignment_eval.aer.score_alignments` (Och & Ney 2003).

Aligners
    ``fast_align``: IBM Model 2 reparameterised with a diagonal prior (Dyer, Chahuneau
    & Smith 2013, "A Simple, Fast, and Effective Reparameterization of IBM Model 2").
    Two routes:

    * default: the ``systran-align`` package (its bundled fast_align library).
      ``systran_align.generate_alignment_probabilities`` trains both directions (the
      usual ``-d -o -v`` settings, 5 EM iterations) and writes the lexical tables
      t(f|e) unpruned. Its ``Aligner`` only returns its own symmetrised links, so the
      directional Viterbi links are decoded here from those tables with fast_align's
      decision rule: each generated word takes the best of NULL (prior p0 = 0.08)
      and every conditioning word i (prior (1 - p0) exp(-λ|i/n - j/m|) / Z), ties to
      the earlier candidate. λ is the tension fast_align reached in training (parsed
      from its log), so the links are the ones ``fast_align -d -o -v`` prints after
      its final iteration, up to float32 rounding of the stored table.
      Training runs in a child process with ``OMP_NUM_THREADS=1`` by default: with
      more threads fast_align's unsynchronised count updates make the tables (and
      the AER) change from run to run.
    * ``--fast-align-binary PATH``: a clab/fast_align executable, run once on
      ``src ||| tgt`` and once on ``tgt ||| src`` (no ``-r``). A binary on PATH is
      never picked up silently; the route is recorded in the signature.

    ``eflomal``: Bayesian IBM1 + HMM + fertility models with collapsed Gibbs sampling
    (Östling & Tiedemann 2016, "Efficient Word Alignment with Markov Chain Monte
    Carlo", PBML 106), through the ``eflomal`` package's ``align`` function with the
    ``eflomal-align`` defaults (model 3, 3 samplers, null prior 0.2, iterations
    scaled by corpus size). Its reverse links come out in source-target order.
    eflomal 2.0 seeds its samplers from ``/dev/urandom`` and has no seed option, so
    its numbers vary slightly between runs (De-En gdfa AER 39.0-39.6 over six runs);
    fast_align is deterministic.

Directions
    *forward* (src→tgt) gives every target word at most one source word, *reverse*
    (tgt→src) every source word at most one target word; both are returned and
    written as 0-based ``(source, target)`` links. Each run is checked for this
    shape, which catches a reverse run read the wrong way round.

Text handling
    Tokens are those of :func:`alignment_eval.io.split_tokens`; they are handed to the
    aligners as integer ids, so tabs, U+3000 or a literal ``|||`` inside a token
    cannot change the tokenisation (eflomal's own reader splits on any whitespace).
    ``lowercase`` (default off) lowercases both sides for both aligners; note that
    the ``eflomal-align`` script always lowercases. Sentence pairs with an empty side
    are left out of training (fast_align rejects them) and get no links.
    Training text = gold-set pairs first, then the extra pairs; only the gold-set
    pairs are decoded and scored.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .aer import AERResult, apply_possible_mode, score_alignments
from .errors import AlignmentInputError
from .io import (
    GoldAlignment,
    Link,
    PathLike,
    SentencePair,
    atomic_write_text,
    check_line_counts,
    parse_link,
    read_gold_alignments,
    read_lines,
    read_parallel_text,
    split_tokens,
    write_alignments,
)
from .signature import POSSIBLE_MODES, Signature
from .symmetrize import symmetrize

__all__ = [
    "ALIGNERS",
    "DIRECTIONS",
    "SYMMETRIZATION",
    "AlignerBaseline",
    "AlignerFailedError",
    "AlignerRun",
    "AlignerUnavailableError",
    "EflomalOptions",
    "FastAlignOptions",
    "add_command",
    "align_with",
    "baseline_markdown",
    "baseline_report",
    "read_extra_pairs",
    "read_plain_parallel",
    "run_aligner",
    "run_baseline",
    "write_baseline_outputs",
]

#: Supported aligners, in the default run order.
ALIGNERS: tuple[str, ...] = ("fast_align", "eflomal")
#: Result keys of one aligner: the two directional runs and their symmetrisation.
DIRECTIONS: tuple[str, ...] = ("forward", "reverse", "gdfa")
SYMMETRIZATION = "grow-diag-final-and"

_DIRECTION_LABELS = {
    "forward": "forward (src→tgt)",
    "reverse": "reverse (tgt→src)",
    "gdfa": "grow-diag-final-and",
}
_SYSTRAN_PACKAGE = "systran-align"
_SYSTRAN_MODULE = "systran_align"
_EFLOMAL_PACKAGE = "eflomal"
# fast_align looks up pairs it never saw with this probability (clab/fast_align TTable).
_UNSEEN_PAIR_PROB = 1e-9
# systran-align prunes t(f|e) below a beam when writing its tables; this keeps every entry.
_KEEP_WHOLE_TABLE = -1000.0
_NULL_TOKEN = "<eps>"
_TENSION_RE = re.compile(r"final tension:\s*([-+0-9.eE]+)")
_TABLE_WRITTEN_RE = re.compile(r"conditional probabilities:\s*(.+?)\s*$")
_SYSTRAN_TRAIN_SCRIPT = (
    "import importlib, json, sys\n"
    "aligner = importlib.import_module(sys.argv[1])\n"
    "aligner.generate_alignment_probabilities(**json.loads(sys.argv[2]))\n"
)


class AlignerUnavailableError(RuntimeError):
    """An aligner's package or binary is missing; the message says what to install."""


class AlignerFailedError(RuntimeError):
    """An aligner ran but failed, or wrote output that does not fit the input."""


@dataclass(frozen=True)
class FastAlignOptions:
    """fast_align settings (Dyer et al. 2013); the defaults are the recommended ``-d -o -v``.

    ``threads`` > 1 trains faster but not reproducibly. ``binary`` selects a
    clab/fast_align executable instead of the systran-align library.
    """

    iterations: int = 5
    favor_diagonal: bool = True
    optimize_tension: bool = True
    variational_bayes: bool = True
    alpha: float = 0.01
    diagonal_tension: float = 4.0
    prob_align_null: float = 0.08
    no_null_word: bool = False
    threads: int = 1
    binary: Optional[str] = None

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"fast_align needs at least 1 iteration, not {self.iterations}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if not 0.0 <= self.prob_align_null < 1.0:
            raise ValueError(f"prob_align_null must be in [0, 1), not {self.prob_align_null}")
        if self.variational_bayes and self.alpha <= 0.0:
            raise ValueError(f"alpha must be > 0 with variational Bayes, not {self.alpha}")

    def flags(self) -> str:
        """The settings as fast_align command-line flags, for signatures and reports."""
        parts = []
        if self.favor_diagonal:
            parts.append("d")
        if self.optimize_tension:
            parts.append("o")
        if self.variational_bayes:
            parts.append(f"v,a={self.alpha:g}")
        if self.no_null_word:
            parts.append("N")
        parts.append(f"I={self.iterations}")
        parts.append(f"T={self.diagonal_tension:g}")
        parts.append(f"p0={self.prob_align_null:g}")
        return ",".join(parts)


@dataclass(frozen=True)
class EflomalOptions:
    """eflomal settings (Östling & Tiedemann 2016); the defaults are those of ``eflomal-align``.

    ``model``: 1 = IBM1, 2 = +HMM, 3 = +fertility. ``rel_iterations`` scales the
    automatic, corpus-size dependent number of sampling iterations.
    """

    model: int = 3
    n_samplers: int = 3
    rel_iterations: float = 1.0
    null_prior: float = 0.2

    def __post_init__(self) -> None:
        if self.model not in (1, 2, 3):
            raise ValueError(f"eflomal model must be 1, 2 or 3, not {self.model}")
        if self.n_samplers < 1:
            raise ValueError(f"n_samplers must be at least 1, not {self.n_samplers}")
        if self.rel_iterations <= 0:
            raise ValueError(f"rel_iterations must be > 0, not {self.rel_iterations}")

    def flags(self) -> str:
        """The settings as ``eflomal-align`` flags (-m, --n-samplers, --null-prior, -l), for signatures."""
        return f"m={self.model},n={self.n_samplers},N={self.null_prior:g},l={self.rel_iterations:g}"


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


# --- shared helpers ---------------------------------------------------------------------


def _package_version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _index_tokens(sentences: Sequence[Sequence[str]], lowercase: bool) -> tuple[list[list[int]], int]:
    """Replace every token by an integer id (one vocabulary per side); returns ids and vocabulary size."""
    vocabulary: dict[str, int] = {}
    encoded = [
        [vocabulary.setdefault(token.lower() if lowercase else token, len(vocabulary)) for token in sentence]
        for sentence in sentences
    ]
    return encoded, len(vocabulary)


def _parse_aligner_line(
    line: str, cond_len: int, gen_len: int, what: str, line_number: int
) -> set[tuple[int, int]]:
    """Parse one ``i-j`` line of aligner output (i indexes the first side of its input)."""
    links: set[tuple[int, int]] = set()
    for token in line.split():
        try:
            (first, second), _ = parse_link(token)
        except ValueError as exc:
            raise AlignerFailedError(f"{what}, output line {line_number}: {exc}") from None
        if first >= cond_len or second >= gen_len:
            raise AlignerFailedError(
                f"{what}, output line {line_number}: link {token!r} is outside a sentence pair of "
                f"{cond_len} and {gen_len} tokens"
            )
        links.add((first, second))
    return links


def _links_per_sentence(
    wanted: Sequence[int],
    trainable: Sequence[int],
    parse: Callable[[int, int], tuple[set[Link], set[Link]]],
) -> tuple[list[set[Link]], list[set[Link]]]:
    """Forward and reverse links of every ``wanted`` sentence; untrained ones get no links.

    ``parse(k, line_number)`` returns the (forward, reverse) source-target links of
    sentence ``k`` from 0-based line ``line_number`` of the aligner's output.
    """
    line_of = {k: number for number, k in enumerate(trainable)}
    forward: list[set[Link]] = []
    reverse: list[set[Link]] = []
    for k in wanted:
        if k in line_of:
            fwd, rev = parse(k, line_of[k])
        else:
            fwd, rev = set(), set()
        forward.append(fwd)
        reverse.append(rev)
    return forward, reverse


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


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- fast_align: shared -----------------------------------------------------------------


def _fast_align_words(ids: Sequence[int], side: str) -> list[str]:
    """Token ids as fast_align words, ``s17`` (source) or ``t17`` (target): no whitespace, never ``|||``."""
    return [f"{side}{x}" for x in ids]


def _write_fast_align_corpus(
    path: Path,
    first_ids: Sequence[Sequence[int]],
    first_side: str,
    second_ids: Sequence[Sequence[int]],
    second_side: str,
    lines: Sequence[int],
) -> None:
    """fast_align input, ``FIRST ||| SECOND`` for the sentence pairs in ``lines``."""
    with open(path, "w", encoding="utf-8") as stream:
        for k in lines:
            first = " ".join(_fast_align_words(first_ids[k], first_side))
            second = " ".join(_fast_align_words(second_ids[k], second_side))
            stream.write(f"{first} ||| {second}\n")


# --- fast_align: systran-align library --------------------------------------------------


class _LexicalTable:
    """The t(f|e) table of a systran-align probability file.

    Layout (little-endian): int32 format tag, int32 vocabulary size V, V
    NUL-terminated words (fast_align's ``Dict``, ids 1..V, ``<eps>`` is NULL), int32
    number of rows, then per non-empty row: int32 e, int32 k and k × (int32 f, float32 t(f|e)).
    Only the rows of ``wanted_words`` are kept in memory.
    """

    def __init__(self, path: Path, wanted_words: Iterable[str]) -> None:
        data = path.read_bytes()
        try:
            _, vocab_size = struct.unpack_from("<ii", data, 0)
            position = 8
            words: list[str] = []
            for _ in range(vocab_size):
                end = data.index(b"\0", position)
                words.append(data[position:end].decode("utf-8"))
                position = end + 1
            position += 4  # row count (rows without entries are not stored)
            self.word_ids = {word: number for number, word in enumerate(words, start=1)}
            wanted_rows = {self.word_ids[w] for w in wanted_words if w in self.word_ids}
            self.rows: dict[int, dict[int, float]] = {}
            while position < len(data):
                row, count = struct.unpack_from("<ii", data, position)
                position += 8
                if row in wanted_rows:
                    values = struct.unpack_from(f"<{2 * count}i", data, position)
                    probs = struct.unpack_from(f"<{2 * count}f", data, position)
                    self.rows[row] = dict(zip(values[0::2], probs[1::2]))
                position += 8 * count
            if position != len(data):
                raise ValueError("trailing bytes")
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise AlignerFailedError(f"cannot read the fast_align table {path}: {exc}") from None

    def row(self, word: str) -> dict[int, float]:
        return self.rows.get(self.word_ids.get(word, -1), {})


def _fast_align_viterbi(
    conditioning: Sequence[str],
    generated: Sequence[str],
    table: _LexicalTable,
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
    null_row = table.row(_NULL_TOKEN)
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
            best, best_score = -1, null_prior * null_row.get(f, _UNSEEN_PAIR_PROB)
        for i in range(n):
            score = priors[i] * rows[i].get(f, _UNSEEN_PAIR_PROB)
            if score > best_score:
                best, best_score = i, score
        if best >= 0:
            links.add((best, j - 1))
    return links


def _final_tensions(log: str, default: float) -> dict[str, float]:
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


def _fast_align_systran(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    trainable: Sequence[int],
    wanted: Sequence[int],
    options: FastAlignOptions,
    workdir: Path,
) -> tuple[list[set[Link]], list[set[Link]], dict[str, Any]]:
    if importlib.util.find_spec(_SYSTRAN_MODULE) is None:
        hint = ""
        found = shutil.which("fast_align")
        if found:
            hint = f"; or use the fast_align binary found at {found} with --fast-align-binary {found}"
        raise AlignerUnavailableError(
            "fast_align needs the systran-align package (pip install systran-align==3.5.0) "
            f"or a clab/fast_align binary passed with --fast-align-binary PATH{hint}"
        )
    corpus = workdir / "fast_align.corpus"
    _write_fast_align_corpus(corpus, src_ids, "s", tgt_ids, "t", trainable)
    forward_table, reverse_table = workdir / "forward.probs", workdir / "reverse.probs"
    parameters = {
        "input_path": str(corpus),
        "forward_probs_path": str(forward_table),
        "backward_probs_path": str(reverse_table),
        "verbose": True,
        "iterations": options.iterations,
        "favor_diagonal": options.favor_diagonal,
        "beam_threshold": _KEEP_WHOLE_TABLE,
        "diagonal_tension": options.diagonal_tension,
        "optimize_tension": options.optimize_tension,
        "variational_bayes": options.variational_bayes,
        "alpha": options.alpha,
        "no_null_word": options.no_null_word,
        "prob_align_null": options.prob_align_null,
    }
    environment = dict(os.environ, OMP_NUM_THREADS=str(options.threads))
    process = subprocess.run(
        [sys.executable, "-c", _SYSTRAN_TRAIN_SCRIPT, _SYSTRAN_MODULE, json.dumps(parameters)],
        capture_output=True,
        text=True,
        errors="replace",
        env=environment,
        cwd=workdir,
    )
    if process.returncode != 0 or not forward_table.is_file() or not reverse_table.is_file():
        raise AlignerFailedError(
            f"systran-align training failed (exit status {process.returncode}):\n{_tail(process.stderr)}"
        )
    tensions = _final_tensions(process.stderr, options.diagonal_tension)
    forward_tension = tensions.get(str(forward_table), options.diagonal_tension)
    reverse_tension = tensions.get(str(reverse_table), options.diagonal_tension)

    src_words = {word for k in wanted for word in _fast_align_words(src_ids[k], "s")} | {_NULL_TOKEN}
    tgt_words = {word for k in wanted for word in _fast_align_words(tgt_ids[k], "t")} | {_NULL_TOKEN}
    forward_t = _LexicalTable(forward_table, src_words)
    reverse_t = _LexicalTable(reverse_table, tgt_words)
    trainable_set = set(trainable)
    forward: list[set[Link]] = []
    reverse: list[set[Link]] = []
    for k in wanted:
        if k not in trainable_set:
            forward.append(set())
            reverse.append(set())
            continue
        source, target = _fast_align_words(src_ids[k], "s"), _fast_align_words(tgt_ids[k], "t")
        forward.append(_fast_align_viterbi(source, target, forward_t, forward_tension, options))
        # The reverse model conditions on the target: its links are (target, source); flip them.
        tgt_src = _fast_align_viterbi(target, source, reverse_t, reverse_tension, options)
        reverse.append({(s, t) for t, s in tgt_src})
    details = {"diagonal_tension": {"forward": forward_tension, "reverse": reverse_tension}}
    return forward, reverse, details


# --- fast_align: clab binary ------------------------------------------------------------


def _fast_align_binary(
    binary: str,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    trainable: Sequence[int],
    wanted: Sequence[int],
    options: FastAlignOptions,
    workdir: Path,
) -> tuple[list[set[Link]], list[set[Link]], dict[str, Any]]:
    executable = shutil.which(binary)
    if executable is None:
        raise AlignerUnavailableError(
            f"fast_align binary {binary!r} not found or not executable "
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

    def run(name: str, first_side: str) -> list[str]:
        corpus = workdir / f"fast_align.{name}"
        if first_side == "s":
            _write_fast_align_corpus(corpus, src_ids, "s", tgt_ids, "t", trainable)
        else:
            _write_fast_align_corpus(corpus, tgt_ids, "t", src_ids, "s", trainable)
        process = subprocess.run(
            [executable, "-i", str(corpus), *flags],
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
                f"for {len(trainable)} sentence pairs):\n{_tail(process.stderr)}"
            )
        return lines

    forward_lines = run("src-tgt", "s")
    # Run on the swapped corpus: its output is target-source and is flipped below.
    reverse_lines = run("tgt-src", "t")
    def parse(k: int, number: int) -> tuple[set[Link], set[Link]]:
        n, m = len(src_ids[k]), len(tgt_ids[k])
        tgt_src = _parse_aligner_line(reverse_lines[number], m, n, "fast_align tgt-src run", number + 1)
        return (
            _parse_aligner_line(forward_lines[number], n, m, "fast_align src-tgt run", number + 1),
            {(s, t) for t, s in tgt_src},
        )

    forward, reverse = _links_per_sentence(wanted, trainable, parse)
    return forward, reverse, {"binary": executable}


# --- eflomal ----------------------------------------------------------------------------


def _eflomal(
    src_ids: Sequence[Sequence[int]],
    src_vocab_size: int,
    tgt_ids: Sequence[Sequence[int]],
    tgt_vocab_size: int,
    trainable: Sequence[int],
    wanted: Sequence[int],
    options: EflomalOptions,
    workdir: Path,
) -> tuple[list[set[Link]], list[set[Link]], dict[str, Any]]:
    try:
        import eflomal
        import numpy as np
    except ImportError as exc:
        raise AlignerUnavailableError(
            f"eflomal needs the eflomal package (pip install eflomal==2.0.0): {exc}"
        ) from None
    src_path, tgt_path = workdir / "eflomal.src", workdir / "eflomal.tgt"
    forward_path, reverse_path = workdir / "eflomal.fwd", workdir / "eflomal.rev"
    for path, ids, size in ((src_path, src_ids, src_vocab_size), (tgt_path, tgt_ids, tgt_vocab_size)):
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
            _parse_aligner_line(outputs[0][number], n, m, "eflomal forward run", number + 1),
            _parse_aligner_line(outputs[1][number], n, m, "eflomal reverse run", number + 1),
        )

    forward, reverse = _links_per_sentence(wanted, trainable, parse)
    return forward, reverse, {}


# --- public API -------------------------------------------------------------------------


def _check_aligner(aligner: str) -> None:
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
    _check_aligner(aligner)
    if len(src_sentences) != len(tgt_sentences):
        raise ValueError(f"{len(src_sentences)} source sentences but {len(tgt_sentences)} target sentences")
    wanted = list(range(len(src_sentences))) if output_indices is None else list(output_indices)
    for k in wanted:
        if not 0 <= k < len(src_sentences):
            raise ValueError(f"output index {k} is outside the {len(src_sentences)} sentence pairs")
    src_ids, src_vocab = _index_tokens(src_sentences, lowercase)
    tgt_ids, tgt_vocab = _index_tokens(tgt_sentences, lowercase)
    trainable = [k for k in range(len(src_ids)) if src_ids[k] and tgt_ids[k]]
    if not trainable:
        raise ValueError("no sentence pair has words on both sides; there is nothing to train on")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alignment-baseline-") as temp:
        workdir = Path(temp)
        if aligner == "fast_align":
            settings = fast_align or FastAlignOptions()
            if settings.binary is not None:
                forward, reverse, details = _fast_align_binary(
                    settings.binary, src_ids, tgt_ids, trainable, wanted, settings, workdir
                )
                implementation = f"binary-{Path(settings.binary).name}"
            else:
                forward, reverse, details = _fast_align_systran(
                    src_ids, tgt_ids, trainable, wanted, settings, workdir
                )
                implementation = f"{_SYSTRAN_PACKAGE}-{_package_version(_SYSTRAN_PACKAGE)}"
            options_text = settings.flags()
            deterministic = settings.threads == 1
        else:
            settings_e = eflomal or EflomalOptions()
            forward, reverse, details = _eflomal(
                src_ids, src_vocab, tgt_ids, tgt_vocab, trainable, wanted, settings_e, workdir
            )
            implementation = f"{_EFLOMAL_PACKAGE}-{_package_version(_EFLOMAL_PACKAGE)}"
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
        training_sentences=len(trainable),
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
        _check_aligner(aligner)
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


# --- reports and files ------------------------------------------------------------------


def alignment_file_name(aligner: str, direction: str) -> str:
    """``<aligner>.<forward|reverse|gdfa>.align``: 0-based source-target Pharaoh lines."""
    return f"{aligner}.{direction}.align"


def baseline_report(
    results: Mapping[str, AlignerBaseline],
    *,
    text: str,
    gold: str,
    gold_one_based: bool,
    lowercase: bool,
    possible: str,
    gold_sentences: int,
    extra_sentences: int,
) -> dict[str, Any]:
    """The ``baseline.json`` object."""
    from . import __version__

    return {
        "text": text,
        "gold": gold,
        "gold_one_based": gold_one_based,
        "possible": possible,
        "lowercase": lowercase,
        "gold_sentences": gold_sentences,
        "extra_sentences": extra_sentences,
        "symmetrization": SYMMETRIZATION,
        "link_order": "source-target, 0-based, in every file (reverse runs are flipped)",
        "alignment_eval_version": __version__,
        "aligners": {
            name: {
                **baseline.as_dict(),
                "files": {direction: alignment_file_name(name, direction) for direction in DIRECTIONS},
            }
            for name, baseline in results.items()
        },
    }


def baseline_markdown(results: Mapping[str, AlignerBaseline], *, title: str) -> str:
    """A Markdown table (AER, precision, recall in %, F, links) followed by the signatures."""
    lines = [
        f"## {title}",
        "",
        "| aligner | run | AER % | precision % | recall % | F | links |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    signatures = []
    for name, baseline in results.items():
        for direction in DIRECTIONS:
            score = baseline.scores[direction]
            lines.append(
                f"| {name} | {_DIRECTION_LABELS[direction]} | {score.aer * 100:.1f} | "
                f"{score.precision * 100:.1f} | {score.recall * 100:.1f} | {score.f_measure:.3f} | {score.links} |"
            )
            signatures.append(f"- `{score.signature}`")
    notes = []
    for name, baseline in results.items():
        note = f"- {name}: {baseline.run.implementation}, {baseline.run.training_sentences} training pairs, "
        note += f"{baseline.run.seconds:.1f} s, " + ("deterministic" if baseline.run.deterministic else "not deterministic")
        tension = baseline.run.details.get("diagonal_tension")
        if tension:
            note += f", trained diagonal tension {tension['forward']:g} (forward) / {tension['reverse']:g} (reverse)"
        notes.append(note)
    return "\n".join(lines + ["", *notes, "", "Signatures:", "", *signatures]) + "\n"


def write_baseline_outputs(
    out_dir: PathLike, results: Mapping[str, AlignerBaseline], report: Mapping[str, Any], markdown: str
) -> list[Path]:
    """Write the alignment files, ``baseline.json`` and ``baseline.md`` atomically; returns the paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, baseline in results.items():
        for direction in DIRECTIONS:
            path = folder / alignment_file_name(name, direction)
            write_alignments(path, baseline.links(direction))
            written.append(path)
    json_path, markdown_path = folder / "baseline.json", folder / "baseline.md"
    atomic_write_text(json_path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    atomic_write_text(markdown_path, markdown)
    return written + [json_path, markdown_path]


def read_plain_parallel(src_path: PathLike, tgt_path: PathLike) -> list[SentencePair]:
    """Pair two tokenised one-sentence-per-line files (same line count)."""
    src_lines = read_lines(src_path)
    tgt_lines = read_lines(tgt_path)
    check_line_counts(tgt_path, len(tgt_lines), src_path, len(src_lines))
    return [
        SentencePair(tuple(split_tokens(src)), tuple(split_tokens(tgt))) for src, tgt in zip(src_lines, tgt_lines)
    ]


def read_extra_pairs(
    joint_files: Sequence[PathLike] = (),
    src_files: Sequence[PathLike] = (),
    tgt_files: Sequence[PathLike] = (),
) -> list[SentencePair]:
    """Extra training pairs from ``src ||| tgt`` files and from paired plain source/target files."""
    if len(src_files) != len(tgt_files):
        lonely = (src_files or tgt_files)[-1]
        raise AlignmentInputError(
            lonely, None, f"{len(src_files)} --extra-src but {len(tgt_files)} --extra-tgt files; give them in pairs"
        )
    extra: list[SentencePair] = []
    for path in joint_files:
        extra.extend(read_parallel_text(path))
    for src_path, tgt_path in zip(src_files, tgt_files):
        extra.extend(read_plain_parallel(src_path, tgt_path))
    return extra


# --- CLI --------------------------------------------------------------------------------


def add_command(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``alignment-eval baseline``."""
    parser = subparsers.add_parser(
        "baseline",
        help="fast_align / eflomal baselines on a gold set: forward, reverse and grow-diag-final-and AER",
        description=(
            "Train fast_align (Dyer et al. 2013) and eflomal (Östling & Tiedemann 2016) on the gold set's "
            "text plus optional extra parallel text, align both directions, symmetrise with Moses "
            "grow-diag-final-and and score against GOLD (Och & Ney 2003). Prints a Markdown table; with "
            "--out-dir also writes <aligner>.{forward,reverse,gdfa}.align (0-based source-target), "
            "baseline.json and baseline.md. fast_align is deterministic (one thread); eflomal has no seed."
        ),
    )
    parser.add_argument("--text", metavar="FILE", required=True, help="gold set text, 'SOURCE ||| TARGET' per line")
    parser.add_argument("--gold", metavar="FILE", required=True, help="gold alignment file (Pharaoh/talp)")
    parser.add_argument("--gold-one-based", action="store_true", help="gold indices start at 1 (the shared gold sets do)")
    parser.add_argument(
        "--aligner", nargs="+", choices=ALIGNERS, default=list(ALIGNERS), metavar="NAME",
        help=f"aligners to run, from {', '.join(ALIGNERS)} (default: both)",
    )
    parser.add_argument(
        "--extra", action="append", default=[], metavar="FILE",
        help="extra training text, 'SOURCE ||| TARGET' per line (repeatable; not scored)",
    )
    parser.add_argument("--extra-src", action="append", default=[], metavar="FILE", help="extra source text, tokenised, one sentence a line")
    parser.add_argument("--extra-tgt", action="append", default=[], metavar="FILE", help="extra target text, paired with --extra-src")
    parser.add_argument("--lowercase", action="store_true", help="lowercase all text before aligning (default: keep case)")
    parser.add_argument(
        "--possible", choices=sorted(POSSIBLE_MODES), default="p-includes-s",
        help="possible-link handling, as for 'aer' (default: %(default)s)",
    )
    parser.add_argument("--out-dir", metavar="DIR", help="write the alignment files, baseline.json and baseline.md here")
    parser.add_argument("--json", action="store_true", help="print baseline.json instead of the Markdown table")
    parser.add_argument(
        "--fast-align-binary", metavar="PATH",
        help="use this clab/fast_align executable instead of the systran-align library",
    )
    parser.add_argument("--fast-align-iterations", type=int, default=FastAlignOptions.iterations, metavar="N", help="EM iterations (default: %(default)s)")
    parser.add_argument(
        "--fast-align-threads", type=int, default=FastAlignOptions.threads, metavar="N",
        help="OpenMP threads for fast_align training; more than 1 is not reproducible (default: %(default)s)",
    )
    parser.add_argument("--eflomal-samplers", type=int, default=EflomalOptions.n_samplers, metavar="N", help="independent Gibbs samplers (default: %(default)s)")
    parser.add_argument("--eflomal-length", type=float, default=EflomalOptions.rel_iterations, metavar="X", help="relative number of sampling iterations (default: %(default)s)")
    parser.set_defaults(func=_run_baseline)


def _run_baseline(args: argparse.Namespace) -> int:
    from .cli import EXIT_INPUT_ERROR, PROG

    try:
        fast_align = FastAlignOptions(
            iterations=args.fast_align_iterations, threads=args.fast_align_threads, binary=args.fast_align_binary
        )
        eflomal = EflomalOptions(n_samplers=args.eflomal_samplers, rel_iterations=args.eflomal_length)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    pairs = read_parallel_text(args.text)
    gold = read_gold_alignments(args.gold, one_based=args.gold_one_based, texts=pairs, text_path=args.text)
    extra = read_extra_pairs(args.extra, args.extra_src, args.extra_tgt)
    try:
        results = run_baseline(
            pairs,
            gold,
            args.aligner,
            extra,
            lowercase=args.lowercase,
            possible=args.possible,
            gold_name=Path(args.gold).name,
            gold_one_based=args.gold_one_based,
            fast_align=fast_align,
            eflomal=eflomal,
        )
    except (AlignerUnavailableError, AlignerFailedError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    report = baseline_report(
        results,
        text=args.text,
        gold=args.gold,
        gold_one_based=args.gold_one_based,
        lowercase=args.lowercase,
        possible=args.possible,
        gold_sentences=len(pairs),
        extra_sentences=len(extra),
    )
    title = f"Baseline AER on {Path(args.gold).name} ({len(pairs)} sentences, {len(pairs) + len(extra)} training pairs)"
    markdown = baseline_markdown(results, title=title)
    if args.out_dir:
        write_baseline_outputs(args.out_dir, results, report, markdown)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        sys.stdout.write(markdown)
    return 0
