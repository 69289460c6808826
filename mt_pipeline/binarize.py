"""fairseq-preprocess, run as a subprocess of this interpreter (no torch import here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import PipelineError
from .log import log


def fairseq_preprocess(
    *,
    source_lang: str,
    target_lang: str,
    trainpref: Path,
    validpref: Path,
    testpref: Path | None,
    destdir: Path,
    joined_dictionary: bool,
    workers: int = 1,
    log_file: Path,
) -> None:
    """Binarize the encoded text into ``destdir``; a PipelineError with the log's tail on failure."""
    command = [
        sys.executable, "-m", "fairseq_cli.preprocess",
        "--source-lang", source_lang, "--target-lang", target_lang,
        "--trainpref", str(trainpref), "--validpref", str(validpref),
        "--destdir", str(destdir), "--workers", str(max(1, workers)),
    ]
    if testpref is not None:
        command += ["--testpref", str(testpref)]
    if joined_dictionary:
        command.append("--joined-dictionary")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    log(f"binarize: fairseq-preprocess -> {destdir} (log: {log_file})")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w", encoding="utf-8") as handle:
        handle.write(" ".join(command) + "\n")
        handle.flush()
        try:
            result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        except OSError as error:
            raise PipelineError(f"cannot run fairseq-preprocess: {error}") from None
    if result.returncode != 0:
        tail = "\n".join(log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise PipelineError(f"fairseq-preprocess failed (exit {result.returncode}); see {log_file}:\n{tail}")
