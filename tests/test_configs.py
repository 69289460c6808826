"""configs/: the Hydra configs of the five translation directions and seven attention variants.

Every direction x variant is composed in-process the way fairseq-hydra-train composes it (fairseq's
FairseqConfig registered under the config name, Hydra 1.1 semantics), and checked against the ReLA
paper's setup; one real ``fairseq-hydra-train --cfg job`` checks that the CLI composes the same
config, and one short training run of ``configs/toy.yaml`` checks that the composed config trains.
"""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, run_console_script

from fairseq_plugins.normalizers import ATTENTION_VARIANTS

CONFIG_DIR = REPO_ROOT / "configs"
DIRECTIONS = {  # config name -> (source, target, joint vocabulary)
    "wmt14_en_de": ("en", "de", True),
    "wmt14_en_fr": ("en", "fr", True),
    "wmt16_ro_en": ("ro", "en", True),
    "wmt18_en_fi": ("en", "fi", True),
    "wmt18_zh_en": ("zh", "en", False),
}
BATCH_OPTIONS = {"1gpu": 1, "2gpu": 2, "3gpu": 3, "4gpu": 4, "6gpu": 6, "8gpu": 8}
ENV_VARIABLES = ("DATA_BIN", "CHECKPOINT_ROOT")

pytestmark = pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema:UserWarning")


@pytest.fixture(autouse=True)
def _no_path_variables(monkeypatch):
    """The defaults under test are those of an environment without DATA_BIN / CHECKPOINT_ROOT."""
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)


_COMPOSED = {}
_NARROW_STORES = {}


def compose(config_name, *overrides, hydra_node=False):
    """The config fairseq-hydra-train would get for ``--config-name config_name overrides...``, resolved.

    fairseq's cli_main registers FairseqConfig in the ConfigStore under the config name, so that Hydra
    validates the primary config against it, and runs Hydra with version_base 1.1; so does this. The
    ConfigStore is narrowed to that schema and Hydra's own configs while composing: fairseq's component
    groups (task/, model/, criterion/, ...) are not referenced by configs/ and Hydra deep-copies the
    whole store on every composition (0.8 s instead of 0.2 s). test_fairseq_hydra_train_composes_the_same_config
    checks the result against the real CLI.
    """
    import os

    from fairseq.dataclass.initialize import hydra_init
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    key = (config_name, overrides, hydra_node, tuple(os.environ.get(name) for name in ENV_VARIABLES))
    if key in _COMPOSED:
        return _COMPOSED[key]
    store = ConfigStore.instance()
    full_repo = store.repo
    if config_name not in _NARROW_STORES:
        hydra_init(config_name)
        kept = ("hydra", "_dummy_empty_config_.yaml", f"{config_name}.yaml")
        _NARROW_STORES[config_name] = {name: full_repo[name] for name in kept}
    store.repo = _NARROW_STORES[config_name]
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1", job_name="hydra_train"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra_node)
    finally:
        store.repo = full_repo
    _COMPOSED[key] = cfg if hydra_node else OmegaConf.to_container(cfg, resolve=True)
    return _COMPOSED[key]


