"""The manifests' corpora against mtdata's offline index (mt_pipeline.catalogue), no network.

mtdata builds its index on first use (about half a minute) in $MTDATA (default ~/.mtdata).
"""

import io
import json
import re
import subprocess
import sys
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from mt_pipeline import PipelineError
from mt_pipeline.catalogue import index, lookup
from mt_pipeline.manifest import archive_name, available_pairs, load_manifest
from mt_pipeline.wmt import extract_corpus

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "manifests"
# mtdata's ISO 639-3 codes of the pipeline's languages, written out so as not to reuse lookup's mapping
ISO3 = {"deu": "de", "eng": "en", "fra": "fr", "ron": "ro", "fin": "fi", "zho": "zh"}
# Catalogued corpora fetched from where the WMT task page itself pointed, though not from statmt.org
WMT_DISTRIBUTED_ELSEWHERE = {"OPUS-setimes-v2-eng-ron"}  # the WMT16 page links OPUS's SETIMES2
DATASET_ID = re.compile(r"\b[A-Z][A-Za-z]+-[a-z0-9_.]+-[A-Za-z0-9_.]+-[a-z]{3}-[a-z]{3}\b")


def _entries():
    """(pair, raw manifest entry, the pipeline's TrainSource) for every training corpus."""
    for pair in available_pairs(MANIFESTS):
        manifest = load_manifest(pair, MANIFESTS)
        raw = json.loads(manifest.path.read_text(encoding="utf-8"))["train"]
        assert [entry["name"] for entry in raw] == [source.name for source in manifest.train]
        yield from ((pair, entry, source) for entry, source in zip(raw, manifest.train))


def _catalogue_entry(dataset_id: str):
    from mtdata.entry import DatasetId

    did = DatasetId.parse(dataset_id)
    assert did in index(), f"{dataset_id} is not in mtdata's index"
    return index()[did]


def test_every_dataset_id_resolves_and_is_what_the_pipeline_fetches():
    seen = 0
    for pair, entry, source in _entries():
        if "mtdata_id" not in entry:
            continue
        seen += 1
        catalogued = _catalogue_entry(entry["mtdata_id"])
        assert source.mtdata_id == entry["mtdata_id"] == str(catalogued.did)
        assert source.url == catalogued.url and source.archive == archive_name(catalogued.url)
        if catalogued.in_ext == "tmx":
            assert source.tmx == catalogued.in_paths[0] and source.files is None
        else:
            languages = [ISO3[str(tag)] for tag in catalogued.did.langs]
            assert sorted(languages) == sorted(pair.split("-"))
            assert source.files == dict(zip(languages, catalogued.in_paths)) and source.tmx is None
    assert seen == 14


def test_corpora_outside_the_catalogue_say_why_and_are_really_missing():
    catalogue_urls = {entry.url for entry in index().get_entries() if isinstance(entry.url, str)}
    direct = [(pair, entry) for pair, entry, source in _entries() if "mtdata_id" not in entry and not source.manual]
    assert [(pair, entry["name"]) for pair, entry in direct] == [("en-fi", "wiki-headlines"), ("en-fr", "un")]
    for pair, entry in direct:
        assert entry["not_in_catalogue"]
        assert entry["url"] not in catalogue_urls and entry["url"].replace("https:", "http:") not in catalogue_urls


def test_version_differences_are_stated_and_name_real_ids():
    for pair, entry, source in _entries():
        if source.manual:
            continue
        url = urllib.parse.urlsplit(source.url)
        from_wmt = url.hostname.endswith("statmt.org") and url.path.startswith("/wmt")
        if not from_wmt and entry.get("mtdata_id") not in WMT_DISTRIBUTED_ELSEWHERE:
            assert entry.get("differs_from_paper") or entry.get("not_in_catalogue"), (pair, entry["name"])
        for text in (entry.get("differs_from_paper", ""), entry.get("not_in_catalogue", "")):
            for dataset_id in DATASET_ID.findall(text):
                _catalogue_entry(dataset_id)


