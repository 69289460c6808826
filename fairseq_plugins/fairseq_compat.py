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
5. A distributed request that fairseq would turn into nothing, a hang or a
   traceback is refused with one line before anything starts
   (:func:`check_distributed_request`, run by a wrapped ``call_main``).  fairseq
   starts one process per *visible GPU*: ``--cpu --distributed-world-size 2
   --distributed-init-method tcp://...`` spawns no worker and exits 0 with nothing
   trained; without the init method it fails on an assertion.  Also refused:
   more ranks than GPUs on one machine, a world size that torchrun or SLURM
   would silently replace (that changes the tokens per update), CPU ranks over
   NCCL.  Multi-node SLURM jobs without ``distributed_port`` get one derived
   from the job id, as fairseq already does for single-node jobs.
6. CPU ranks started by torchrun (or with ``--distributed-init-method``,
   ``--distributed-rank`` and ``--distributed-no-spawn``) train over gloo with
   fairseq's default DDP: fairseq divides by the GPU count to pick a device and
   hands ``device_ids=[0]`` to torch's DDP, which refuses CPU modules; both are
   fixed (tests/test_distributed_cpu.py).
7. A run whose ``checkpoint_last.pt`` already reached ``max_update`` is not
   trained again: fairseq would restore it and take one more update (and save
   and validate).  So rerunning a sweep resumes only its unfinished jobs.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import random
import shutil
import sys
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch
from fairseq import checkpoint_utils
from fairseq.data import data_utils
from fairseq.distributed import utils as distributed_utils
from fairseq.models import distributed_fairseq_model

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


# --- 5-7: distributed requests, CPU ranks, finished runs ------------------------------------

TORCHRUN_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")  # fairseq's infer_init_method test


