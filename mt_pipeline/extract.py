"""Take chosen files out of an archive (tar, tar.gz/tgz, zip, gz or plain file).

Only the members named by the manifest are read, and they are written under names the
caller chooses, never under the member's own path. An archive with an unsafe member
name (absolute, or with a ``..`` component) is refused as a whole, and a selected member
that is a link or a device is refused too. A member whose name ends in ``.gz`` (Gigaword
Fr-En keeps its text gzipped inside the tar) is decompressed while it is copied.
Inner paths may be glob patterns (``casia2015/*_ch.txt``): every match is taken, in
sorted order, and concatenated.
"""

from __future__ import annotations

import fnmatch
import gzip
import posixpath
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import IO, Iterator, Mapping

from nmt_common.files import atomic_path, is_gzip, partial_path

from .errors import PipelineError
from .files import require_file

_GLOB_CHARS = set("*?[")


def is_pattern(inner: str) -> bool:
    return bool(_GLOB_CHARS & set(inner))


def check_inner_path(inner: str, where: str) -> None:
    """A manifest inner path must be relative and stay inside the archive."""
    if not inner or inner.startswith("/") or "\\" in inner or ".." in inner.split("/"):
        raise PipelineError(f"{where}: unsafe inner path {inner!r} (absolute, or with '..')")


def _safe_member_name(name: str) -> str | None:
    """The normalised member name, or None when it could escape the extraction folder."""
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return None
    normalised = posixpath.normpath(name)
    if normalised == ".." or normalised.startswith("../"):
        return None
    return normalised


def archive_kind(path: Path) -> str:
    """'tar', 'zip', 'gz' (one gzipped file) or 'plain', from the content, not the name."""
    path = require_file(path, "archive")
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, tarfile.TarError):
        pass
    if is_gzip(path):
        return "gz"
    return "plain"


def _select(names: list[str], wanted: Mapping[str, str], archive: Path) -> dict[str, list[str]]:
    """For each key of ``wanted`` (key -> inner path or pattern), the matching member names."""
    chosen = {}
    for key, inner in wanted.items():
        inner_norm = posixpath.normpath(inner)
        if is_pattern(inner):
            matches = sorted(n for n in names if fnmatch.fnmatchcase(n, inner_norm))
        else:
            matches = [n for n in names if n == inner_norm]
        if not matches:
            listing = ", ".join(sorted(names)[:30]) + (" ..." if len(names) > 30 else "")
            raise PipelineError(f"{archive}: no member {inner!r} in the archive; it holds: {listing or 'nothing'}")
        chosen[key] = matches
    return chosen


def _copy(stream: IO[bytes], handle: IO[bytes], member: str) -> None:
    if member.endswith(".gz"):
        with gzip.GzipFile(fileobj=stream) as inner:
            shutil.copyfileobj(inner, handle, 1 << 20)
    else:
        shutil.copyfileobj(stream, handle, 1 << 20)


def _iter_tar(archive: Path) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            safe = _safe_member_name(member.name)
            if safe is None:
                raise PipelineError(f"{archive}: refusing an archive with an unsafe member path {member.name!r}")
            yield safe, member, tar


def extract_members(archive: Path, wanted: Mapping[str, str], outputs: Mapping[str, Path]) -> dict[str, list[str]]:
    """Write the member(s) ``wanted[key]`` of ``archive`` to ``outputs[key]`` for every key.

    Returns, for each key, the member names used. Each output is written atomically.
    """
    archive = require_file(archive, "archive")
    for key, inner in wanted.items():
        check_inner_path(inner, str(archive))
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            return _extract_zip(archive, wanted, outputs)
        if kind == "tar":
            return _extract_tar(archive, wanted, outputs)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile, OSError) as error:
        raise PipelineError(f"{archive}: damaged or unreadable archive ({type(error).__name__}: {error})") from None
    # A single (possibly gzipped) file: every key wants "the file" itself.
    for key, output in outputs.items():
        with atomic_path(output) as temporary, open(temporary, "wb") as handle:
            opener = gzip.open if kind == "gz" else open
            try:
                with opener(archive, "rb") as stream:
                    shutil.copyfileobj(stream, handle, 1 << 20)
            except (OSError, EOFError) as error:
                raise PipelineError(f"{archive}: damaged file ({error})") from None
    return {key: [archive.name] for key in outputs}


def _extract_zip(archive: Path, wanted, outputs) -> dict[str, list[str]]:
    with zipfile.ZipFile(archive) as bundle:
        infos = {}
        for info in bundle.infolist():
            safe = _safe_member_name(info.filename)
            if safe is None:
                raise PipelineError(f"{archive}: refusing an archive with an unsafe member path {info.filename!r}")
            if not info.is_dir():
                infos[safe] = info
        chosen = _select(list(infos), wanted, archive)
        for key, members in chosen.items():
            for member in members:
                mode = (infos[member].external_attr >> 16) & 0o170000
                if mode and mode not in (0o100000,):
                    raise PipelineError(f"{archive}: refusing member {member!r}: not a regular file")
            with atomic_path(outputs[key]) as temporary, open(temporary, "wb") as handle:
                for member in members:
                    with bundle.open(infos[member]) as stream:
                        _copy(stream, handle, member)
        return chosen


def _matches(name: str, inner: str) -> bool:
    inner = posixpath.normpath(inner)
    return fnmatch.fnmatchcase(name, inner) if is_pattern(inner) else name == inner


def _extract_tar(archive: Path, wanted, outputs) -> dict[str, list[str]]:
    """One streaming pass: every member path is checked, the selected ones are copied out."""
    names = []
    scratch: dict[str, Path] = {}
    chosen: dict[str, list[str]] = {key: [] for key in wanted}
    try:
        for safe, member, tar in _iter_tar(archive):
            if member.isdir():
                continue
            names.append(safe)
            keys = [key for key, inner in wanted.items() if _matches(safe, inner)]
            if not keys:
                continue
            if not member.isfile():
                raise PipelineError(f"{archive}: refusing member {safe!r}: not a regular file (link or device)")
            path = partial_path(Path(outputs[keys[0]])).with_suffix(f".member{len(scratch)}")
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch[safe] = path
            with open(path, "wb") as handle:
                _copy(tar.extractfile(member), handle, safe)
            for key in keys:
                chosen[key].append(safe)
        missing = [key for key, members in chosen.items() if not members]
        if missing:
            _select(names, {key: wanted[key] for key in missing}, archive)  # raises, listing the members
        for key, members in chosen.items():
            with atomic_path(outputs[key]) as temporary, open(temporary, "wb") as handle:
                for name in sorted(members):
                    with open(scratch[name], "rb") as piece:
                        shutil.copyfileobj(piece, handle, 1 << 20)
            chosen[key] = sorted(members)
    finally:
        for path in scratch.values():
            path.unlink(missing_ok=True)
    return chosen
