"""The toolkit's command-line tools as subprocesses: where they are, their environment, a logged run."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Sequence

BIN = Path(sys.executable).parent  # fairseq-train, fairseq-generate, alignment-eval of this environment
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "fairseq_plugins"  # fairseq --user-dir


def subprocess_environment() -> dict:
    """The environment for fairseq/alignment-eval subprocesses: one intra-op thread unless the user set one.

    On a small shared CPU machine torch's default (one thread per core) is slower by an order of
    magnitude as soon as anything else runs (measured here: 0.28 vs 5.5 updates/s for the tiny model).
    """
    environment = os.environ.copy()
    environment.setdefault("OMP_NUM_THREADS", "1")
    return environment


def run_logged(command: Sequence, log: Path) -> None:
    """Run ``command``, streaming its output to ``log``; raise with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(f"$ {shlex.join(map(str, command))}\n")
        stream.flush()
        result = subprocess.run(list(map(str, command)), stdout=stream, stderr=subprocess.STDOUT,
                                env=subprocess_environment())
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        raise RuntimeError(f"{Path(str(command[0])).name} failed (exit {result.returncode}); see {log}:\n{tail}")
