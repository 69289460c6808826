"""fairseq's distributed training, honestly: refused when it would do nothing, and exercised on CPU over gloo.

* A request fairseq would turn into nothing (``--cpu`` with several ranks: fairseq starts one process per
  visible GPU) is refused with one line before anything starts, through the real ``fairseq-train`` and
  ``fairseq-hydra-train`` (fairseq_plugins/fairseq_compat.py, fix 5; the Hydra callback of
  mt_pipeline/launch_checks.py). The GPU, torchrun and SLURM rules are checked on the pure function with a
  stated GPU count and environment, and SLURM's inference with a stand-in ``scontrol``.
* The distributed path itself: torchrun starts two CPU ranks of the real ``fairseq-train`` (gloo, fairseq's
  default DDP backend, 20 updates of the tiny model). Their parameters are identical after every update, they
  trained on disjoint halves of each update's batches, and the result equals one rank at twice the batch
  (``--update-freq 2``) to float tolerance.

Run as a script (``python tests/test_distributed_cpu.py TRACE_DIR FAIRSEQ-TRAIN-ARGS...``) this file is the
worker: fairseq-train with ``Trainer.train_step`` wrapped to record, after every update, a digest of the
parameters and the sentence ids it trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def _worker(trace_dir: str, arguments: list) -> None:
    """fairseq-train, recording per update: updates, parameter digest, the ids of this rank's sentences."""
    from fairseq.trainer import Trainer

    original = Trainer.train_step
    trace = Path(trace_dir) / f"rank{os.environ.get('RANK', '0')}.jsonl"

    def train_step(self, samples, raise_oom=False):
        ids = sorted(int(i) for sample in samples if sample for i in sample["id"].tolist())
        output = original(self, samples, raise_oom=raise_oom)
        digest = hashlib.sha256()
        for name, parameter in sorted(self.get_model().named_parameters()):
            digest.update(name.encode())
            digest.update(parameter.detach().cpu().numpy().tobytes())
        with trace.open("a") as stream:
            record = {"updates": self.get_num_updates(), "params": digest.hexdigest(), "ids": ids}
            stream.write(json.dumps(record) + "\n")
        return output

    Trainer.train_step = train_step
    sys.argv = ["fairseq-train", *arguments]
    from fairseq_cli.train import cli_main

    cli_main()


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2:])
    sys.exit(0)


import pytest  # noqa: E402  (the worker above runs without pytest)
from omegaconf import OmegaConf  # noqa: E402

from conftest import PLUGIN_DIR, REPO_ROOT, run_console_script  # noqa: E402

HYDRA_NOISE = ("DEBUG:hydra", "Warning", "warn", "version_base", "compatability", "defaults for version",
               "hydra.cc/docs", "validated against ConfigStore", "deprecated", "strict flag")


