"""The Makefile's targets: ``make help`` lists them all, and every target that needs inputs checks them first.

Each check runs through the real ``make`` in an empty folder (``make -f <repo>/Makefile -C <tmp>``, the
venv's ``BIN``), so nothing here depends on what this checkout has built: without its inputs a target
prints one line naming the missing file and the make target that makes it, and stops with status 2,
never a traceback (mt_pipeline/launch_checks.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

MAKEFILE = REPO_ROOT / "Makefile"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def make(folder: Path, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATA_BIN", "CHECKPOINT_ROOT", "MAKEFLAGS")}
    environment.update(env or {})
    return subprocess.run(["make", "-s", "-f", str(MAKEFILE), "-C", str(folder), f"BIN={BIN}", *arguments],
                          capture_output=True, text=True, env=environment, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    """Failed (status 2), nothing on stdout, exactly one line on stderr containing every ``expected``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.stdout.strip() == "", result.stdout
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def phony_targets() -> list[str]:
    text = MAKEFILE.read_text().replace("\\\n", " ")
    phony = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split()
    defined = set(re.findall(r"^([a-z][\w-]*(?: [a-z][\w-]*)*):", text, re.MULTILINE))
    defined = {name for names in defined for name in names.split()}
    assert set(phony) <= defined, set(phony) - defined
    return phony


# --- make help ------------------------------------------------------------------------------


def test_help_lists_every_target_with_the_variables_it_reads(tmp_path):
    result = make(tmp_path, "help")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^make ([a-z][\w-]*(?:\|[a-z][\w-]*)*)", result.stdout, re.MULTILINE))
    listed = {name for names in listed for name in names.split("|")}
    targets = phony_targets()
    assert len(targets) >= 20
    assert set(targets) <= listed, f"not in make help: {sorted(set(targets) - listed)}"
    for target, variables in {
        "train": ("PAIR", "ATTN", "TRAIN_ARGS", "DATA_BIN", "CHECKPOINT_ROOT"),
        "sweep": ("PAIR", "ATTN", "SEEDS", "LAUNCHER", "SWEEP_ARGS"),
        "align": ("PAIR", "ATTN", "GOLD_DIR"),
        "explore": ("PAIR", "ATTN", "GOLD_DIR", "EXPLORE_ARGS"),
        "data": ("PAIR", "DATA_ARGS", "DATA_BIN"),
        "toy-train": ("ATTN",),
        "bench": ("BENCH_THREADS",),
        "results-multi30k": ("RESULTS_ARGS",),
    }.items():
        block = re.search(rf"^make {target}\b.*?(?=^make )", result.stdout, re.MULTILINE | re.DOTALL).group(0)
        for variable in variables:
            assert variable in block, (target, variable, block)


# --- every target without its inputs ----------------------------------------------------------


@pytest.mark.parametrize("target, arguments, expected", [
    ("train", ["PAIR=en-de", "ATTN=rela"], ("make train:", "data-bin/wmt14_en_de", "make data PAIR=en-de")),
    ("sweep", ["PAIR=ro-en", "ATTN=softmax,rela", "SEEDS=1,2", "LAUNCHER=local"],
     ("make sweep:", "data-bin/wmt16_ro_en", "make data PAIR=ro-en")),
    ("translate", ["PAIR=en-de", "ATTN=rela"], ("make translate:", "data-bin/wmt14_en_de/prepare.json", "make data")),
    ("bleu", ["PAIR=en-fr", "ATTN=softmax"],
     ("make bleu:", "data-bin/wmt14_en_fr/prepare.json", "make data PAIR=en-fr")),
    ("align", ["PAIR=zh-en", "ATTN=rela"],
     ("make align:", "data-bin/wmt18_zh_en/prepare.json", "make data PAIR=zh-en")),
    ("report", ["PAIR=en-de"], ("make report:", "results/wmt14_en_de", "make bleu PAIR=en-de")),
    ("explore", ["PAIR=en-fi", "ATTN=softmax,rela"],
     ("make explore:", "data-bin/wmt18_en_fi/prepare.json", "make data PAIR=en-fi")),
])
def test_target_without_inputs_fails_with_one_line(tmp_path, tmp_path_factory, target, arguments, expected):
    if target == "align":  # the gold set is there (shared data or not), so the missing data-bin is what stops it
        gold = tmp_path_factory.mktemp("gold")
        for name in ("zhen.src-tgt", "zhen.gold"):
            (gold / name).write_text("a ||| b\n" if name.endswith("src-tgt") else "1-1\n")
        arguments = [*arguments, f"GOLD_DIR={gold}"]
    assert_one_line(make(tmp_path, target, *arguments), *expected)
    assert list(tmp_path.iterdir()) == []  # nothing was started, nothing written


