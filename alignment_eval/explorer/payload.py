"""The explorer's data: per-head attention quantised to 8 bits, packed per (checkpoint, sentence).

NumPy only (no torch): :mod:`.collect` records the attention, this module packs it, :mod:`.page`
writes it into the HTML, and ``assets.SCRIPT`` unpacks it in the browser with the same layout.

Quantisation (one scale per matrix = one sentence, sublayer, layer and head; 8 bits by default):
    ``step = max(w) / 255`` (``/ (2**bits - 1)`` with fewer bits); ``q = 0`` where ``w == 0`` (exact zeros stay exact, so sparsity,
    null rows and the ``nonzero`` links are exact), else ``q = clip(round(w / step), 1, 255)``
    (a non-zero weight never becomes zero). The page shows ``q * step``, within one ``step``
    of the recorded weight (half a step except for weights below half a step).

Blob of one (checkpoint, sentence): zlib (RFC 1950, what the browser's
``DecompressionStream('deflate')`` reads) of, in this order, little-endian:

1. ``float32`` steps: for each sublayer in :data:`SUBLAYERS` order that the page holds, one per
   (layer, head), layer-major;
2. ``uint16`` argmax of cross-attention: ``[layers, heads + 1, decoder positions]``, the last head
   being the head average (``mean`` over heads, as ``alignment-eval extract`` computes it); the
   column of the largest weight among the source pieces (the EOS column excluded, as
   :func:`alignment_eval.alignments.induce.target_rows` does) of the *float* weights, so argmax
   links are those of ``extract`` even where quantisation makes two weights equal;
3. ``uint8`` weights: for each sublayer, layer and head, the matrix row by row
   ([queries, keys]); for decoder self-attention only the causal lower triangle, diagonal
   included (``numpy.tril_indices`` order): the masked cells are not stored.

Matrix shapes (:func:`alignment_eval.analysis.model_attention.record_pairs`): cross
``[decoder positions = target pieces + 1, source pieces + 1]``, encoder self
``[source pieces + 1, source pieces + 1]``, decoder self ``[target pieces + 1, target pieces + 1]``;
the ``+ 1`` is EOS (the source's last column; the decoder's first input).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..alignments.io import GoldAlignment

#: Sublayers in blob order, with the names the page shows.
SUBLAYERS = ("cross", "encoder", "decoder")
SUBLAYER_LABELS = {"cross": "cross-attention", "encoder": "encoder self-attention",
                   "decoder": "decoder self-attention"}
LEVELS = 255  # 8 bits: q in 0..255 (the default; ``--bits`` B gives 2**B - 1)
ZLIB_LEVEL = 6


def levels_of(bits: int) -> int:
    """The largest q of a ``bits``-bit quantisation (2..8 bits)."""
    if not 2 <= bits <= 8:
        raise ValueError(f"quantisation needs 2 to 8 bits, not {bits}")
    return 2 ** bits - 1


def quantise(weights: np.ndarray, levels: int = LEVELS) -> Tuple[np.ndarray, np.ndarray]:
    """Quantise ``weights`` [..., queries, keys] per matrix to 0..``levels`` (uint8); returns (q, step [...]).

    Exact zeros stay 0, every positive weight becomes 1..255, ``q * step`` is within one step
    of the weight (see the module docstring). Negative or non-finite weights raise ValueError.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size and (not np.isfinite(weights).all() or (weights < 0).any()):
        raise ValueError("attention weights must be finite and non-negative")
    if weights.shape[-1] == 0 or weights.shape[-2] == 0:
        return np.zeros(weights.shape, dtype=np.uint8), np.zeros(weights.shape[:-2], dtype=np.float32)
    step = (weights.max(axis=(-2, -1)) / levels).astype(np.float32)  # [...]
    safe = np.where(step > 0, step.astype(np.float64), 1.0)[..., None, None]
    q = np.clip(np.rint(weights / safe), 1, levels)
    q = np.where(weights > 0, q, 0).astype(np.uint8)
    return q, step


def dequantise(q: np.ndarray, step: np.ndarray) -> np.ndarray:
    """``q * step`` as float64 (what the page shows)."""
    return q.astype(np.float64) * np.asarray(step, dtype=np.float64)[..., None, None]


