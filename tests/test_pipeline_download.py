"""mt_pipeline downloads against a loopback HTTP server (no internet), and `data` end to end.

The server listens on 127.0.0.1 only, in a daemon thread, answers Range requests, can drop
the connection after N bytes once, and shuts itself down after SERVER_LIFETIME seconds
whatever happens. `data` runs with it as its HTTP proxy, so the catalogue's own URLs
(http://www.statmt.org/...) are answered locally and nothing reaches the internet.
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
from mt_pipeline.catalogue import lookup
from mt_pipeline.download import download_file, kept_aside, part_path

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
        """Serve ``data`` at ``path``, or at the absolute URL ``path`` to clients using the server as proxy."""
        self.httpd.files[path] = data
        return path if path.startswith("http://") else self.url(path)

    @property
    def proxy_env(self) -> dict:
        """Environment sending every HTTP(S) request of a subprocess to this server (HTTPS ones fail)."""
        proxy = self.url("")
        return {"http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
                "no_proxy": "", "NO_PROXY": ""}

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


def test_checksum_mismatch_keeps_the_download_and_names_it(server, tmp_path):
    data = _payload()
    url = server.serve("/corpus.tgz", data)
    destination = tmp_path / "corpus.tgz"
    kept = kept_aside(destination, hashlib.sha256(data).hexdigest())
    with pytest.raises(PipelineError, match=r"checksum mismatch for corpus.tgz.*expected sha256 0{64}, got "
                                            + hashlib.sha256(data).hexdigest() + "; the download is kept as "
                                            + re.escape(str(kept))):
        download_file(url, destination, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == [kept] and kept.read_bytes() == data


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


def _run(*arguments, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "mt_pipeline", *map(str, arguments)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


EUROPARL, COMMONCRAWL = "Statmt-europarl_wmt13-7-deu-eng", "Statmt-commoncrawl_wmt13-1-deu-eng"


@pytest.fixture
def mini_wmt(server, tmp_path):
    """The en-de manifest's first two corpora, as catalogued, with small archives of the real inner
    layout answered by the loopback server at the catalogue's URLs (the server is the proxy)."""
    europarl = _tgz({
        "training/europarl-v7.de-en.en": _lines("en", 0, 1200),
        "training/europarl-v7.de-en.de": _lines("de", 0, 1200),
        "training/europarl-v7.fr-en.fr": b"not wanted\n",
    })
    commoncrawl = _zip({
        "commoncrawl.de-en.en": _lines("en", 1200, 2000),
        "commoncrawl.de-en.de": _lines("de", 1200, 2000),
    })
    urls = {name: lookup(dataset_id, ("en", "de")).url for name, dataset_id in
            [("europarl", EUROPARL), ("commoncrawl", COMMONCRAWL)]}
    server.serve(urls["europarl"], europarl)
    server.serve(urls["commoncrawl"], commoncrawl)
    manifest = json.loads((Path(__file__).resolve().parents[1] / "data" / "manifests" / "en-de.json").read_text())
    manifest["train"] = manifest["train"][:2]
    assert [entry["mtdata_id"] for entry in manifest["train"]] == [EUROPARL, COMMONCRAWL]
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "en-de.json").write_text(json.dumps(manifest))
    return {"manifests": folder, "archives": {"europarl": europarl, "commoncrawl": commoncrawl}, "urls": urls,
            "names": {"europarl": "wmt13_training-parallel-europarl-v7.tgz",
                      "commoncrawl": "wmt13_training-parallel-commoncrawl.tgz"},
            "env": server.proxy_env}


