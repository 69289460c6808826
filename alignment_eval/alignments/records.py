"""The result files of ``alignment-eval``, one frozen dataclass each: ``aer.json`` (extract),
``stats.json`` (stats) and ``baseline.json`` (baseline).

Torch-free, so that ``alignment-eval report`` and :mod:`mt_pipeline` read them without loading a
model. Writers build these records and :func:`nmt_common.records.write_record` them; readers call
``<Record>.read(path)``, which checks every field and names the file and the field when one
differs (:func:`nmt_common.records.read_record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from nmt_common.files import InputFileError
from nmt_common.records import RecordFile

from .aer import AERResult
from .errors import AlignmentInputError

__all__ = [
    "AerRow", "AerReport", "best_rows", "HeadStats", "LayerStats", "OverallStats", "SublayerStats", "StatsReport",
    "BaselineScore", "AlignerEntry", "BaselineReport",
]


class _File(RecordFile):
    """A result file of ``alignment-eval``: a bad one raises :class:`AlignmentInputError`."""

    @classmethod
    def input_error(cls, error: InputFileError) -> Exception:
        return AlignmentInputError(error.path, error.line, error.message)


# --- aer.json -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AerRow:
    """AER of one (layer, head or head average, method, shift) of a model's cross-attention."""

    layer: int  # 1-based decoder layer
    head: Union[int, str]  # 1-based head, or "avg" for the head average
    method: str
    shift: bool
    aer: float
    precision: float
    recall: float
    f_measure: float
    links: int
    file: str  # the Pharaoh file under alignments/
    signature: str  # of the AER metric object that scored it

    def __post_init__(self) -> None:
        if self.layer < 1:
            raise ValueError(f"layer must be 1-based, got {self.layer}")
        if self.head != "avg" and (not isinstance(self.head, int) or self.head < 1):
            raise ValueError(f"head must be a 1-based integer or \"avg\", got {self.head!r}")

    @classmethod
    def from_result(cls, result: AERResult, *, layer: int, head: Union[int, str], method: str, shift: bool,
                    file: str) -> "AerRow":
        """The row of a score; its signature is the one the metric object gave the result."""
        if result.signature is None:
            raise ValueError("an aer.json row needs a result scored by an AER metric object (it has no signature)")
        return cls(layer=layer, head=head, method=method, shift=shift, aer=result.aer, precision=result.precision,
                   recall=result.recall, f_measure=result.f_measure, links=result.links, file=file,
                   signature=str(result.signature))

    @property
    def where(self) -> str:
        """``L<layer>H<head>`` (``H avg`` for the head average)."""
        return f"L{self.layer}H{self.head}"


@dataclass(frozen=True)
class AerReport(_File):
    """``aer.json`` of ``alignment-eval extract --gold``: every row and the best per (method, shift, kind)."""

    checkpoint: str
    text: str
    gold: str
    reverse: bool
    subword_rule: str
    threshold: float
    sentences: int
    rows: List[AerRow]
    best: Dict[str, AerRow]  # "<method>.<normal|shift>.<best-head|avg>" -> lowest-AER row

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("no rows: is this the aer.json of 'alignment-eval extract --gold'?")


def best_rows(rows: Sequence[AerRow]) -> Dict[str, AerRow]:
    """Lowest-AER row per ``<method>.<normal|shift>.<best-head|avg>``: over single heads and over head averages."""
    best: Dict[str, AerRow] = {}
    for row in rows:
        name = f"{row.method}.{'shift' if row.shift else 'normal'}.{'avg' if row.head == 'avg' else 'best-head'}"
        if name not in best or row.aer < best[name].aer:
            best[name] = row
    return dict(sorted(best.items()))


# --- stats.json -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverallStats:
    """Sparsity, null rate and entropy of a sublayer's heads together, with the counts behind them."""

    sparsity: float  # share of exact zeros among the allowed positions
    null_rate: float  # share of all-zero query rows
    entropy: float  # mean entropy (nats) of the non-null rows, each renormalised
    positions: int
    rows: int
    null_rows: int
    js_diversity: Optional[float] = None  # mean Jensen-Shannon divergence between heads; None: no usable row


@dataclass(frozen=True)
class HeadStats:
    head: int
    sparsity: float
    null_rate: float
    entropy: float
    positions: int
    rows: int
    null_rows: int


@dataclass(frozen=True)
class LayerStats:
    layer: int
    sparsity: float
    null_rate: float
    entropy: float
    positions: int
    rows: int
    null_rows: int
    js_diversity: Optional[float]
    js_rows: int  # queries with at least two non-null heads
    js_excluded_rows: int  # queries left out of the JS mean
    heads: List[HeadStats]


@dataclass(frozen=True)
class SublayerStats:
    layers: List[LayerStats]
    overall: OverallStats


@dataclass(frozen=True)
class StatsReport(_File):
    """``stats.json`` of ``alignment-eval stats``: per sublayer (encoder, decoder, cross), layer and head."""

    checkpoint: str
    sentences: int
    unknown_pieces: int
    normalizers: Dict[str, str]  # sublayer -> normalizer name
    alpha: Dict[str, List[float]]  # alpha_entmax module -> learned alpha per head
    sublayers: Dict[str, SublayerStats]
    text: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.sublayers:
            raise ValueError("no sublayers: is this the stats.json of 'alignment-eval stats'?")

    def overall(self, sublayer: str) -> OverallStats:
        return self.sublayers[sublayer].overall


# --- baseline.json --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineScore:
    """One aligner run's AER against the gold: :meth:`AERResult.as_dict`, read back."""

    aer: float
    precision: float
    recall: float
    f_measure: float
    f_alpha: float
    links: int
    sentences: int
    counts: Dict[str, int]
    signature: Optional[Dict[str, str]]
    signature_str: Optional[str]

    @classmethod
    def from_result(cls, result: AERResult) -> "BaselineScore":
        return cls(**result.as_dict())


@dataclass(frozen=True)
class AlignerEntry:
    """One statistical aligner: how it ran and its forward, reverse and gdfa scores and files."""

    aligner: str
    implementation: str
    options: str
    deterministic: bool
    training_sentences: int
    seconds: float
    details: Dict[str, Any]
    results: Dict[str, BaselineScore]  # "forward" | "reverse" | "gdfa"
    files: Dict[str, str] = field(default_factory=dict)  # direction -> Pharaoh file beside baseline.json


@dataclass(frozen=True)
class BaselineReport(_File):
    """``baseline.json`` of ``alignment-eval baseline``."""

    indent = 2

    text: str
    gold: str
    gold_one_based: bool
    possible: str
    lowercase: bool
    gold_sentences: int
    extra_sentences: int
    symmetrization: str
    link_order: str
    alignment_eval_version: str
    aligners: Dict[str, AlignerEntry]

    def __post_init__(self) -> None:
        if not self.aligners:
            raise ValueError("no aligner: is this the baseline.json of 'alignment-eval baseline'?")