def cross_argmax(cross: np.ndarray) -> np.ndarray:
    """uint16 [layers, heads + 1, decoder positions]: argmax over the source pieces (EOS column
    dropped) of every head and of the head average, from the float weights."""
    # [layers, heads + 1, positions, sources + EOS]: the head average as an extra head, as extract does
    with_average = np.concatenate([cross, cross.mean(axis=1, keepdims=True)], axis=1)
    sources = with_average[..., :-1]
    if sources.shape[-1] == 0:
        return np.zeros(with_average.shape[:-1], dtype=np.uint16)
    if sources.shape[-1] > np.iinfo(np.uint16).max:
        raise ValueError(f"{sources.shape[-1]} source pieces: more than the page's 65535")
    return sources.argmax(axis=-1).astype(np.uint16)


@dataclass
class Segmentation:
    """How the model saw one sentence pair: its pieces (dictionary symbols) and their words.

    ``source_pieces`` / ``target_pieces`` exclude EOS; ``*_word_of_piece[k]`` is the 0-based
    word of piece k, in the model's orientation (with ``--reverse`` the text's target is the source).
    """

    source_pieces: List[str]
    target_pieces: List[str]
    source_word_of_piece: List[int]
    target_word_of_piece: List[int]
    unknown_pieces: int = 0

    def as_json(self) -> dict:
        return {"srcPieces": self.source_pieces, "tgtPieces": self.target_pieces,
                "srcWordOf": self.source_word_of_piece, "tgtWordOf": self.target_word_of_piece,
                "unk": self.unknown_pieces}


@dataclass
class SentenceAttention:
    """Recorded attention of one sentence pair: float arrays [layers, heads, queries, keys].

    ``encoder`` / ``decoder`` are None on a cross-attention-only page.
    """

    segmentation: Segmentation
    cross: np.ndarray
    encoder: Optional[np.ndarray] = None
    decoder: Optional[np.ndarray] = None

    def matrices(self) -> Dict[str, np.ndarray]:
        found = {"cross": self.cross, "encoder": self.encoder, "decoder": self.decoder}
        return {name: found[name] for name in SUBLAYERS if found[name] is not None}


def check_shapes(attention: SentenceAttention) -> None:
    """ValueError unless the matrices have the shapes of the module docstring."""
    seg = attention.segmentation
    sources, positions = len(seg.source_pieces) + 1, len(seg.target_pieces) + 1
    expected = {"cross": (positions, sources), "encoder": (sources, sources), "decoder": (positions, positions)}
    for name, matrix in attention.matrices().items():
        if matrix.ndim != 4 or matrix.shape[2:] != expected[name]:
            raise ValueError(f"{name} attention has shape {matrix.shape}, expected [layers, heads, {expected[name]}]")


def encode_sentence(attention: SentenceAttention, levels: int = LEVELS) -> bytes:
    """The zlib-compressed blob of one (checkpoint, sentence) (layout in the module docstring).

    Fewer ``levels`` (``--bits``) compress better: 6 bits about halves a softmax model's blobs.
    """
    check_shapes(attention)
    matrices = attention.matrices()
    steps: List[np.ndarray] = []
    weights: List[np.ndarray] = []
    for name, matrix in matrices.items():
        q, step = quantise(matrix, levels)  # [layers, heads, queries, keys], [layers, heads]
        steps.append(step.reshape(-1))
        if name == "decoder":
            rows, cols = np.tril_indices(q.shape[2])
            q = q[:, :, rows, cols]  # [layers, heads, causal cells]
        weights.append(q.reshape(-1))
    argmax = cross_argmax(np.asarray(attention.cross, dtype=np.float32))  # [layers, heads + 1, positions]
    raw = b"".join([
        np.concatenate(steps).astype("<f4").tobytes(),
        argmax.astype("<u2").tobytes(),
        np.concatenate(weights).astype(np.uint8).tobytes(),
    ])
    return zlib.compress(raw, ZLIB_LEVEL)