def _program() -> str:
    """fairseq-hydra-train inside a Hydra job (also in a submitit worker, whose argv[0] is submitit's), else argv[0]."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return "fairseq-hydra-train"
    except ImportError:
        pass
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "fairseq-train"


class DistributedRequestError(SystemExit):
    """A distributed request fairseq would silently get wrong; exits with its one-line message (status 1)."""

    def __init__(self, message: str):
        super().__init__(f"{_program()}: {message}")


def _slurm_layout(environ: Mapping[str, str]) -> Optional[tuple]:
    """(nodes, tasks per node) when fairseq's ``_infer_slurm_init`` would take over, else None."""
    if not (environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")):
        return None
    if shutil.which("scontrol") is None:  # fairseq falls back to the single-node rules
        return None
    try:
        nodes = int(environ.get("SLURM_NNODES", "1"))
        if environ.get("SLURM_NTASKS_PER_NODE"):
            per_node = int(environ["SLURM_NTASKS_PER_NODE"].split("(")[0])
        else:
            per_node = int(environ.get("SLURM_NTASKS", nodes)) // max(nodes, 1)
    except ValueError:
        return None
    return nodes, per_node


def _cpu_launch_hint(world: int) -> str:
    program = _program()
    if program == "fairseq-hydra-train":
        options = (f"distributed_training.distributed_world_size={world} "
                   "distributed_training.distributed_backend=gloo")
    else:
        program, options = "fairseq-train", f"--cpu --distributed-world-size {world} --distributed-backend gloo"
    return (f"train one CPU process (distributed_world_size=1), or start {world} CPU ranks yourself: "
            f"torchrun --nproc-per-node {world} $(which {program}) ... {options}")


def distributed_request_problem(cfg, gpus: int, environ: Mapping[str, str]) -> Optional[str]:
    """What fairseq's ``call_main`` would do wrong with ``cfg`` *before* it infers the ranks, or None.

    Follows ``fairseq.distributed.utils.infer_init_method`` and ``call_main`` (fairseq 0.12):
    with no init method, torchrun's variables (all four of ``TORCHRUN_VARIABLES``) win, then SLURM's
    node list (when ``scontrol`` exists), then one machine: ``distributed_world_size`` processes,
    one per visible GPU (``torch.multiprocessing.spawn(nprocs=min(GPUs, world size))``).
    """
    common, dt = cfg.common, cfg.distributed_training
    if getattr(common, "tpu", False) or getattr(dt, "pipeline_model_parallel", False):
        return None  # fairseq's own rules (TPU, pipeline parallelism): not ours to second-guess
    world = int(dt.distributed_world_size)
    explicit = dt.distributed_init_method is not None
    torchrun = not explicit and all(name in environ for name in TORCHRUN_VARIABLES)
    if torchrun and int(environ["WORLD_SIZE"]) != world:
        started = int(environ["WORLD_SIZE"])
        effect = (f"each of the {started} processes would train alone into the same save dir" if world == 1
                  else f"fairseq would silently use {started} ranks, changing the tokens per update")
        return (f"torchrun started {started} processes but distributed_world_size is {world}: {effect}; "
                f"set --distributed-world-size {started} (Hydra configs: batch={started}gpu) or start {world}")
    if world <= 1:
        return None
    slurm = None if (explicit or torchrun) else _slurm_layout(environ)
    spawned = not (torchrun or dt.distributed_no_spawn or (slurm is not None and slurm[1] > 1))
    if common.cpu and spawned and gpus < world:
        effect = ("no rank would start and nothing would be trained" if gpus == 0 or explicit or slurm
                  else "it would stop on an assertion")
        return (f"--cpu with distributed_world_size={world}: fairseq starts one process per visible GPU "
                f"({gpus} here), so {effect}; {_cpu_launch_hint(world)}")
    if common.cpu and dt.distributed_backend != "gloo":
        return (f"{world} CPU ranks need --distributed-backend gloo "
                f"(distributed_training.distributed_backend={dt.distributed_backend} works only between GPUs)")
    if explicit or torchrun:
        if spawned and gpus == 0:
            return (f"--distributed-init-method {dt.distributed_init_method} with no GPU visible: fairseq starts "
                    f"one process per visible GPU, so no rank would start and nothing would be trained; "
                    f"{_cpu_launch_hint(world)}")
        return None
    if slurm is not None:
        nodes, per_node = slurm
        if per_node > 1 and per_node * nodes != world:
            return (f"SLURM runs {per_node} tasks on each of {nodes} node(s) but distributed_world_size is {world}; "
                    f"ask for {world // max(nodes, 1)} tasks per node, or one task per node and fairseq starts one "
                    "process per GPU")
        return None
    if dt.distributed_port > 0:
        return (f"distributed_world_size={world} with distributed_port={dt.distributed_port} but no "
                "--distributed-init-method, torchrun or SLURM: fairseq would start one process that waits for "
                f"{world - 1} missing ranks; pass --distributed-init-method tcp://HOST:{dt.distributed_port} "
                "with --distributed-rank, or drop the port")
    if gpus < world:
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        return (f"distributed_world_size={world} but {gpus} GPU(s) visible on this machine{where}: fairseq starts "
                f"one rank per visible GPU; use distributed_world_size={max(gpus, 1)} (Hydra configs: "
                f"batch={max(gpus, 1)}gpu) or launch across machines with torchrun or SLURM (configs/README.md)")
    return None


def _slurm_port(environ: Mapping[str, str]) -> int:
    """The port fairseq's single-node rule derives from the SLURM job id, shared by every node of the job."""
    job = environ.get("SLURM_JOB_ID", "0") + environ.get("SLURM_ARRAY_TASK_ID", "")
    return random.Random(int(job) if job.isdigit() else job).randint(10000, 60000)


def check_distributed_request(cfg, gpus: Optional[int] = None, environ: Optional[Mapping[str, str]] = None) -> None:
    """Refuse (DistributedRequestError) what fairseq would get wrong; infer the ranks as fairseq does, then
    check what it inferred: a world size that SLURM replaced, or a launch that starts no process."""
    gpus = torch.cuda.device_count() if gpus is None else gpus
    environ = os.environ if environ is None else environ
    problem = distributed_request_problem(cfg, gpus, environ)
    if problem:
        raise DistributedRequestError(problem)
    dt = cfg.distributed_training
    requested = int(dt.distributed_world_size)
    if requested <= 1 or getattr(cfg.common, "tpu", False) or dt.distributed_init_method is not None:
        return
    slurm = None if all(name in environ for name in TORCHRUN_VARIABLES) else _slurm_layout(environ)
    if slurm is not None and slurm[0] > 1 and dt.distributed_port <= 0:
        # fairseq would fall back to localhost for lack of a port, and assert: every node derives the same one
        dt.distributed_port = _slurm_port(environ)
        logger.info("multi-node SLURM job without distributed_port: using port %d (from SLURM_JOB_ID)",
                    dt.distributed_port)
    try:
        distributed_utils.infer_init_method(dt)
    except AssertionError as error:
        raise DistributedRequestError(f"fairseq cannot set up distributed_world_size={requested}: {error}") from None
    if int(dt.distributed_world_size) != requested:
        nodes = slurm[0] if slurm else 1
        raise DistributedRequestError(
            f"SLURM gives {nodes} node(s) x {gpus} GPU(s) = {dt.distributed_world_size} ranks but "
            f"distributed_world_size is {requested}: fairseq would silently train on {dt.distributed_world_size}, "
            f"changing the tokens per update; ask SLURM for {requested // max(nodes, 1)} GPUs per node or set "
            f"distributed_world_size={dt.distributed_world_size} (Hydra configs: batch=<n>gpu)")
    if dt.distributed_init_method is not None and not dt.distributed_no_spawn and min(gpus, requested) == 0:
        raise DistributedRequestError(
            f"distributed_world_size={requested} on a machine with no visible GPU: fairseq would start no process "
            f"and train nothing; {_cpu_launch_hint(requested)}")


def finished_updates(cfg) -> Optional[int]:
    """The update count of ``SAVE_DIR/checkpoint_last.pt`` when it has reached ``max_update`` and fairseq
    would resume from it (default restore file, no resets), else None."""
    ckpt, max_update = cfg.checkpoint, int(cfg.optimization.max_update or 0)
    if max_update <= 0 or ckpt.restore_file != "checkpoint_last.pt" or ckpt.finetune_from_model:
        return None
    if any(getattr(ckpt, name, False) for name in ("reset_optimizer", "reset_dataloader", "reset_meters",
                                                   "reset_lr_scheduler")):
        return None
    suffix = getattr(ckpt, "checkpoint_suffix", "") or ""
    path = os.path.join(ckpt.save_dir, f"checkpoint_last{suffix}.pt")
    if not os.path.isfile(path):
        return None
    try:
        with trusted_torch_load():
            state = torch.load(path, map_location="cpu", mmap=True)
    except Exception:  # noqa: BLE001 - unreadable: let fairseq's own loader report it
        return None
    updates = ((state.get("optimizer_history") or [{}])[-1] or {}).get("num_updates")
    return updates if isinstance(updates, int) and updates >= max_update else None


def _checked_call_main(function):
    @functools.wraps(function)
    def wrapper(cfg, main, **kwargs):
        updates = finished_updates(cfg)
        if updates is not None:
            logger.info("%s/checkpoint_last.pt is at update %d >= max_update %d: this run is finished, nothing "
                        "to train (raise optimization.max_update to train longer)", cfg.checkpoint.save_dir,
                        updates, cfg.optimization.max_update)
            return None
        check_distributed_request(cfg)
        return function(cfg, main, **kwargs)

    wrapper.__wrapped_by_fairseq_plugins__ = True
    return wrapper


def _torchrun_without_gpus(function):
    """fairseq's ``_infer_torch_distributed_launch_init`` picks ``rank % torch.cuda.device_count()``:
    a ZeroDivisionError on a machine without GPUs. There the device id stays 0: on CPU it names no device,
    and ``infer_init_method`` would call ``torch.cuda.set_device`` for any other."""

    @functools.wraps(function)
    def wrapper(cfg):
        if torch.cuda.device_count() > 0:
            return function(cfg)
        cfg.distributed_init_method = "env://"
        cfg.distributed_world_size = int(os.environ["WORLD_SIZE"])
        cfg.distributed_rank = int(os.environ["RANK"])
        cfg.device_id = 0
        cfg.distributed_no_spawn = True

    wrapper.__wrapped_by_fairseq_plugins__ = True
    return wrapper


class CpuAwareDistributedDataParallel(torch.nn.parallel.DistributedDataParallel):
    """torch's DDP as fairseq builds it (``device_ids=[device_id]``), minus the device ids for a CPU module,
    which torch refuses (they are for single-GPU modules only)."""

    __wrapped_by_fairseq_plugins__ = True

    def __init__(self, module, device_ids=None, output_device=None, **kwargs):
        if all(p.device.type == "cpu" for p in module.parameters()):
            device_ids = output_device = None
        super().__init__(module, device_ids=device_ids, output_device=output_device, **kwargs)


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
        (distributed_utils, "call_main", _checked_call_main),
        (distributed_utils, "_infer_torch_distributed_launch_init", _torchrun_without_gpus),
        (distributed_fairseq_model, "DistributedDataParallel", lambda _: CpuAwareDistributedDataParallel),
    ):
        current = getattr(module, name)
        if not getattr(current, "__wrapped_by_fairseq_plugins__", False):
            setattr(module, name, wrap(current))
