"""One fairseq-train run that is fingerprinted, resumable and never silently reused.

A run lives in its checkpoint folder::

    SAVE_DIR/run.json          settings fingerprint, written before training starts
    SAVE_DIR/train.log         fairseq's JSON log (appended to on every resume)
    SAVE_DIR/train.done.json   written last, when fairseq-train exits 0: updates, epochs, why it stopped
    SAVE_DIR/checkpoint_*.pt   fairseq's own checkpoints (best by validation BLEU, last, last epochs)
    SAVE_DIR/tensorboard/      TensorBoard event files (train_inner/, train/, valid/; ``tensorboard --logdir``)

The fingerprint covers everything that decides the model's trajectory: the whole
fairseq-train command (architecture, every option, seed) with paths replaced by names,
and the content of the binarized data. Asked again with the same fingerprint, a finished
run is reused and an interrupted one resumes from ``checkpoint_last.pt`` (fairseq's own
resume: at most one save interval is lost; the plugin keeps ``--patience`` exact across
resumes). Asked with other settings, the run is refused with the differences named, or
with ``on_change="rerun"`` the old folder is kept aside (renamed, nothing deleted) and
training starts again.

The stopping rule (``--max-update``, ``--patience``) is not part of the trajectory when
the learning-rate schedule does not depend on it (inverse_sqrt, fixed): a finished run
asked to stop later continues from ``checkpoint_last.pt``, which gives the model an
uninterrupted run with the new rule would have (fairseq seeds dropout per update and the
data order per epoch). Asked to stop earlier than where it already is, it is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from nmt_common.files import write_json

from .errors import PipelineError
from .log import log as log_progress

# Bumped when what a run means changes (e.g. a new default in the command builder).
TRAIN_CODE_VERSION = 1
RUN_FILE, LOG_FILE, DONE_FILE = "run.json", "train.log", "train.done.json"
TENSORBOARD_DIR = "tensorboard"
ON_CHANGE = ("refuse", "rerun")
STOPPING_OPTIONS = ("--max-update", "--patience")
BUDGET_FREE_SCHEDULES = ("inverse_sqrt", "fixed")  # schedules whose learning rate ignores --max-update


class StaleRunError(PipelineError):
    """A checkpoint folder holds a run made with other settings."""


def data_fingerprint(data_bin: Path) -> str:
    """SHA-256 over the binarized data a model is trained on (dictionaries, train/valid .bin/.idx)."""
    data_bin = Path(data_bin)
    files = sorted(p for p in data_bin.iterdir()
                   if p.is_file() and (p.name.startswith("dict.") or p.name.startswith(("train.", "valid."))))
    if not files:
        raise PipelineError(f"{data_bin}: no binarized data (dict.*.txt, train.*, valid.*); prepare it first")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def normalised_command(command: Sequence, replacements: Dict[str, str]) -> List[str]:
    """The command as strings, with machine-specific paths replaced by stable names; program by name only."""
    words = [str(word) for word in command]
    words[0] = Path(words[0]).name
    return [replacements.get(word, word) for word in words]


def options(words: Sequence[str]) -> Dict[str, str]:
    """``--name value`` / ``--flag`` pairs of a command (the first word and positionals under '')."""
    found: Dict[str, str] = {}
    index = 1
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            takes_value = index + 1 < len(words) and not words[index + 1].startswith("--")
            found[word] = words[index + 1] if takes_value else "(set)"
            index += 2 if takes_value else 1
        else:
            found[""] = (found.get("", "") + " " + word).strip()
            index += 1
    return found


def describe_differences(old: Sequence[str], new: Sequence[str]) -> str:
    """'--max-update 300 -> 3000; --seed 1 -> 2' for two normalised commands."""
    before, after = options(old), options(new)
    changes = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            changes.append(f"{name or 'data'} {before.get(name, '(absent)')} -> {after.get(name, '(absent)')}")
    return "; ".join(changes) or "same options, other data or code version"


def split_stopping(identity: Sequence[str]) -> tuple[List[str], Dict[str, str]]:
    """(trajectory command, stopping rule): the stopping options move out when the schedule ignores them."""
    found = options(identity)
    if found.get("--lr-scheduler") not in BUDGET_FREE_SCHEDULES:
        return list(identity), {}
    trajectory, stopping, index = [], {}, 0
    while index < len(identity):
        if identity[index] in STOPPING_OPTIONS and index + 1 < len(identity):
            stopping[identity[index]] = identity[index + 1]
            index += 2
        else:
            trajectory.append(identity[index])
            index += 1
    return trajectory, stopping


def stop_point(valid: Sequence, stopping: Dict[str, str], maximize: bool = True) -> Optional[int]:
    """Update count at which ``stopping`` ends a run whose validations were ``valid`` (ValidPoint, in order),
    or None when the rule would not have stopped it within them (patience on BLEU, as the plugin decides)."""
    max_update = int(stopping.get("--max-update", 0)) or None
    patience = int(stopping.get("--patience", 0))
    best, since = None, 0
    for point in valid:
        if max_update is not None and point.updates >= max_update:
            return max_update
        score = point.bleu
        if score is None:
            continue
        if best is None or (score > best if maximize else score < best):
            best, since = score, 0
        else:
            since += 1
        if patience > 0 and since >= patience:
            return point.updates
    return None


@dataclass
class TrainingRun:
    """Where a run lives and how it was asked for."""

    save_dir: Path
    command: List[str]          # the real fairseq-train command
    identity: List[str]         # the normalised command: trajectory + stopping rule
    data: str                   # data_fingerprint of the data-bin

    @property
    def trajectory(self) -> List[str]:
        return split_stopping(self.identity)[0]

    @property
    def stopping(self) -> Dict[str, str]:
        return split_stopping(self.identity)[1]

    @property
    def fingerprint(self) -> str:
        text = json.dumps({"code": TRAIN_CODE_VERSION, "command": self.trajectory, "data": self.data}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def log_file(self) -> Path:
        return self.save_dir / LOG_FILE

    def record(self) -> Optional[dict]:
        path = self.save_dir / RUN_FILE
        return read_record(path) if path.is_file() else None

    def done(self) -> Optional[dict]:
        """The completion record when this very run finished (same fingerprint), else None."""
        path = self.save_dir / DONE_FILE
        if not path.is_file():
            return None
        record = read_record(path)
        if record.get("fingerprint") != self.fingerprint:
            return None
        if record.get("stopping", {}) == self.stopping:
            return record
        # finished under another stopping rule (e.g. a later --max-update): still finished when the
        # new rule stops it where it stopped (patience met before either cap)
        if self.log_file.is_file():
            from .curves import read_log

            if stop_point(read_log(self.log_file).valid, self.stopping) == record.get("updates"):
                return {**record, "stopping": self.stopping}
        return None


def read_record(path: Path) -> dict:
    """A JSON record this module wrote (run.json, train.done.json); a damaged one is named, not a traceback."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: not UTF-8 text ({exc.reason}); delete the file and run again") from None
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); delete the file to retrain or "
                            "re-check this run") from None
    if not isinstance(record, dict):
        raise PipelineError(f"{path}:1: expected a JSON object, found {type(record).__name__}")
    return record


