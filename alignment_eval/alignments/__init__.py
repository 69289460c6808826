"""The torch-free alignment library: read and write alignments, AER (Och & Ney 2003), signatures,
symmetrisation (Koehn et al. 2003 / Moses) and attention-to-link induction (:mod:`.induce`).

Never imports torch (the package test checks); numpy only in :mod:`.induce`. Imports nothing
else of ``alignment_eval``: every other subpackage builds on this one.
"""

from .aer import (
    AER,
    DEFAULT_F_ALPHA,
    AERCounts,
    AERResult,
    apply_possible_mode,
    count_links,
    evaluate_files,
    metrics_from_counts,
    score_alignments,
)
from .errors import AlignmentInputError
from .io import (
    GoldAlignment,
    Link,
    SentencePair,
    atomic_write_text,
    check_line_counts,
    format_alignment_line,
    parse_link,
    read_alignments,
    read_gold_alignments,
    read_lines,
    read_parallel_text,
    split_tokens,
    write_alignments,
)
from .signature import POSSIBLE_MODES, SIGNATURE_KEYS, Signature
from .symmetrize import SYMMETRIZATION_METHODS, symmetrize
from .version import __version__

__all__ = [
    "__version__",
    "AER",
    "AERCounts",
    "AERResult",
    "AlignmentInputError",
    "DEFAULT_F_ALPHA",
    "GoldAlignment",
    "Link",
    "POSSIBLE_MODES",
    "SIGNATURE_KEYS",
    "SYMMETRIZATION_METHODS",
    "SentencePair",
    "Signature",
    "apply_possible_mode",
    "atomic_write_text",
    "check_line_counts",
    "count_links",
    "evaluate_files",
    "format_alignment_line",
    "metrics_from_counts",
    "parse_link",
    "read_alignments",
    "read_gold_alignments",
    "read_lines",
    "read_parallel_text",
    "score_alignments",
    "split_tokens",
    "symmetrize",
    "write_alignments",
]
