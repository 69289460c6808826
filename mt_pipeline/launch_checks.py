"""Checks that run before anything is launched: the inputs of each make target, and fairseq's plugin.

``python -m mt_pipeline.launch_checks TARGET ...`` is the first line of ``make train``, ``sweep``,
``translate``, ``bleu``, ``align`` and ``report``: when an input is missing it prints one line naming
the file and the make target that makes it, and exits with status 2, e.g.::

    make train: data-bin/wmt14_en_de/dict.en.txt is missing: run make data PAIR=en-de first

The paths are the ones the target itself uses (the Makefile passes them to both): data in
``DATA_ROOT/<config>`` (fairseq-preprocess output; ``prepare.json`` from ``make data``), checkpoints in
``CHECKPOINT_ROOT/<config>/<variant>``, outputs in ``results/<config>/<variant>``
(:mod:`mt_pipeline.pairs`). Torch-free, so a check takes a fraction of a second.

:class:`FairseqPluginsCallback` is a Hydra callback (``hydra.callbacks`` in
``configs/base/transformer_base.yaml``): fairseq-hydra-train imports ``common.user_dir`` only inside its
training ``main``, after ``call_main`` has chosen how many processes to start, so the plugin's checks
(:mod:`fairseq_plugins.fairseq_compat`: refused distributed requests, finished runs) would come too
late. The callback imports it first, with fairseq's own ``import_user_module``, in every job's process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from nmt_common.variants import VARIANTS

from .errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
CHECKPOINT_NAMES = ("checkpoint.avg.pt", "checkpoint_best.pt", "checkpoint_last.pt")  # mt_pipeline.pairs._checkpoint
LAUNCHERS = ("basic", "local", "slurm")  # configs/launcher/<name>.yaml
TARGETS = ("train", "sweep", "translate", "bleu", "align", "report", "explore")


class MissingInput(PipelineError):
    """An input of a make target is missing; the message says which and what makes it."""


def _show(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (as the user typed it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _languages(config: str) -> tuple[str, str]:
    """(source, target) of ``configs/<config>.yaml`` (its ``task`` section)."""
    import yaml

    path = CONFIG_DIR / f"{config}.yaml"
    if not path.is_file():
        raise MissingInput(f"{_show(path)}: no such config (CONFIG={config})")
    try:
        task = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("task") or {}
    except yaml.YAMLError as error:
        raise MissingInput(f"{_show(path)}: not valid YAML ({error.__class__.__name__})") from None
    source, target = task.get("source_lang"), task.get("target_lang")
    if not (isinstance(source, str) and isinstance(target, str)):
        raise MissingInput(f"{_show(path)}: task.source_lang and task.target_lang are not set")
    return source, target


def _data_target(config: str, pair: str) -> str:
    return "make toy-data" if config == "toy" else f"make data PAIR={pair}"


def _variants(attn: str) -> List[str]:
    names = [name.strip() for name in attn.split(",")]
    for name in names:
        if name not in VARIANTS:
            raise MissingInput(f"ATTN={attn}: unknown attention variant {name!r}; choose from {', '.join(VARIANTS)}")
    return names


def _need(path: Path, made_by: str) -> None:
    if not path.is_file():
        raise MissingInput(f"{_show(path)} is missing: run {made_by} first")


def check_binarized(data: Path, config: str, pair: str) -> None:
    """fairseq's translation task reads ``dict.<lang>.txt`` and ``<split>.<src>-<tgt>.<lang>.{bin,idx}``."""
    source, target = _languages(config)
    made_by = _data_target(config, pair)
    if not data.is_dir():
        raise MissingInput(f"{_show(data)} is missing: run {made_by} first")
    for lang in (source, target):
        _need(data / f"dict.{lang}.txt", made_by)
    for split in ("train", "valid"):
        for lang in (source, target):
            for suffix in ("bin", "idx"):
                _need(data / f"{split}.{source}-{target}.{lang}.{suffix}", made_by)


