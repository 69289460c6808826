"""mt_pipeline steps on tiny inputs: extraction, cleaning, normalisation, markers, manifests."""

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from mt_pipeline import CleanConfig, PipelineError
from mt_pipeline.clean import TrainPart, clean_train, normalize_parallel
from mt_pipeline.extract import extract_members
from mt_pipeline.files import count_lines, iter_lines
from mt_pipeline.manifest import available_pairs, load_manifest
from mt_pipeline.steps import read_marker, run_step
from mt_pipeline.text import count_tokens, normalize_line
from mt_pipeline.wmt import extract_corpus

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "manifests"


def _tar(path: Path, members: dict, mode="w:gz", links=()):
    with tarfile.open(path, mode) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


# --- extract ---------------------------------------------------------------------------

def test_extract_tar_gz_inner_paths(tmp_path):
    archive = _tar(tmp_path / "a.tgz", {
        "training/europarl-v7.de-en.de": b"Hallo\nWelt\n",
        "training/europarl-v7.de-en.en": b"Hello\nWorld\n",
        "training/europarl-v7.fr-en.fr": b"Bonjour\n",
    })
    out = {"de": tmp_path / "x.de", "en": tmp_path / "x.en"}
    used = extract_members(archive, {"de": "training/europarl-v7.de-en.de", "en": "training/europarl-v7.de-en.en"}, out)
    assert out["de"].read_bytes() == b"Hallo\nWelt\n" and out["en"].read_bytes() == b"Hello\nWorld\n"
    assert used == {"de": ["training/europarl-v7.de-en.de"], "en": ["training/europarl-v7.de-en.en"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tgz", "x.de", "x.en"]  # no scratch files left


def test_extract_zip_gz_plain_and_nested_gz(tmp_path):
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as bundle:
        bundle.writestr("SETIMES.en-ro.ro", "Bună\n")
    extract_members(tmp_path / "s.zip", {"ro": "SETIMES.en-ro.ro"}, {"ro": tmp_path / "s.ro"})
    assert (tmp_path / "s.ro").read_text(encoding="utf-8") == "Bună\n"

    (tmp_path / "one.gz").write_bytes(gzip.compress(b"a\nb\n"))
    extract_members(tmp_path / "one.gz", {"x": "one"}, {"x": tmp_path / "one.txt"})
    assert (tmp_path / "one.txt").read_bytes() == b"a\nb\n"

    # Gigaword Fr-En: a plain tar holding gzipped text
    archive = _tar(tmp_path / "giga.tar", {"giga-fren.release2.fixed.fr.gz": gzip.compress(b"Oui\n")}, mode="w")
    extract_members(archive, {"fr": "giga-fren.release2.fixed.fr.gz"}, {"fr": tmp_path / "giga.fr"})
    assert (tmp_path / "giga.fr").read_bytes() == b"Oui\n"


def test_extract_glob_concatenates_in_sorted_order(tmp_path):
    archive = _tar(tmp_path / "c.tgz", {
        "casict2011/casict-B_ch.txt": b"B\n", "casict2011/casict-A_ch.txt": b"A\n",
        "casict2011/casict-A_en.txt": b"a\n", "casict2011/casict-B_en.txt": b"b\n",
    })
    out = {"zh": tmp_path / "c.zh", "en": tmp_path / "c.en"}
    extract_members(archive, {"zh": "casict2011/*_c[hn].txt", "en": "casict2011/*_en.txt"}, out)
    assert out["zh"].read_bytes() == b"A\nB\n" and out["en"].read_bytes() == b"a\nb\n"


def test_extract_missing_member_lists_the_archive(tmp_path):
    archive = _tar(tmp_path / "a.tgz", {"training/other.txt": b"x\n"})
    with pytest.raises(PipelineError, match=r"a\.tgz: no member 'training/europarl\.de'.*holds: training/other\.txt"):
        extract_members(archive, {"de": "training/europarl.de"}, {"de": tmp_path / "o.de"})
    assert not (tmp_path / "o.de").exists()


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/evil.txt", "training/../../evil.txt"])
def test_extract_refuses_path_traversal(tmp_path, evil):
    archive = _tar(tmp_path / "a.tgz", {"training/ok.de": b"x\n", evil: b"owned\n"})
    with pytest.raises(PipelineError, match="refusing an archive with an unsafe member path"):
        extract_members(archive, {"de": "training/ok.de"}, {"de": tmp_path / "o.de"})
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as bundle:
        bundle.writestr("ok.de", "x\n")
        bundle.writestr(evil, "owned\n")
    with pytest.raises(PipelineError, match="unsafe member path"):
        extract_members(tmp_path / "a.zip", {"de": "ok.de"}, {"de": tmp_path / "o.de"})
    assert not list(tmp_path.glob("**/evil.txt")) and not (tmp_path / "o.de").exists()


def test_extract_refuses_links_and_unsafe_inner_paths(tmp_path):
    archive = _tar(tmp_path / "a.tgz", {"x": b"1\n"}, links=[("corpus.de", "/etc/passwd")])
    with pytest.raises(PipelineError, match="'corpus.de': not a regular file"):
        extract_members(archive, {"de": "corpus.de"}, {"de": tmp_path / "o.de"})
    with pytest.raises(PipelineError, match="unsafe inner path"):
        extract_members(archive, {"de": "../corpus.de"}, {"de": tmp_path / "o.de"})


def test_extract_corpus_separator_format_and_count_check(tmp_path):
    from mt_pipeline.manifest import TrainSource

    archive = _tar(tmp_path / "wiki-titles.tgz", {"wiki/fi-en/titles.fi-en": "Helsinki ||| Helsinki\nKissa|||Cat\n".encode()})
    source = TrainSource(name="wiki", archive="wiki-titles.tgz", url=None, file="wiki/fi-en/titles.fi-en",
                         separator="|||", columns=("fi", "en"))
    out = {"en": tmp_path / "w.en", "fi": tmp_path / "w.fi"}
    info = extract_corpus(source, archive, out)
    assert info["lines"] == 2
    assert out["fi"].read_text() == "Helsinki\nKissa\n" and out["en"].read_text() == "Helsinki\nCat\n"

    bad = _tar(tmp_path / "bad.tgz", {"a.de": b"1\n2\n3\n", "a.en": b"1\n2\n"})
    source = TrainSource(name="bad", archive="bad.tgz", url="http://x", files={"de": "a.de", "en": "a.en"})
    with pytest.raises(PipelineError, match=r"corpus bad.*line counts differ: .*b\.de has 3 lines, .*b\.en has 2 lines"):
        extract_corpus(source, bad, {"de": tmp_path / "b.de", "en": tmp_path / "b.en"})


# --- reading and normalising text ------------------------------------------------------

def test_iter_lines_splits_on_newline_only(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffa\r\nb\rc\u2028d\n\ne".encode("utf-8"))
    assert list(iter_lines(path)) == ["a", "b\rc\u2028d", "", "e"]
    assert count_lines(path) == 4
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(PipelineError, match=r"t\.txt:2: not valid UTF-8"):
        list(iter_lines(path))
    assert list(iter_lines(path, strict=False)) == ["ok", None]


def test_normalize_line():
    assert normalize_line("  „Hallo“  –  sagte er\r\tgestern ", "de") == '"Hallo" - sagte er gestern'
    assert normalize_line("Ştiinţă", "ro", punct=False) == "Știință"
    assert normalize_line("你好，世界！  ", "zh") == "你好，世界！"  # no Moses rules for Chinese
    assert normalize_line("a\u200bb", "en", punct=False) == "ab"


def test_count_tokens():
    assert count_tokens("Hello big world", "en") == 3
    assert count_tokens("我爱北京 Tian an men 2008", "zh") == 4 + 4
    assert count_tokens("", "zh") == 0


# --- clean ----------------------------------------------------------------------------

def _write(path: Path, lines):
    path.write_bytes(b"".join((l if isinstance(l, bytes) else l.encode("utf-8")) + b"\n" for l in lines))
    return path


def test_clean_train_filters_and_dedup(tmp_path):
    source = _write(tmp_path / "c.de", [
        "Guten Tag .", "", "eins zwei drei", " ".join(["lang"] * 300), "a", "Guten  Tag .", b"\xff kaputt",
        "Kurz", "Er sagte \u201eja\u201c.",
    ])
    target = _write(tmp_path / "c.en", [
        "Good day .", "empty source", "one two three", "long", " ".join(["b"] * 12), "Good day .", "broken",
        "Short", "He said \u201cyes\u201d.",
    ])
    out_de, out_en = tmp_path / "out" / "train.de", tmp_path / "out" / "train.en"
    stats = clean_train([TrainPart("c", source, target)], out_de, out_en, source_lang="de", target_lang="en",
                        config=CleanConfig(max_len=250, ratio=9))
    assert out_de.read_text().splitlines() == ["Guten Tag .", "eins zwei drei", "Kurz", 'Er sagte "ja".']
    assert out_en.read_text().splitlines() == ["Good day .", "one two three", "Short", 'He said "yes."']  # Moses' English quote rule
    assert stats["dropped"] == {"duplicate": 1, "empty": 1, "invalid_utf8": 1, "length": 1, "ratio": 1}
    assert stats["read_total"] == 9 and stats["kept"] == 4
    assert sorted(p.name for p in out_de.parent.iterdir()) == ["train.de", "train.en"]

    capped = clean_train([TrainPart("c", source, target)], out_de, out_en, source_lang="de", target_lang="en",
                         config=CleanConfig(dedup=False), max_lines=3)
    assert capped["read_total"] == 3 and count_lines(out_de) == 2


def test_clean_train_with_worker_processes_matches(tmp_path):
    lines = [f"Satz Nummer {i % 40} ." for i in range(120)]
    source = _write(tmp_path / "c.de", lines)
    target = _write(tmp_path / "c.en", [l.replace("Satz Nummer", "sentence number") for l in lines])
    import mt_pipeline.clean as clean_module

    results = []
    for workers in (1, 2):
        clean_module.CHUNK_PAIRS, saved = 25, clean_module.CHUNK_PAIRS
        try:
            stats = clean_train([TrainPart("c", source, target)], tmp_path / f"{workers}.de", tmp_path / f"{workers}.en",
                                source_lang="de", target_lang="en", config=CleanConfig(), workers=workers)
        finally:
            clean_module.CHUNK_PAIRS = saved
        results.append(((tmp_path / f"{workers}.de").read_text(), stats["kept"]))
    assert results[0] == results[1] and results[0][1] == 40


def test_clean_train_errors_name_the_files(tmp_path):
    a = _write(tmp_path / "a.de", ["x", "y", "z"])
    b = _write(tmp_path / "a.en", ["x", "y"])
    with pytest.raises(PipelineError, match=r"line counts differ: .*a\.de has 3 lines, .*a\.en has 2 lines"):
        clean_train([TrainPart("a", a, b)], tmp_path / "o.de", tmp_path / "o.en", source_lang="de",
                    target_lang="en", config=CleanConfig())
    empty_de, empty_en = _write(tmp_path / "e.de", []), _write(tmp_path / "e.en", [])
    with pytest.raises(PipelineError, match=r"is empty: .*e\.de and .*e\.en have no lines"):
        clean_train([TrainPart("e", empty_de, empty_en)], tmp_path / "o.de", tmp_path / "o.en", source_lang="de",
                    target_lang="en", config=CleanConfig())
    blank_de, blank_en = _write(tmp_path / "b.de", ["", " "]), _write(tmp_path / "b.en", ["x", ""])
    with pytest.raises(PipelineError, match=r"no training pairs left after cleaning .*b\.de.*2 pairs read.*empty: 2"):
        clean_train([TrainPart("b", blank_de, blank_en)], tmp_path / "o.de", tmp_path / "o.en", source_lang="de",
                    target_lang="en", config=CleanConfig())
    with pytest.raises(PipelineError, match=r"not found: .*missing\.de"):
        clean_train([TrainPart("m", tmp_path / "missing.de", b)], tmp_path / "o.de", tmp_path / "o.en",
                    source_lang="de", target_lang="en", config=CleanConfig())
    assert not (tmp_path / "o.de").exists()
    with pytest.raises(PipelineError, match="bad ratio filter"):
        CleanConfig(ratio=0.5)


def test_normalize_parallel_keeps_every_line(tmp_path):
    source = _write(tmp_path / "v.de", ["„a“", "", "b"])
    target = _write(tmp_path / "v.en", ["a", "x", ""])
    n = normalize_parallel(source, target, tmp_path / "n.de", tmp_path / "n.en", source_lang="de",
                           target_lang="en", punct=True, what="valid set")
    assert n == 3 and (tmp_path / "n.de").read_text() == '"a"\n\nb\n'
    bad = _write(tmp_path / "bad.en", [b"\xc3"] * 3)
    with pytest.raises(PipelineError, match=r"bad\.en:1: not valid UTF-8"):
        normalize_parallel(source, bad, tmp_path / "n.de", tmp_path / "n.en", source_lang="de", target_lang="en",
                           punct=True, what="valid set")


# --- restartable steps ------------------------------------------------------------------

def test_run_step_skips_complete_and_reruns_on_change(tmp_path):
    calls = []
    output = tmp_path / "out.txt"

    def action(text="v1"):
        calls.append(text)
        output.write_text(text)
        return {"n": len(calls)}

    marker = tmp_path / "step.done.json"
    fp1, _ = run_step("demo", marker, params={"a": 1}, inputs={"x": "f"}, outputs=[output], action=action)
    fp2, info = run_step("demo", marker, params={"a": 1}, inputs={"x": "f"}, outputs=[output], action=action)
    assert calls == ["v1"] and fp1 == fp2 and info == {"n": 1}
    run_step("demo", marker, params={"a": 2}, inputs={"x": "f"}, outputs=[output], action=action)  # new params
    assert len(calls) == 2
    output.write_text("truncated!")  # output changed behind the marker's back
    assert read_marker(marker) is None
    run_step("demo", marker, params={"a": 2}, inputs={"x": "f"}, outputs=[output], action=action)
    assert len(calls) == 3 and json.loads(marker.read_text())["outputs"] == {"out.txt": 2}

    def failing():
        raise PipelineError("boom")

    with pytest.raises(PipelineError):
        run_step("demo", marker, params={"a": 3}, inputs={}, outputs=[output], action=failing)
    assert not marker.exists()  # a failed step leaves no marker: the next run redoes it


# --- manifests ------------------------------------------------------------------------

def test_manifests_cover_the_five_directions():
    import sacrebleu.dataset

    assert available_pairs(MANIFESTS) == ["en-de", "en-fi", "en-fr", "ro-en", "zh-en"]
    expected = {"en-de": ("wmt13", "wmt14/full"), "en-fr": ("wmt13", "wmt14/full"), "ro-en": ("wmt16/dev", "wmt16"),
                "en-fi": ("wmt17", "wmt18"), "zh-en": ("wmt17", "wmt18")}
    archives = {}
    for pair, (valid, test) in expected.items():
        manifest = load_manifest(pair, MANIFESTS)
        assert (manifest.valid.sacrebleu_test_set, manifest.test.sacrebleu_test_set) == (valid, test)
        for spec in (manifest.valid, manifest.test):
            assert spec.sacrebleu_langpair == pair
            assert pair in sacrebleu.dataset.DATASETS[spec.sacrebleu_test_set].langpairs
        raw = json.loads(manifest.path.read_text())
        for entry, source in zip(raw["train"], manifest.train):
            assert source.sha256 is None and "first verified download" in entry["sha256_comment"]
            if not source.manual:
                assert source.url.startswith("https://") or source.url.startswith("http://")
            # one archive name always means one URL (downloads are shared between pairs)
            assert archives.setdefault(source.archive, source.url) == source.url
    names = {pair: [s.name for s in load_manifest(pair, MANIFESTS).train] for pair in expected}
    assert names["en-de"] == ["europarl-v7", "commoncrawl", "news-commentary-v9"]
    assert names["en-fr"] == ["europarl-v7", "commoncrawl", "un", "news-commentary-v9", "giga-fren"]
    assert names["ro-en"] == ["europarl-v8", "setimes2"]
    assert names["en-fi"] == ["europarl-v8", "paracrawl-v1", "wiki-headlines", "rapid2016"]
    zh = load_manifest("zh-en", MANIFESTS)
    assert [s.name for s in zh.train if not s.manual] == ["news-commentary-v13", "un-v1.0"]
    assert all(s.manual and "regist" in s.instructions for s in zh.train if s.name.startswith("cwmt"))
    assert zh.spm["joint"] is False and zh.spm["character_coverage"]["zh"] == 0.9995


def test_unknown_pair_lists_the_valid_ones():
    with pytest.raises(PipelineError, match=r"unknown language pair 'de-en' \(did you mean en-de\?\); "
                                            r"valid pairs: en-de, en-fi, en-fr, ro-en, zh-en"):
        load_manifest("de-en", MANIFESTS)


def test_broken_manifest_is_reported(tmp_path):
    data = json.loads((MANIFESTS / "en-fr.json").read_text())
    un = [entry["name"] for entry in data["train"]].index("un")  # not in the catalogue: typed inner paths
    data["train"][un]["files"] = {"en": "../escape.en", "fr": "x.fr"}
    (tmp_path / "en-fr.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match=rf"en-fr\.json: train\[{un}\] \(corpus un\): unsafe inner path"):
        load_manifest("en-fr", tmp_path)
    data["train"][un]["files"] = {"en": "a.en", "de": "a.de"}
    (tmp_path / "en-fr.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match="'files' must map exactly the languages en, fr"):
        load_manifest("en-fr", tmp_path)


# --- dev/test sets through sacreBLEU (its cache filled by hand: no network) ----------------

def _sgm(path: Path, lines, lang):
    path.parent.mkdir(parents=True, exist_ok=True)
    segments = "".join(f'<seg id="{i}">{line}</seg>\n' for i, line in enumerate(lines, 1))
    path.write_text(f'<srcset setid="x" srclang="any">\n<doc sysid="ref" docid="d1" genre="news" origlang="{lang}">\n'
                    f"{segments}</doc>\n</srcset>\n", encoding="utf-8")


def test_test_sets_come_through_sacrebleu(tmp_path, monkeypatch):
    from mt_pipeline.testsets import fetch_test_set

    # Any download attempt would go to a closed local port, never to the internet.
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    cache = tmp_path / "sacrebleu"
    ro, en = ["Bună ziua", "Ştiri  de azi"], ["Good day", "Today's news"]
    for name, tarball, folder, stem in [("wmt16/dev", "wmt16_dev.dev.tgz", "dev", "newsdev2016"),
                                        ("wmt16", "wmt16.test.tgz", "test", "newstest2016")]:
        raw = cache / name / "raw"
        raw.mkdir(parents=True)
        (raw / tarball).write_bytes(b"already downloaded")
        _sgm(raw / folder / f"{stem}-roen-src.ro.sgm", ro, "ro")
        _sgm(raw / folder / f"{stem}-roen-ref.en.sgm", en, "ro")
    manifest = load_manifest("ro-en", MANIFESTS)
    for split, spec in (("valid", manifest.valid), ("test", manifest.test)):
        out = {"ro": tmp_path / f"{split}.ro", "en": tmp_path / f"{split}.en"}
        origin = fetch_test_set(spec, ("ro", "en"), out, from_dir=None, offline=False, cache=cache)
        assert origin == f"sacrebleu:{spec.sacrebleu_test_set}:ro-en"
        assert out["ro"].read_text(encoding="utf-8") == "Bună ziua\nŞtiri de azi\n"  # raw: no normalisation
        assert out["en"].read_text(encoding="utf-8") == "Good day\nToday's news\n"
    with pytest.raises(PipelineError, match="newstest2016: --offline, and newstest2016.ro / newstest2016.en are not"):
        fetch_test_set(manifest.test, ("ro", "en"), out, from_dir=tmp_path, offline=True, cache=cache)


def test_training_speed_sums_every_session_of_the_hydra_logs(tmp_path):
    """make train: one Hydra log per session; make sweep: one log per job that a resume appends to.
    Time is each session's span, so the hours between a kill and the resume do not count."""
    from mt_pipeline.pairs import training_speed

    def session(start: str, end: str, wps: float) -> str:
        return (f"[2026-01-31 {start},000][fairseq_cli.train][INFO] - {{'_name': None, 'common': {{}}}}\n"
                "  (a continuation line of the model's repr)\n"
                f"[2026-01-31 {end},000][train][INFO] - epoch 001 | loss 3.1 | wps {wps} | ups 2\n")

    single = tmp_path / "single"
    for stamp, text in (("12-00-00", session("12:00:00", "12:10:00", 1000.0)),
                        ("14-00-00", session("14:00:00", "14:05:00", 2000.0))):
        (single / "hydra" / stamp).mkdir(parents=True)
        (single / "hydra" / stamp / "hydra_train.log").write_text(text, encoding="utf-8")
    assert training_speed(single) == {"train_wps": 1500.0, "train_seconds": 900.0}

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "hydra_train.log").write_text(session("12:00:00", "12:10:00", 1000.0) + session("18:00:00", "18:01:00", 4000.0),
                                          encoding="utf-8")
    assert training_speed(sweep) == {"train_wps": 2500.0, "train_seconds": 660.0}
    assert training_speed(tmp_path / "never-trained") == {"train_wps": None, "train_seconds": None}
    (sweep / "hydra_train.log").write_text(session("12:00:00", "12:10:00", 1000.0).replace("12:10:00", "12:70:00"),
                                          encoding="utf-8")
    with pytest.raises(PipelineError, match=r"hydra_train\.log:3: not a date and time: '2026-01-31 12:70:00'"):
        training_speed(sweep)
