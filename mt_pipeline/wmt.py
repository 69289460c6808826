"""``mt_pipeline data --pair PAIR``: manifest -> download -> extract -> shared steps.

The manifest names each corpus by its mtdata dataset ID (:mod:`mt_pipeline.catalogue`); the
archive at the catalogue's URL is fetched by :func:`mt_pipeline.download.download_file` rather
than by ``mtdata get``, which neither resumes an interrupted transfer, nor tries mirrors, nor
checks any checksum (mtdata 0.5.1, ``mtdata/cache.py``), and retries without SSL verification.

Layout under ROOT (default data/work; created with a .gitignore of '*'):

    ROOT/downloads/ARCHIVE              archives, shared by the pairs (named after the URL's path)
    ROOT/downloads/ARCHIVE.sha256-SUM   a download whose sum was not the expected one, kept aside
    ROOT/downloads/.ARCHIVE.sha256.json the archive's sum, reused while size and mtime hold
    ROOT/manual/                        where manual corpora (CWMT) may be put
    ROOT/sacrebleu/                     sacreBLEU's download cache (dev/test sets)
    ROOT/PAIR/testsets/, extracted/, clean/, spm/, encoded/, *.done.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from nmt_common.files import atomic_path, write_json

from .catalogue import read_tmx
from .clean import CleanConfig
from .download import download_file, kept_aside
from .errors import PipelineError
from .extract import extract_members
from .files import check_parallel, iter_lines, sha256_file
from .log import log, warn
from .manifest import Lock, Manifest, TrainSource, expected_sha256, load_manifest
from .prepare import STEPS, Job, PreparedData, ensure_root, parse_steps, run_shared_steps
from .steps import completed_fingerprint, read_marker, run_step
from .subword import SpmConfig
from .testsets import fetch_test_set, find_local


class ChecksumPolicy:
    """Default: verify when a sum is known, warn when none is. ``record``: write unknown sums
    to the lock file (trust on first use). ``require``: refuse any archive without a sum."""

    def __init__(self, record: bool = False, require: bool = False):
        if record and require:
            raise PipelineError("--record-checksums and --require-checksums exclude each other")
        self.record = record
        self.require = require


def _sidecar(downloads: Path, archive: str) -> Path:
    return downloads / f".{archive}.sha256.json"


def _cached_sha(path: Path, sidecar: Path) -> str:
    """SHA-256 of ``path``, reusing the sidecar while the file's path, size and mtime hold."""
    stat = path.stat()
    key = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if sidecar.is_file():
        try:
            cached = json.loads(sidecar.read_text())
            if all(cached.get(k) == v for k, v in key.items()):
                return cached["sha256"]
        except (ValueError, KeyError):
            pass
    digest = sha256_file(path, desc=path.name)
    write_json(sidecar, key | {"sha256": digest})
    return digest


def _manual_candidates(source: TrainSource, root: Path, from_dir: Path | None, pair) -> Path | None:
    found = find_local(from_dir, [source.archive], pair)
    if found is None:
        for folder in (root / "manual", root / "downloads"):
            if (folder / source.archive).is_file():
                return folder / source.archive
    return found