def check_prepared(data: Path, pair: str) -> None:
    """``make data`` writes ``prepare.json`` last (SentencePiece models, test set): translate/bleu/align read it."""
    _need(data / "prepare.json", f"make data PAIR={pair}")


def check_checkpoint(checkpoints: Path, config: str, pair: str, attn: str, seed: Optional[int] = None) -> None:
    from .pairs import run_folder

    folder = checkpoints / config / run_folder(attn, seed)
    made_by = f"make sweep PAIR={pair} ATTN={attn} SEEDS={seed}" if seed is not None else \
        f"make train PAIR={pair} ATTN={attn}"
    if not any((folder / name).is_file() for name in CHECKPOINT_NAMES):
        raise MissingInput(f"{_show(folder)} has no checkpoint ({', '.join(CHECKPOINT_NAMES)}): run {made_by} first")


def _check_gold(args: argparse.Namespace, gold: str) -> None:
    for suffix in ("src-tgt", "gold"):
        path = Path(args.gold_dir) / f"{gold}.{suffix}"
        if not path.is_file():
            raise MissingInput(f"{_show(path)} is missing: the gold sets come with shared/data/"
                               "word-alignment-gold (no make target makes them); set GOLD_DIR=<that folder>")


def check_inputs(args: argparse.Namespace) -> None:
    """Raise MissingInput for the first missing input of ``args.target``."""
    data = Path(args.data_root) / args.config
    checkpoints = Path(args.checkpoints)
    if args.target in ("train", "sweep"):
        variants = _variants(args.attn)
        if args.target == "train" and len(variants) > 1:
            raise MissingInput(f"ATTN={args.attn}: make train trains one variant; make sweep ATTN={args.attn} "
                               "trains several")
        if args.target == "sweep":
            if args.launcher not in LAUNCHERS:
                raise MissingInput(f"LAUNCHER={args.launcher}: choose one of {', '.join(LAUNCHERS)} "
                                   "(configs/launcher/)")
            for seed in filter(None, (s.strip() for s in (args.seeds or "").split(","))):
                if not seed.isdigit():
                    raise MissingInput(f"SEEDS={args.seeds}: seeds are whole numbers separated by commas")
        check_binarized(data, args.config, args.pair)
        return
    if args.target == "report":
        results = Path(args.results) / args.config
        if not any((results / variant / "bleu.json").is_file() for variant in VARIANTS):
            raise MissingInput(f"{_show(results)} has no scored variant (<variant>/bleu.json): run make bleu "
                               f"PAIR={args.pair} ATTN=<variant> first")
        return
    variants = _variants(args.attn)
    if args.target == "explore":  # the gold set when the direction has one, else its test set
        from .pairs import DIRECTIONS

        gold = DIRECTIONS[args.pair].gold if args.pair in DIRECTIONS else None
        if gold is not None:
            _check_gold(args, gold)
        check_prepared(data, args.pair)
        for variant in variants:
            check_checkpoint(checkpoints, args.config, args.pair, variant, args.seed)
        return
    if args.target == "align":
        from .pairs import DIRECTIONS

        gold = DIRECTIONS[args.pair].gold if args.pair in DIRECTIONS else None
        if gold is None:
            having = ", ".join(p for p, d in DIRECTIONS.items() if d.gold)
            raise MissingInput(f"no gold word alignment exists for PAIR={args.pair}; make align runs for {having}")
        _check_gold(args, gold)
    check_prepared(data, args.pair)
    if args.target == "bleu":
        from .pairs import run_folder

        _need(Path(args.results) / args.config / run_folder(args.attn, args.seed) / "test.hyp",
              f"make translate PAIR={args.pair} ATTN={args.attn}" + (f" SEED={args.seed}" if args.seed is not None else ""))
        return
    check_checkpoint(checkpoints, args.config, args.pair, args.attn, args.seed)


