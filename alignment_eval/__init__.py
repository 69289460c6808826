"""Word-alignment evaluation: AER (Och & Ney 2003), symmetrisation (Koehn et al. 2003 / Moses)
and Pharaoh/talp file handling.

This package never imports torch or fairseq.
"""

__version__ = "0.1.0"

# The imports below need __version__ (signature.py reads it), so they come after it.
from .aer import (  # noqa: E402
    DEFAULT_F_ALPHA,
    AERCounts,
    AERResult,
    apply_possible_mode,
    count_links,
    evaluate_files,
    metrics_from_counts,
    score_alignments,
)
from .errors import AlignmentInputError  # noqa: E402
from .io import (  # noqa: E402
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
from .signature import POSSIBLE_MODES, SIGNATURE_KEYS, Signature  # noqa: E402
from .symmetrize import SYMMETRIZATION_METHODS, symmetrize  # noqa: E402

__all__ = [
    "__version__",
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
