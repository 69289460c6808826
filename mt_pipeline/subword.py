"""SentencePiece: training (joint or one model per language) and encoding to pieces."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from nmt_common.files import atomic_path

from .errors import PipelineError
from .files import count_lines, iter_lines
from .log import log
from .text import base_language

ENCODE_BATCH = 20_000


def default_character_coverage(lang: str) -> float:
    """SentencePiece's recommendation: 0.9995 for languages with rich character sets (zh, ja),
    1.0 for the others."""
    return 0.9995 if base_language(lang) in {"zh", "ja"} else 1.0


@dataclass(frozen=True)
class SpmConfig:
    vocab_size: int = 32000
    joint: bool = True
    model_type: str = "bpe"
    # language -> coverage; a missing language gets default_character_coverage(lang)
    character_coverage: dict = field(default_factory=dict)
    input_sentence_size: int = 5_000_000
    seed: int = 1

    def __post_init__(self):
        if self.vocab_size < 8:
            raise PipelineError(f"SentencePiece vocabulary size {self.vocab_size} is too small")
        if self.model_type not in {"bpe", "unigram", "char", "word"}:
            raise PipelineError(f"unknown SentencePiece model type {self.model_type!r} (bpe, unigram, char, word)")
        for lang, value in self.character_coverage.items():
            if not 0.9 <= float(value) <= 1.0:
                raise PipelineError(f"character coverage {value} for {lang} is outside [0.9, 1]")
        if self.input_sentence_size < 0:
            raise PipelineError("the SentencePiece sample size must be >= 0 (0: every sentence)")

    def with_languages(self, langs: Sequence[str]) -> "SpmConfig":
        """A copy whose character_coverage names every language (defaults filled in)."""
        from dataclasses import replace

        coverage = {l: float(self.character_coverage.get(l, default_character_coverage(l))) for l in langs}
        unknown = set(self.character_coverage) - set(langs)
        if unknown:
            raise PipelineError(f"character coverage given for {', '.join(sorted(unknown))}, not a language of "
                                f"this corpus ({', '.join(langs)})")
        return replace(self, character_coverage=coverage)

    def coverage(self, langs: Sequence[str]) -> float:
        return min(float(self.character_coverage.get(l, default_character_coverage(l))) for l in langs)

    def as_dict(self) -> dict:
        return asdict(self)


def model_names(src: str, tgt: str, joint: bool) -> dict[str, str]:
    """File name of the model used for each language: spm.model (joint) or spm.<lang>.model."""
    return {src: "spm.model", tgt: "spm.model"} if joint else {src: f"spm.{src}.model", tgt: f"spm.{tgt}.model"}


def train_model(inputs: Sequence[Path], model: Path, *, langs: Sequence[str], config: SpmConfig, threads: int = 1) -> dict:
    """Train one SentencePiece model on ``inputs`` and write ``model`` (and its .vocab)."""
    import sentencepiece as spm

    model = Path(model)
    lines = sum(count_lines(p) for p in inputs)
    if lines == 0:
        raise PipelineError(f"cannot train SentencePiece on empty input: {', '.join(map(str, inputs))}")
    coverage = config.coverage(langs)
    sample = config.input_sentence_size
    log(
        f"spm: training {model.name} ({config.model_type}, vocab {config.vocab_size}, coverage {coverage}) on "
        f"{lines} lines" + (f", sampling {sample}" if sample and lines > sample else "")
    )
    vocab = model.with_suffix(".vocab")
    with atomic_path(model) as temporary_model, atomic_path(vocab) as temporary_vocab:
        prefix = temporary_model.with_name(temporary_model.name + ".train")
        spm.set_random_generator_seed(config.seed)
        try:
            spm.SentencePieceTrainer.train(
                input=",".join(str(p) for p in inputs),
                model_prefix=str(prefix),
                vocab_size=config.vocab_size,
                model_type=config.model_type,
                character_coverage=coverage,
                input_sentence_size=sample if sample and lines > sample else 0,
                shuffle_input_sentence=True,
                hard_vocab_limit=False,  # small corpora: fewer pieces rather than an error
                num_threads=max(1, threads),
                minloglevel=2,
            )
        except (RuntimeError, OSError) as error:
            raise PipelineError(f"SentencePiece training of {model} failed: {error}") from None
        os.replace(f"{prefix}.model", temporary_model)
        os.replace(f"{prefix}.vocab", temporary_vocab)
    processor = spm.SentencePieceProcessor(model_file=str(model))
    return {"pieces": processor.get_piece_size(), "coverage": coverage, "lines": lines}


def load(model: Path):
    import sentencepiece as spm

    if not Path(model).is_file():
        raise PipelineError(f"SentencePiece model not found: {model}")
    return spm.SentencePieceProcessor(model_file=str(model))


def encode_lines(processor, lines: Sequence[str], threads: int = 1) -> list[str]:
    """Space-separated pieces for each line (what fairseq-preprocess reads)."""
    pieces = processor.encode(list(lines), out_type=str, num_threads=max(1, threads))
    return [" ".join(p) for p in pieces]


def encode_file(model: Path, source: Path, destination: Path, *, threads: int = 1, desc: str = "encode") -> int:
    """Encode a text file line by line into pieces; returns the number of lines."""
    from tqdm import tqdm

    processor = load(model)
    total = count_lines(source)
    n = 0
    with atomic_path(Path(destination)) as temporary, open(temporary, "w", encoding="utf-8", newline="\n") as out, \
            tqdm(total=total, unit=" lines", unit_scale=True, desc=desc, disable=None, leave=False) as bar:
        batch: list[str] = []
        for line in iter_lines(source, strict=True):
            batch.append(line)
            if len(batch) >= ENCODE_BATCH:
                out.writelines(text + "\n" for text in encode_lines(processor, batch, threads))
                bar.update(len(batch))
                n += len(batch)
                batch = []
        if batch:
            out.writelines(text + "\n" for text in encode_lines(processor, batch, threads))
            bar.update(len(batch))
            n += len(batch)
    return n


def decode_lines(processor, lines: Iterable[str]) -> list[str]:
    return [processor.decode(line.split()) for line in lines]