def build_parser() -> argparse.ArgumentParser:
    from .pairs import GOLD_DIR

    parser = argparse.ArgumentParser(prog="python -m mt_pipeline.launch_checks",
                                     description="Check the inputs of a make target before it runs.")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--pair", required=True, help="the make variable PAIR (en-de, en-fr, ...)")
    parser.add_argument("--config", required=True, help="configs/<config>.yaml and DATA_ROOT/<config>")
    parser.add_argument("--attn", default="softmax", help="one variant, or several separated by commas (sweep)")
    parser.add_argument("--data-root", default="data-bin")
    parser.add_argument("--checkpoints", default="checkpoints")
    parser.add_argument("--results", default="results")
    parser.add_argument("--gold-dir", default=None, help=f"default {GOLD_DIR}")
    parser.add_argument("--launcher", default="basic")
    parser.add_argument("--seeds", default="")
    parser.add_argument("--seed", type=int, help="the make variable SEED: one seed of a sweep")
    parser.add_argument("--make", action="store_true",
                        help="print the message on stdout (the Makefile's $(shell) reads it), not stderr")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.gold_dir:
        from .pairs import GOLD_DIR

        args.gold_dir = str(GOLD_DIR)
    try:
        check_inputs(args)
    except PipelineError as error:
        print(f"make {args.target}: {error}", file=sys.stdout if args.make else sys.stderr)
        return 2
    return 0


# --- Hydra: import the plugin before fairseq starts anything -----------------------------

try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # Hydra is fairseq's dependency; without it there is nothing to call back
    _HydraCallback = object  # type: ignore[assignment,misc]


class FairseqPluginsCallback(_HydraCallback):  # type: ignore[valid-type,misc]
    """Import ``common.user_dir`` with fairseq's ``import_user_module`` when a job starts (in the job's
    own process: the basic launcher's, or a submitit worker's), before fairseq's ``call_main``.

    fairseq remembers what it imported, so its own import later is a no-op; importing by path (not
    ``import fairseq_plugins``) keeps a second checkout's ``common.user_dir`` working.
    """

    def on_job_start(self, config, **kwargs) -> None:
        self._import_plugin(config)

    def on_multirun_start(self, config, **kwargs) -> None:
        """Before any job is submitted, refuse CPU ranks that no job could start (the settings every job
        shares; a swept value is checked by each job). Whatever depends on the GPUs of the machine a job
        lands on is checked there, by the job."""
        compat = self._import_plugin(config)
        common, dt = config.get("common"), config.get("distributed_training")
        if compat is None or common is None or dt is None or not common.get("cpu"):
            return
        launcher = config.hydra.launcher
        if "SlurmLauncher" in str(launcher.get("_target_", "")) and int(launcher.get("tasks_per_node") or 1) > 1:
            return  # one SLURM task per rank: the ranks are started by SLURM, fairseq spawns nothing
        import torch

        problem = compat.distributed_request_problem(config, torch.cuda.device_count(), {})
        if problem:
            raise SystemExit(f"fairseq-hydra-train: {problem}")

    @staticmethod
    def _import_plugin(config):
        """The plugin's fairseq_compat module, imported from ``common.user_dir`` as fairseq does; None without one."""
        common = config.get("common") if hasattr(config, "get") else None
        user_dir = common.get("user_dir") if common is not None else None
        if not user_dir:
            return None
        from fairseq.utils import import_user_module

        try:
            import_user_module(argparse.Namespace(user_dir=user_dir))
        except FileNotFoundError:
            raise SystemExit(f"fairseq-hydra-train: common.user_dir={user_dir}: no such folder (from {os.getcwd()}); "
                             "run from the repository root or pass common.user_dir=<path>/fairseq_plugins") from None
        return sys.modules.get(f"{os.path.basename(os.path.abspath(user_dir))}.fairseq_compat")


if __name__ == "__main__":
    sys.exit(main())
