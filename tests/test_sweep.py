"""Sweeps through Hydra and submitit: ``make sweep`` = ``fairseq-hydra-train --multirun +launcher=<name>``.

configs/launcher/{basic,local,slurm}.yaml pick Hydra's launcher (basic, hydra-submitit-launcher's
submitit_local and submitit_slurm) and configs/base/sweep_layout.yaml gives every job its own folder,
``$CHECKPOINT_ROOT/<config>/<variant>[/seed<N>]``, with its checkpoints, TensorBoard logs and Hydra log.

For real: a CPU sweep of two tiny variants x two seeds through submitit_local trains four models into four
folders; running it again trains nothing (every job finished); raising max_update resumes from each
job's checkpoint_last.pt. The SLURM launcher is composed through the real CLI (``--cfg hydra``) with its
settings overridden, and resolved as Hydra resolves it for a job.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, run_console_script
from test_configs import compose

BIN = Path(sys.executable).parent
LAUNCHERS = {"basic": "BasicLauncher", "local": "LocalLauncher", "slurm": "SlurmLauncher"}

pytestmark = pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema:UserWarning")


@pytest.fixture(autouse=True)
def _no_path_variables(monkeypatch):
    for name in ("DATA_BIN", "CHECKPOINT_ROOT"):
        monkeypatch.delenv(name, raising=False)


# --- versions -------------------------------------------------------------------------------


def test_version_pins_agree():
    """fairseq-fixed pins Hydra 1.3 (hydra-core==1.3.2); hydra-submitit-launcher 1.2 needs hydra-core >= 1.1."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    hydra = Version(metadata.version("hydra-core"))
    assert (hydra.major, hydra.minor) == (1, 3)
    assert Version(metadata.version("hydra-submitit-launcher")) == Version("1.2.0")
    for distribution in ("fairseq-fixed", "hydra-submitit-launcher"):
        wanted = [Requirement(r) for r in metadata.requires(distribution) or []]
        hydra_requirement = next(r for r in wanted if r.name == "hydra-core")
        assert hydra_requirement.specifier.contains(hydra, prereleases=True), (distribution, hydra_requirement)
    submitit = next(Requirement(r) for r in metadata.requires("hydra-submitit-launcher") if r.startswith("submitit"))
    assert submitit.specifier.contains(Version(metadata.version("submitit")))
    assert Version(metadata.version("tensorboardX")) >= Version("2.6")  # fairseq's TensorBoard writer


# --- the launcher configs --------------------------------------------------------------------


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launcher_config_composes_with_one_folder_per_job(launcher):
    from omegaconf import OmegaConf, open_dict

    cfg = compose("wmt14_en_de", f"+launcher={launcher}", "+attention=rela", "common.seed=3",
                  "hydra.sweep.subdir=${model.attention}/seed${common.seed}", hydra_node=True)
    assert cfg.hydra.launcher._target_.endswith(LAUNCHERS[launcher])
    assert OmegaConf.select(cfg, "hydra.sweep.dir") == "checkpoints/wmt14_en_de"
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == "rela/seed3"
    assert OmegaConf.select(cfg, "hydra.run.dir") == "checkpoints/wmt14_en_de/rela/seed3"
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert raw["checkpoint"]["save_dir"] == "${hydra:runtime.output_dir}"  # the job's folder, set by Hydra
    assert raw["common"]["tensorboard_logdir"] == "${checkpoint.save_dir}/tensorboard"
    assert cfg.hydra.job.chdir is False
    # everything else is the direction's: the launcher changes where, not what
    plain = compose("wmt14_en_de", "+attention=rela", "common.seed=3")
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
        job.checkpoint.save_dir = plain["checkpoint"]["save_dir"]
    assert OmegaConf.to_container(job, resolve=True) == plain


def test_without_seeds_the_sweep_folder_is_the_one_make_train_uses():
    from omegaconf import OmegaConf

    cfg = compose("wmt16_ro_en", "+launcher=basic", "+attention=entmax15", hydra_node=True)
    folder = f"{OmegaConf.select(cfg, 'hydra.sweep.dir')}/{OmegaConf.select(cfg, 'hydra.sweep.subdir')}"
    assert folder == compose("wmt16_ro_en", "+attention=entmax15")["checkpoint"]["save_dir"]


