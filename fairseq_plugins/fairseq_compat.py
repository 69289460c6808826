"""Fixes for fairseq-main runtime traps, installed when the plugin is imported.

1. torch >= 2.6 loads with ``weights_only=True`` by default, which refuses
   fairseq checkpoints (they pickle argparse/omegaconf/meter objects).  Inside
   fairseq's checkpoint loaders we load with ``weights_only=False``: the
   checkpoint is one the user trained or chose, as before torch 2.6.
2. Checkpoints of our model carry a stamp (plugin version and attention
   variants) whose pickled name tells a user who forgot ``--user-dir`` what to
   add: fairseq's loader fails on it with that text in the message.
3. ``batch_by_size`` with ``required_batch_size_multiple > 1`` can leave out
   sentences; at generation and validation every sentence must be seen, so
   batches are checked and rebuilt with multiple 1 when any index is missing.
4. ``--patience`` keeps its count in process memory, so a resumed fairseq-train
   starts counting again from the first validation after the restart (it can
   train up to ``patience`` epochs longer than an uninterrupted run).  We keep
   every validation score in ``SAVE_DIR/early_stopping.json`` (keyed by update
   count; a repeated update after a resume replaces the old entry) and decide
   from that history, so a killed and resumed run stops where an uninterrupted
   one would.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
from typing import Any, Dict

import numpy as np
import torch
from fairseq import checkpoint_utils
from fairseq.data import data_utils

logger = logging.getLogger(__name__)

PLUGIN_VERSION = "0.1.0"
STAMP_KEY = "fairseq_plugins"

# The name under which the stamp's constructor is pickled.  fairseq's loader without our
# plugin imported fails with "Unsupported global: GLOBAL fairseq_plugins.fairseq_compat.<NAME>",
# so the name is the instruction.
_STAMP_GLOBAL_NAME = (
    "this checkpoint needs the sparse-attention plugin: add --user-dir fairseq_plugins "
    "(the path of the fairseq_plugins folder) to the fairseq command"
)


def _restore_stamp(fields: Dict[str, Any]) -> Dict[str, Any]:
    return dict(fields)


_restore_stamp.__qualname__ = _STAMP_GLOBAL_NAME
setattr(sys.modules[__name__], _STAMP_GLOBAL_NAME, _restore_stamp)


class CheckpointStamp(dict):
    """Plugin metadata stored under ``state['fairseq_plugins']``; unpickles to a plain dict."""

    def __reduce__(self):
        return (_restore_stamp, (dict(self),))


def _is_our_model_cfg(model_cfg: Any) -> bool:
    from .sparse_transformer import ARCHITECTURES, MODEL_NAME

    if model_cfg is None:
        return False
    name = getattr(model_cfg, "_name", None) or getattr(model_cfg, "arch", None)
    if name is None and isinstance(model_cfg, dict):
        name = model_cfg.get("_name") or model_cfg.get("arch")
    return name == MODEL_NAME or name in ARCHITECTURES


def _model_cfg_of(state: Dict[str, Any]) -> Any:
    cfg = state.get("cfg")
    if cfg is not None:
        return cfg.get("model") if isinstance(cfg, dict) else getattr(cfg, "model", None)
    return state.get("args")


def stamp_checkpoint(state: Dict[str, Any]) -> Dict[str, Any]:
    """Return ``state`` with our stamp as its *first* entry when it holds one of our models."""
    if not isinstance(state, dict) or STAMP_KEY in state or not _is_our_model_cfg(_model_cfg_of(state)):
        return state
    model_cfg = _model_cfg_of(state)
    get = (model_cfg.get if isinstance(model_cfg, dict) else lambda k, d=None: getattr(model_cfg, k, d))
    stamp = CheckpointStamp(
        version=PLUGIN_VERSION,
        attention={s: get(f"{s}_attention") or get("attention") for s in ("encoder", "decoder", "cross")},
    )
    return {STAMP_KEY: stamp, **state}


@contextlib.contextmanager
def trusted_torch_load():
    """Within the block, ``torch.load`` defaults to ``weights_only=False`` (fairseq's pre-2.6 behaviour)."""
    original = torch.load

    @functools.wraps(original)
    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def _wrap_loader(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with trusted_torch_load():
            return function(*args, **kwargs)

    wrapper.__wrapped_by_fairseq_plugins__ = True
    return wrapper


def _wrap_saver(function):
    @functools.wraps(function)
    def wrapper(obj, *args, **kwargs):
        return function(stamp_checkpoint(obj), *args, **kwargs)

    wrapper.__wrapped_by_fairseq_plugins__ = True
    return wrapper


def _complete_batches(function):
    """Wrap ``data_utils.batch_by_size`` so that no index is ever left out."""

    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        batches = function(*bound.args, **bound.kwargs)
        expected = np.asarray(bound.arguments["indices"]).size
        seen = sum(len(batch) for batch in batches)
        if seen == expected:
            return batches
        logger.warning(
            "batch_by_size left out %d of %d sentences; rebuilding the batches with "
            "required_batch_size_multiple=1 so that every sentence is used",
            expected - seen, expected,
        )
        bound.arguments["required_batch_size_multiple"] = 1
        return function(*bound.args, **bound.kwargs)

    wrapper.__wrapped_by_fairseq_plugins__ = True
    return wrapper


EARLY_STOPPING_FILE = "early_stopping.json"
_validation_updates: Dict[str, int] = {}  # update count of the validation being judged (set by the wrapper)


def validations_since_best(scores: "list[float]", maximize: bool) -> int:
    """Validations after the last strict improvement (fairseq's ``num_runs``), for scores in update order."""
    best, since = None, 0
    for score in scores:
        if best is None or (score > best if maximize else score < best):
            best, since = score, 0
        else:
            since += 1
    return since


def _history_path(cfg) -> "Any":
    from pathlib import Path

    return Path(cfg.checkpoint.save_dir) / EARLY_STOPPING_FILE


def _resumable_should_stop_early(cfg, valid_loss) -> bool:
    """fairseq's ``should_stop_early`` decided from the run's whole validation history (fix 4)."""
    import json
    import os

    if valid_loss is None or cfg.checkpoint.patience <= 0:
        return False
    path = _history_path(cfg)
    try:
        history = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        scores = {int(k): float(v) for k, v in history.get("scores", {}).items()}
    except (ValueError, AttributeError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise RuntimeError(f"{path}: damaged early-stopping history ({exc}); delete it to restart "
                           "the patience count from this update") from None
    updates = _validation_updates.get("updates", 0)
    scores = {k: v for k, v in scores.items() if k < updates}
    scores[updates] = float(valid_loss)
    maximize = bool(cfg.checkpoint.maximize_best_checkpoint_metric)
    record = {"metric": cfg.checkpoint.best_checkpoint_metric, "maximize": maximize,
              "scores": {str(k): scores[k] for k in sorted(scores)}}
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_text(json.dumps(record, indent=1))
    os.replace(temporary, path)
    since = validations_since_best([scores[k] for k in sorted(scores)], maximize)
    if since >= cfg.checkpoint.patience:
        logging.getLogger("fairseq_cli.train").info(
            "early stop since valid performance hasn't improved for last {} runs".format(cfg.checkpoint.patience))
        return True
    return False


def _wrap_validate_and_save(function):
    @functools.wraps(function)
    def wrapper(cfg, trainer, *args, **kwargs):
        _validation_updates["updates"] = trainer.get_num_updates()
        return function(cfg, trainer, *args, **kwargs)

    wrapper.__wrapped_by_fairseq_plugins__ = True
    return wrapper


def install() -> None:
    """Install the fixes once; safe to call repeatedly."""
    train_cli = sys.modules.get("fairseq_cli.train")  # present when fairseq-train imported us (--user-dir)
    if train_cli is not None and not getattr(train_cli.validate_and_save, "__wrapped_by_fairseq_plugins__", False):
        train_cli.validate_and_save = _wrap_validate_and_save(train_cli.validate_and_save)
        train_cli.should_stop_early = _resumable_should_stop_early
    for module, name, wrap in (
        (checkpoint_utils, "load_checkpoint_to_cpu", _wrap_loader),
        (checkpoint_utils, "load_ema_from_checkpoint", _wrap_loader),
        (checkpoint_utils, "torch_persistent_save", _wrap_saver),
        (data_utils, "batch_by_size", _complete_batches),
    ):
        current = getattr(module, name)
        if not getattr(current, "__wrapped_by_fairseq_plugins__", False):
            setattr(module, name, wrap(current))