def decode_sentence(blob: bytes, shapes: Dict[str, Sequence[int]], sources: int, targets: int) -> dict:
    """Inverse of :func:`encode_sentence`: the page's view of one blob, for tests and checks.

    ``shapes[name] = [layers, heads]`` of the sublayers the page holds (in :data:`SUBLAYERS` order);
    ``sources`` / ``targets`` are the piece counts without EOS. Returns
    ``{"cross": float64 [L, H, T+1, S+1], ..., "argmax": uint16 [L, H+1, T+1], "steps": {name: [L, H]}}``
    with the masked decoder cells as NaN.
    """
    raw = zlib.decompress(blob)
    names = [name for name in SUBLAYERS if name in shapes]
    sizes = {"cross": (targets + 1, sources + 1), "encoder": (sources + 1, sources + 1),
             "decoder": (targets + 1, targets + 1)}
    offset = 0
    steps = {}
    for name in names:
        layers, heads = shapes[name]
        steps[name] = np.frombuffer(raw, "<f4", layers * heads, offset).reshape(layers, heads)
        offset += 4 * layers * heads
    layers, heads = shapes["cross"]
    positions = targets + 1
    argmax = np.frombuffer(raw, "<u2", layers * (heads + 1) * positions, offset).reshape(layers, heads + 1, positions)
    offset += 2 * argmax.size
    result: dict = {"argmax": argmax, "steps": steps}
    for name in names:
        layers, heads = shapes[name]
        queries, keys = sizes[name]
        if name == "decoder":
            rows, cols = np.tril_indices(queries)
            count = layers * heads * len(rows)
            q = np.frombuffer(raw, np.uint8, count, offset).reshape(layers, heads, len(rows))
            full = np.full((layers, heads, queries, keys), np.nan)
            full[:, :, rows, cols] = q * steps[name].astype(np.float64)[..., None]
        else:
            count = layers * heads * queries * keys
            q = np.frombuffer(raw, np.uint8, count, offset).reshape(layers, heads, queries, keys)
            full = dequantise(q, steps[name])
        offset += count
        result[name] = full
    if offset != len(raw):
        raise ValueError(f"blob has {len(raw)} bytes, the shapes account for {offset}")
    return result


@dataclass
class CheckpointInfo:
    """One column of the side-by-side view."""

    label: str
    path: str
    shapes: Dict[str, List[int]]  # sublayer -> [layers, heads]
    normalizers: Dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"label": self.label, "path": self.path, "shapes": self.shapes, "normalizers": self.normalizers}


@dataclass
class SentenceInfo:
    """The text of one sentence pair (model orientation) and its gold links."""

    source: List[str]
    target: List[str]
    gold: Optional[GoldAlignment] = None
    line: int = 0  # 1-based line of the text file

    def as_json(self) -> dict:
        item: dict = {"line": self.line, "src": self.source, "tgt": self.target}
        if self.gold is not None:
            item["sure"] = sorted([int(s), int(t)] for s, t in self.gold.sure)
            item["possible"] = sorted([int(s), int(t)] for s, t in self.gold.possible)
        return item


@dataclass
class ExplorerData:
    """Everything one page holds: checkpoints x sentences, with one blob and segmentation each."""

    title: str
    checkpoints: List[CheckpointInfo]
    sentences: List[SentenceInfo]
    blobs: List[List[bytes]]  # [checkpoint][sentence]
    segmentations: List[List[Segmentation]]  # [checkpoint][sentence]
    has_gold: bool = False
    text: str = ""
    gold: str = ""
    reverse: bool = False
    sublayers: Sequence[str] = SUBLAYERS
    levels: int = LEVELS

    def meta(self) -> dict:
        """The page's JSON: text, gold and pieces (segmentations shared between checkpoints stored once)."""
        sentences = []
        per_checkpoint: List[List[int]] = [[] for _ in self.checkpoints]
        for index, sentence in enumerate(self.sentences):
            item = sentence.as_json()
            distinct: List[dict] = []
            for c, segmentations in enumerate(self.segmentations):
                encoded = segmentations[index].as_json()
                if encoded not in distinct:
                    distinct.append(encoded)
                per_checkpoint[c].append(distinct.index(encoded))
            item["seg"] = distinct
            sentences.append(item)
        return {
            "format": 1,
            "title": self.title,
            "text": self.text,
            "gold": self.gold if self.has_gold else None,
            "reverse": self.reverse,
            "levels": self.levels,
            "sublayers": [name for name in SUBLAYERS if name in self.sublayers],
            "sublayerLabels": SUBLAYER_LABELS,
            "checkpoints": [dict(c.as_json(), seg=per_checkpoint[i]) for i, c in enumerate(self.checkpoints)],
            "sentences": sentences,
        }
