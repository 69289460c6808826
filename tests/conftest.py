"""Shared fixtures: small models built in-process and a synthetic parallel corpus."""

import importlib.util
import types
from pathlib import Path
from typing import Sequence

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO_ROOT / "fairseq_plugins"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def make_dictionary(size: int = 24):
    from fairseq.data import Dictionary

    dictionary = Dictionary()
    for i in range(size):
        dictionary.add_symbol(f"w{i}")
    return dictionary


def build_model(arch: str, extra_args: Sequence[str] = (), vocab: int = 24, seed: int = 0):
    """Build ``arch`` exactly as fairseq-train would (argparse + arch defaults), in eval mode."""
    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    import fairseq_plugins  # noqa: F401  (registers the architectures)

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, ["unused-data-dir", "--arch", arch, "--user-dir", str(PLUGIN_DIR), *extra_args]
    )
    dictionary = make_dictionary(vocab)
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    torch.manual_seed(seed)
    model = ARCH_MODEL_REGISTRY[arch].build_model(args, task)
    return model.eval(), dictionary


def random_batch(dictionary, bsz=3, src_len=7, tgt_len=6, seed=0):
    """Left-padded sources and right-padded decoder inputs, like fairseq's collater."""
    generator = torch.Generator().manual_seed(seed)
    pad, eos, first = dictionary.pad(), dictionary.eos(), dictionary.nspecial
    src_lengths = torch.tensor([src_len] + [max(2, src_len - 2 - i) for i in range(bsz - 1)])
    tgt_lengths = torch.tensor([tgt_len] + [max(2, tgt_len - 1 - i) for i in range(bsz - 1)])
    src = torch.full((bsz, src_len), pad)
    prev = torch.full((bsz, tgt_len), pad)
    for b in range(bsz):
        s, t = src_lengths[b].item(), tgt_lengths[b].item()
        src[b, src_len - s:] = torch.randint(first, len(dictionary), (s,), generator=generator)
        src[b, -1] = eos
        prev[b, :t] = torch.randint(first, len(dictionary), (t,), generator=generator)
        prev[b, 0] = eos
    return src, src_lengths, prev


def _load_toy_corpus_script():
    spec = importlib.util.spec_from_file_location("toy_corpus", REPO_ROOT / "scripts" / "toy_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory):
    """scripts/toy_corpus.py output: target = source words mapped one-to-one, reversed.

    Real enough for the fairseq CLI, and the word alignment of every pair is known.
    """
    folder = tmp_path_factory.mktemp("toy_corpus")
    return _load_toy_corpus_script().write_toy_corpus(folder, {"train": 1500, "valid": 50, "test": 50})


def run_console_script(name, *arguments, cwd=None, check=True, timeout=600):
    """Run one of the venv's console scripts (fairseq-train, alignment-eval, ...) as a user would."""
    import os
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")  # pytest-xdist already runs one process per core
    result = subprocess.run(
        [str(bin_dir / name), *map(str, arguments)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{name} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def toy_binarized(toy_corpus, tmp_path_factory):
    """The toy corpus through fairseq-preprocess (joined dictionary)."""
    destination = tmp_path_factory.mktemp("toy_bin")
    run_console_script(
        "fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt",
        "--trainpref", toy_corpus / "train", "--validpref", toy_corpus / "valid",
        "--testpref", toy_corpus / "test", "--destdir", destination,
        "--joined-dictionary", "--workers", "1",
    )
    return destination


def train_toy_model(toy_binarized, folder, arch: str) -> Path:
    """``arch`` trained 300 updates on the binarized toy corpus into ``folder``; its checkpoint_last.pt."""
    run_console_script(
        "fairseq-train", toy_binarized, "--user-dir", PLUGIN_DIR, "--arch", arch,
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "0.005", "--lr-scheduler", "inverse_sqrt",
        "--warmup-updates", "50", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--max-tokens", "2000", "--max-update", "300", "--save-dir", folder, "--no-epoch-checkpoints",
        "--seed", "1", "--num-workers", "0", "--log-format", "simple", "--disable-validation",
    )
    return Path(folder) / "checkpoint_last.pt"


@pytest.fixture(scope="session")
def toy_model(toy_corpus, toy_binarized, tmp_path_factory):
    """A rela_transformer_tiny trained 300 updates on the toy corpus, with its test text and gold.

    Returns a dict: checkpoint, data_dir, text ('src ||| tgt' of the test split), gold (0-based).
    """
    folder = tmp_path_factory.mktemp("toy_model")
    train_toy_model(toy_binarized, folder, "rela_transformer_tiny")
    sources = (toy_corpus / "test.src").read_text().splitlines()
    targets = (toy_corpus / "test.tgt").read_text().splitlines()
    text = folder / "test.src-tgt"
    text.write_text("".join(f"{s} ||| {t}\n" for s, t in zip(sources, targets)))
    return {
        "checkpoint": folder / "checkpoint_last.pt",
        "data_dir": toy_binarized,
        "text": text,
        "gold": toy_corpus / "test.align",
    }
