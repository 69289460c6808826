"""mt_pipeline downloads against a loopback HTTP server (no internet), and `data` end to end.

The server listens on 127.0.0.1 only, in a daemon thread, answers Range requests, can drop
the connection after N bytes once, and shuts itself down after SERVER_LIFETIME seconds
whatever happens.
"""

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mt_pipeline import PipelineError
from mt_pipeline.download import download_file, part_path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SERVER_LIFETIME = 120
needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "multi30k").is_dir() or not (SHARED_DATA / "wmt-newstest").is_dir(),
    reason=f"shared test data not found at {SHARED_DATA} (multi30k/, wmt-newstest/)",
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.seen.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        requested = self.headers.get("Range")
        match = re.fullmatch(r"bytes=(\d+)-", requested or "")
        if match and server.ranges:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = server.drop_once.pop(self.path, None)
        if cut is not None:  # announce everything, send `cut` bytes, hang up
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.files, self.httpd.drop_once, self.httpd.seen, self.httpd.ranges = {}, {}, [], True
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.timer = threading.Timer(SERVER_LIFETIME, self.httpd.shutdown)
        self.timer.daemon = True

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, data: bytes) -> str:
        self.httpd.files[path] = data
        return self.url(path)

    @property
    def seen(self):
        return self.httpd.seen


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def _payload(size=300_000, seed=b"mt"):
    blocks, digest = [], seed
    while sum(map(len, blocks)) < size:
        digest = hashlib.sha256(digest).digest()
        blocks.append(digest * 64)
    return b"".join(blocks)[:size]


