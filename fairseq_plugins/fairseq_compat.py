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


def install() -> None:
    """Install the fixes once; safe to call repeatedly."""
    for module, name, wrap in (
        (checkpoint_utils, "load_checkpoint_to_cpu", _wrap_loader),
        (checkpoint_utils, "load_ema_from_checkpoint", _wrap_loader),
        (checkpoint_utils, "torch_persistent_save", _wrap_saver),
        (data_utils, "batch_by_size", _complete_batches),
    ):
        current = getattr(module, name)
        if not getattr(current, "__wrapped_by_fairseq_plugins__", False):
            setattr(module, name, wrap(current))
