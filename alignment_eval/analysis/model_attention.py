"""Load a checkpoint of our plugin (or build an untrained model) and record its attention on sentence pairs.

This is the torch boundary of :mod:`alignment_eval.analysis`: importing it needs
neither torch nor fairseq (the torch-free command modules import it at the top);
its functions import torch, fairseq, ``fairseq_plugins`` and sentencepiece when
they run.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..alignments.errors import AlignmentInputError
from ..alignments.io import PathLike, SentencePair


@dataclass
class LoadedModel:
    """A model of the sparse_transformer family with what is needed to feed it words."""

    model: "object"
    source_dictionary: "object"
    target_dictionary: "object"
    checkpoint: str
    source_spm: Optional["object"] = None
    target_spm: Optional["object"] = None

    @property
    def pad(self) -> int:
        return self.source_dictionary.pad()


@dataclass
class EncodedPair:
    """One sentence pair as model input, with the word each subword piece belongs to.

    ``source_ids`` ends with EOS; ``target_ids`` is the target pieces (no EOS);
    ``*_word_of_piece[k]`` is the word index of piece k.
    """

    source_ids: "object"  # LongTensor [source pieces + 1]
    target_ids: "object"  # LongTensor [target pieces]
    source_word_of_piece: np.ndarray
    target_word_of_piece: np.ndarray
    n_source_words: int
    n_target_words: int
    unknown_pieces: int


def _load_spm(path: Optional[PathLike]):
    if path is None:
        return None
    import sentencepiece

    if not Path(path).is_file():
        raise AlignmentInputError(path, None, "SentencePiece model not found")
    try:
        return sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as exc:
        raise AlignmentInputError(path, None, f"not a SentencePiece model ({exc})") from None


def load_model(
    checkpoint: PathLike,
    *,
    data_dir: Optional[PathLike] = None,
    spm: Optional[PathLike] = None,
    source_spm: Optional[PathLike] = None,
    target_spm: Optional[PathLike] = None,
) -> LoadedModel:
    """Load ``checkpoint`` (trained with ``--user-dir fairseq_plugins``) for CPU inference.

    ``data_dir`` is the binarized data folder holding ``dict.<lang>.txt`` (default: the
    one recorded in the checkpoint).  ``spm`` is a joint SentencePiece model;
    ``source_spm`` / ``target_spm`` override it per side; with none, the text's
    tokens are looked up in the dictionaries as they are.
    """
    import fairseq_plugins  # noqa: F401  (registers the model, fixes checkpoint loading)
    from fairseq import checkpoint_utils

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise AlignmentInputError(checkpoint, None, "checkpoint not found")
    overrides = {"data": str(data_dir)} if data_dir is not None else None
    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)], arg_overrides=overrides)
    except FileNotFoundError as exc:
        raise AlignmentInputError(
            checkpoint, None, f"cannot load its dictionaries ({exc}); pass --data-dir with the binarized data folder"
        ) from None
    model = models[0].eval()
    if not hasattr(model, "attention_modules"):
        raise AlignmentInputError(
            checkpoint, None, f"model {type(model).__name__} is not a sparse_transformer; train with --user-dir fairseq_plugins"
        )
    return LoadedModel(
        model=model,
        source_dictionary=task.source_dictionary,
        target_dictionary=task.target_dictionary,
        checkpoint=str(checkpoint),
        source_spm=_load_spm(source_spm or spm),
        target_spm=_load_spm(target_spm or spm),
    )


def build_untrained(arch: str, pairs: Sequence[SentencePair]) -> LoadedModel:
    """An untrained model of ``arch`` (seed 0) with one dictionary of the words of ``pairs``, for benchmarks."""
    import fairseq_plugins  # noqa: F401  (registers the architectures)
    import torch
    from fairseq import options
    from fairseq.data import Dictionary
    from fairseq.models import ARCH_MODEL_REGISTRY

    dictionary = Dictionary()
    for pair in pairs:
        for word in pair.source + pair.target:
            dictionary.add_symbol(word)
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, ["unused", "--arch", arch])
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    torch.manual_seed(0)
    model = ARCH_MODEL_REGISTRY[arch].build_model(args, task).eval()
    return LoadedModel(model=model, source_dictionary=dictionary, target_dictionary=dictionary, checkpoint=f"untrained {arch}")


def _pieces(words: Sequence[str], spm) -> Tuple[List[str], np.ndarray]:
    pieces: List[str] = []
    word_of_piece: List[int] = []
    for index, word in enumerate(words):
        word_pieces = spm.encode(word, out_type=str) if spm is not None else [word]
        pieces.extend(word_pieces)
        word_of_piece.extend([index] * len(word_pieces))
    return pieces, np.asarray(word_of_piece, dtype=np.int64)


def encode_pair(loaded: LoadedModel, source_words: Sequence[str], target_words: Sequence[str]) -> EncodedPair:
    """Subword-encode one pair and map pieces to dictionary ids (source gets EOS)."""
    import torch

    source_pieces, source_map = _pieces(source_words, loaded.source_spm)
    target_pieces, target_map = _pieces(target_words, loaded.target_spm)
    source_ids = loaded.source_dictionary.encode_line(
        " ".join(source_pieces), add_if_not_exist=False, append_eos=True
    ).long()
    target_ids = loaded.target_dictionary.encode_line(
        " ".join(target_pieces), add_if_not_exist=False, append_eos=False
    ).long()
    unknown = int((source_ids == loaded.source_dictionary.unk()).sum() + (target_ids == loaded.target_dictionary.unk()).sum())
    if len(source_ids) != len(source_pieces) + 1 or len(target_ids) != len(target_pieces):
        raise ValueError("a piece contains a space; check the SentencePiece model")  # pragma: no cover
    return EncodedPair(
        source_ids=source_ids, target_ids=torch.as_tensor(target_ids),
        source_word_of_piece=source_map, target_word_of_piece=target_map,
        n_source_words=len(source_words), n_target_words=len(target_words), unknown_pieces=unknown,
    )


def encode_pairs(loaded: LoadedModel, pairs: Sequence[SentencePair], *, reverse: bool = False) -> List[EncodedPair]:
    """Encode every pair; with ``reverse`` the text's target side is the model's source."""
    return [
        encode_pair(loaded, pair.target, pair.source) if reverse else encode_pair(loaded, pair.source, pair.target)
        for pair in pairs
    ]


def record_pairs(
    loaded: LoadedModel,
    encoded: Sequence[EncodedPair],
    *,
    batch_size: int = 32,
    include_self: bool = False,
) -> Iterator[Tuple[int, "object"]]:
    """Teacher-forced attention of every pair: yields ``(index, AttentionRecord)`` in order.

    Each record holds float32 tensors [layers, heads, queries, keys]; the decoder
    input is EOS followed by the target pieces, so ``cross`` has
    ``len(target_ids) + 1`` rows and ``len(source_ids)`` columns (the last is EOS).
    """
    from fairseq.data import data_utils

    from fairseq_plugins import record_attention

    pad = loaded.source_dictionary.pad()
    eos = loaded.source_dictionary.eos()
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start:start + batch_size]
        src_tokens = data_utils.collate_tokens([p.source_ids for p in batch], pad, eos, left_pad=True)
        src_lengths = src_tokens.new_tensor([len(p.source_ids) for p in batch])
        # decoder input: EOS + target pieces (fairseq's move_eos_to_beginning of target + EOS)
        import torch

        prev_output_tokens = data_utils.collate_tokens(
            [torch.cat([p.target_ids.new_tensor([eos]), p.target_ids]) for p in batch], pad, eos, left_pad=False
        )
        records = record_attention(
            loaded.model, src_tokens, src_lengths, prev_output_tokens, pad=pad, include_self=include_self
        )
        for offset, record in enumerate(records):
            yield start + offset, record