def _local_testsets(folder: Path) -> Path:
    """Tiny newstest2013/2014 files for --from-dir, so that no run asks sacreBLEU."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["newstest2013", "newstest2014"]:
        (folder / f"{name}.en").write_text("one\ntwo\n")
        (folder / f"{name}.de").write_text("eins\nzwei\n")
    return folder


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
    first = _run("data", *common, "--record-checksums", cwd=tmp_path, env=mini_wmt["env"])
    assert first.returncode == 0, first.stderr
    assert server.seen == [(mini_wmt["urls"]["europarl"], None), (mini_wmt["urls"]["commoncrawl"], None)]
    bin_dir = tmp_path / "bin"
    for name in ["dict.en.txt", "dict.de.txt", "train.en-de.en.bin", "test.en-de.de.idx", "spm.model",
                 "test.raw.en", "test.raw.de", "prepare.json"]:
        assert (bin_dir / name).is_file(), name
    info = json.loads((bin_dir / "prepare.json").read_text())
    assert info["test"]["sacrebleu"] == {"test_set": "wmt14/full", "langpair": "en-de"}
    assert info["counts"]["test"] == 300 and 1900 < info["counts"]["train"] <= 2000
    assert (tmp_path / "work" / ".gitignore").read_text().strip().endswith("*")
    lock = json.loads((mini_wmt["manifests"] / "en-de.lock.json").read_text())["files"]
    for corpus, dataset_id in [("europarl", EUROPARL), ("commoncrawl", COMMONCRAWL)]:
        recorded = lock[mini_wmt["names"][corpus]]
        assert recorded["sha256"] == hashlib.sha256(mini_wmt["archives"][corpus]).hexdigest()
        assert (recorded["url"], recorded["mtdata_id"]) == (mini_wmt["urls"][corpus], dataset_id)

    # Everything complete: a second run skips every step, and now every sum is known.
    requests = len(server.seen)
    second = _run("data", *common, "--require-checksums", cwd=tmp_path, env=mini_wmt["env"])
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("already complete, skipped") >= 6 and len(server.seen) == requests

    # A recorded sum that no longer matches the file: kept aside, downloaded again, still wrong ->
    # an error naming the kept file; nothing is deleted.
    name, content = mini_wmt["names"]["commoncrawl"], mini_wmt["archives"]["commoncrawl"]
    lock_path = mini_wmt["manifests"] / "en-de.lock.json"
    lock_path.write_text(lock_path.read_text().replace(lock[name]["sha256"], "f" * 64))
    third = _run("data", *common, cwd=tmp_path, env=mini_wmt["env"])
    assert third.returncode == 2 and "Traceback" not in third.stderr
    kept = kept_aside(tmp_path / "work" / "downloads" / name, hashlib.sha256(content).hexdigest())
    assert f"checksum mismatch for {name}" in third.stderr and f"the download is kept as {kept}" in third.stderr
    assert kept.read_bytes() == content
    assert not (tmp_path / "work" / "downloads" / name).exists()


def test_data_resumes_an_interrupted_catalogue_download(mini_wmt, server, tmp_path):
    url, content = mini_wmt["urls"]["europarl"], mini_wmt["archives"]["europarl"]
    server.httpd.drop_once[url] = 1000
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--from-dir", _local_testsets(tmp_path / "local"), "--steps", "download", "--retries", "1",
                  cwd=tmp_path, env=mini_wmt["env"])
    assert result.returncode == 0, result.stderr
    assert server.seen[:2] == [(url, None), (url, "bytes=1000-")]
    assert (tmp_path / "w" / "downloads" / mini_wmt["names"]["europarl"]).read_bytes() == content


def test_require_checksums_fails_before_downloading(mini_wmt, server, tmp_path):
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--require-checksums", cwd=tmp_path, env=mini_wmt["env"])
    assert result.returncode == 2
    assert f"--require-checksums: no sha256 known for {mini_wmt['names']['europarl']}" in result.stderr
    assert server.seen == []


def test_data_404_is_a_clear_error(mini_wmt, server, tmp_path):
    del server.httpd.files[mini_wmt["urls"]["commoncrawl"]]
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--from-dir", _local_testsets(tmp_path / "local"), "--steps", "download", "--retries", "0",
                  cwd=tmp_path, env=mini_wmt["env"])
    assert result.returncode == 2
    assert (f"could not download {mini_wmt['names']['commoncrawl']}: HTTP 404 Not Found for "
            f"{mini_wmt['urls']['commoncrawl']}") in result.stderr
    assert "Traceback" not in result.stderr


def test_from_dir_offline_uses_local_archives(mini_wmt, tmp_path):
    local = _local_testsets(tmp_path / "local")  # dev/test sets as plain files beside the archives
    (local / mini_wmt["names"]["europarl"]).write_bytes(mini_wmt["archives"]["europarl"])
    # the URL's own file name is accepted too
    (local / "training-parallel-commoncrawl.tgz").write_bytes(mini_wmt["archives"]["commoncrawl"])
    result = _run("data", "--pair", "en-de", "--manifest-dir", mini_wmt["manifests"], "--root", tmp_path / "w",
                  "--from-dir", local, "--offline", "--steps", "download,extract", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    extracted = tmp_path / "w" / "en-de" / "extracted"
    assert (extracted / "europarl-v7.de").read_bytes() == _lines("de", 0, 1200)
    assert (extracted / "commoncrawl.en").read_bytes() == _lines("en", 1200, 2000)
    assert not list((tmp_path / "w" / "downloads").glob("*.tgz"))
    assert "no checksum known" in result.stderr  # warned, not silently trusted
