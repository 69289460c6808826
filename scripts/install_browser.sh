#!/usr/bin/env bash
# Opt-in (make setup BROWSER=1): headless Chromium for the explorer's browser tests and the
# README screenshot (tests/test_explorer_page.py, alignment_eval/explorer/browser.py).
#
# Debian's `chromium` package: about 100 MB to download and 400 MB on disk (with
# --no-install-recommends), too heavy for the default setup. No Python package is needed: the
# tests drive Chromium over its DevTools pipe with the standard library, offline. Without it the
# browser tests skip and say why.
#
#   CHROMIUM   an existing Chromium/Chrome binary to use instead (checked, nothing installed)
#   VENV       the project virtualenv, for the smoke test (default .venv)
set -euo pipefail

say() { printf '[browser] %s\n' "$*"; }
VENV=${VENV:-.venv}

find_browser() {
    if [ -n "${CHROMIUM:-}" ]; then
        [ -x "$CHROMIUM" ] && printf '%s\n' "$CHROMIUM"
        return
    fi
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" > /dev/null 2>&1; then command -v "$name"; return; fi
    done
}

browser=$(find_browser || true)
if [ -z "$browser" ]; then
    if [ -n "${CHROMIUM:-}" ]; then
        echo "[browser] error: CHROMIUM=$CHROMIUM is not an executable file" >&2
        exit 1
    fi
    if ! command -v apt-get > /dev/null 2>&1; then
        echo "[browser] error: no apt-get here; install Chromium with your package manager and put it on PATH," \
             "or set CHROMIUM=/path/to/chromium" >&2
        exit 1
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    say "installing Debian's chromium (about 100 MB download) and a font"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
    browser=$(find_browser)
fi
say "$("$browser" --version 2>/dev/null || echo "$browser")"

# smoke test: start it headless over the DevTools pipe, as the tests do
if [ -x "$VENV/bin/python" ]; then
    CHROMIUM="$browser" "$VENV/bin/python" - <<'PY'
import os
from alignment_eval.explorer.browser import Chromium

with Chromium(os.environ["CHROMIUM"]) as browser:
    page = browser.new_page()
    assert page.evaluate("typeof DecompressionStream") == "function", "this Chromium cannot read the explorer's data"
    print("[browser] headless over the DevTools pipe: ok (" + browser.version["product"] + ")")
PY
else
    say "no $VENV yet: run make setup, then the smoke test runs here"
fi
