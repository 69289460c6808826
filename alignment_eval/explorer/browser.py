"""A minimal headless-Chromium driver over the DevTools protocol, standard library only.

Chromium talks the Chrome DevTools Protocol (https://chromedevtools.github.io/devtools-protocol/)
over two pipes when started with ``--remote-debugging-pipe``: it reads commands from its file
descriptor 3 and writes replies and events to 4, each message one JSON object ended by a NUL
byte. No Playwright, no websocket library, no network port: the tests of the explorer page and
the README screenshot need only Debian's ``chromium`` (``scripts/install_browser.sh``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """Chromium could not start, answered with an error, or did not answer in time."""


def find_chromium() -> Optional[str]:
    """``$CHROMIUM`` if set, else the first of :data:`CANDIDATES` on PATH; None when there is none."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() and os.access(explicit, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _pipes_on_3_and_4(read_fd: int, write_fd: int):
    """In the child, before exec: put the pipes on the descriptors 3 (commands) and 4 (replies) that
    ``--remote-debugging-pipe`` uses (through descriptors >= 10 first, so neither overwrites the other)."""

    def arrange() -> None:
        high_read = fcntl.fcntl(read_fd, fcntl.F_DUPFD, 10)
        high_write = fcntl.fcntl(write_fd, fcntl.F_DUPFD, 10)
        os.dup2(high_read, 3)  # dup2 makes 3 and 4 inheritable: they survive the exec
        os.dup2(high_write, 4)
        os.close(high_read)
        os.close(high_write)

    return arrange


class Page:
    """One tab, attached with a flat session: evaluate JavaScript, move the mouse, take screenshots."""

    def __init__(self, browser: "Chromium", session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, params: Optional[dict] = None, timeout: float = 30.0) -> dict:
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` and wait for its load event."""
        self.browser.events.clear()
        reply = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if reply.get("errorText"):
            raise BrowserError(f"cannot open {url}: {reply['errorText']}")
        self.browser.wait_event("Page.loadEventFired", session=self.session, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The value of ``expression`` (promises awaited); a page-side exception raises BrowserError."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def mouse_move(self, x: float, y: float) -> None:
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or the whole page), written to ``path``."""
        params: Dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params, timeout=60.0)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> List[str]:
        """Console errors and warnings, uncaught exceptions and error log entries seen so far."""
        found = []
        for method, params, session in self.browser.seen:
            if session != self.session:
                continue
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append("exception: " + (details.get("exception", {}).get("description") or details.get("text", "")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry'].get('text', '')}")
        return found

    def requests(self) -> List[str]:
        """URLs of every request the page made (Network.requestWillBeSent)."""
        return [params["request"]["url"] for method, params, session in self.browser.seen
                if method == "Network.requestWillBeSent" and session == self.session]


class Chromium:
    """A headless Chromium process driven over ``--remote-debugging-pipe``; use as a context manager."""

    def __init__(self, executable: Optional[str] = None, *, width: int = 1400, height: int = 900) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no chromium on PATH (install it with scripts/install_browser.sh, or set CHROMIUM)")
        self.width, self.height = width, height
        self.events: List[tuple] = []  # unread events, for wait_event
        self.seen: List[tuple] = []  # every event, for Page.problems / requests
        self._next_id = 0
        self._buffer = b""
        self.profile = Path(tempfile.mkdtemp(prefix="explorer-chromium-"))
        to_child_read, self._to_child = os.pipe()
        self._from_child, from_child_write = os.pipe()
        flags = ["--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--mute-audio", "--hide-scrollbars", "--force-device-scale-factor=1",
                 f"--window-size={width},{height}", f"--user-data-dir={self.profile}", "--remote-debugging-pipe"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses its sandbox as root (containers, CI)
        self._stderr = open(self.profile / "chromium.log", "wb")  # a file: a full pipe would stall chromium
        self.process = subprocess.Popen([self.executable, *flags, "about:blank"], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr, close_fds=False,
                                        preexec_fn=_pipes_on_3_and_4(to_child_read, from_child_write))
        os.close(to_child_read)
        os.close(from_child_write)
        try:
            self.version = self.call("Browser.getVersion", timeout=60.0)
        except BrowserError:
            self.close()
            raise

    # --- protocol --------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                log = (self.profile / "chromium.log").read_bytes().decode("utf-8", "replace")[-2000:]
                raise BrowserError(f"chromium closed the DevTools pipe (exit {self.process.poll()}): {log}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: Optional[dict] = None, *, session: Optional[str] = None,
             timeout: float = 30.0) -> dict:
        """Send one command and return its result; events arriving meanwhile are kept."""
        self._next_id += 1
        message: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_child, json.dumps(message).encode("utf-8") + b"\0")
        except OSError as exc:
            raise BrowserError(f"chromium is gone ({exc})") from None
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                event = (reply["method"], reply.get("params", {}), reply.get("sessionId"))
                self.events.append(event)
                self.seen.append(event)

    def wait_event(self, method: str, *, session: Optional[str] = None, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for index, (name, params, where) in enumerate(self.events):
                if name == method and (session is None or where == session):
                    del self.events[index]
                    return params
            reply = self._read_message(deadline)
            if "method" in reply:
                event = (reply["method"], reply.get("params", {}), reply.get("sessionId"))
                self.events.append(event)
                self.seen.append(event)

    def new_page(self) -> Page:
        """A fresh tab with Page, Runtime, Log and Network events on, at the browser's window size."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self) -> None:
        """Close the browser (politely, then by its process id) and remove its profile."""
        if self.process.poll() is None:
            try:
                os.write(self._to_child, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=10)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
