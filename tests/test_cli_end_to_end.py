"""End to end through fairseq's real command-line tools, for every architecture.

fairseq-preprocess -> fairseq-train -> fairseq-generate (tiny archs, a few dozen updates),
one update of every full-size arch, and fairseq-hydra-train for one variant.
"""

import re

import pytest

from fairseq_plugins.normalizers import ATTENTION_VARIANTS

from conftest import PLUGIN_DIR, run_console_script as run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def binarized(toy_binarized):
    return toy_binarized


def train(binarized, save_dir, arch, *extra):
    return run(
        "fairseq-train", binarized, "--user-dir", PLUGIN_DIR, "--arch", arch,
        "--optimizer", "adam", "--lr", "0.005", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--max-tokens", "1500", "--save-dir", save_dir, "--no-epoch-checkpoints",
        "--seed", "1", "--num-workers", "0", "--log-format", "simple", *extra,
    )


def generate(binarized, checkpoint, *extra, user_dir=True, check=True):
    plugin = ["--user-dir", PLUGIN_DIR] if user_dir else []
    return run(
        "fairseq-generate", binarized, *plugin, "--path", checkpoint, "--gen-subset", "test",
        "--beam", "4", "--num-workers", "0", *extra, check=check,
    )


def hypothesis_ids(output: str):
    return sorted(int(m) for m in re.findall(r"^H-(\d+)\t", output, flags=re.MULTILINE))


@pytest.fixture(scope="session")
def rela_checkpoint(toy_model):
    return toy_model["checkpoint"]


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
def test_tiny_architecture_trains_and_translates_every_sentence(variant, binarized, tmp_path):
    result = train(binarized, tmp_path, f"{variant}_transformer_tiny", "--max-update", "30")
    assert "done training" in result.stdout + result.stderr
    checkpoint = tmp_path / "checkpoint_last.pt"
    assert checkpoint.exists()
    output = generate(binarized, checkpoint, "--batch-size", "16").stdout
    assert hypothesis_ids(output) == list(range(50))


@pytest.mark.parametrize("size", ["wmt_en_de", "iwslt_de_en"])
@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
def test_full_size_architecture_takes_a_training_step(variant, size, binarized, tmp_path):
    result = train(
        binarized, tmp_path, f"{variant}_transformer_{size}",
        "--max-update", "1", "--max-tokens", "300", "--no-save", "--disable-validation",
    )
    assert re.search(r"num_updates 1\b", result.stdout + result.stderr)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_generation_keeps_every_sentence_at_any_batch_size(batch_size, binarized, rela_checkpoint):
    output = generate(binarized, rela_checkpoint, "--batch-size", batch_size).stdout
    assert hypothesis_ids(output) == list(range(50))


def test_checkpoint_loads_under_torch_weights_only_default_without_environment_variables(binarized, rela_checkpoint):
    import torch

    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)
    output = generate(binarized, rela_checkpoint, "--batch-size", "50").stdout
    assert len(hypothesis_ids(output)) == 50


def test_generation_without_user_dir_says_to_add_it(binarized, rela_checkpoint):
    result = generate(binarized, rela_checkpoint, user_dir=False, check=False)
    assert result.returncode != 0
    assert "add --user-dir fairseq_plugins" in result.stderr


HYDRA_CONFIG = """\
# @package _global_
common: {{seed: 1, log_format: simple, log_interval: 10}}
task: {{_name: translation, data: {data}, source_lang: src, target_lang: tgt}}
model: {{_name: sparsemax_transformer_tiny, cross_attention: rela}}
criterion: {{_name: label_smoothed_cross_entropy, label_smoothing: 0.1}}
optimizer: {{_name: adam, adam_betas: "(0.9, 0.98)"}}
lr_scheduler: {{_name: inverse_sqrt, warmup_updates: 10}}
optimization: {{lr: [0.005], max_update: 20}}
dataset: {{max_tokens: 1500, num_workers: 0}}
checkpoint: {{save_dir: {save_dir}, no_epoch_checkpoints: true}}
"""


def test_hydra_train_then_generate(binarized, tmp_path):
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    save_dir = tmp_path / "checkpoints"
    (config_dir / "toy.yaml").write_text(HYDRA_CONFIG.format(data=binarized, save_dir=save_dir))
    run(
        "fairseq-hydra-train", "--config-dir", config_dir, "--config-name", "toy",
        f"common.user_dir={PLUGIN_DIR}", f"hydra.run.dir={tmp_path / 'hydra'}", cwd=tmp_path,
    )
    checkpoint = save_dir / "checkpoint_last.pt"
    assert checkpoint.exists()
    output = generate(binarized, checkpoint, "--batch-size", "16").stdout
    assert hypothesis_ids(output) == list(range(50))

    import torch

    from fairseq_plugins.fairseq_compat import trusted_torch_load

    with trusted_torch_load():
        state = torch.load(checkpoint, map_location="cpu")
    assert state["fairseq_plugins"]["attention"] == {"encoder": "sparsemax", "decoder": "sparsemax", "cross": "rela"}
