"""`python -m mt_pipeline prepare` / prepare_corpus: errors and a reduced end-to-end run.

The end-to-end run uses real text from ../shared/data (3,000 Multi30k De-En training
pairs, newstest2013 lines for valid and test) and is skipped when that folder is absent.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mt_pipeline import PipelineError, PreparedData, prepare_corpus

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "multi30k").is_dir() or not (SHARED_DATA / "wmt-newstest").is_dir(),
    reason=f"shared test data not found at {SHARED_DATA} (multi30k/, wmt-newstest/)",
)


def _run(*arguments, cwd):
    return subprocess.run([sys.executable, "-m", "mt_pipeline", *map(str, arguments)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))


def _write(path: Path, lines):
    path.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path):
    files = {}
    for name, lines in {"train.de": ["ein Haus", "ein Hund", "eine Katze"], "train.en": ["a house", "a dog", "a cat"],
                        "valid.de": ["ein Baum"], "valid.en": ["a tree"]}.items():
        files[name] = _write(tmp_path / name, lines)
    return files


def _prepare_args(files, tmp_path, **override):
    args = {"--src": files["train.de"], "--tgt": files["train.en"], "--src-lang": "de", "--tgt-lang": "en",
            "--valid-src": files["valid.de"], "--valid-tgt": files["valid.en"], "--out": tmp_path / "bin",
            "--root": tmp_path / "work"}
    args.update(override)
    return [x for key, value in args.items() for x in (key, value)]


def test_wrong_pair_lists_valid_pairs(tmp_path):
    result = _run("data", "--pair", "en-xx", "--root", tmp_path / "w", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: unknown language pair 'en-xx'; valid pairs: en-de, en-fi, en-fr, ro-en, zh-en" in result.stderr
    assert "Traceback" not in result.stderr
    listing = _run("pairs", cwd=tmp_path)
    assert listing.returncode == 0 and "cwmt-casia2015 (manual)" in listing.stdout


def test_manual_corpus_is_required_unless_skipped(tmp_path):
    result = _run("data", "--pair", "zh-en", "--root", tmp_path / "w", "--offline", cwd=tmp_path)
    assert result.returncode == 2
    assert "manual corpus cwmt-casia2015: casia2015.zip not found" in result.stderr and "--skip-manual" in result.stderr
    skipped = _run("data", "--pair", "zh-en", "--root", tmp_path / "w", "--offline", "--skip-manual", cwd=tmp_path)
    assert skipped.returncode == 2 and "left out (--skip-manual)" in skipped.stderr
    assert "training-parallel-nc-v13.tgz: not downloaded yet (no --from-dir given), and --offline forbids downloading" in skipped.stderr


def test_prepare_mismatched_line_counts(tiny, tmp_path):
    _write(tiny["train.en"], ["a house", "a dog"])
    result = _run("prepare", *_prepare_args(tiny, tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"training corpus: line counts differ: {tiny['train.de']} has 3 lines, {tiny['train.en']} has 2 lines" \
        in result.stderr


def test_prepare_missing_and_empty_files(tiny, tmp_path):
    result = _run("prepare", *_prepare_args(tiny, tmp_path, **{"--valid-tgt": tmp_path / "nope.en"}), cwd=tmp_path)
    assert result.returncode == 2 and f"valid set target file not found: {tmp_path / 'nope.en'}" in result.stderr
    _write(tiny["train.de"], [])
    _write(tiny["train.en"], [])
    result = _run("prepare", *_prepare_args(tiny, tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"training corpus is empty: {tiny['train.de']} and {tiny['train.en']} have no lines" in result.stderr


def test_prepare_bad_arguments(tiny, tmp_path):
    with pytest.raises(PipelineError, match="source and target language are both 'de'"):
        prepare_corpus(tiny["train.de"], tiny["train.en"], src_lang="de", tgt_lang="de", valid_src=tiny["valid.de"],
                       valid_tgt=tiny["valid.en"], out=tmp_path / "bin", root=tmp_path / "w")
    with pytest.raises(PipelineError, match="unknown step.*tokenize.*steps: clean, spm, encode, binarize"):
        prepare_corpus(tiny["train.de"], tiny["train.en"], src_lang="de", tgt_lang="en", valid_src=tiny["valid.de"],
                       valid_tgt=tiny["valid.en"], out=tmp_path / "bin", root=tmp_path / "w", steps="clean,tokenize")
    with pytest.raises(PipelineError, match="give both --test-src and --test-tgt"):
        prepare_corpus(tiny["train.de"], tiny["train.en"], src_lang="de", tgt_lang="en", valid_src=tiny["valid.de"],
                       valid_tgt=tiny["valid.en"], out=tmp_path / "bin", root=tmp_path / "w", test_src=tiny["valid.de"])
    with pytest.raises(PipelineError, match="step 'spm' has not been completed"):
        prepare_corpus(tiny["train.de"], tiny["train.en"], src_lang="de", tgt_lang="en", valid_src=tiny["valid.de"],
                       valid_tgt=tiny["valid.en"], out=tmp_path / "bin", root=tmp_path / "w", steps="clean,encode")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "precious.txt").write_text("mine")
    with pytest.raises(PipelineError, match="refusing to replace .*taken: it exists and was not written by mt_pipeline"):
        prepare_corpus(tiny["train.de"], tiny["train.en"], src_lang="de", tgt_lang="en", valid_src=tiny["valid.de"],
                       valid_tgt=tiny["valid.en"], out=tmp_path / "taken", root=tmp_path / "w")


@needs_shared
def test_separate_vocabularies_for_chinese(tmp_path):
    folder = SHARED_DATA / "wmt-newstest" / "zh-en"
    zh = (folder / "newstest2018.zh").read_text(encoding="utf-8").splitlines()[:800]
    en = (folder / "newstest2018.en").read_text(encoding="utf-8").splitlines()[:800]
    files = {"train.zh": _write(tmp_path / "train.zh", zh[100:]), "train.en": _write(tmp_path / "train.en", en[100:]),
             "valid.zh": _write(tmp_path / "valid.zh", zh[:100]), "valid.en": _write(tmp_path / "valid.en", en[:100])}
    result = prepare_corpus(files["train.zh"], files["train.en"], src_lang="zh", tgt_lang="en",
                            valid_src=files["valid.zh"], valid_tgt=files["valid.en"], out=tmp_path / "bin",
                            root=tmp_path / "w", spm_vocab=2000, joint=False, steps="clean,spm,encode")
    assert result is None  # stopped before binarize
    work = tmp_path / "w" / "prepare-bin"
    spm_info = json.loads((work / "spm.done.json").read_text())
    assert spm_info["info"]["zh"]["coverage"] == 0.9995 and spm_info["info"]["en"]["coverage"] == 1.0
    encoded_zh = (work / "encoded" / "train.zh").read_text(encoding="utf-8").splitlines()
    assert len(encoded_zh) == json.loads((work / "clean.done.json").read_text())["info"]["kept"]
    assert "▁" in encoded_zh[0] and " " in encoded_zh[0]  # SentencePiece segmented raw Chinese


@needs_shared
def test_prepare_end_to_end(tmp_path):
    newstest = SHARED_DATA / "wmt-newstest" / "en-de"
    de = (newstest / "newstest2013.de").read_text(encoding="utf-8").splitlines()
    en = (newstest / "newstest2013.en").read_text(encoding="utf-8").splitlines()
    valid = (_write(tmp_path / "valid.de", de[:200]), _write(tmp_path / "valid.en", en[:200]))
    test = (_write(tmp_path / "test.de", de[200:400]), _write(tmp_path / "test.en", en[200:400]))
    out = tmp_path / "data-bin" / "m30k"
    prepared = prepare_corpus(
        SHARED_DATA / "multi30k" / "train.de.gz", SHARED_DATA / "multi30k" / "train.en.gz",
        src_lang="de", tgt_lang="en", valid_src=valid[0], valid_tgt=valid[1], test_src=test[0], test_tgt=test[1],
        out=out, root=tmp_path / "work", spm_vocab=1000, max_train_lines=3000, workers=1,
        sacrebleu_test_set="wmt13",
    )
    assert isinstance(prepared, PreparedData) and prepared.data_bin == out
    assert prepared.spm_model == out / "spm.model" and prepared.spm_models == {"de": out / "spm.model",
                                                                              "en": out / "spm.model"}
    for split in ("train", "valid", "test"):
        for lang in ("de", "en"):
            for suffix in ("bin", "idx"):
                assert (out / f"{split}.de-en.{lang}.{suffix}").stat().st_size > 0
    dict_de, dict_en = (out / "dict.de.txt").read_text(), (out / "dict.en.txt").read_text()
    assert dict_de == dict_en and 500 < len(dict_de.splitlines()) <= 1000  # joined dictionary
    assert prepared.test_source.read_text(encoding="utf-8") == test[0].read_text(encoding="utf-8")
    assert prepared.test_reference.read_text(encoding="utf-8") == test[1].read_text(encoding="utf-8")
    info = json.loads(prepared.info_file.read_text())
    assert info["counts"]["valid"] == 200 and info["counts"]["test"] == 200 and 2900 < info["counts"]["train"] <= 3000
    assert prepared.sacrebleu_test_set == "wmt13" and prepared.sacrebleu_langpair == "de-en"
    assert PreparedData.load(out) == prepared
    pieces = prepared.preprocess(["Ein Mann fährt \u201eFahrrad\u201c."])
    assert pieces[0].startswith("▁") and '"' in pieces[0]

    # The same command again: every step is complete and skipped.
    again = _run("prepare", "--src", SHARED_DATA / "multi30k" / "train.de.gz",
                 "--tgt", SHARED_DATA / "multi30k" / "train.en.gz", "--src-lang", "de", "--tgt-lang", "en",
                 "--valid-src", valid[0], "--valid-tgt", valid[1], "--test-src", test[0], "--test-tgt", test[1],
                 "--out", out, "--root", tmp_path / "work", "--spm-vocab", "1000", "--max-train-lines", "3000",
                 "--workers", "1", "--sacrebleu-test-set", "wmt13", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already complete, skipped") == 4 and again.stdout.strip() == str(out)
    # Multi30k text must never reach the repository: everything stayed under tmp_path.
    assert not any(p.suffix == ".gz" for p in out.iterdir())


@needs_shared
def test_upsampled_extra_training_text_and_extra_test_sets(tmp_path):
    """Multi30k + another corpus 3x (the runner's gold-text recipe), then a second test set binarized
    with the same SentencePiece model and dictionaries as ``test1``."""
    from mt_pipeline.clean import TrainPart
    from mt_pipeline.prepare import add_test_set

    newstest = SHARED_DATA / "wmt-newstest" / "en-de"
    de = (newstest / "newstest2013.de").read_text(encoding="utf-8").splitlines()
    en = (newstest / "newstest2013.en").read_text(encoding="utf-8").splitlines()
    valid = (_write(tmp_path / "valid.de", de[:100]), _write(tmp_path / "valid.en", en[:100]))
    extra = (_write(tmp_path / "extra.de", de[100:150]), _write(tmp_path / "extra.en", en[100:150]))
    second = (_write(tmp_path / "second.de", de[150:180]), _write(tmp_path / "second.en", en[150:180]))
    out = tmp_path / "bin"
    prepared = prepare_corpus(
        SHARED_DATA / "multi30k" / "train.de.gz", SHARED_DATA / "multi30k" / "train.en.gz", src_lang="de",
        tgt_lang="en", valid_src=valid[0], valid_tgt=valid[1], test_src=valid[0], test_tgt=valid[1], out=out,
        root=tmp_path / "work", spm_vocab=800, max_train_lines=1000,
        extra_train=[TrainPart("extra", extra[0], extra[1], 3)])
    info = json.loads(prepared.info_file.read_text())
    assert info["counts"]["train"] > 1000 and info["counts"]["train"] - 150 <= 1000  # 50 pairs, 3 copies each
    reference = add_test_set(prepared, "test1", second[0], second[1])
    assert reference.read_text(encoding="utf-8") == second[1].read_text(encoding="utf-8")
    for lang in ("de", "en"):
        assert (out / f"test1.de-en.{lang}.bin").stat().st_size > 0
    assert (out / "test1.de-en.de.idx").stat().st_size == (out / "test1.de-en.en.idx").stat().st_size
    marker = (out / "test1.done.json").stat().st_mtime_ns
    add_test_set(prepared, "test1", second[0], second[1])  # done: skipped
    assert (out / "test1.done.json").stat().st_mtime_ns == marker
    with pytest.raises(PipelineError, match="named test1, test2"):
        add_test_set(prepared, "valid", second[0], second[1])
