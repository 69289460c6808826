"""The baseline's outputs: ``baseline.json``, ``baseline.md`` and one Pharaoh file per aligner and run."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from nmt_common.files import atomic_write_text
from nmt_common.markdown import markdown_table

from ..alignments.io import PathLike, write_alignments
from ..alignments.records import BaselineReport
from ..alignments.version import __version__
from .scoring import DIRECTIONS, SYMMETRIZATION, AlignerBaseline

__all__ = ["alignment_file_name", "baseline_markdown", "baseline_report", "write_baseline_outputs"]

_DIRECTION_LABELS = {
    "forward": "forward (src→tgt)",
    "reverse": "reverse (tgt→src)",
    "gdfa": "grow-diag-final-and",
}


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
) -> BaselineReport:
    """The ``baseline.json`` record."""
    return BaselineReport(
        text=text,
        gold=gold,
        gold_one_based=gold_one_based,
        possible=possible,
        lowercase=lowercase,
        gold_sentences=gold_sentences,
        extra_sentences=extra_sentences,
        symmetrization=SYMMETRIZATION,
        link_order="source-target, 0-based, in every file (reverse runs are flipped)",
        alignment_eval_version=__version__,
        aligners={
            name: baseline.entry({direction: alignment_file_name(name, direction) for direction in DIRECTIONS})
            for name, baseline in results.items()
        },
    )


def baseline_markdown(results: Mapping[str, AlignerBaseline], *, title: str) -> str:
    """A Markdown table (AER, precision, recall in %, F, links) followed by the signatures."""
    rows, signatures = [], []
    for name, baseline in results.items():
        for direction in DIRECTIONS:
            score = baseline.scores[direction]
            rows.append([name, _DIRECTION_LABELS[direction], f"{score.aer * 100:.1f}", f"{score.precision * 100:.1f}",
                         f"{score.recall * 100:.1f}", f"{score.f_measure:.3f}", score.links])
            signatures.append(f"- `{score.signature}`")
    table = markdown_table(["aligner", "run", "AER %", "precision %", "recall %", "F", "links"], rows,
                           align=["left", "left"] + ["right"] * 5)
    notes = []
    for name, baseline in results.items():
        note = f"- {name}: {baseline.run.implementation}, {baseline.run.training_sentences} training pairs, "
        note += f"{baseline.run.seconds:.1f} s, " + ("deterministic" if baseline.run.deterministic else "not deterministic")
        tension = baseline.run.details.get("diagonal_tension")
        if tension:
            note += f", trained diagonal tension {tension['forward']:g} (forward) / {tension['reverse']:g} (reverse)"
        notes.append(note)
    return "\n".join([f"## {title}", "", table, "", *notes, "", "Signatures:", "", *signatures]) + "\n"


def write_baseline_outputs(
    out_dir: PathLike, results: Mapping[str, AlignerBaseline], report: BaselineReport, markdown: str
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
    report.write(json_path)
    atomic_write_text(markdown_path, markdown)
    return written + [json_path, markdown_path]