def test_lookup_errors_name_the_id():
    for dataset_id, message in [
        ("Statmt-europarl_wmt13-9-deu-eng", r"Statmt-europarl_wmt13-9-deu-eng is not in the index of mtdata 0\.5\.1"),
        ("Statmt-europarl_wmt13-7-de-en", r"as mtdata spells it: Statmt-europarl_wmt13-7-deu-eng"),
        ("Statmt-europarl_wmt13-7-fra-eng", r"Statmt-europarl_wmt13-7-fra-eng is a fra-eng corpus, not en-de"),
        ("europarl-v7", r"'europarl-v7' is not an mtdata dataset ID"),
        ("Statmt-europarl-9-deu-eng", r"Statmt-europarl-9-deu-eng: mtdata gives it as tsv\.gz"),
    ]:
        with pytest.raises(PipelineError, match=message):
            lookup(dataset_id, ("en", "de"))


def test_manifest_refuses_hand_typed_copies(tmp_path):
    data = json.loads((MANIFESTS / "en-de.json").read_text())
    data["train"][0]["files"] = {"en": "training/europarl-v7.de-en.en", "de": "training/europarl-v7.de-en.de"}
    (tmp_path / "en-de.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match=r"train\[0\] \(corpus europarl-v7\): the catalogue entry "
                                            r"Statmt-europarl_wmt13-7-deu-eng gives the URL and inner paths; "
                                            r"remove 'files' from the manifest"):
        load_manifest("en-de", tmp_path)
    data["train"][0] = {"name": "europarl-v7", "url": "https://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz",
                        "files": {"en": "a.en", "de": "a.de"}}
    (tmp_path / "en-de.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match="needs 'not_in_catalogue'"):
        load_manifest("en-de", tmp_path)


def test_from_dir_names_never_match_another_corpus():
    ro_en = {source.name: source for source in load_manifest("ro-en", MANIFESTS).train}
    # both OPUS archives end in en-ro.txt.zip: only their own archive names are accepted
    assert ro_en["europarl-v8"].local_names == ("OPUS-Europarl_v8_moses_en-ro.txt.zip",)
    assert ro_en["setimes2"].local_names == ("OPUS-SETIMES_v2_moses_en-ro.txt.zip",)
    europarl = load_manifest("en-de", MANIFESTS).train[0]
    assert europarl.local_names == ("wmt13_training-parallel-europarl-v7.tgz", "training-parallel-europarl-v7.tgz")


def _tmx(units) -> bytes:
    body = "".join("<tu>" + "".join(f'<tuv xml:lang="{lang}"><seg>{text}</seg></tuv>' for lang, text in unit)
                   + "</tu>" for unit in units)
    return f'<?xml version="1.0" encoding="utf-8"?><tmx version="1.4"><header/><body>{body}</body></tmx>'.encode()


def test_tmx_corpus_is_read_with_mtdatas_reader(tmp_path):
    rapid = {source.name: source for source in load_manifest("en-fi", MANIFESTS).train}["rapid2016"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("rapid2016.en-fi.tmx", _tmx([
            [("en-GB", "Hello &amp; welcome"), ("fi-FI", "Hei ja tervetuloa")],
            [("en-GB", "Only English")],
            [("fi-FI", "Kissa"), ("en-GB", "Cat")],
        ]))
    archive = tmp_path / rapid.archive
    archive.write_bytes(buffer.getvalue())
    outputs = {"en": tmp_path / "r.en", "fi": tmp_path / "r.fi"}
    info = extract_corpus(rapid, archive, outputs)
    assert info["lines"] == 2 and info["members"] == {"tmx": ["rapid2016.en-fi.tmx"]}
    assert outputs["en"].read_text() == "Hello & welcome\nCat\n"
    assert outputs["fi"].read_text() == "Hei ja tervetuloa\nKissa\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive.name, "r.en", "r.fi"])

    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("rapid2016.en-fi.tmx", b"<tmx><body><tu>")
    with pytest.raises(PipelineError, match=re.escape(f"{archive}:rapid2016.en-fi.tmx: not a readable TMX file "
                                                      f"with en and fi")):
        extract_corpus(rapid, archive, outputs)


def test_mtdata_is_imported_only_when_needed_and_leaves_logging_alone():
    code = (
        "import logging, sys\n"
        "import mt_pipeline.cli, mt_pipeline.wmt\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mtdata'))\n"
        "from mt_pipeline.manifest import load_manifest\n"
        "load_manifest('en-de')\n"
        "print(logging.getLogger().handlers, logging.getLogger().level)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", f"[] {30}"]
