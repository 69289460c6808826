"""BLEU with sacrebleu, reported with its signature (Post 2018).

References come from a plain text file, or from sacrebleu's own test-set names
(``wmt14/full``, ``wmt16``, ...) when sacrebleu has them cached, so that WMT scores
are computed against the official references.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

from sacrebleu.metrics import BLEU, CHRF

from nmt_common import files
from nmt_common.records import RecordFile


class BleuInputError(ValueError):
    """A hypothesis or reference file that cannot be scored (names the file)."""


@dataclass(frozen=True)
class BleuRecord(RecordFile):
    """One test set's scores: the schema of ``bleu.json``, which its writers and readers share.

    ``signature``/``chrf_signature`` are the strings of the sacreBLEU metric objects that computed
    the scores (:func:`score`); ``checkpoint`` and ``beam`` say which model output was scored when
    the experiment runner wrote the record (None otherwise)."""

    bleu: float
    chrf: float
    signature: str
    chrf_signature: str
    hypotheses: str
    references: str
    sentences: int
    checkpoint: Optional[str] = None
    beam: Optional[int] = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def input_error(cls, error: files.InputFileError) -> Exception:
        return BleuInputError(str(error))


BleuResult = BleuRecord  # the name before bleu.json had a schema; kept for one release


def read_lines(path: Path) -> List[str]:
    """The lines of a UTF-8 text file (:func:`nmt_common.files.read_lines`); BleuInputError naming the
    file (and line) otherwise."""
    try:
        return files.read_lines(path)
    except files.InputFileError as error:
        raise BleuInputError(str(error)) from None


def reference_lines(reference: Optional[Path] = None, *, test_set: Optional[str] = None,
                    langpair: Optional[str] = None) -> tuple[List[str], str]:
    """Reference lines and a name for them: a file, or a sacrebleu test set (``wmt14/full``, ``en-de``)."""
    if reference is not None:
        return read_lines(reference), str(reference)
    if not (test_set and langpair):
        raise BleuInputError("give a reference file or a sacrebleu test set with its language pair")
    from sacrebleu.utils import get_reference_files

    files = get_reference_files(test_set, langpair)
    if not files or not Path(files[0]).is_file():
        raise BleuInputError(
            f"sacrebleu test set {test_set} {langpair} is not cached; run `sacrebleu -t {test_set} -l {langpair} "
            "--echo ref` once with internet access, or pass the reference file"
        )
    return read_lines(Path(files[0])), f"{test_set}:{langpair}"


def score(hypotheses: Path, reference: Optional[Path] = None, *, test_set: Optional[str] = None,
          langpair: Optional[str] = None, tokenize: Optional[str] = None) -> BleuRecord:
    """Corpus BLEU and chrF of ``hypotheses`` (detokenised, one per line) against the references."""
    hyps = read_lines(hypotheses)
    refs, reference_name = reference_lines(reference, test_set=test_set, langpair=langpair)
    if len(hyps) != len(refs):
        raise BleuInputError(f"{hypotheses} has {len(hyps)} lines but {reference_name} has {len(refs)}")
    target = (langpair or "").split("-")[-1] if langpair else None
    bleu = BLEU(tokenize=tokenize, trg_lang=target or "")
    chrf = CHRF()
    bleu_score = bleu.corpus_score(hyps, [refs])
    chrf_score = chrf.corpus_score(hyps, [refs])
    return BleuRecord(
        bleu=round(bleu_score.score, 2),
        chrf=round(chrf_score.score, 2),
        signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        hypotheses=str(hypotheses),
        references=reference_name,
        sentences=len(hyps),
    )