def our_lines(stderr: str) -> list:
    """stderr without Hydra's and Python's deprecation chatter (printed by every fairseq-*train run)."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(" ") and not any(word in line for word in HYDRA_NOISE)]


TRAIN_ARGS = ["--user-dir", PLUGIN_DIR, "--arch", "rela_transformer_tiny", "--optimizer", "adam", "--lr", "0.001",
              "--max-tokens", "1000", "--max-update", "5", "--num-workers", "0", "--log-format", "simple"]


# --- refused before anything starts -------------------------------------------------------------


@pytest.mark.parametrize("extra", [
    [],  # fairseq: AssertionError traceback
    ["--distributed-init-method", "tcp://127.0.0.1:29561"],  # fairseq: spawns 0 processes, exits 0, trains nothing
    ["--distributed-port", "29562"],  # fairseq: one process expecting 2 ranks, ValueError traceback
])
def test_fairseq_train_refuses_cpu_ranks_it_would_not_start(toy_binarized, tmp_path, extra):
    save_dir = tmp_path / "save"
    result = run_console_script("fairseq-train", toy_binarized, *TRAIN_ARGS, "--cpu", "--distributed-world-size", "2",
                                "--save-dir", save_dir, *extra, check=False, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = our_lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("fairseq-train: --cpu with distributed_world_size=2")
    assert "--distributed-backend gloo" in lines[0] and "torchrun --nproc-per-node 2" in lines[0]
    assert not save_dir.exists()  # nothing started


def test_fairseq_train_refuses_cpu_ranks_over_nccl(toy_binarized, tmp_path):
    result = run_console_script(
        "fairseq-train", toy_binarized, *TRAIN_ARGS, "--cpu", "--distributed-world-size", "2",
        "--distributed-rank", "0", "--distributed-init-method", "tcp://127.0.0.1:29563", "--distributed-no-spawn",
        "--save-dir", tmp_path / "s",
        check=False, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert our_lines(result.stderr) == [
        "fairseq-train: 2 CPU ranks need --distributed-backend gloo (distributed_training.distributed_backend=nccl "
        "works only between GPUs)"]


def test_fairseq_hydra_train_refuses_cpu_ranks(toy_binarized, tmp_path, monkeypatch):
    """configs/toy.yaml is a CPU config; asking it for two ranks is refused in the job, before fairseq's call_main."""
    monkeypatch.setenv("CHECKPOINT_ROOT", str(tmp_path))
    result = run_console_script(
        "fairseq-hydra-train", "--config-dir", "configs", "--config-name", "toy", "+attention=rela",
        f"task.data={toy_binarized}", "distributed_training.distributed_world_size=2", cwd=REPO_ROOT, check=False,
        timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = our_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("fairseq-hydra-train: --cpu with distributed_world_size=2"), lines
    assert "distributed_training.distributed_backend=gloo" in lines[0]  # the hint in Hydra's syntax
    assert not list(tmp_path.rglob("checkpoint*.pt"))


def test_a_sweep_asking_for_cpu_ranks_is_refused_before_any_job_is_submitted(toy_binarized, tmp_path, monkeypatch):
    """The Hydra callback checks the settings every job shares in the launching process (submitit_local here),
    so no job is submitted (a job refusing itself would surface as submitit's UncompletedJobError)."""
    monkeypatch.setenv("CHECKPOINT_ROOT", str(tmp_path))
    result = run_console_script(
        "fairseq-hydra-train", "--config-dir", "configs", "--config-name", "toy", "--multirun", "+launcher=local",
        "+attention=softmax,rela", f"task.data={toy_binarized}", "distributed_training.distributed_world_size=2",
        cwd=REPO_ROOT, check=False, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = our_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("fairseq-hydra-train: --cpu with distributed_world_size=2"), lines
    assert not list(tmp_path.rglob(".submitit")) and not list(tmp_path.rglob("checkpoint*.pt"))


# --- the rules, with a stated number of GPUs and environment ------------------------------------


def request(world=1, cpu=False, **distributed):
    from fairseq.dataclass.configs import CommonConfig, DistributedTrainingConfig

    dt = OmegaConf.structured(DistributedTrainingConfig(distributed_world_size=world, device_id=0))
    for key, value in distributed.items():
        dt[key] = value
    return OmegaConf.create({"common": OmegaConf.structured(CommonConfig(cpu=cpu)), "distributed_training": dt})


TORCHRUN = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "RANK": "0", "LOCAL_RANK": "0"}


@pytest.mark.parametrize("cfg, gpus, environ, expected", [
    (request(1), 0, {}, None),
    (request(4), 4, {}, None),
    (request(4), 2, {}, "distributed_world_size=4 but 2 GPU(s) visible"),
    (request(2), 0, {}, "distributed_world_size=2 but 0 GPU(s) visible"),
    (request(2, distributed_port=1234), 2, {}, "no --distributed-init-method, torchrun or SLURM"),
    (request(2, distributed_init_method="tcp://h:1"), 0, {}, "with no GPU visible"),
    (request(16, distributed_init_method="tcp://h:1", distributed_rank=8), 8, {}, None),  # node 2 of 2: valid
    (request(2, cpu=True), 0, {}, "--cpu with distributed_world_size=2"),
    (request(2, cpu=True), 8, {}, "need --distributed-backend gloo"),  # spawned CPU ranks on a GPU machine
    (request(2, cpu=True, distributed_backend="gloo"), 8, {}, None),
    (request(1), 8, {**TORCHRUN, "WORLD_SIZE": "4"}, "each of the 4 processes would train alone"),
    (request(8), 8, {**TORCHRUN, "WORLD_SIZE": "4"}, "fairseq would silently use 4 ranks"),
    (request(4), 8, {**TORCHRUN, "WORLD_SIZE": "4"}, None),
    (request(2, cpu=True, distributed_backend="gloo"), 0, {**TORCHRUN, "WORLD_SIZE": "2"}, None),
])
def test_distributed_request_rules(cfg, gpus, environ, expected):
    from fairseq_plugins.fairseq_compat import distributed_request_problem

    problem = distributed_request_problem(cfg, gpus, environ)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem, problem
        assert "\n" not in problem


@pytest.fixture
def fake_scontrol(tmp_path, monkeypatch):
    """SLURM's ``scontrol show hostnames`` for fairseq's _infer_slurm_init: prints node1, node2."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text("#!/bin/sh\nprintf 'node1\\nnode2\\n'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    return {"SLURM_JOB_NODELIST": "node[1-2]", "SLURM_NNODES": "2", "SLURM_NODEID": "0", "SLURM_JOB_ID": "4242",
            "SLURM_NTASKS_PER_NODE": "1"}


def slurm_node(monkeypatch, environ, gpus):
    """This process as a node of a SLURM job with ``gpus`` GPUs (fairseq's inference asks torch.cuda)."""
    import torch

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)


def test_slurm_multi_node_gets_a_port_every_node_agrees_on(fake_scontrol, monkeypatch):
    from fairseq_plugins.fairseq_compat import check_distributed_request

    slurm_node(monkeypatch, fake_scontrol, gpus=4)
    ports = []
    for node in ("0", "1"):
        monkeypatch.setenv("SLURM_NODEID", node)
        cfg = request(8)
        check_distributed_request(cfg)  # fairseq alone: AssertionError (localhost for lack of a port)
        dt = cfg.distributed_training
        assert dt.distributed_init_method.startswith("tcp://node1:")
        assert dt.distributed_world_size == 8 and dt.distributed_rank == 4 * int(node)
        ports.append(dt.distributed_port)
    assert ports[0] == ports[1] and 10000 <= ports[0] <= 60000


def test_slurm_world_size_that_fairseq_would_replace_is_refused(fake_scontrol, monkeypatch):
    from fairseq_plugins.fairseq_compat import DistributedRequestError, check_distributed_request

    slurm_node(monkeypatch, fake_scontrol, gpus=2)
    with pytest.raises(DistributedRequestError) as error:
        check_distributed_request(request(8, distributed_port=13000))  # batch=8gpu, but 2 nodes x 2 GPUs
    assert "SLURM gives 2 node(s) x 2 GPU(s) = 4 ranks but distributed_world_size is 8" in str(error.value.code)
    slurm_node(monkeypatch, {"SLURM_NTASKS_PER_NODE": "2"}, gpus=4)  # one task per rank: fairseq asserts 2 == 8 // 2
    with pytest.raises(DistributedRequestError) as error:
        check_distributed_request(request(8, distributed_port=13000))
    assert "SLURM runs 2 tasks on each of 2 node(s) but distributed_world_size is 8" in str(error.value.code)


# --- two CPU ranks over gloo, through torchrun and fairseq's own DDP -----------------------------

DDP_ARGS = ["--user-dir", str(PLUGIN_DIR), "--arch", "rela_transformer_tiny", "--cpu",
            "--dropout", "0", "--attention-dropout", "0", "--activation-dropout", "0",  # no per-rank randomness
            "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "0.002", "--lr-scheduler", "inverse_sqrt",
            "--warmup-updates", "5", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
            "--max-tokens", "600", "--max-update", "20", "--seed", "3", "--required-batch-size-multiple", "1",
            "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints", "--log-format", "simple",
            "--log-interval", "5"]


def run_worker(prefix, trace_dir, data, save_dir, *extra):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")}
    environment["OMP_NUM_THREADS"] = "1"
    command = [*prefix, __file__, str(trace_dir), str(data), *DDP_ARGS, "--save-dir", str(save_dir), *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600, cwd=trace_dir)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def read_trace(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def final_parameters(save_dir):
    import torch

    from fairseq_plugins.fairseq_compat import trusted_torch_load

    with trusted_torch_load():
        state = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu")
    return state["model"], state["optimizer_history"][-1]["num_updates"]


@pytest.mark.slow
def test_two_cpu_ranks_over_gloo_equal_one_rank_at_twice_the_batch(toy_binarized, tmp_path):
    import torch

    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    result = run_worker([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
                        two, toy_binarized, two / "save", "--distributed-world-size", "2",
                        "--distributed-backend", "gloo")
    log = result.stdout + result.stderr
    assert "training on 2 devices" in log and "distributed init (rank 1)" in log
    run_worker([sys.executable], one, toy_binarized, one / "save", "--update-freq", "2")

    ranks = [read_trace(two / f"rank{r}.jsonl") for r in (0, 1)]
    single = read_trace(one / "rank0.jsonl")
    assert [s["updates"] for s in ranks[0]] == [s["updates"] for s in ranks[1]] == list(range(1, 21))
    for first, second, reference in zip(*ranks, single):
        assert first["params"] == second["params"], f"ranks differ after update {first['updates']}"
        assert first["ids"] and not set(first["ids"]) & set(second["ids"])  # each rank its own sentences
        assert sorted(first["ids"] + second["ids"]) == reference["ids"]  # together: the single rank's update

    distributed, updates = final_parameters(two / "save")
    alone, updates_alone = final_parameters(one / "save")
    assert updates == updates_alone == 20
    assert distributed.keys() == alone.keys()
    gap = 0.0
    for name in distributed:
        torch.testing.assert_close(distributed[name], alone[name], rtol=1e-4, atol=1e-5, msg=name)
        gap = max(gap, (distributed[name] - alone[name]).abs().max().item())
    assert gap < 1e-5
