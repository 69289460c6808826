"""Per-direction manifests (``data/manifests/<pair>.json``) and their checksum lock files.

A manifest lists the official training corpora of the WMT year, the dev and test sets
(sacreBLEU test-set names, so BLEU is scored against the official references, and the
plain-text file names used with --from-dir) and the SentencePiece defaults. A training corpus
is one of:

* ``"mtdata_id"``: its mtdata dataset ID; the URL and the inner paths come from mtdata's index
  (:mod:`mt_pipeline.catalogue`), never from the manifest;
* ``"url"`` with ``"not_in_catalogue"`` saying why no mtdata ID serves, and its inner paths;
* ``"manual": true`` with ``"instructions"`` (CWMT needs registration), the archive's name and
  its inner paths.

``"differs_from_paper"`` says where the corpus is not the release the ReLA paper trained on.
Checksums are ``null`` until a first verified download: ``--record-checksums`` writes the
computed sums to ``<pair>.lock.json`` beside the manifest (trust on first use) and later runs
verify against them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import posixpath
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from nmt_common.files import write_json

from .catalogue import lookup
from .download import is_url
from .errors import PipelineError
from .extract import check_inner_path

DEFAULT_MANIFEST_DIR = Path(__file__).resolve().parents[1] / "data" / "manifests"
_HEX = set("0123456789abcdef")
# What a catalogued corpus takes from mtdata's index; a manifest giving them too is refused.
_FROM_CATALOGUE = ("url", "archive", "files", "file", "separator", "columns", "manual")


@dataclass(frozen=True)
class TrainSource:
    name: str
    archive: str  # file name under ROOT/downloads (see archive_name) or, for a manual corpus, the user's
    url: str | None
    mirrors: tuple = ()
    sha256: str | None = None
    manual: bool = False
    instructions: str | None = None
    # parallel files: language -> inner path (or glob pattern)
    files: dict | None = None
    # or one file with both languages on a line: inner path, separator and column languages
    file: str | None = None
    separator: str | None = None
    columns: tuple = ()
    # or one TMX file holding both languages
    tmx: str | None = None
    mtdata_id: str | None = None
    differs_from_paper: str | None = None
    # file names accepted in --from-dir: the archive name, and the URL's own when no other corpus shares it
    local_names: tuple = ()


@dataclass(frozen=True)
class TestSet:
    name: str
    sacrebleu_test_set: str | None
    sacrebleu_langpair: str | None
    local: dict  # language -> file name used with --from-dir


@dataclass(frozen=True)
class Manifest:
    path: Path
    pair: str
    src: str
    tgt: str
    campaign: str
    train: tuple
    valid: TestSet
    test: TestSet
    spm: dict = field(default_factory=dict)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f"{self.pair}.lock.json")


def manifest_dir(directory: Path | None) -> Path:
    directory = Path(directory) if directory is not None else DEFAULT_MANIFEST_DIR
    if not directory.is_dir():
        raise PipelineError(f"manifest folder not found: {directory} (pass --manifest-dir)")
    return directory


def available_pairs(directory: Path | None = None) -> list[str]:
    directory = manifest_dir(directory)
    return sorted(p.stem for p in directory.glob("*.json") if not p.name.endswith(".lock.json"))


def archive_name(url: str) -> str:
    """The file name a download of ``url`` is saved under: the URL's path with '/' as '_'
    (``wmt13_training-parallel-europarl-v7.tgz``), one name per URL path, so that directions
    share a download and two corpora whose URLs end alike (OPUS's ``en-ro.txt.zip``) do not."""
    return urllib.parse.urlsplit(url).path.strip("/").replace("/", "_")


def _url_basename(url: str | None) -> str | None:
    return posixpath.basename(urllib.parse.urlsplit(url).path) if url else None


def _need(data: dict, key: str, kind, where: str):
    if key not in data:
        raise PipelineError(f"{where}: missing field '{key}'")
    value = data[key]
    if not isinstance(value, kind):
        raise PipelineError(f"{where}: field '{key}' should be {getattr(kind, '__name__', kind)}, not {value!r}")
    return value


def _sha(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64 or not set(value.lower()) <= _HEX:
        raise PipelineError(f"{where}: sha256 must be 64 hex digits or null, not {value!r}")
    return value.lower()


def _layout(entry: dict, langs: tuple, where: str) -> dict:
    """Inner paths given in the manifest: 'files' (language -> path) or one 'file' with columns."""
    files = entry.get("files")
    single = entry.get("file")
    if (files is None) == (single is None):
        raise PipelineError(f"{where}: give either 'files' (language -> inner path) or 'file' with 'separator'")
    if files is not None:
        if not isinstance(files, dict) or set(files) != set(langs):
            raise PipelineError(f"{where}: 'files' must map exactly the languages {', '.join(langs)}")
        for inner in files.values():
            check_inner_path(inner, where)
        return {"files": files}
    columns = tuple(entry.get("columns", ()))
    check_inner_path(single, where)
    if not entry.get("separator") or sorted(columns) != sorted(langs):
        raise PipelineError(f"{where}: 'file' needs 'separator' and 'columns' naming {', '.join(langs)}")
    return {"file": single, "separator": entry["separator"], "columns": columns}


def _train_source(entry: dict, langs: tuple, where: str) -> TrainSource:
    name = _need(entry, "name", str, where)
    where = f"{where} (corpus {name})"
    common = dict(name=name, sha256=_sha(entry.get("sha256"), where), mirrors=tuple(entry.get("mirrors", ())),
                  differs_from_paper=entry.get("differs_from_paper"))
    if "mtdata_id" in entry:
        dataset_id = _need(entry, "mtdata_id", str, where)
        copied = [key for key in _FROM_CATALOGUE if key in entry]
        if copied:
            raise PipelineError(f"{where}: the catalogue entry {dataset_id} gives the URL and inner paths; "
                                f"remove {', '.join(map(repr, copied))} from the manifest")
        found = lookup(dataset_id, langs)
        for inner in [*(found.files or {}).values(), *([found.tmx] if found.tmx else [])]:
            check_inner_path(inner, f"{where}: mtdata entry {dataset_id}")
        return TrainSource(archive=archive_name(found.url), url=found.url, files=found.files, tmx=found.tmx,
                           mtdata_id=dataset_id, **common)
    if entry.get("manual", False):
        if not entry.get("instructions"):
            raise PipelineError(f"{where}: a manual corpus needs 'instructions'")
        archive = _need(entry, "archive", str, where)
        if "/" in archive or archive in {"", ".", ".."}:
            raise PipelineError(f"{where}: 'archive' must be a plain file name, not {archive!r}")
        return TrainSource(archive=archive, url=None, manual=True, instructions=entry["instructions"],
                           **_layout(entry, langs, where), **common)
    url = entry.get("url")
    if not (isinstance(url, str) and is_url(url)):
        raise PipelineError(f"{where}: name the corpus by its 'mtdata_id', or give an http(s) 'url', "
                            f"or mark it \"manual\": true")
    if not entry.get("not_in_catalogue"):
        raise PipelineError(f"{where}: a corpus given by 'url' needs 'not_in_catalogue' saying why no mtdata "
                            f"dataset ID serves (`mtdata list -l {'-'.join(langs)}`)")
    return TrainSource(archive=archive_name(url), url=url, **_layout(entry, langs, where), **common)


def _with_local_names(train: tuple) -> tuple:
    """Each corpus's --from-dir names: its archive name, plus its URL's file name unless another
    corpus of the direction has a URL ending alike."""
    counts = collections.Counter(_url_basename(s.url) for s in train)
    result = []
    for source in train:
        own = _url_basename(source.url)
        extra = (own,) if own and own != source.archive and counts[own] == 1 else ()
        result.append(dataclasses.replace(source, local_names=(source.archive, *extra)))
    return tuple(result)


def _test_set(entry: dict, langs: tuple, where: str) -> TestSet:
    name = _need(entry, "name", str, where)
    sacrebleu = entry.get("sacrebleu") or {}
    local = _need(entry, "local", dict, where)
    if set(local) != set(langs):
        raise PipelineError(f"{where}: 'local' must name a file for each of {', '.join(langs)}")
    return TestSet(name=name, sacrebleu_test_set=sacrebleu.get("test_set"),
                   sacrebleu_langpair=sacrebleu.get("langpair"), local=dict(local))


def load_manifest(pair: str, directory: Path | None = None) -> Manifest:
    """The manifest of ``pair``; a PipelineError listing the valid pairs for an unknown one."""
    directory = manifest_dir(directory)
    pairs = available_pairs(directory)
    if pair not in pairs:
        hint = ""
        if "-" in pair and "-".join(reversed(pair.split("-", 1))) in pairs:
            hint = f" (did you mean {'-'.join(reversed(pair.split('-', 1)))}?)"
        raise PipelineError(f"unknown language pair {pair!r}{hint}; valid pairs: {', '.join(pairs) or 'none'}")
    path = directory / f"{pair}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise PipelineError(f"{path}: not valid JSON ({error})") from None
    where = str(path)
    src, tgt = _need(data, "src", str, where), _need(data, "tgt", str, where)
    if f"{src}-{tgt}" != pair or _need(data, "pair", str, where) != pair:
        raise PipelineError(f"{path}: 'pair', 'src' and 'tgt' disagree with the file name {pair}")
    langs = (src, tgt)
    train = _with_local_names(tuple(_train_source(e, langs, f"{where}: train[{i}]")
                                    for i, e in enumerate(_need(data, "train", list, where))))
    if not train:
        raise PipelineError(f"{path}: no training corpus listed")
    names = [t.name for t in train]
    if len(set(names)) != len(names):
        raise PipelineError(f"{path}: corpus names must be unique")
    return Manifest(
        path=path, pair=pair, src=src, tgt=tgt, campaign=data.get("campaign", ""),
        train=train,
        valid=_test_set(_need(data, "valid", dict, where), langs, f"{where}: valid"),
        test=_test_set(_need(data, "test", dict, where), langs, f"{where}: test"),
        spm=dict(data.get("spm", {})),
    )


class Lock:
    """``<pair>.lock.json``: sums recorded on first verified download (trust on first use)."""

    def __init__(self, manifest: Manifest):
        self.path = manifest.lock_path
        self.pair = manifest.pair
        self.files: dict = {}
        if self.path.is_file():
            try:
                self.files = json.loads(self.path.read_text(encoding="utf-8")).get("files", {})
            except ValueError as error:
                raise PipelineError(f"{self.path}: not valid JSON ({error})") from None

    def sha256(self, archive: str) -> str | None:
        entry = self.files.get(archive)
        return _sha(entry.get("sha256"), str(self.path)) if entry else None

    def record(self, source: TrainSource, sha256: str, size: int) -> None:
        self.files[source.archive] = {
            "sha256": sha256, "size": size, "url": source.url, "mtdata_id": source.mtdata_id,
            "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        write_json(self.path, {
            "pair": self.pair,
            "comment": "sha256 of each archive as first downloaded (mt_pipeline data --record-checksums); "
                       "later runs verify against these. Check them against a second source before trusting.",
            "files": dict(sorted(self.files.items())),
        })


def expected_sha256(source: TrainSource, lock: Lock) -> str | None:
    """The sum to verify ``source`` against: the manifest's, else the lock file's."""
    locked = lock.sha256(source.archive)
    if source.sha256 and locked and source.sha256 != locked:
        raise PipelineError(
            f"{source.archive}: the manifest's sha256 {source.sha256} differs from the one recorded in "
            f"{lock.path} ({locked}); remove the stale entry after checking which is right"
        )
    return source.sha256 or locked