def test_train_names_the_first_missing_file_of_a_partial_data_bin(tmp_path):
    data = tmp_path / "data-bin" / "wmt14_en_de"
    data.mkdir(parents=True)
    (data / "dict.en.txt").write_text("a 1\n")
    assert_one_line(make(tmp_path, "train", "PAIR=en-de", "ATTN=rela"),
                    "data-bin/wmt14_en_de/dict.de.txt is missing", "make data PAIR=en-de")


def test_data_bin_and_checkpoint_root_move_the_checked_paths(tmp_path):
    assert_one_line(make(tmp_path, "train", "PAIR=en-de", "ATTN=rela", env={"DATA_BIN": "/scratch/nowhere"}),
                    "/scratch/nowhere/wmt14_en_de is missing")
    prepared(tmp_path / "elsewhere" / "wmt14_en_de")
    assert_one_line(make(tmp_path, "translate", "PAIR=en-de", "ATTN=rela", "DATA_BIN=elsewhere",
                         "CHECKPOINT_ROOT=runs"),
                    "runs/wmt14_en_de/rela has no checkpoint", "make train PAIR=en-de ATTN=rela")


def prepared(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "prepare.json").write_text(json.dumps({"src": "en", "tgt": "de"}))
    return folder


def test_explore_names_the_first_variant_without_a_checkpoint(tmp_path):
    prepared(tmp_path / "data-bin" / "wmt18_en_fi")
    (tmp_path / "checkpoints" / "wmt18_en_fi" / "softmax").mkdir(parents=True)
    (tmp_path / "checkpoints" / "wmt18_en_fi" / "softmax" / "checkpoint_last.pt").write_bytes(b"")
    assert_one_line(make(tmp_path, "explore", "PAIR=en-fi", "ATTN=softmax,rela"),
                    "checkpoints/wmt18_en_fi/rela has no checkpoint", "make train PAIR=en-fi ATTN=rela")


def test_a_seed_of_a_sweep_is_checked_in_its_own_folder(tmp_path):
    prepared(tmp_path / "data-bin" / "wmt14_en_de")
    (tmp_path / "checkpoints" / "wmt14_en_de" / "rela").mkdir(parents=True)
    (tmp_path / "checkpoints" / "wmt14_en_de" / "rela" / "checkpoint_last.pt").write_bytes(b"")  # not seed 2's
    assert_one_line(make(tmp_path, "translate", "PAIR=en-de", "ATTN=rela", "SEED=2"),
                    "checkpoints/wmt14_en_de/rela/seed2 has no checkpoint", "make sweep PAIR=en-de ATTN=rela SEEDS=2")
    assert_one_line(make(tmp_path, "bleu", "PAIR=en-de", "ATTN=rela", "SEED=2"),
                    "results/wmt14_en_de/rela/seed2/test.hyp", "make translate PAIR=en-de ATTN=rela SEED=2")


def test_translate_and_align_without_a_checkpoint_name_make_train(tmp_path):
    prepared(tmp_path / "data-bin" / "wmt14_en_de")
    assert_one_line(make(tmp_path, "translate", "PAIR=en-de", "ATTN=entmax15"),
                    "checkpoints/wmt14_en_de/entmax15 has no checkpoint", "make train PAIR=en-de ATTN=entmax15")
    gold = tmp_path / "gold"
    gold.mkdir()
    for name in ("deen.src-tgt", "deen.gold"):
        (gold / name).write_text("")
    assert_one_line(make(tmp_path, "align", "PAIR=en-de", "ATTN=rela", f"GOLD_DIR={gold}"),
                    "checkpoints/wmt14_en_de/rela has no checkpoint", "make train PAIR=en-de ATTN=rela")


