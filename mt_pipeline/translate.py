"""Translate a binarized test set with fairseq-generate: detokenised output, every sentence, in order.

fairseq-generate prints hypotheses in batch order, by sentence id; we collect the
``D-<id>`` lines (hypotheses after ``--post-process``, e.g. SentencePiece decoding),
check that every id from 0 to N-1 is there exactly once, and write them in id order
atomically.  Decoding speed (sentences/s) is taken from fairseq's own summary line.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from nmt_common.files import InputFileError, atomic_write_text
from nmt_common.records import RecordFile

from .subprocesses import PLUGIN_DIR, subprocess_environment

_DETOKENISED = re.compile(r"^D-(\d+)\t[^\t]*\t(.*)$")
_SPEED = re.compile(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in ([\d.]+)s \(([\d.]+) sentences/s")


class TranslationError(RuntimeError):
    """fairseq-generate failed or its output is incomplete."""


@dataclass
class Translation:
    output: Path
    sentences: int
    seconds: Optional[float]
    sentences_per_second: Optional[float]
    command: List[str]

    def record(self) -> "TranslationRecord":
        return TranslationRecord(sentences=self.sentences, seconds=self.seconds,
                                 sentences_per_second=self.sentences_per_second, command=shlex.join(self.command))

    def write_record(self, path: Path) -> None:
        """Write ``translate.json`` (:class:`TranslationRecord`)."""
        self.record().write(path)


@dataclass(frozen=True)
class TranslationRecord(RecordFile):
    """``translate.json``, the schema its writer and readers share: sentences, decoding time and
    speed (from fairseq-generate's own report), and the exact command."""

    sentences: int
    seconds: Optional[float]
    sentences_per_second: Optional[float]
    command: str

    @classmethod
    def input_error(cls, error: InputFileError) -> Exception:
        return TranslationError(str(error))


def parse_generate_output(text: str, expected: Optional[int] = None) -> List[str]:
    """Hypotheses of fairseq-generate's stdout in sentence-id order (``D-`` lines)."""
    by_id: Dict[int, str] = {}
    for line in text.splitlines():
        match = _DETOKENISED.match(line)
        if match:
            sentence_id = int(match.group(1))
            if sentence_id in by_id:
                raise TranslationError(f"fairseq-generate printed sentence {sentence_id} twice")
            by_id[sentence_id] = match.group(2)
    count = len(by_id) if expected is None else expected
    missing = [i for i in range(count) if i not in by_id]
    if missing or len(by_id) != count:
        raise TranslationError(
            f"fairseq-generate translated {len(by_id)} of {count} sentences "
            f"(missing ids: {missing[:10]}{'...' if len(missing) > 10 else ''})"
        )
    return [by_id[i] for i in range(count)]


def translate(
    data_bin: Path,
    checkpoint: Path,
    output: Path,
    *,
    subset: str = "test",
    beam: int = 4,
    batch_size: int = 64,
    post_process: str = "sentencepiece",
    expected: Optional[int] = None,
    extra_args: Sequence[str] = (),
    user_dir: Path = PLUGIN_DIR,
) -> Translation:
    """Run fairseq-generate on ``subset`` of ``data_bin`` and write detokenised hypotheses to ``output``."""
    generate = Path(sys.executable).with_name("fairseq-generate")
    command = [
        str(generate), str(data_bin), "--user-dir", str(user_dir), "--path", str(checkpoint),
        "--gen-subset", subset, "--beam", str(beam), "--batch-size", str(batch_size),
        "--required-batch-size-multiple", "1", "--post-process", post_process, *extra_args,
    ]
    if not Path(checkpoint).is_file():
        raise TranslationError(f"{checkpoint}: checkpoint not found")
    result = subprocess.run(command, capture_output=True, text=True, env=subprocess_environment())
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise TranslationError(f"fairseq-generate failed on {checkpoint}:\n{tail}")
    hypotheses = parse_generate_output(result.stdout, expected)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, "".join(h + "\n" for h in hypotheses))
    speed = _SPEED.search(result.stdout + result.stderr)
    return Translation(
        output=Path(output),
        sentences=len(hypotheses),
        seconds=float(speed.group(3)) if speed else None,
        sentences_per_second=float(speed.group(4)) if speed else None,
        command=command,
    )
