"""One self-contained HTML page from :class:`~.payload.ExplorerData` (torch-free).

Everything is inline: the CSS and JavaScript of :mod:`.assets`, the metadata as a JSON
``<script type="application/json">``, and one base64 ``<script type="application/octet-stream">``
per (checkpoint, sentence) blob, decoded only when its sentence is shown. A Content-Security-Policy
``default-src 'none'`` makes the browser refuse any request the page might make, so it works offline.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from nmt_common.files import atomic_write_text

from .assets import SCRIPT, STYLE
from .payload import ExplorerData

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

BODY = """<div id="error" role="alert"></div>
<header><h1>{title}</h1><div class="sub">{subtitle}</div></header>
<div id="layout">
<nav aria-label="view">
  <label for="search">Sentence (search the text, or #number)</label>
  <input id="search" type="search" placeholder="search words\u2026" autocomplete="off">
  <div class="row"><span id="count"></span><button id="prev" type="button">\u2190 prev</button><button id="next" type="button">next \u2192</button></div>
  <select id="sentence" size="12" aria-label="sentences"></select>
  <div id="sentence-text"></div>
  <label for="sublayer">Sublayer</label><select id="sublayer"></select>
  <label for="layer">Layer</label><select id="layer"></select>
  <label for="head">Head</label><select id="head"></select>
  <label for="level">Level</label>
  <select id="level"><option value="subword">subword pieces</option><option value="word">words (pieces pooled)</option></select>
  <label for="method">Induced links (cross-attention)</label>
  <div class="row"><select id="method" style="width:auto"><option value="argmax">argmax</option><option value="nonzero">nonzero</option></select>
  <select id="shift" style="width:auto"><option value="normal">normal</option><option value="shifted">shifted</option></select>
  <label><input id="links" type="checkbox" checked> show</label></div>
  <label>Gold alignment</label>
  <div class="row"><label><input id="gold" type="checkbox" checked> show sure and possible links</label></div>
</nav>
<main>
<div id="panels"></div>
<div class="legend">
<span class="sw" style="background:rgba(8,48,107,.8)"></span>attention weight (darker = larger; colour scaled to each panel's
largest weight; any non-zero weight is tinted, exact zeros are white)
<span class="sw null"></span>null row (marked {null}): every weight of the row is exactly zero
<span class="sw masked"></span>masked: the query may not attend to the key (decoder self-attention is causal)
<span class="sw gold-sure"></span>gold sure link <span class="sw gold-possible"></span>gold possible link
<span class="sw link"></span>induced link (argmax: the largest weight of the row among the source pieces, none for a
null row; nonzero: every non-zero weight; normal: the row that predicts the target piece, shifted: the row where it is
the decoder input, Chen et al. 2020). Word level: a target word's row is the mean of its pieces' rows, a source word's
column the sum of its pieces' columns; links are word links of the piece links (rule <i>any</i>), as
<code>alignment-eval extract</code> induces them. Per-sentence AER (Och &amp; Ney 2003) of those links, sparsity (share of
exact zeros among the allowed positions) and the per-head null rate (share of all-zero query rows) follow
<code>alignment-eval stats</code>. Hover a cell for its weight: stored in 8 bits per matrix, within one step
(largest weight / 255) of the recorded one; exact zeros stay exact.
</div>
</main>
</div>
<div id="tooltip"></div>
"""


def _json_for_script(data) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>`` and ``&`` escaped (valid JSON string escapes)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(data: ExplorerData) -> str:
    """The page as one HTML string."""
    sentences, checkpoints = len(data.sentences), len(data.checkpoints)
    subtitle = (f"{sentences} sentence pairs of {data.text or 'the text'}"
                + (f", gold {data.gold}" if data.has_gold else ", no gold alignment")
                + f"; {checkpoints} checkpoint{'s' if checkpoints != 1 else ''}: "
                + ", ".join(c.label for c in data.checkpoints)
                + ("; the model translates the text's target side" if data.reverse else ""))
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f"<title>{html.escape(data.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        BODY.format(title=html.escape(data.title), subtitle=html.escape(subtitle), null="\u2205"),
        f"<script id=\"explorer-meta\" type=\"application/json\">{_json_for_script(data.meta())}</script>\n",
    ]
    for c, blobs in enumerate(data.blobs):
        for s, blob in enumerate(blobs):
            parts.append(f"<script id=\"w{c}-{s}\" type=\"application/octet-stream\">"
                         f"{base64.b64encode(blob).decode('ascii')}</script>\n")
    parts.append(f"<script>{SCRIPT}</script>\n</body>\n</html>\n")
    return "".join(parts)


def write_page(path: Path, data: ExplorerData) -> int:
    """Write the page atomically; returns its size in bytes."""
    text = render_page(data)
    atomic_write_text(path, text)
    return len(text.encode("utf-8"))