def test_bleu_without_translation_names_make_translate(tmp_path):
    prepared(tmp_path / "data-bin" / "wmt14_en_de")
    assert_one_line(make(tmp_path, "bleu", "PAIR=en-de", "ATTN=rela"),
                    "results/wmt14_en_de/rela/test.hyp is missing", "make translate PAIR=en-de ATTN=rela")


def test_align_without_gold_set_says_where_it_comes_from(tmp_path):
    line = assert_one_line(make(tmp_path, "align", "PAIR=en-de", "ATTN=rela", f"GOLD_DIR={tmp_path / 'gold'}"),
                           "gold/deen.src-tgt is missing", "GOLD_DIR")
    assert "word-alignment-gold" in line
    assert_one_line(make(tmp_path, "align", "PAIR=en-fi", "ATTN=rela"), "no gold word alignment exists for PAIR=en-fi")


def test_report_with_translations_but_no_scores_names_make_bleu(tmp_path):
    (tmp_path / "results" / "wmt14_en_de" / "rela").mkdir(parents=True)
    (tmp_path / "results" / "wmt14_en_de" / "rela" / "test.hyp").write_text("a\n")
    assert_one_line(make(tmp_path, "report", "PAIR=en-de"), "no scored variant", "make bleu PAIR=en-de")


@pytest.mark.parametrize("arguments, expected", [
    (["train", "ATTN=relu"], "unknown attention variant 'relu'"),
    (["train", "ATTN=softmax,rela"], "make sweep ATTN=softmax,rela"),
    (["sweep", "ATTN=softmax,rela", "LAUNCHER=pbs"], "LAUNCHER=pbs: choose one of basic, local, slurm"),
    (["sweep", "ATTN=rela", "SEEDS=1,two"], "SEEDS=1,two: seeds are whole numbers"),
])
def test_bad_variables_fail_with_one_line(tmp_path, arguments, expected):
    assert_one_line(make(tmp_path, *arguments), expected)


def test_unknown_pair_is_make_s_own_one_line_error(tmp_path):
    result = make(tmp_path, "train", "PAIR=en-xx")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if "unknown PAIR=en-xx" in line]


def test_checks_pass_when_the_inputs_exist(tmp_path, toy_binarized):
    """The same checks, given their inputs, print nothing and let the target run (status 0)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "toy").symlink_to(toy_binarized, target_is_directory=True)
    prepared(tmp_path / "data" / "wmt14_en_de")
    (tmp_path / "checkpoints" / "wmt14_en_de" / "rela").mkdir(parents=True)
    (tmp_path / "checkpoints" / "wmt14_en_de" / "rela" / "checkpoint_best.pt").write_bytes(b"")
    (tmp_path / "results" / "wmt14_en_de" / "rela").mkdir(parents=True)
    for name in ("test.hyp", "bleu.json"):
        (tmp_path / "results" / "wmt14_en_de" / "rela" / name).write_text("")
    (tmp_path / "gold").mkdir()
    for name in ("deen.src-tgt", "deen.gold"):
        (tmp_path / "gold" / name).write_text("")
    check = [sys.executable, "-m", "mt_pipeline.launch_checks", "--pair", "en-de", "--data-root", "data",
             "--gold-dir", "gold"]
    for arguments in (["--config", "toy", "train", "--attn", "rela"],
                      ["--config", "toy", "sweep", "--attn", "softmax,rela", "--launcher", "local", "--seeds", "1,2"],
                      *(["--config", "wmt14_en_de", target, "--attn", "rela"]
                        for target in ("translate", "bleu", "align")),
                      ["--config", "wmt14_en_de", "report"]):
        result = subprocess.run([*check, *arguments], capture_output=True, text=True, cwd=tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), arguments
