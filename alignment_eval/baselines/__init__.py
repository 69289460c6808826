"""Statistical word-aligner baselines: fast_align and eflomal, symmetrised and scored against a gold set.

``alignment-eval baseline`` (:mod:`.cli`) trains each aligner on the gold set's own
text (plus any extra parallel text, :mod:`.training_text`), aligns in both directions
(:mod:`.aligners`, one route module per aligner), symmetrises with our Moses
grow-diag-final-and (:func:`alignment_eval.alignments.symmetrize.symmetrize`, never the
aligner's own symmetriser) and scores forward, reverse and symmetrised links with
:func:`alignment_eval.alignments.aer.score_alignments` (Och & Ney 2003) (:mod:`.scoring`);
:mod:`.report` writes the JSON, Markdown and alignment files.
"""

from .aligners import ALIGNERS, AlignerRun, align_with, run_aligner
from .cli import add_command
from .errors import AlignerFailedError, AlignerUnavailableError
from .options import EflomalOptions, FastAlignOptions
from .report import alignment_file_name, baseline_markdown, baseline_report, write_baseline_outputs
from .scoring import DIRECTIONS, SYMMETRIZATION, AlignerBaseline, run_baseline
from .training_text import read_extra_pairs, read_plain_parallel

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
    "alignment_file_name",
    "baseline_markdown",
    "baseline_report",
    "read_extra_pairs",
    "read_plain_parallel",
    "run_aligner",
    "run_baseline",
    "write_baseline_outputs",
]
