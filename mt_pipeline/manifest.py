"""Per-direction manifests (``data/manifests/<pair>.json``) and their checksum lock files.

A manifest lists the official training corpora of the WMT year (archive, URL, mirrors,
inner paths, sha256), the dev and test sets (sacreBLEU test-set names, so BLEU is scored
against the official references, and the plain-text file names used with --from-dir) and
the SentencePiece defaults. Checksums are ``null`` until a first verified download:
``--record-checksums`` writes the computed sums to ``<pair>.lock.json`` beside the
manifest (trust on first use) and later runs verify against them.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from nmt_common.files import write_json

from .errors import PipelineError
from .extract import check_inner_path

DEFAULT_MANIFEST_DIR = Path(__file__).resolve().parents[1] / "data" / "manifests"
_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class TrainSource:
    name: str
    archive: str
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


def _train_source(entry: dict, langs: tuple, where: str) -> TrainSource:
    name = _need(entry, "name", str, where)
    where = f"{where} (corpus {name})"
    manual = bool(entry.get("manual", False))
    url = entry.get("url")
    if not manual and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise PipelineError(f"{where}: 'url' must be an http(s) URL (or mark the corpus \"manual\": true)")
    if manual and not entry.get("instructions"):
        raise PipelineError(f"{where}: a manual corpus needs 'instructions'")
    files = entry.get("files")
    single = entry.get("file")
    if (files is None) == (single is None):
        raise PipelineError(f"{where}: give either 'files' (language -> inner path) or 'file' with 'separator'")
    if files is not None:
        if not isinstance(files, dict) or set(files) != set(langs):
            raise PipelineError(f"{where}: 'files' must map exactly the languages {', '.join(langs)}")
        for inner in files.values():
            check_inner_path(inner, where)
    columns = tuple(entry.get("columns", ()))
    if single is not None:
        check_inner_path(single, where)
        if not entry.get("separator") or sorted(columns) != sorted(langs):
            raise PipelineError(f"{where}: 'file' needs 'separator' and 'columns' naming {', '.join(langs)}")
    archive = _need(entry, "archive", str, where)
    if "/" in archive or archive in {"", ".", ".."}:
        raise PipelineError(f"{where}: 'archive' must be a plain file name, not {archive!r}")
    return TrainSource(
        name=name, archive=archive, url=url, mirrors=tuple(entry.get("mirrors", ())),
        sha256=_sha(entry.get("sha256"), where), manual=manual, instructions=entry.get("instructions"),
        files=files, file=single, separator=entry.get("separator"), columns=columns,
    )


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
    train = tuple(_train_source(e, langs, f"{where}: train[{i}]")
                  for i, e in enumerate(_need(data, "train", list, where)))
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

    def record(self, archive: str, sha256: str, size: int, url: str | None) -> None:
        self.files[archive] = {
            "sha256": sha256, "size": size, "url": url,
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
