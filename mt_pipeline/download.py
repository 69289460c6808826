"""HTTP(S) download with resume (Range), SHA-256 verification and a progress bar.

The file is written to ``DEST.part`` and renamed to ``DEST`` only once it is complete and
its checksum (when one is known) matches, so ``DEST`` is never half-written:

* connection dropped mid-transfer: retried with ``Range: bytes=N-`` up to ``retries``
  times; after that ``DEST.part`` is kept and a later call resumes from it;
* server ignores the Range header (200 instead of 206): the transfer restarts from 0;
* checksum mismatch: nothing is deleted; the file is kept aside as ``DEST.sha256-<its sum>``
  (:func:`kept_aside`) and a PipelineError gives both sums and names it;
* HTTP error (404, ...): the next mirror is tried, then a PipelineError lists every error.
"""

from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from .errors import PipelineError
from .files import sha256_file
from .log import log, warn

USER_AGENT = "mt_pipeline/0.1 (+python urllib)"
CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _HTTPStatusError(Exception):
    """The server answered with an error status: try the next mirror."""


class _Interrupted(Exception):
    """The transfer stopped before the end: resume."""


def part_path(destination: Path) -> Path:
    return destination.with_name(destination.name + ".part")


def kept_aside(destination: Path, sha256: str) -> Path:
    """Where a file for ``destination`` whose sum is not the expected one is kept: beside it,
    named by the first 16 hex digits of its own sum (so two different bad files do not collide)."""
    return destination.with_name(f"{destination.name}.sha256-{sha256[:16]}")


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(url: str, part: Path, *, timeout: float, progress: bool | None, label: str) -> None:
    """One request: append to (206) or rewrite (200) ``part``; _Interrupted if it stops short."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            # Nothing left to send from `offset`: the part is complete, or longer than the file.
            match = re.match(r"bytes\s+\*/(\d+)", error.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset:
                return
            part.unlink()
            raise _Interrupted("the partial file was longer than the remote file; restarting") from None
        raise _HTTPStatusError(f"HTTP {error.code} {error.reason} for {url}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise _Interrupted(f"cannot reach {url}: {reason}") from None

    with response:
        total = None
        if offset and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink()
                raise _Interrupted(f"the server answered the range request with {match and match.group(0)}; restarting")
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:
            if offset:
                log(f"{label}: the server does not resume (HTTP {response.status}); downloading from the start")
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        received = offset
        bar = tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=label, disable=(None if progress is None else not progress), leave=False,
        )
        try:
            with open(part, mode) as handle:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except http.client.IncompleteRead as error:
                        handle.write(error.partial)
                        received += len(error.partial)
                        raise _Interrupted(f"connection closed after {received} bytes") from None
                    except (OSError, http.client.HTTPException) as error:
                        raise _Interrupted(f"{type(error).__name__}: {error}") from None
                    if not block:
                        break
                    handle.write(block)
                    received += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if total is not None and received < total:
            raise _Interrupted(f"connection closed after {received} of {total} bytes")
        if total is not None and received > total:
            part.unlink()
            raise _Interrupted(f"received {received} bytes, more than the announced {total}; restarting")


def download_file(
    url: str,
    destination: Path,
    *,
    sha256: str | None = None,
    mirrors: Sequence[str] = (),
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool | None = None,
    backoff: float = 1.0,
) -> str:
    """Download ``url`` (or a mirror) to ``destination`` and return the file's SHA-256.

    ``progress`` None shows a bar only on a terminal. ``retries`` is the number of resumed
    attempts after an interruption, per URL.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(destination)
    label = destination.name
    errors = []
    used = None
    for candidate in [url, *mirrors]:
        attempt = 0
        while used is None:
            try:
                _transfer(candidate, part, timeout=timeout, progress=progress, label=label)
                used = candidate
            except _HTTPStatusError as error:
                errors.append(str(error))
                break
            except _Interrupted as error:
                attempt += 1
                have = part.stat().st_size if part.exists() else 0
                if attempt > retries:
                    kept = f" (the {have} bytes received are kept in {part}: run again to resume)" if have else ""
                    errors.append(f"download of {candidate} failed: {error}{kept}")
                    break
                warn(f"{label}: {error}; retrying ({attempt}/{retries}) from byte {have}")
                time.sleep(backoff * attempt)
        if used is not None:
            break
    if used is None:
        raise PipelineError(f"could not download {label}: " + "; ".join(errors))

    actual = sha256_file(part, desc=label)
    if sha256 is not None and actual != sha256.lower():
        aside = kept_aside(destination, actual)
        os.replace(part, aside)
        raise PipelineError(
            f"checksum mismatch for {label} downloaded from {used}: expected sha256 {sha256.lower()}, "
            f"got {actual}; the download is kept as {aside}"
        )
    os.replace(part, destination)
    return actual


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))