def obtain_archive(
    source: TrainSource,
    *,
    root: Path,
    pair: tuple[str, str],
    lock: Lock,
    policy: ChecksumPolicy,
    from_dir: Path | None,
    offline: bool,
    allow_download: bool,
    retries: int,
    progress: bool | None,
) -> tuple[Path, str]:
    """Path and SHA-256 of the archive of ``source``: a --from-dir file, an earlier
    download, or a new download; verified against the known sum, recorded if asked."""
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sidecar = _sidecar(downloads, source.archive)
    expected = expected_sha256(source, lock)

    path = None
    if source.manual:
        path = _manual_candidates(source, root, from_dir, pair)
        if path is None:
            raise PipelineError(f"manual corpus {source.name}: {source.archive} not found. {source.instructions}")
    else:
        path = find_local(from_dir, source.local_names, pair)
        if path is None and (downloads / source.archive).is_file():
            path = downloads / source.archive
    if path is not None:
        actual = _cached_sha(path, sidecar)
        if expected is not None and actual != expected:
            if path.parent == downloads and not source.manual:
                aside = kept_aside(path, actual)
                path.replace(aside)
                sidecar.unlink(missing_ok=True)
                warn(f"{path}: sha256 {actual} is not the expected {expected}; kept as {aside}, downloading again")
                path = None
            else:
                raise PipelineError(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")
    if path is None:
        if not allow_download:
            raise PipelineError(
                f"{source.archive} has not been downloaded (run the download step first: --steps download)"
            )
        if offline:
            where = f"not in --from-dir {from_dir}" if from_dir else "not downloaded yet (no --from-dir given)"
            raise PipelineError(f"{source.archive}: {where}, and --offline forbids downloading")
        path = downloads / source.archive
        log(f"download: {source.name} ({source.mtdata_id or 'not in the catalogue'}): {source.url} -> {path}")
        actual = download_file(source.url, path, sha256=expected, mirrors=source.mirrors, retries=retries,
                               progress=progress)
        _cached_sha(path, sidecar)
    if expected is None:
        if policy.record:
            lock.record(source, actual, path.stat().st_size)
            log(f"{source.archive}: sha256 {actual} recorded in {lock.path}")
        else:
            warn(f"{source.archive}: no checksum known to verify it (its sha256 is {actual}); "
                 f"--record-checksums pins it in {lock.path}")
    return path, actual


def _split_columns(combined: Path, source: TrainSource, outputs: dict) -> dict:
    """One file with 'A SEP B' lines -> one file per language; malformed lines dropped (<1%)."""
    total = malformed = 0
    langs = list(source.columns)
    with atomic_path(outputs[langs[0]]) as first, atomic_path(outputs[langs[1]]) as second, \
            open(first, "w", encoding="utf-8", newline="\n") as out_first, \
            open(second, "w", encoding="utf-8", newline="\n") as out_second:
        for line in iter_lines(combined, strict=False):
            total += 1
            fields = None if line is None else line.split(source.separator)
            if fields is None or len(fields) != 2:
                malformed += 1
                continue
            out_first.write(fields[0].strip() + "\n")
            out_second.write(fields[1].strip() + "\n")
        if total and malformed / total > 0.01:
            raise PipelineError(
                f"{source.archive}:{source.file}: {malformed} of {total} lines do not have exactly two fields "
                f"separated by {source.separator!r}; is the format right?"
            )
    return {"malformed_dropped": malformed}


def _split_tmx(tmx: Path, name: str, outputs: dict) -> dict:
    """A TMX file (``name`` in errors) -> one file per language (mtdata's reader: units missing a
    language are skipped)."""
    langs = tuple(outputs)
    pairs = 0
    with atomic_path(outputs[langs[0]]) as first, atomic_path(outputs[langs[1]]) as second, \
            open(first, "w", encoding="utf-8", newline="\n") as out_first, \
            open(second, "w", encoding="utf-8", newline="\n") as out_second:
        for segment_first, segment_second in read_tmx(tmx, langs, name):
            out_first.write(segment_first + "\n")
            out_second.write(segment_second + "\n")
            pairs += 1
    return {"tmx_pairs": pairs}


def extract_corpus(source: TrainSource, archive: Path, outputs: dict) -> dict:
    """Write the corpus's two language files; a PipelineError if their line counts differ."""
    if source.files is not None:
        members = extract_members(archive, source.files, outputs)
        info = {"members": members}
    elif source.tmx is not None:
        tmx = outputs[next(iter(outputs))].with_name(f"{source.name}.tmx")
        try:
            members = extract_members(archive, {"tmx": source.tmx}, {"tmx": tmx})
            info = {"members": members} | _split_tmx(tmx, f"{archive}:{members['tmx'][0]}", outputs)
        finally:
            tmx.unlink(missing_ok=True)
    else:
        combined = outputs[source.columns[0]].with_name(f"{source.name}.combined")
        try:
            members = extract_members(archive, {"combined": source.file}, {"combined": combined})
            info = {"members": members} | _split_columns(combined, source, outputs)
        finally:
            combined.unlink(missing_ok=True)
    langs = list(outputs)
    info["lines"] = check_parallel(outputs[langs[0]], outputs[langs[1]], f"corpus {source.name} ({archive.name})")
    log(f"extract: {source.name}: {info['lines']} lines")
    return info


def run_data_pipeline(
    pair: str,
    *,
    root: Path = Path("data/work"),
    out: Path | None = None,
    steps: Sequence[str] | str | None = None,
    from_dir: Path | None = None,
    offline: bool = False,
    manifest_dir: Path | None = None,
    max_train_lines: int | None = None,
    record_checksums: bool = False,
    require_checksums: bool = False,
    skip_manual: bool = False,
    spm_vocab: int | None = None,
    joint: bool | None = None,
    character_coverage: dict | None = None,
    spm_model_type: str | None = None,
    spm_sample: int = 5_000_000,
    clean: CleanConfig | None = None,
    workers: int = 1,
    retries: int = 3,
    progress: bool | None = None,
) -> PreparedData | None:
    """Prepare the WMT direction ``pair`` (see ``data/manifests``) into ``out`` (default
    data-bin/PAIR). Returns None when ``steps`` stops before ``binarize``."""
    manifest: Manifest = load_manifest(pair, manifest_dir)
    steps = parse_steps(steps, STEPS)
    policy = ChecksumPolicy(record_checksums, require_checksums)
    if max_train_lines is not None and max_train_lines < 1:
        raise PipelineError(f"--max-train-lines must be positive, not {max_train_lines}")
    if from_dir is not None and not Path(from_dir).is_dir():
        raise PipelineError(f"--from-dir is not a folder: {from_dir}")
    root = ensure_root(Path(root))
    work = root / pair
    out = Path(out) if out is not None else Path("data-bin") / pair
    langs = (manifest.src, manifest.tgt)
    lock = Lock(manifest)

    # Fail fast, before any download: manual corpora and required checksums.
    sources = []
    fetching = "download" in steps or "extract" in steps
    for source in manifest.train:
        if source.manual and not fetching:
            # Later steps only: a manual corpus counts if it was extracted before.
            if read_marker(work / "extracted" / f"{source.name}.done.json") is not None or not skip_manual:
                sources.append(source)
            continue
        if source.manual and _manual_candidates(source, root, from_dir, langs) is None:
            if skip_manual:
                warn(f"manual corpus {source.name} left out (--skip-manual): the training data is smaller than "
                     f"the official {manifest.campaign} data")
                continue
            raise PipelineError(
                f"manual corpus {source.name}: {source.archive} not found in --from-dir, {root / 'manual'} or "
                f"{root / 'downloads'}. {source.instructions} Or pass --skip-manual to go on without it."
            )
        sources.append(source)
    if policy.require:
        missing = [s.archive for s in sources if expected_sha256(s, lock) is None]
        if missing:
            raise PipelineError(
                f"--require-checksums: no sha256 known for {', '.join(missing)} (neither in {manifest.path} nor in "
                f"{lock.path}); run once with --record-checksums on a trusted connection, or fill them in"
            )
    log(f"data: {pair} ({manifest.campaign}): corpora {', '.join(s.name for s in sources)}; steps {', '.join(steps)}")
    for source in sources:
        if source.differs_from_paper:
            log(f"{source.name} ({source.mtdata_id or source.url}) is not the paper's release: "
                f"{source.differs_from_paper}")

    # --- download: archives, then dev/test sets -------------------------------------
    archives = {}
    if fetching:
        for source in sources:
            archives[source.name] = obtain_archive(
                source, root=root, pair=langs, lock=lock, policy=policy, from_dir=from_dir, offline=offline,
                allow_download="download" in steps, retries=retries, progress=progress,
            )
    testset_files = {(split, lang): work / "testsets" / f"{split}.{lang}" for split in ("valid", "test")
                     for lang in langs}

    def fetch_testsets():
        origins = {}
        for split, spec in (("valid", manifest.valid), ("test", manifest.test)):
            origins[split] = fetch_test_set(
                spec, langs, {lang: testset_files[split, lang] for lang in langs},
                from_dir=Path(from_dir) if from_dir else None, offline=offline, cache=root / "sacrebleu",
            )
            check_parallel(testset_files[split, langs[0]], testset_files[split, langs[1]], f"{split} set {spec.name}")
        return {"origins": origins, "sha256": {f"{s}.{l}": sha256_file(p) for (s, l), p in testset_files.items()}}

    marker = work / "testsets.done.json"
    if "download" in steps:
        _, testsets_info = run_step(
            "testsets", marker,
            params={"valid": manifest.valid.__dict__, "test": manifest.test.__dict__,
                    "from_dir": str(Path(from_dir).resolve()) if from_dir else None},
            inputs={}, outputs=list(testset_files.values()), action=fetch_testsets,
        )
    else:
        completed_fingerprint(marker, "download")
        testsets_info = json.loads(marker.read_text())["info"]

    shared = [s for s in steps if s not in ("download", "extract")]
    if "extract" not in steps and not shared:
        return None

    # --- extract ---------------------------------------------------------------------
    corpora_fp = {}
    train = []
    for source in sources:
        outputs = {lang: work / "extracted" / f"{source.name}.{lang}" for lang in langs}
        marker = work / "extracted" / f"{source.name}.done.json"
        if "extract" in steps:
            archive, digest = archives[source.name]
            corpora_fp[source.name], _ = run_step(
                f"extract {source.name}", marker,
                params={"files": source.files, "file": source.file, "separator": source.separator,
                        "columns": list(source.columns), "tmx": source.tmx},
                inputs={"archive_sha256": digest}, outputs=list(outputs.values()),
                action=lambda source=source, archive=archive, outputs=outputs: extract_corpus(source, archive, outputs),
            )
        else:
            corpora_fp[source.name] = completed_fingerprint(marker, "extract")
        train.append((source.name, outputs[langs[0]], outputs[langs[1]]))

    # --- shared steps ----------------------------------------------------------------
    if not shared:
        return None
    spm_defaults = manifest.spm
    coverage = dict(spm_defaults.get("character_coverage", {}))
    coverage.update(character_coverage or {})
    job = Job(
        work=work, out=out, src=langs[0], tgt=langs[1], train=train,
        valid=(testset_files["valid", langs[0]], testset_files["valid", langs[1]]),
        test=(testset_files["test", langs[0]], testset_files["test", langs[1]]),
        inputs={"corpora": corpora_fp, "testsets": testsets_info["sha256"]},
        clean=clean or CleanConfig(),
        spm=SpmConfig(
            vocab_size=spm_vocab or int(spm_defaults.get("vocab_size", 32000)),
            joint=joint if joint is not None else bool(spm_defaults.get("joint", True)),
            model_type=spm_model_type or spm_defaults.get("model_type", "bpe"),
            character_coverage=coverage, input_sentence_size=spm_sample,
        ),
        max_train_lines=max_train_lines, workers=workers,
        meta={
            "pair": pair, "campaign": manifest.campaign, "manifest": str(manifest.path),
            "corpora": [s.name for s in sources],
            "left_out": [s.name for s in manifest.train if s not in sources],
            "valid_name": manifest.valid.name, "test_name": manifest.test.name,
            "valid_sacrebleu": {"test_set": manifest.valid.sacrebleu_test_set,
                                "langpair": manifest.valid.sacrebleu_langpair},
            "test_sacrebleu": {"test_set": manifest.test.sacrebleu_test_set,
                               "langpair": manifest.test.sacrebleu_langpair},
            "testset_origins": testsets_info.get("origins"),
        },
    )
    return run_shared_steps(job, shared)
