"""Record the attention of checkpoints on a text and pack it for the page.

The model side of the explorer: it runs checkpoints through
:mod:`alignment_eval.analysis.model_attention` (``load_model``, ``encode_pairs``,
``record_pairs``: teacher forcing, every sublayer, [layers, heads, queries, keys] per
sentence), which imports torch and fairseq only when it runs; this module imports neither.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..alignments.io import GoldAlignment, SentencePair
from ..analysis.model_attention import LoadedModel, encode_pairs, record_pairs
from .payload import (
    LEVELS, SUBLAYERS, CheckpointInfo, ExplorerData, Segmentation, SentenceAttention, SentenceInfo, encode_sentence,
)


@dataclass
class Recorded:
    """One checkpoint's packed attention on every sentence."""

    info: CheckpointInfo
    blobs: List[bytes]
    segmentations: List[Segmentation]
    seconds: float


def normalizers(loaded: LoadedModel) -> dict:
    """{sublayer: normalizer name} of the model (as ``alignment-eval stats`` reports them)."""
    found: dict = {}
    for sublayer, _, module in loaded.model.attention_modules():
        found.setdefault(sublayer, module.normalizer)
    return found


def segmentation_of(loaded: LoadedModel, encoded) -> Segmentation:
    """The pieces as the model sees them (dictionary symbols, so unknown pieces show as ``<unk>``)."""
    return Segmentation(
        source_pieces=[loaded.source_dictionary[int(i)] for i in encoded.source_ids[:-1]],  # EOS dropped
        target_pieces=[loaded.target_dictionary[int(i)] for i in encoded.target_ids],
        source_word_of_piece=[int(w) for w in encoded.source_word_of_piece],
        target_word_of_piece=[int(w) for w in encoded.target_word_of_piece],
        unknown_pieces=int(encoded.unknown_pieces),
    )


def record_checkpoint(
    loaded: LoadedModel,
    pairs: Sequence[SentencePair],
    *,
    label: str,
    reverse: bool = False,
    cross_only: bool = False,
    batch_size: int = 32,
    levels: int = LEVELS,
) -> Recorded:
    """Teacher-forced attention of ``loaded`` on ``pairs``, quantised and compressed per sentence."""
    started = time.perf_counter()
    encoded = encode_pairs(loaded, pairs, reverse=reverse)
    blobs: List[bytes] = []
    segmentations: List[Segmentation] = []
    shapes: dict = {}
    for index, record in record_pairs(loaded, encoded, batch_size=batch_size, include_self=not cross_only):
        segmentation = segmentation_of(loaded, encoded[index])
        attention = SentenceAttention(
            segmentation=segmentation,
            cross=record.cross.numpy().astype(np.float32),
            encoder=None if cross_only else record.encoder_self.numpy().astype(np.float32),
            decoder=None if cross_only else record.decoder_self.numpy().astype(np.float32),
        )
        for name, matrix in attention.matrices().items():
            shape = [int(matrix.shape[0]), int(matrix.shape[1])]  # [layers, heads]
            if shapes.setdefault(name, shape) != shape:
                raise ValueError(f"{name} attention of sentence {index + 1} has {shape} layers x heads, "
                                 f"earlier sentences {shapes[name]}")
        blobs.append(encode_sentence(attention, levels))
        segmentations.append(segmentation)
    if not shapes:  # no sentences: the model's own sizes
        for name, _, module in loaded.model.attention_modules():
            if name in SUBLAYERS and (name == "cross" or not cross_only):
                shapes.setdefault(name, [0, int(module.num_heads)])
                shapes[name][0] += 1
    info = CheckpointInfo(label=label, path=str(loaded.checkpoint), normalizers=normalizers(loaded),
                          shapes={name: shapes[name] for name in SUBLAYERS if name in shapes})
    return Recorded(info=info, blobs=blobs, segmentations=segmentations, seconds=time.perf_counter() - started)


def default_labels(paths: Sequence[str], normalizer_names: Sequence[str]) -> List[str]:
    """A panel title per checkpoint: its cross-attention normalizer, with the file's folder when two share it."""
    labels = list(normalizer_names)
    for index, label in enumerate(labels):
        if labels.count(label) > 1:
            path = Path(paths[index])
            labels[index] = f"{label} ({path.parent.name}/{path.name})"
    return labels


def build_data(
    loaded_models: Sequence[Callable[[], LoadedModel]],
    pairs: Sequence[SentencePair],
    *,
    labels: Optional[Sequence[Optional[str]]] = None,
    gold: Optional[Sequence[GoldAlignment]] = None,
    reverse: bool = False,
    cross_only: bool = False,
    batch_size: int = 32,
    levels: int = LEVELS,
    title: str = "Attention explorer",
    text: str = "",
    gold_name: str = "",
    lines: Optional[Sequence[int]] = None,
    log: Callable[[str], None] = lambda message: None,
) -> ExplorerData:
    """Record every checkpoint (each loaded by its callable, one at a time) and assemble the page's data.

    ``gold`` is in the text's orientation (0-based (source, target)); with ``reverse`` the page shows
    the model's orientation, so sources and targets (words and links) are swapped.
    """
    recorded: List[Recorded] = []
    for index, load in enumerate(loaded_models):
        loaded = load()
        names = normalizers(loaded)
        label = (labels[index] if labels and index < len(labels) else None) or names.get("cross", "model")
        result = record_checkpoint(loaded, pairs, label=label, reverse=reverse, cross_only=cross_only,
                                   batch_size=batch_size, levels=levels)
        log(f"{loaded.checkpoint}: {len(pairs)} sentences recorded and packed in {result.seconds:.1f} s")
        recorded.append(result)
    if not labels or not any(labels):
        for result, label in zip(recorded, default_labels([r.info.path for r in recorded],
                                                          [r.info.label for r in recorded])):
            result.info.label = label
    sentences = []
    for index, pair in enumerate(pairs):
        source, target = (pair.target, pair.source) if reverse else (pair.source, pair.target)
        links = gold[index] if gold is not None else None
        if links is not None and reverse:
            links = GoldAlignment(frozenset((t, s) for s, t in links.sure), frozenset((t, s) for s, t in links.possible))
        sentences.append(SentenceInfo(source=list(source), target=list(target), gold=links,
                                      line=lines[index] if lines is not None else index + 1))
    return ExplorerData(
        title=title, checkpoints=[r.info for r in recorded], sentences=sentences,
        blobs=[r.blobs for r in recorded], segmentations=[r.segmentations for r in recorded],
        has_gold=gold is not None, text=text, gold=gold_name, reverse=reverse,
        sublayers=("cross",) if cross_only else SUBLAYERS, levels=levels,
    )