def test_download_with_checksum(server, tmp_path):
    data = _payload()
    url = server.serve("/corpus.tgz", data)
    destination = tmp_path / "downloads" / "corpus.tgz"
    digest = download_file(url, destination, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert destination.read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert not part_path(destination).exists()


def test_corrupted_download_is_deleted(server, tmp_path):
    url = server.serve("/corpus.tgz", _payload())
    destination = tmp_path / "corpus.tgz"
    with pytest.raises(PipelineError, match=r"checksum mismatch for corpus.tgz.*expected sha256 0{64}.*deleted"):
        download_file(url, destination, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = _payload()
    url = server.serve("/big.tgz", data)
    server.httpd.drop_once["/big.tgz"] = 100_000
    destination = tmp_path / "big.tgz"
    download_file(url, destination, sha256=hashlib.sha256(data).hexdigest(), progress=False, backoff=0)
    assert destination.read_bytes() == data
    assert server.seen == [("/big.tgz", None), ("/big.tgz", "bytes=100000-")]


def test_interrupted_download_resumes_on_the_next_run(server, tmp_path):
    data = _payload()
    url = server.serve("/big.tgz", data)
    server.httpd.drop_once["/big.tgz"] = 50_000
    destination = tmp_path / "big.tgz"
    with pytest.raises(PipelineError, match=r"connection closed after 50000 of 300000 bytes.*run again to resume"):
        download_file(url, destination, retries=0, progress=False)
    assert not destination.exists() and part_path(destination).stat().st_size == 50_000
    download_file(url, destination, retries=0, progress=False)
    assert destination.read_bytes() == data
    assert server.seen[-1] == ("/big.tgz", "bytes=50000-")


def test_server_without_range_support_restarts(server, tmp_path):
    data = _payload()
    url = server.serve("/big.tgz", data)
    server.httpd.ranges = False
    destination = tmp_path / "big.tgz"
    part_path(destination).write_bytes(b"garbage that is not the start of the file")
    download_file(url, destination, progress=False)
    assert destination.read_bytes() == data


def test_404_and_mirror(server, tmp_path):
    with pytest.raises(PipelineError, match=r"could not download missing.tgz: HTTP 404 Not Found for http://127\.0\.0\.1"):
        download_file(server.url("/missing.tgz"), tmp_path / "missing.tgz", progress=False)
    assert list(tmp_path.iterdir()) == []
    data = _payload(1000)
    mirror = server.serve("/mirror/missing.tgz", data)
    download_file(server.url("/missing.tgz"), tmp_path / "missing.tgz", mirrors=[mirror], progress=False)
    assert (tmp_path / "missing.tgz").read_bytes() == data


# --- `python -m mt_pipeline data` end to end over loopback ---------------------------------

def _lines(lang: str, start: int, stop: int) -> bytes:
    """Multi30k training lines when ../shared/data is there, made-up sentences otherwise."""
    path = SHARED_DATA / "multi30k" / f"train.{lang}.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")[start:stop]
    else:
        lines = [f"{lang} sentence number {i} ." for i in range(start, stop)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _tgz(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def _run(*arguments, cwd):
    return subprocess.run([sys.executable, "-m", "mt_pipeline", *map(str, arguments)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.fixture
def mini_wmt(server, tmp_path):
    """An en-de manifest whose archives (the real inner layout) are on the loopback server."""
    europarl = _tgz({
        "training/europarl-v7.de-en.en": _lines("en", 0, 1200),
        "training/europarl-v7.de-en.de": _lines("de", 0, 1200),
        "training/europarl-v7.fr-en.fr": b"not wanted\n",
    })
    commoncrawl = _zip({
        "commoncrawl.de-en.en": _lines("en", 1200, 2000),
        "commoncrawl.de-en.de": _lines("de", 1200, 2000),
    })
    manifest = json.loads((Path(__file__).resolve().parents[1] / "data" / "manifests" / "en-de.json").read_text())
    manifest["train"] = [manifest["train"][0] | {"url": server.serve("/wmt13/europarl.tgz", europarl)},
                         manifest["train"][1] | {"url": server.serve("/wmt13/cc.zip", commoncrawl)}]
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "en-de.json").write_text(json.dumps(manifest))
    return {"manifests": folder, "archives": {"europarl": europarl, "commoncrawl": commoncrawl}}


@needs_shared
def test_data_end_to_end_with_checksum_lock(mini_wmt, server, tmp_path):
    local = tmp_path / "testsets" / "en-de"  # --from-dir looks in DIR/SRC-TGT too
    local.mkdir(parents=True)
    for name in ["newstest2013.en", "newstest2013.de", "newstest2014.en", "newstest2014.de"]:
        lines = (SHARED_DATA / "wmt-newstest" / "en-de" / name).read_text(encoding="utf-8").split("\n")
        (local / name).write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    common = ["--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "work",
              "--out", tmp_path / "bin", "--from-dir", local.parent, "--spm-vocab", "500",
              "--workers", "1", "--retries", "0"]
    first = _run("data", *common, "--record-checksums", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    bin_dir = tmp_path / "bin"
    for name in ["dict.en.txt", "dict.de.txt", "train.en-de.en.bin", "test.en-de.de.idx", "spm.model",
                 "test.raw.en", "test.raw.de", "prepare.json"]:
        assert (bin_dir / name).is_file(), name
    info = json.loads((bin_dir / "prepare.json").read_text())
    assert info["test"]["sacrebleu"] == {"test_set": "wmt14/full", "langpair": "en-de"}
    assert info["counts"]["test"] == 300 and 1900 < info["counts"]["train"] <= 2000
    assert (tmp_path / "work" / ".gitignore").read_text().strip().endswith("*")
    lock = json.loads((mini_wmt["manifests"] / "en-de.lock.json").read_text())["files"]
    for archive, content in zip(["training-parallel-europarl-v7.tgz", "training-parallel-commoncrawl.tgz"],
                                mini_wmt["archives"].values()):
        assert lock[archive]["sha256"] == hashlib.sha256(content).hexdigest()

    # Everything complete: a second run skips every step, and now every sum is known.
    requests = len(server.seen)
    second = _run("data", *common, "--require-checksums", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("already complete, skipped") >= 6 and len(server.seen) == requests

    # A recorded sum that no longer matches the file: re-downloaded, still wrong -> clear error.
    lock_path = mini_wmt["manifests"] / "en-de.lock.json"
    text = lock_path.read_text().replace(lock["training-parallel-commoncrawl.tgz"]["sha256"], "f" * 64)
    lock_path.write_text(text)
    third = _run("data", *common, cwd=tmp_path)
    assert third.returncode == 2
    assert "checksum mismatch for training-parallel-commoncrawl.tgz" in third.stderr
    assert "Traceback" not in third.stderr
    assert not (tmp_path / "work" / "downloads" / "training-parallel-commoncrawl.tgz").exists()


def test_require_checksums_fails_before_downloading(mini_wmt, server, tmp_path):
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--require-checksums", cwd=tmp_path)
    assert result.returncode == 2
    assert "--require-checksums: no sha256 known for training-parallel-europarl-v7.tgz" in result.stderr
    assert server.seen == []


def test_data_404_is_a_clear_error(mini_wmt, server, tmp_path):
    del server.httpd.files["/wmt13/cc.zip"]
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--steps", "download", "--retries", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "could not download training-parallel-commoncrawl.tgz: HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr


def test_from_dir_offline_uses_local_archives(mini_wmt, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "training-parallel-europarl-v7.tgz").write_bytes(mini_wmt["archives"]["europarl"])
    # the URL's own file name is accepted too
    (local / "cc.zip").write_bytes(mini_wmt["archives"]["commoncrawl"])
    for name in ["newstest2013", "newstest2014"]:  # dev/test sets as plain files beside them
        (local / f"{name}.en").write_text("one\ntwo\n")
        (local / f"{name}.de").write_text("eins\nzwei\n")
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--from-dir", local, "--offline", "--steps", "download,extract", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    extracted = tmp_path / "w" / "en-de" / "extracted"
    assert (extracted / "europarl-v7.de").read_bytes() == _lines("de", 0, 1200)
    assert (extracted / "commoncrawl.en").is_file()
    assert not (tmp_path / "w" / "downloads" / "training-parallel-europarl-v7.tgz").exists()
    assert "no checksum known" in result.stderr  # warned, not silently trusted