def test_slurm_launcher_composes_through_the_cli_and_resolves(monkeypatch):
    """``fairseq-hydra-train ... +launcher=slurm --cfg hydra`` with partition, GPUs, nodes and time overridden."""
    from omegaconf import OmegaConf

    overrides = ("+launcher=slurm", "+attention=sparsemax", "common.seed=2", "batch=8gpu",
                 "hydra.sweep.subdir=${model.attention}/seed${common.seed}", "hydra.launcher.partition=gpu-a100",
                 "hydra.launcher.gpus_per_node=4", "hydra.launcher.nodes=2", "hydra.launcher.timeout_min=2880")
    result = run_console_script("fairseq-hydra-train", "--config-dir", "configs", "--config-name", "wmt14_en_de",
                                *overrides, "--cfg", "hydra", cwd=REPO_ROOT, timeout=120)
    printed = yaml.safe_load(result.stdout)["hydra"]
    launcher = printed["launcher"]
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["partition"], launcher["gpus_per_node"], launcher["nodes"], launcher["timeout_min"]) == (
        "gpu-a100", 4, 2, 2880)
    assert launcher["tasks_per_node"] == 1  # fairseq spawns one process per GPU of the node
    assert printed["runtime"]["choices"]["hydra/launcher"] == "submitit_slurm"
    assert printed["callbacks"]["fairseq_plugins"]["_target_"] == "mt_pipeline.launch_checks.FairseqPluginsCallback"

    # resolved as in a job (Hydra resolves the hydra node inside the whole config)
    monkeypatch.setenv("CHECKPOINT_ROOT", "/scratch/runs")
    cfg = compose("wmt14_en_de", *overrides, hydra_node=True)
    resolved = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert resolved["submitit_folder"] == "/scratch/runs/wmt14_en_de/.submitit/%j"
    assert resolved["name"] == "hydra_train"
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == "sparsemax/seed2"
    assert cfg.distributed_training.distributed_world_size == 8 == resolved["nodes"] * resolved["gpus_per_node"]
    tokens = cfg.dataset.max_tokens * cfg.optimization.update_freq[0] * cfg.distributed_training.distributed_world_size
    assert tokens == 24_576