def _has_checkpoints(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("checkpoint*.pt"))


def _claim(run: TrainingRun) -> None:
    run.save_dir.mkdir(parents=True, exist_ok=True)
    write_json(run.save_dir / RUN_FILE, {
        "fingerprint": run.fingerprint, "code": TRAIN_CODE_VERSION, "identity": run.identity,
        "stopping": run.stopping, "data": run.data, "command": shlex.join(run.command),
        "created": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1)


def check_or_claim(run: TrainingRun, on_change: str = "refuse", log: Callable[[str], None] = log_progress) -> str:
    """Make ``run.save_dir`` belong to ``run``: 'new', 'resume', 'done', or raise StaleRunError.

    A folder made with another trajectory (or stopped later than the new rule allows) is
    refused, naming the differences, or with ``on_change='rerun'`` renamed to
    ``<folder>.superseded-<time>`` and started afresh. Same trajectory, stopping rule
    changed and not yet met: 'resume' (training continues from checkpoint_last.pt).
    """
    if on_change not in ON_CHANGE:
        raise PipelineError(f"on_change must be one of {', '.join(ON_CHANGE)}, not {on_change!r}")
    folder = run.save_dir
    record = run.record()
    if record is not None and record.get("fingerprint") == run.fingerprint:
        if run.done() is not None:
            return "done"
        if not _has_checkpoints(folder):
            _claim(run)
            return "new"
        old_stopping = record.get("stopping", {})
        if old_stopping == run.stopping:
            return "resume"
        from .curves import read_log

        history = read_log(run.log_file) if run.log_file.is_file() else None
        reached = history.last_update if history else 0
        stop = stop_point(history.valid, run.stopping) if history else None
        change = describe_differences(["x", *sum(([k, v] for k, v in old_stopping.items()), [])],
                                      ["x", *sum(([k, v] for k, v in run.stopping.items()), [])])
        if stop is None or stop >= reached:
            (folder / DONE_FILE).unlink(missing_ok=True)
            _claim(run)
            log(f"{folder}: stopping rule changed ({change}); not met at update {reached}: training continues")
            return "resume"
        why = f"the new stopping rule ({change}) stops at update {stop}, but the run is at {reached}"
    elif record is not None or _has_checkpoints(folder):
        why = (describe_differences(record["identity"], run.identity) if record is not None
               else "no run.json records how its checkpoints were made")
    else:
        _claim(run)
        return "new"
    if on_change == "refuse":
        raise StaleRunError(
            f"{folder} holds a run with other settings ({why}); its outputs will not be reported as this "
            "run's. Pass --on-change rerun to keep it aside and train again, or use another --checkpoint-root")
    kept = folder.with_name(f"{folder.name}.superseded-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(folder, kept)
    log(f"{folder}: settings changed ({why}); old run kept as {kept}, training again")
    _claim(run)
    return "new"


def checkpoint_updates(checkpoint: Path) -> Optional[int]:
    """``num_updates`` stored in a fairseq checkpoint (None when unreadable)."""
    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - a truncated file reads as 'no progress'
        return None
    optimizer_history = state.get("optimizer_history") or [{}]
    return optimizer_history[-1].get("num_updates")


def with_tensorboard(command: Sequence[str], save_dir: Path) -> List[str]:
    """``command`` writing TensorBoard logs to ``SAVE_DIR/tensorboard`` unless it names its own directory.

    Added when the command runs, not in ``run.command``: where the logs go does not change the model, so
    it stays out of the fingerprint (runs trained before this default resume and are reused as before).
    Needs tensorboardX (or tensorboard) installed; without it fairseq only warns.
    """
    words = [str(word) for word in command]
    if "--tensorboard-logdir" in words:
        return words
    return [*words, "--tensorboard-logdir", str(Path(save_dir) / TENSORBOARD_DIR)]


def train(run: TrainingRun, *, environment: dict, on_change: str = "refuse",
          log: Callable[[str], None] = log_progress) -> dict:
    """Train (or resume, or reuse) ``run``; returns its completion record (``train.done.json``)."""
    state = check_or_claim(run, on_change, log)
    if state == "done":
        return run.done()
    if state == "resume":
        updates = checkpoint_updates(run.save_dir / "checkpoint_last.pt")
        log(f"{run.save_dir}: resuming from checkpoint_last.pt (update {updates})")
    started = time.time()
    command = with_tensorboard(run.command, run.save_dir)
    with open(run.log_file, "a", encoding="utf-8") as stream:
        stream.write(f"$ {shlex.join(command)}\n")
        stream.flush()
        result = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=environment)
    if result.returncode != 0:
        tail = "\n".join(run.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        raise RuntimeError(f"fairseq-train failed (exit {result.returncode}); see {run.log_file}:\n{tail}")
    from .curves import read_log

    history = read_log(run.log_file)
    record = {
        "fingerprint": run.fingerprint,
        "stopping": run.stopping,
        "updates": history.last_update,
        "epochs": history.last_epoch,
        "stopped_by": history.stop_reason,
        "best_valid_bleu": history.best_valid_bleu,
        "train_seconds": history.train_seconds,
        "wall_seconds_last_session": round(time.time() - started, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(run.save_dir / DONE_FILE, record, indent=1)
    return record