def leaves(node, prefix=""):
    """{'a.b.c': value} of a nested dict."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(leaves(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def load_yaml(path):
    content = yaml.safe_load(Path(path).read_text()) or {}
    content.pop("defaults", None)
    return content


# --- every direction x every variant ------------------------------------------------------


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_direction_and_variant_compose_to_the_paper_setup(direction, variant):
    cfg = compose(direction, f"+attention={variant}")
    source, target, joint = DIRECTIONS[direction]
    model, task = cfg["model"], cfg["task"]

    # Transformer base, post-norm, 8 heads, the variant on all three sublayers
    assert model["_name"] == "sparse_transformer_wmt_en_de"
    assert model["attention"] == variant and model["cross_attention"] is None
    for side in ("encoder", "decoder"):
        assert model[f"{side}_layers"] == 6
        assert model[f"{side}_embed_dim"] == 512
        assert model[f"{side}_ffn_embed_dim"] == 2048
        assert model[f"{side}_attention_heads"] == 8
        assert model[f"{side}_normalize_before"] is False
    assert model["dropout"] == 0.1 and model["attention_dropout"] == 0.1
    if variant == "topk":
        assert model["attention_topk"] == 8
    if variant == "alpha_entmax":
        assert 1 < model["alpha_entmax_init"] < 2

    # embeddings: joint vocabulary shares all three, Zh-En only the decoder's
    assert model["share_all_embeddings"] is joint
    assert model["share_decoder_input_output_embed"] is True

    # max length 256, in the model and in the training filter
    assert model["max_source_positions"] == model["max_target_positions"] == 256
    assert task["max_source_positions"] == task["max_target_positions"] == 256

    # optimisation: label smoothing 0.1, Adam (0.9, 0.98, 1e-8), Noam = inverse_sqrt at lr d^-0.5 warmup^-0.5
    assert cfg["criterion"] == {"_name": "label_smoothed_cross_entropy", "label_smoothing": 0.1}
    assert cfg["optimizer"]["_name"] == "adam"
    assert ast.literal_eval(cfg["optimizer"]["adam_betas"]) == (0.9, 0.98)
    assert cfg["optimizer"]["adam_eps"] == 1e-8
    scheduler = cfg["lr_scheduler"]
    assert scheduler["_name"] == "inverse_sqrt" and scheduler["warmup_updates"] == 4000
    assert scheduler["warmup_init_lr"] == 0
    noam_peak = 512 ** -0.5 * 4000 ** -0.5
    assert cfg["optimization"]["lr"] == [pytest.approx(noam_peak, rel=0.01)]
    assert cfg["optimization"]["max_update"] == 300_000
    assert cfg["optimization"]["clip_norm"] == 0

    # ~25k tokens per update on the default single GPU
    tokens = (
        cfg["dataset"]["max_tokens"] * cfg["optimization"]["update_freq"][0]
        * cfg["distributed_training"]["distributed_world_size"]
    )
    assert cfg["distributed_training"]["distributed_world_size"] == 1
    assert 24_000 <= tokens <= 26_000
    assert cfg["dataset"]["required_batch_size_multiple"] == 1

    # validation BLEU picks the best checkpoint; the last interval checkpoints are kept for averaging
    assert task["_name"] == "translation" and task["eval_bleu"] is True
    assert task["eval_bleu_remove_bpe"] == "sentencepiece"
    assert json.loads(task["eval_bleu_args"])["beam"] == 4
    checkpoint = cfg["checkpoint"]
    assert checkpoint["best_checkpoint_metric"] == "bleu" and checkpoint["maximize_best_checkpoint_metric"] is True
    assert checkpoint["save_interval_updates"] > 0 and checkpoint["keep_interval_updates"] >= 5

    # data and checkpoints: relative, per direction, the variant in the save dir
    assert (task["source_lang"], task["target_lang"]) == (source, target)
    assert task["data"] == f"data-bin/{direction}"
    assert checkpoint["save_dir"] == f"checkpoints/{direction}/{variant}"
    assert cfg["common"]["user_dir"] == "fairseq_plugins"


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_without_attention_group_the_model_is_softmax_and_saves_under_softmax(direction):
    cfg = compose(direction)
    assert cfg["model"]["attention"] == "softmax"
    assert cfg["checkpoint"]["save_dir"] == f"checkpoints/{direction}/softmax"


def test_variants_of_one_direction_never_share_a_save_dir():
    save_dirs = {compose("wmt14_en_de", f"+attention={v}")["checkpoint"]["save_dir"] for v in ATTENTION_VARIANTS}
    assert len(save_dirs) == len(ATTENTION_VARIANTS)


def test_every_variant_has_a_group_file_and_nothing_else_does():
    files = {p.stem for p in (CONFIG_DIR / "attention").glob("*.yaml")}
    assert files == set(ATTENTION_VARIANTS)


@pytest.mark.parametrize("option, gpus", BATCH_OPTIONS.items())
def test_batch_option_sets_world_size_and_keeps_25k_tokens_per_update(option, gpus):
    cfg = compose("wmt14_en_de", "+attention=rela", f"batch={option}")
    assert cfg["distributed_training"]["distributed_world_size"] == gpus
    tokens = cfg["dataset"]["max_tokens"] * cfg["optimization"]["update_freq"][0] * gpus
    assert tokens == 24_576


def test_environment_variables_move_data_and_checkpoints(monkeypatch):
    monkeypatch.setenv("DATA_BIN", "/scratch/data-bin")
    monkeypatch.setenv("CHECKPOINT_ROOT", "runs")
    cfg = compose("wmt16_ro_en", "+attention=sparsemax")
    assert cfg["task"]["data"] == "/scratch/data-bin/wmt16_ro_en"
    assert cfg["checkpoint"]["save_dir"] == "runs/wmt16_ro_en/sparsemax"


def test_hydra_stays_in_the_launch_directory_and_logs_next_to_the_checkpoints():
    from omegaconf import OmegaConf

    cfg = compose("wmt14_en_de", "+attention=rela", hydra_node=True)
    assert cfg.hydra.job.chdir is False  # relative user_dir / data / save_dir resolve from the launch directory
    run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"]
    assert run_dir.startswith("${checkpoint.save_dir}/")


def test_tensorboard_logs_go_under_each_save_dir():
    for name in (*DIRECTIONS, "toy"):
        for variant in ("softmax", "rela"):
            cfg = compose(name, f"+attention={variant}")
            assert cfg["common"]["tensorboard_logdir"] == f"{cfg['checkpoint']['save_dir']}/tensorboard"


def test_the_plugin_is_imported_before_fairseq_starts_the_ranks():
    """fairseq-hydra-train imports common.user_dir only inside its training main: a Hydra callback imports it
    at job start, so the plugin's distributed checks run first (tests/test_distributed_cpu.py)."""
    cfg = compose("wmt14_en_de", "+attention=rela", hydra_node=True)
    assert cfg.hydra.callbacks.fairseq_plugins._target_ == "mt_pipeline.launch_checks.FairseqPluginsCallback"


