"""Training curves from fairseq's JSON log (``--log-format json``), and their plot.

fairseq writes one JSON object per logging event after ``| train_inner |``, ``| train |``
(end of epoch) and ``| valid |``; values are strings. We read those objects, never the
human-readable text, except for two fixed fairseq messages: the early-stopping line and
the command lines our runner writes (``$ ...``, one per start or resume).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from nmt_common.figures import pyplot, save_figure

_EVENT = re.compile(r"\| (train_inner|train|valid) \| (\{.*\})\s*$")
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| ")
_EARLY_STOP = "early stop since valid performance hasn't improved"


class LogError(ValueError):
    """A training log that cannot be read (names the file and line)."""


def _number(value) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class ValidPoint:
    epoch: int
    updates: int
    loss: Optional[float]
    nll_loss: Optional[float]
    bleu: Optional[float]


@dataclass
class History:
    """What one training log says: validation points per epoch, progress, and why it stopped."""

    valid: List[ValidPoint] = field(default_factory=list)
    train_loss: List[tuple] = field(default_factory=list)  # (updates, loss) at each log interval
    last_update: int = 0
    last_epoch: int = 0
    train_seconds: Optional[float] = None
    early_stopped: bool = False
    starts: int = 0  # fresh start + resumes

    @property
    def best_valid_bleu(self) -> Optional[float]:
        scores = [p.bleu for p in self.valid if p.bleu is not None]
        return max(scores) if scores else None

    @property
    def stop_reason(self) -> str:
        return "patience (validation BLEU stopped improving)" if self.early_stopped else "update/epoch budget"

    def as_dict(self) -> dict:
        return {"valid": [vars(p) for p in self.valid], "train_loss": self.train_loss,
                "last_update": self.last_update, "last_epoch": self.last_epoch,
                "train_seconds": self.train_seconds, "early_stopped": self.early_stopped, "starts": self.starts}


def read_log(path: Path) -> History:
    """Parse a fairseq JSON training log (possibly several starts appended) into a History.

    A resumed run repeats the epoch it was interrupted in; the later record of an epoch wins.
    """
    path = Path(path)
    history = History()
    by_epoch: Dict[int, ValidPoint] = {}
    # training time: the span of each session's log timestamps, summed. fairseq's train_wall cannot
    # be summed: it restarts at 0 on a resume, and a run continued to a later --max-update logged 0
    # for its whole session.
    sessions: List[List[datetime]] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise LogError(f"{path}: cannot read the training log ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        if line.startswith("$ "):  # a start or resume: an earlier early stop was overridden (a longer rule)
            history.starts += 1
            history.early_stopped = False
            sessions.append([])
            continue
        stamp = _TIMESTAMP.match(line)
        if stamp:
            if not sessions:  # a log without the runner's "$ command" line
                sessions.append([])
            moment = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")
            sessions[-1][1:] = [moment]  # [first, last] of this session
        if _EARLY_STOP in line:
            history.early_stopped = True
            continue
        match = _EVENT.search(line)
        if not match:
            continue
        kind, payload = match.groups()
        try:
            stats = json.loads(payload)
        except ValueError:
            raise LogError(f"{path}:{number}: a {kind} record that is not JSON (was it written with --log-format json?)") from None
        if kind == "valid":
            point = ValidPoint(epoch=int(stats.get("epoch", 0)), updates=int(_number(stats.get("valid_num_updates")) or 0),
                               loss=_number(stats.get("valid_loss")), nll_loss=_number(stats.get("valid_nll_loss")),
                               bleu=_number(stats.get("valid_bleu")))
            by_epoch[point.epoch] = point
        elif kind == "train_inner":
            updates = int(_number(stats.get("num_updates")) or 0)
            history.train_loss = [p for p in history.train_loss if p[0] < updates]  # a resume repeats updates
            history.train_loss.append((updates, _number(stats.get("loss"))))
            history.last_update = max(history.last_update, updates)
        else:  # end of epoch
            history.last_epoch = int(stats.get("epoch", history.last_epoch))
            history.last_update = max(history.last_update, int(_number(stats.get("train_num_updates")) or 0))

    spans = [(session[-1] - session[0]).total_seconds() for session in sessions if session]
    history.train_seconds = sum(spans) if spans else None
    history.valid = [by_epoch[e] for e in sorted(by_epoch)]
    if history.valid:
        history.last_update = max(history.last_update, history.valid[-1].updates)
    return history


def plot_curves(runs: Dict[str, Sequence[History]], path: Path, title: str = "") -> Path:
    """Validation loss and BLEU against updates: one colour per variant, one line per seed."""
    plt = pyplot()
    figure, (loss_axis, bleu_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (variant, histories) in enumerate(runs.items()):
        colour = colours[index % len(colours)]
        for seed_index, history in enumerate(histories):
            updates = [p.updates for p in history.valid]
            label = variant if seed_index == 0 else None
            loss_axis.plot(updates, [p.nll_loss for p in history.valid], color=colour, label=label, lw=1.2, alpha=0.85)
            bleu_axis.plot(updates, [p.bleu for p in history.valid], color=colour, label=label, lw=1.2, alpha=0.85)
    loss_axis.set(xlabel="updates", ylabel="validation NLL (bits/token, fairseq's base 2)", title="validation loss")
    bleu_axis.set(xlabel="updates", ylabel="validation BLEU (greedy, sacreBLEU)", title="validation BLEU")
    for axis in (loss_axis, bleu_axis):
        axis.grid(alpha=0.3)
    if not any(p.bleu is not None for histories in runs.values() for h in histories for p in h.valid):
        bleu_axis.text(0.5, 0.5, "validation BLEU not computed\n(runs without --eval-bleu)", ha="center", va="center",
                       transform=bleu_axis.transAxes, color="grey")
    loss_axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path, dpi=110)
