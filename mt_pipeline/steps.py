"""Restartable steps: a completion marker written last, atomically, with the inputs' fingerprint.

A step is skipped when its marker exists, its fingerprint (step name, parameters and the
fingerprints of its inputs) is the one asked for now, and every output it recorded is
still there with the recorded size. Otherwise the marker is removed first, the step runs
(its outputs are written atomically by the step itself) and the marker is written last.
A step's fingerprint is the input of the next one, so a change anywhere upstream (a new
download, another cleaning threshold) reruns everything downstream of it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

from nmt_common.files import write_json

from .errors import PipelineError
from .log import log

# Bumped when a step's code changes what it writes, so that old outputs are rebuilt.
STEP_CODE_VERSION = 1


def fingerprint(obj) -> str:
    """SHA-256 of a canonical JSON rendering of ``obj``."""
    text = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _recorded_outputs(marker: Path, outputs: Iterable[Path]) -> dict[str, int]:
    recorded = {}
    for output in outputs:
        output = Path(output)
        if not output.is_file():
            raise PipelineError(f"step finished without writing its output {output}")
        recorded[os.path.relpath(output.resolve(), marker.parent.resolve())] = output.stat().st_size
    return recorded


def read_marker(marker: Path) -> dict | None:
    """The marker's content when the step it describes is complete (outputs intact), else None."""
    marker = Path(marker)
    if not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for relative, size in content.get("outputs", {}).items():
        output = marker.parent / relative
        if not output.is_file() or output.stat().st_size != size:
            return None
    return content


def completed_fingerprint(marker: Path, step: str) -> str:
    """Fingerprint of a completed earlier step; a PipelineError saying to run it when it is not."""
    content = read_marker(marker)
    if content is None:
        raise PipelineError(
            f"step '{step}' has not been completed (no valid marker {marker}); run it first (--steps {step})"
        )
    return content["fingerprint"]


def run_step(
    name: str,
    marker: Path,
    *,
    params: Mapping,
    inputs: Mapping,
    outputs: Callable[[], Iterable[Path]] | Iterable[Path],
    action: Callable[[], Mapping | None],
    force: bool = False,
) -> tuple[str, dict]:
    """Run ``action`` unless the step is already complete; return (fingerprint, info).

    ``outputs`` lists the files the action writes (or a callable returning them, for steps
    whose outputs are known only afterwards); ``action`` returns a small dict of facts
    (counts, sums) kept in the marker and handed back on later, skipped runs.
    """
    marker = Path(marker)
    wanted = fingerprint({"step": name, "code": STEP_CODE_VERSION, "params": params, "inputs": inputs})
    content = read_marker(marker)
    if content is not None and content.get("fingerprint") == wanted and not force:
        log(f"{name}: already complete, skipped ({marker})")
        return wanted, content.get("info") or {}
    if marker.exists():
        marker.unlink()
    info = dict(action() or {})
    produced = outputs() if callable(outputs) else outputs
    write_json(
        marker,
        {
            "step": name,
            "fingerprint": wanted,
            "params": params,
            "inputs": inputs,
            "outputs": _recorded_outputs(marker, produced),
            "info": info,
            "completed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return wanted, info