# --- the files themselves -------------------------------------------------------------------


def test_direction_files_do_not_set_what_the_base_sets():
    """Direction files come before the base in their defaults list (see configs/base/transformer_base.yaml):
    a key in both would silently take the base's value. Every value a direction sets must survive."""
    base = leaves(load_yaml(CONFIG_DIR / "base" / "transformer_base.yaml"))
    tiny = leaves(load_yaml(CONFIG_DIR / "base" / "transformer_tiny.yaml"))
    for direction in (*DIRECTIONS, "toy"):
        own = leaves(load_yaml(CONFIG_DIR / f"{direction}.yaml"))
        assert not set(own) & (set(base) | (set(tiny) if direction == "toy" else set())), direction
        composed = leaves(compose(direction))
        for key, value in own.items():
            if isinstance(value, str) and "${" in value:
                continue  # interpolations: checked resolved above
            assert composed[key] == value, (direction, key)


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
def test_group_file_values_reach_the_composed_config(variant):
    own = leaves(load_yaml(CONFIG_DIR / "attention" / f"{variant}.yaml"))
    for name in (*DIRECTIONS, "toy"):
        composed = leaves(compose(name, f"+attention={variant}"))
        assert {key: composed[key] for key in own} == own, name


def test_no_home_directories_or_absolute_paths():
    files = sorted(CONFIG_DIR.rglob("*.yaml")) + sorted(CONFIG_DIR.rglob("*.md"))
    assert len(files) >= 5 + 7 + 1
    for path in files:
        text = path.read_text()
        for forbidden in ("/home", "~/", "/root", "/Users", "/work/", "/tmp/"):
            assert forbidden not in text, f"{path.relative_to(REPO_ROOT)} mentions {forbidden}"
    ours = set()
    for path in CONFIG_DIR.rglob("*.yaml"):
        ours |= set(leaves(load_yaml(path)))
    for name in (*DIRECTIONS, "toy"):
        composed = leaves(compose(name, "+attention=rela"))
        for key in ours - {key for key in ours if key.startswith("hydra.")}:
            value = composed.get(key)
            assert not (isinstance(value, str) and value.startswith(("/", "~"))), (name, key, value)