def test_sweep_target_passes_the_launcher_seeds_and_variants(tmp_path, toy_binarized):
    (tmp_path / "toy").symlink_to(toy_binarized, target_is_directory=True)
    result = subprocess.run(["make", "-n", "-s", f"BIN={BIN}", "sweep", "CONFIG=toy", "ATTN=softmax,rela",
                             "SEEDS=1,2,3", "LAUNCHER=slurm", "SWEEP_ARGS=hydra.launcher.partition=gpu",
                             f"DATA_BIN={tmp_path}"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    command = " ".join(result.stdout.replace("\\\n", " ").split())
    for part in ("fairseq-hydra-train --config-dir configs --config-name toy --multirun +launcher=slurm",
                 "+attention=softmax,rela common.seed=1,2,3",
                 "'hydra.sweep.subdir=${model.attention}/seed${common.seed}'", "hydra.launcher.partition=gpu"):
        assert part in command, (part, command)


# --- for real: four tiny models through submitit_local ---------------------------------------


def sweep(tmp_path, toy_binarized, launcher, attn, seeds, *overrides):
    """``make sweep CONFIG=toy ...`` from the repository root, data and checkpoints under ``tmp_path``."""
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        (data / "toy").symlink_to(toy_binarized, target_is_directory=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE") and k != "MAKEFLAGS"}
    environment.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DATA_BIN=str(data),
                       CHECKPOINT_ROOT=str(tmp_path / "runs"))
    arguments = ["make", "-s", f"BIN={BIN}", "sweep", "CONFIG=toy", f"ATTN={attn}", f"LAUNCHER={launcher}",
                 f"SWEEP_ARGS={' '.join(overrides)}"] + ([f"SEEDS={seeds}"] if seeds else [])
    result = subprocess.run(arguments, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def saved_config(checkpoint: Path):
    import torch

    from fairseq_plugins.fairseq_compat import trusted_torch_load

    with trusted_torch_load():
        state = torch.load(checkpoint, map_location="cpu")
    return state["cfg"], state["optimizer_history"][-1]["num_updates"], state["model"]


TINY = ("optimization.max_update=4", "dataset.num_workers=0")


@pytest.mark.slow
def test_local_submitit_sweep_trains_four_models_and_a_rerun_trains_none(tmp_path, toy_binarized):
    result = sweep(tmp_path, toy_binarized, "local", "softmax,rela", "1,2", *TINY)
    assert "Submitit 'local' sweep output dir" in result.stdout + result.stderr
    root = tmp_path / "runs" / "toy"
    jobs = {(variant, seed): root / variant / f"seed{seed}" for variant in ("softmax", "rela") for seed in (1, 2)}
    assert sorted(root.glob("*/seed*/checkpoint_last.pt")) == sorted(f / "checkpoint_last.pt" for f in jobs.values())
    weights = {}
    for (variant, seed), folder in jobs.items():
        cfg, updates, model = saved_config(folder / "checkpoint_last.pt")
        assert (cfg["model"]["attention"], cfg["common"]["seed"], updates) == (variant, seed, 4)
        assert cfg["checkpoint"]["save_dir"] == str(folder)
        assert (folder / "checkpoint_best.pt").is_file()  # validation BLEU ran
        assert list((folder / "tensorboard" / "train").glob("events.out.tfevents.*"))
        assert list((folder / "tensorboard" / "valid").glob("events.out.tfevents.*"))
        assert (folder / ".hydra" / "config.yaml").is_file() and (folder / ".hydra" / "overrides.yaml").is_file()
        assert re.search(r"num_updates 4\b", (folder / "hydra_train.log").read_text())
        weights[variant, seed] = model["encoder.embed_tokens.weight"]
    assert not weights["rela", 1].equal(weights["rela", 2])  # the seed reached the model
    assert len(list((root / ".submitit").glob("*/*_log.out"))) == 4  # submitit's own log of each process

    before = {key: digest(folder / "checkpoint_last.pt") for key, folder in jobs.items()}
    sweep(tmp_path, toy_binarized, "local", "softmax,rela", "1,2", *TINY)
    for key, folder in jobs.items():
        assert digest(folder / "checkpoint_last.pt") == before[key], key  # finished: not trained again
        assert "this run is finished, nothing to train" in (folder / "hydra_train.log").read_text()


@pytest.mark.slow
def test_rerunning_a_sweep_resumes_each_job_from_its_checkpoint(tmp_path, toy_binarized):
    """The basic launcher, one job: stopped at 3 updates, the same sweep with max_update=6 continues at 3."""
    sweep(tmp_path, toy_binarized, "basic", "rela", "", "optimization.max_update=3", "dataset.num_workers=0")
    folder = tmp_path / "runs" / "toy" / "rela"  # no SEEDS: the folder make train uses
    assert saved_config(folder / "checkpoint_last.pt")[1] == 3
    sweep(tmp_path, toy_binarized, "basic", "rela", "", "optimization.max_update=6", "dataset.num_workers=0")
    log = (folder / "hydra_train.log").read_text()
    assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 3 updates\)", log), log[-2000:]
    assert saved_config(folder / "checkpoint_last.pt")[1] == 6


# --- TensorBoard by default in the experiment runner too ----------------------------------------


@pytest.mark.slow
def test_experiment_runner_writes_tensorboard_logs_without_changing_the_fingerprint(tmp_path, toy_binarized):
    from conftest import PLUGIN_DIR
    from mt_pipeline.training import TrainingRun, data_fingerprint, normalised_command, train, with_tensorboard

    save_dir = tmp_path / "run"
    command = [str(BIN / "fairseq-train"), str(toy_binarized), "--user-dir", str(PLUGIN_DIR), "--arch",
               "sparse_transformer_tiny", "--attention", "rela", "--optimizer", "adam", "--lr", "0.001",
               "--lr-scheduler", "inverse_sqrt", "--max-tokens", "1000", "--max-update", "3", "--seed", "1",
               "--save-dir", str(save_dir), "--num-workers", "0", "--log-format", "json", "--log-interval", "1",
               "--disable-validation", "--no-epoch-checkpoints"]
    identity = normalised_command(command, {str(toy_binarized): "<data-bin>", str(save_dir): "<save-dir>"})
    run = TrainingRun(save_dir=save_dir, command=command, identity=identity, data=data_fingerprint(toy_binarized))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")}
    environment["OMP_NUM_THREADS"] = "1"
    record = train(run, environment=environment)
    assert record["updates"] == 3
    assert list((save_dir / "tensorboard" / "train_inner").glob("events.out.tfevents.*"))
    assert "--tensorboard-logdir" not in (save_dir / "run.json").read_text()  # not part of what the run is
    assert f"--tensorboard-logdir {save_dir / 'tensorboard'}" in (save_dir / "train.log").read_text()
    own = [*command, "--tensorboard-logdir", "elsewhere"]
    assert with_tensorboard(own, save_dir) == own  # a command naming its own directory keeps it