def test_every_config_says_where_its_numbers_come_from():
    for path in [*(CONFIG_DIR / f"{d}.yaml" for d in DIRECTIONS), CONFIG_DIR / "base" / "transformer_base.yaml"]:
        assert re.search(r"ReLA|Vaswani|zero|fairseq", path.read_text()), path.name
    base = (CONFIG_DIR / "base" / "transformer_base.yaml").read_text()
    for key in ("label_smoothing", "adam_eps", "warmup_updates", "max_update", "encoder_attention_heads", "dropout"):
        line = next(line for line in base.splitlines() if line.strip().startswith(key))
        assert "#" in line and re.search(r"\[(ReLA|zero|Vaswani|fairseq)\]", line), line


# --- through fairseq's CLI ------------------------------------------------------------------


def test_fairseq_hydra_train_composes_the_same_config():
    overrides = ("+attention=topk", "batch=4gpu")
    result = run_console_script(
        "fairseq-hydra-train", "--config-dir", CONFIG_DIR, "--config-name", "wmt18_zh_en", *overrides,
        "--cfg", "job", "--resolve", cwd=REPO_ROOT, timeout=120,
    )
    printed = yaml.safe_load(result.stdout)
    assert printed == compose("wmt18_zh_en", *overrides)
    assert printed["model"]["share_all_embeddings"] is False
    assert printed["checkpoint"]["save_dir"] == "checkpoints/wmt18_zh_en/topk"


@pytest.mark.slow
def test_toy_config_trains_and_saves_in_the_variant_directory(toy_binarized, tmp_path, monkeypatch):
    """configs/toy.yaml +attention=rela through fairseq-hydra-train from the repository root, 10 updates."""
    monkeypatch.setenv("CHECKPOINT_ROOT", str(tmp_path))
    result = run_console_script(
        "fairseq-hydra-train", "--config-dir", "configs", "--config-name", "toy", "+attention=rela",
        f"task.data={toy_binarized}", "optimization.max_update=10", cwd=REPO_ROOT, timeout=300,
    )
    log = result.stdout + result.stderr
    save_dir = tmp_path / "toy" / "rela"
    assert (save_dir / "checkpoint_last.pt").exists()
    assert (save_dir / "checkpoint_best.pt").exists()  # best by validation BLEU
    assert re.search(r"valid on 'valid' subset .*\| bleu [\d.]+", log)
    assert re.search(r"num_updates 10\b", log)
    assert list((save_dir / "hydra").glob("*/hydra_train.log"))  # Hydra's output next to the checkpoints
    assert list((save_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))  # TensorBoard by default

    import torch

    from fairseq_plugins.fairseq_compat import trusted_torch_load

    with trusted_torch_load():
        state = torch.load(save_dir / "checkpoint_last.pt", map_location="cpu")
    assert state["fairseq_plugins"]["attention"] == {"encoder": "rela", "decoder": "rela", "cross": "rela"}
    assert state["cfg"]["model"]["_name"] == "sparse_transformer_tiny"
    assert state["cfg"]["criterion"]["label_smoothing"] == 0.1  # from the shared base
