"""The explorer page's inlined CSS and JavaScript (no library, nothing fetched at view time).

Kept as Python strings so that the page needs no package data. ``SCRIPT`` reads the blobs that
:mod:`.payload` writes (the layout is described there) with the browser's own
``DecompressionStream('deflate')`` (Chrome 80+, Firefox 113+, Safari 16.4+), and mirrors the
Python definitions it shows:

* word level: :func:`alignment_eval.alignments.induce.pool_to_words` (a target word's row is the
  mean of its pieces' rows; a source word's column is the sum of its pieces' columns);
* links: :func:`alignment_eval.alignments.induce.row_links` (``argmax``, ``nonzero``) on the
  rows of :func:`~alignment_eval.alignments.induce.target_rows` (normal or shifted), subword rule
  ``any``; AER, precision and recall: :mod:`alignment_eval.alignments.aer` (Och & Ney 2003);
* sparsity and null rate: :func:`alignment_eval.analysis.attention_stats.count_layer` (zeros
  among the allowed positions; all-zero rows; causal mask for decoder self-attention).

Test hooks: ``window.explorer`` (``state``, ``set(partial)``, ``idle()``) and
``document.documentElement.dataset.ready`` (``"1"`` after the first render).
"""

STYLE = r"""
:root { --cell: 18px; --ink: #1d232b; --muted: #6b7480; --line: #d5dae0; --accent: #08306b;
        --link: #e6550d; --null: #c0392b; font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fafbfc; font-size: 13px; }
header { padding: 8px 14px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0 0 2px 0; }
header .sub { color: var(--muted); font-size: 12px; }
#layout { display: flex; align-items: flex-start; }
nav { width: 300px; flex: none; padding: 10px 12px; border-right: 1px solid var(--line); background: #fff;
      position: sticky; top: 0; max-height: 100vh; overflow: auto; }
nav label { display: block; margin: 8px 0 2px; font-weight: 600; font-size: 12px; }
nav select, nav input[type=search] { width: 100%; font: inherit; }
nav .row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
nav .row label { display: inline; font-weight: normal; margin: 0; }
#sentence { height: 230px; font-size: 12px; }
#count { color: var(--muted); font-size: 11px; }
#sentence-text { margin-top: 6px; font-size: 12px; line-height: 1.35; }
#sentence-text b { color: var(--muted); font-weight: 600; }
main { flex: 1; padding: 10px 14px; min-width: 0; }
#panels { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; max-width: 100%;
         overflow: auto; flex: 1 1 0; min-width: 280px; }
.panel h2 { font-size: 14px; margin: 0; }
.panel .path { color: var(--muted); font-size: 11px; word-break: break-all; }
.stats { margin: 6px 0; font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: center; }
.stats .value { font-weight: 700; font-variant-numeric: tabular-nums; }
.null-rates { display: inline-flex; gap: 3px; align-items: center; }
.null-rate { font-size: 11px; padding: 1px 4px; border-radius: 3px; background: #eef1f4;
             font-variant-numeric: tabular-nums; }
.null-rate.selected { outline: 2px solid var(--accent); }
.null-rate.some { background: #f7d9d5; }
.missing { color: var(--muted); font-style: italic; padding: 20px 0; }
table.heatmap { border-collapse: collapse; table-layout: fixed; }
table.heatmap td { width: var(--cell); height: var(--cell); min-width: var(--cell); border: 1px solid #eef0f2;
                   padding: 0; position: relative; }
table.heatmap th { font-weight: normal; font-size: 11px; white-space: nowrap; overflow: hidden; }
table.heatmap th.col { vertical-align: bottom; height: 86px; max-width: var(--cell); }
table.heatmap th.col span { writing-mode: vertical-rl; transform: rotate(180deg); display: inline-block;
                            max-height: 84px; overflow: hidden; text-overflow: ellipsis; }
table.heatmap th.rowlabel { text-align: right; padding-right: 4px; max-width: 130px; text-overflow: ellipsis; }
table.heatmap th.eos, table.heatmap td.eos { border-left: 2px solid #9aa3ad; }
table.heatmap th.rowlabel.null { color: var(--null); font-weight: 700; }
table.heatmap td.null { background-image: repeating-linear-gradient(45deg, rgba(192,57,43,.28) 0 2px, transparent 2px 6px); }
table.heatmap td.masked { background: #b9bec4;
  background-image: repeating-linear-gradient(-45deg, #8e959c 0 1px, transparent 1px 4px), repeating-linear-gradient(45deg, #8e959c 0 1px, transparent 1px 4px); }
table.heatmap td.gold-sure { box-shadow: inset 0 0 0 2px #000; }
table.heatmap td.gold-possible { box-shadow: inset 0 0 0 2px #fff, inset 0 0 0 3px #555; outline: 1px dashed #333; outline-offset: -3px; }
table.heatmap td.link::after { content: ""; position: absolute; left: 50%; top: 50%; width: 42%; height: 42%;
                               transform: translate(-50%, -50%); border-radius: 50%; background: var(--link);
                               border: 1px solid #fff; }
table.heatmap td.hover { outline: 2px solid #f1c40f; outline-offset: -2px; }
#tooltip { position: fixed; pointer-events: none; background: #1d232b; color: #fff; padding: 5px 7px; border-radius: 4px;
           font-size: 12px; line-height: 1.35; max-width: 360px; display: none; z-index: 10; }
#tooltip .w { font-weight: 700; font-variant-numeric: tabular-nums; }
.legend { margin-top: 12px; font-size: 11.5px; color: #3c4550; line-height: 1.5; max-width: 980px; }
.legend .sw { display: inline-block; width: 14px; height: 14px; vertical-align: middle; border: 1px solid #ccd; position: relative;
              margin: 0 3px; }
.legend .sw.link::after { content: ""; position: absolute; left: 50%; top: 50%; width: 7px; height: 7px; border-radius: 50%;
                          transform: translate(-50%, -50%); background: var(--link); }
.legend .sw.gold-sure { box-shadow: inset 0 0 0 2px #000; }
.legend .sw.gold-possible { outline: 1px dashed #333; outline-offset: -3px; }
.legend .sw.null { background-image: repeating-linear-gradient(45deg, rgba(192,57,43,.28) 0 2px, transparent 2px 6px); }
.legend .sw.masked { background: #b9bec4; }
#error { color: #fff; background: var(--null); padding: 6px 10px; display: none; }
button { font: inherit; }
"""

SCRIPT = r"""
(function () {
"use strict";
const META = JSON.parse(document.getElementById("explorer-meta").textContent);
const NULL_MARK = "\u2205";
const EOS = "</s>";
const CACHE_LIMIT = 48;
const cache = new Map();
const state = {sentence: 0, sublayer: "cross", layer: 1, head: "avg", level: "subword", shift: false,
               method: "argmax", links: true, gold: true};
let renderTicket = 0;
let lastRender = Promise.resolve();
const $ = (id) => document.getElementById(id);

function fail(error) {
  const box = $("error");
  box.textContent = "The explorer could not show this view: " + (error && error.message ? error.message : error);
  box.style.display = "block";
  console.error(error);
}

// ---- data: base64 -> inflate -> typed views (layout: alignment_eval/explorer/payload.py) ----------
function base64Bytes(text) {
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function inflate(bytes) {
  if (typeof DecompressionStream === "undefined") {
    throw new Error("this browser has no DecompressionStream (needs Chrome 80+, Firefox 113+ or Safari 16.4+)");
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function segmentation(c, s) {
  return META.sentences[s].seg[META.checkpoints[c].seg[s]];
}

function unpack(raw, checkpoint, seg) {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const S = seg.srcPieces.length, T = seg.tgtPieces.length;
  const dims = {cross: [T + 1, S + 1], encoder: [S + 1, S + 1], decoder: [T + 1, T + 1]};
  let offset = 0;
  const steps = {};
  for (const name of META.sublayers) {
    const [L, H] = checkpoint.shapes[name];
    const values = new Float64Array(L * H);
    for (let i = 0; i < L * H; i++) values[i] = view.getFloat32(offset + 4 * i, true);
    steps[name] = values;
    offset += 4 * L * H;
  }
  const [Lc, Hc] = checkpoint.shapes.cross;
  const argmax = new Uint16Array(Lc * (Hc + 1) * (T + 1));
  for (let i = 0; i < argmax.length; i++) argmax[i] = view.getUint16(offset + 2 * i, true);
  offset += 2 * argmax.length;
  const q = {};
  for (const name of META.sublayers) {
    const [L, H] = checkpoint.shapes[name];
    const [R, K] = dims[name];
    const per = name === "decoder" ? R * (R + 1) / 2 : R * K;
    q[name] = {data: raw.subarray(offset, offset + L * H * per), per: per, R: R, K: K};
    offset += L * H * per;
  }
  if (offset !== raw.length) throw new Error("blob size " + raw.length + " does not match its shapes (" + offset + ")");
  return {steps: steps, argmax: argmax, q: q, S: S, T: T};
}

async function load(c, s) {
  const key = c + ":" + s;
  if (cache.has(key)) {
    const hit = cache.get(key);
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const element = document.getElementById("w" + c + "-" + s);
  if (!element) throw new Error("no attention stored for checkpoint " + (c + 1) + ", sentence " + (s + 1));
  const decoded = unpack(await inflate(base64Bytes(element.textContent)), META.checkpoints[c], segmentation(c, s));
  cache.set(key, decoded);
  while (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
  return decoded;
}

// ---- one matrix: a head, or the mean over heads ---------------------------------------------------
function matrix(decoded, checkpoint, name, layer, head) {
  const [L, H] = checkpoint.shapes[name];
  const block = decoded.q[name];
  const R = block.R, K = block.K;
  const w = new Float64Array(R * K);
  const masked = new Uint8Array(R * K);
  const heads = head === "avg" ? Array.from({length: H}, (_, h) => h) : [head - 1];
  let stepSum = 0;
  for (const h of heads) {
    const base = (layer * H + h) * block.per;
    const step = decoded.steps[name][layer * H + h];
    stepSum += step;
    if (name === "decoder") {
      for (let r = 0; r < R; r++) {
        const rowBase = base + r * (r + 1) / 2;
        for (let k = 0; k < K; k++) {
          if (k > r) { masked[r * K + k] = 1; continue; }
          w[r * K + k] += block.data[rowBase + k] * step;
        }
      }
    } else {
      for (let i = 0; i < R * K; i++) w[i] += block.data[base + i] * step;
    }
  }
  if (heads.length > 1) for (let i = 0; i < w.length; i++) w[i] /= heads.length;
  return {R: R, K: K, w: w, masked: masked, step: stepSum / heads.length};
}

// Per-head statistics of one layer over the full matrices (attention_stats.count_layer).
function layerStats(decoded, checkpoint, name, layer) {
  const [L, H] = checkpoint.shapes[name];
  const block = decoded.q[name];
  const R = block.R, K = block.K;
  const heads = [];
  for (let h = 0; h < H; h++) {
    const base = (layer * H + h) * block.per;
    let zeros = 0, positions = 0, nullRows = 0;
    for (let r = 0; r < R; r++) {
      const width = name === "decoder" ? r + 1 : K;
      const rowBase = base + (name === "decoder" ? r * (r + 1) / 2 : r * K);
      let rowZeros = 0;
      for (let k = 0; k < width; k++) if (block.data[rowBase + k] === 0) rowZeros++;
      zeros += rowZeros; positions += width;
      if (rowZeros === width) nullRows++;
    }
    heads.push({zeros: zeros, positions: positions, rows: R, nullRows: nullRows});
  }
  return heads;
}

// ---- what the heatmap shows ----------------------------------------------------------------------
function axes(checkpoint, decoded, seg, sentence, view) {
  const S = decoded.S, T = decoded.T;
  const level = view.level;
  const srcWords = sentence.src.length, tgtWords = sentence.tgt.length;
  const srcGroup = (j) => (j === S ? (level === "word" ? srcWords : S) : (level === "word" ? seg.srcWordOf[j] : j));
  const srcLabels = level === "word" ? [...sentence.src, EOS] : [...seg.srcPieces, EOS];
  if (view.sublayer === "cross") {
    const rows = [], groups = [];
    for (let k = 0; k < T; k++) { rows.push(k + (view.shift ? 1 : 0)); groups.push(level === "word" ? seg.tgtWordOf[k] : k); }
    const cols = Array.from({length: S + 1}, (_, j) => srcGroup(j));
    return {rows: rows, rowGroup: groups, colGroup: cols,
            rowLabels: level === "word" ? sentence.tgt.slice() : seg.tgtPieces.slice(), colLabels: srcLabels, eosCol: srcLabels.length - 1};
  }
  if (view.sublayer === "encoder") {
    const index = Array.from({length: S + 1}, (_, j) => j);
    return {rows: index, rowGroup: index.map(srcGroup), colGroup: index.map(srcGroup),
            rowLabels: srcLabels, colLabels: srcLabels, eosCol: srcLabels.length - 1};
  }
  const tgtGroup = (i) => (i === 0 ? 0 : (level === "word" ? seg.tgtWordOf[i - 1] + 1 : i));
  const labels = level === "word" ? [EOS, ...sentence.tgt] : [EOS, ...seg.tgtPieces];
  const index = Array.from({length: T + 1}, (_, i) => i);
  return {rows: index, rowGroup: index.map(tgtGroup), colGroup: index.map(tgtGroup),
          rowLabels: labels, colLabels: labels, eosCol: -1};
}

// Pool matrix rows/cols into display cells: mean over a row group's rows, sum over a column group's
// columns (induce.pool_to_words); a cell is masked when every cell behind it is.
function display(m, ax) {
  const nRows = ax.rowLabels.length, nCols = ax.colLabels.length;
  const value = new Float64Array(nRows * nCols);
  const open = new Uint8Array(nRows * nCols);
  const count = new Float64Array(nRows);
  ax.rows.forEach((r, i) => {
    const g = ax.rowGroup[i];
    count[g] += 1;
    for (let k = 0; k < m.K; k++) {
      const cell = g * nCols + ax.colGroup[k];
      if (m.masked[r * m.K + k]) continue;
      open[cell] = 1;
      value[cell] += m.w[r * m.K + k];
    }
  });
  const nullRow = new Uint8Array(nRows);
  for (let g = 0; g < nRows; g++) {
    let any = false, live = false;
    for (let h = 0; h < nCols; h++) {
      const cell = g * nCols + h;
      if (count[g] > 0) value[cell] /= count[g];
      if (open[cell]) { live = true; if (value[cell] > 0) any = true; }
    }
    nullRow[g] = live && !any ? 1 : 0;
  }
  return {nRows: nRows, nCols: nCols, value: value, open: open, nullRow: nullRow};
}

// Piece links of the cross-attention rows (induce.row_links on target_rows), and their words (rule "any").
function inducedLinks(decoded, checkpoint, m, seg, view) {
  const [L, H] = checkpoint.shapes.cross;
  const S = decoded.S, T = decoded.T, P = T + 1;
  const headIndex = view.head === "avg" ? H : view.head - 1;
  const pieces = [];
  for (let k = 0; k < T; k++) {
    const r = k + (view.shift ? 1 : 0);
    if (view.method === "argmax") {
      if (S === 0) continue;
      const j = decoded.argmax[((view.layer - 1) * (H + 1) + headIndex) * P + r];
      if (m.w[r * m.K + j] > 0) pieces.push([k, j]);
    } else {
      for (let j = 0; j < S; j++) if (m.w[r * m.K + j] > 0) pieces.push([k, j]);
    }
  }
  const words = new Map();
  for (const [k, j] of pieces) {
    const s = seg.srcWordOf[j], t = seg.tgtWordOf[k];
    words.set(s + "-" + t, [s, t]);
  }
  return {pieces: pieces, words: Array.from(words.values())};
}

function aer(links, sentence) {
  const sure = new Set((sentence.sure || []).map(([s, t]) => s + "-" + t));
  const possible = new Set((sentence.possible || []).map(([s, t]) => s + "-" + t));
  let aS = 0, aP = 0;
  for (const [s, t] of links) {
    const key = s + "-" + t;
    if (sure.has(key)) { aS++; aP++; } else if (possible.has(key)) aP++;
  }
  const ratio = (n, d) => (d ? n / d : 0);
  return {aer: 1 - ratio(aS + aP, links.length + sure.size), precision: ratio(aP, links.length),
          recall: ratio(aS, sure.size), links: links.length};
}

// ---- drawing -------------------------------------------------------------------------------------
function fmt(x, digits) { return x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(digits); }

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function statItem(parent, label, className, value, text, title) {
  const item = element("span", "stat");
  item.appendChild(document.createTextNode(label + " "));
  const v = element("span", "value " + className, text);
  v.dataset.value = value === null ? "" : String(value);
  item.appendChild(v);
  if (title) item.title = title;
  parent.appendChild(item);
}

function renderPanel(c, decoded) {
  const checkpoint = META.checkpoints[c];
  const sentence = META.sentences[state.sentence];
  const seg = segmentation(c, state.sentence);
  const panel = element("section", "panel");
  panel.dataset.checkpoint = String(c);
  panel.appendChild(element("h2", "", checkpoint.label));
  const normalizer = (checkpoint.normalizers || {})[state.sublayer];
  const parts = checkpoint.path.split("/");
  const path = element("div", "path", (parts.length > 2 ? "\u2026/" + parts.slice(-2).join("/") : checkpoint.path) +
                       (normalizer ? " \u00b7 " + normalizer : ""));
  path.title = checkpoint.path;
  panel.appendChild(path);
  const [L, H] = checkpoint.shapes[state.sublayer];
  if (state.layer > L || (state.head !== "avg" && state.head > H)) {
    panel.appendChild(element("div", "missing", "this model has " + L + " layers \u00d7 " + H + " heads here"));
    return panel;
  }
  const layer = state.layer - 1;
  const m = matrix(decoded, checkpoint, state.sublayer, layer, state.head);
  const ax = axes(checkpoint, decoded, seg, sentence, state);
  const shown = display(m, ax);
  const cross = state.sublayer === "cross";
  const links = cross ? inducedLinks(decoded, checkpoint, m, seg, state) : null;

  // statistics of this sentence
  const stats = element("div", "stats");
  if (cross && META.gold) {
    const score = aer(links.words, sentence);
    statItem(stats, "AER", "stat-aer", score.aer, fmt(score.aer, 3),
             "per-sentence AER of the " + state.method + " links (" + (state.shift ? "shifted" : "normal") +
             ", subword rule any): precision " + fmt(score.precision, 3) + ", recall " + fmt(score.recall, 3) +
             ", " + score.links + " links");
    statItem(stats, "P/R", "stat-pr", score.precision, fmt(score.precision, 2) + "/" + fmt(score.recall, 2));
  } else if (cross) {
    statItem(stats, "links", "stat-links", links.words.length, String(links.words.length));
  }
  const perHead = layerStats(decoded, checkpoint, state.sublayer, layer);
  const chosen = state.head === "avg" ? perHead : [perHead[state.head - 1]];
  const zeros = chosen.reduce((a, h) => a + h.zeros, 0), positions = chosen.reduce((a, h) => a + h.positions, 0);
  const sparsity = positions ? zeros / positions : 0;
  statItem(stats, "sparsity", "stat-sparsity", sparsity, fmt(sparsity, 3),
           "share of exact zeros among the allowed positions of " + (state.head === "avg" ? "all heads of layer " +
           state.layer : "head " + state.head) + " (all queries and keys, EOS included)");
  const rates = element("span", "null-rates");
  rates.appendChild(document.createTextNode("null rows "));
  perHead.forEach((h, i) => {
    const rate = h.rows ? h.nullRows / h.rows : 0;
    const chip = element("span", "null-rate" + (rate > 0 ? " some" : "") +
                         (state.head === i + 1 ? " selected" : ""), "h" + (i + 1) + " " + fmt(rate, 2));
    chip.dataset.head = String(i + 1);
    chip.dataset.value = String(rate);
    chip.title = "head " + (i + 1) + ": " + h.nullRows + " of " + h.rows + " query rows attend to nothing";
    rates.appendChild(chip);
  });
  stats.appendChild(rates);
  panel.appendChild(stats);

  // heatmap
  let max = 0;
  for (let i = 0; i < shown.value.length; i++) if (shown.open[i] && shown.value[i] > max) max = shown.value[i];
  const linkCells = new Set();
  if (cross && state.links) {
    if (state.level === "word") for (const [s, t] of links.words) linkCells.add(t + ":" + s);
    else for (const [k, j] of links.pieces) linkCells.add(k + ":" + j);
  }
  const goldCells = new Map();
  if (cross && state.gold && META.gold) {
    const mark = (pairs, kind) => {
      for (const [s, t] of pairs || []) {
        if (state.level === "word") { goldCells.set(t + ":" + s, kind); continue; }
        seg.tgtWordOf.forEach((tw, k) => {
          if (tw !== t) return;
          seg.srcWordOf.forEach((sw, j) => { if (sw === s && goldCells.get(k + ":" + j) !== "sure") goldCells.set(k + ":" + j, kind); });
        });
      }
    };
    mark(sentence.possible, "possible");
    mark(sentence.sure, "sure");
  }
  const table = element("table", "heatmap");
  const n = META.checkpoints.length;
  const width = ($("panels").clientWidth - 16 * (n - 1)) / n - 170;  // a panel's share, less the row labels
  const cell = Math.max(9, Math.min(22, Math.floor(width / Math.max(1, shown.nCols))));
  table.style.setProperty("--cell", cell + "px");
  table.dataset.rows = String(shown.nRows);
  table.dataset.cols = String(shown.nCols);
  table.dataset.max = String(max);
  const head = element("tr");
  head.appendChild(element("th", "corner"));
  shown.nCols && ax.colLabels.forEach((label, h) => {
    const th = element("th", "col" + (h === ax.eosCol ? " eos" : ""));
    th.appendChild(element("span", "", label));
    th.title = label;
    head.appendChild(th);
  });
  const thead = element("thead");
  thead.appendChild(head);
  table.appendChild(thead);
  const body = element("tbody");
  for (let g = 0; g < shown.nRows; g++) {
    const tr = element("tr");
    const nullRow = shown.nullRow[g] === 1;
    const th = element("th", "rowlabel" + (nullRow ? " null" : ""), (nullRow ? NULL_MARK + " " : "") + ax.rowLabels[g]);
    th.title = ax.rowLabels[g] + (nullRow ? " \u2014 null row: this attention attends to nothing here" : "");
    tr.appendChild(th);
    for (let h = 0; h < shown.nCols; h++) {
      const i = g * shown.nCols + h;
      const td = element("td");
      td.dataset.r = String(g);
      td.dataset.c = String(h);
      const classes = [];
      if (h === ax.eosCol) classes.push("eos");
      if (!shown.open[i]) {
        classes.push("masked");
        td.dataset.w = "masked";
      } else {
        const w = shown.value[i];
        td.dataset.w = String(w);
        if (w > 0) {
          const alpha = 0.07 + 0.93 * (max > 0 ? w / max : 0);
          td.style.backgroundColor = "rgba(8, 48, 107, " + alpha.toFixed(3) + ")";
        } else if (nullRow) classes.push("null");
        else classes.push("zero");
      }
      if (linkCells.has(g + ":" + h)) classes.push("link");
      const gold = goldCells.get(g + ":" + h);
      if (gold) classes.push("gold-" + gold);
      if (classes.length) td.className = classes.join(" ");
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  table.appendChild(body);
  const note = element("div", "path", "colour: 0 \u2192 " + fmt(max, 4) + " \u00b7 weights within one " + Math.round(Math.log2(META.levels + 1)) + "-bit step (" +
                       (m.step ? m.step.toPrecision(2) : "0") + ") of the recorded ones" +
                       (seg.unk ? " \u00b7 " + seg.unk + " unknown pieces" : ""));
  panel.appendChild(table);
  panel.appendChild(note);
  panel._view = {ax: ax, m: m, shown: shown, links: linkCells, gold: goldCells};
  return panel;
}

async function render() {
  const ticket = ++renderTicket;
  const s = state.sentence;
  const decoded = await Promise.all(META.checkpoints.map((_, c) => load(c, s)));
  if (ticket !== renderTicket) return;
  const panels = $("panels");
  panels.textContent = "";
  decoded.forEach((d, c) => panels.appendChild(renderPanel(c, d)));
  const sentence = META.sentences[s];
  const text = $("sentence-text");
  text.textContent = "";
  const line = (label, words) => {
    const div = element("div");
    div.appendChild(element("b", "", label + " "));
    div.appendChild(document.createTextNode(words.join(" ")));
    text.appendChild(div);
  };
  line("#" + (s + 1) + (sentence.line ? " (line " + sentence.line + ")" : "") + " source", sentence.src);
  line("target", sentence.tgt);
  document.documentElement.dataset.rendered = [s, state.sublayer, state.layer, state.head, state.level,
                                               state.shift ? 1 : 0, state.method].join("|");
  document.documentElement.dataset.ready = "1";
}

function schedule() {
  lastRender = render().catch(fail);
  return lastRender;
}

// ---- controls and the URL hash --------------------------------------------------------------------
function maxShape(name, index) {
  return Math.max(...META.checkpoints.map((c) => c.shapes[name][index]));
}

function fillOptions(select, values, labels) {
  const old = select.value;
  select.textContent = "";
  values.forEach((v, i) => {
    const option = element("option", "", labels[i]);
    option.value = String(v);
    select.appendChild(option);
  });
  if (values.map(String).includes(old)) select.value = old;
}

function syncControls() {
  const layers = maxShape(state.sublayer, 0), heads = maxShape(state.sublayer, 1);
  if (state.layer > layers) state.layer = layers;
  if (state.head !== "avg" && state.head > heads) state.head = "avg";
  fillOptions($("layer"), Array.from({length: layers}, (_, i) => i + 1), Array.from({length: layers}, (_, i) => "layer " + (i + 1)));
  fillOptions($("head"), ["avg", ...Array.from({length: heads}, (_, i) => i + 1)],
              ["average of the heads", ...Array.from({length: heads}, (_, i) => "head " + (i + 1))]);
  $("sublayer").value = state.sublayer;
  $("layer").value = String(state.layer);
  $("head").value = String(state.head);
  $("level").value = state.level;
  $("shift").value = state.shift ? "shifted" : "normal";
  $("method").value = state.method;
  $("links").checked = state.links;
  $("gold").checked = state.gold;
  const cross = state.sublayer === "cross";
  for (const id of ["shift", "method", "links"]) $(id).disabled = !cross;
  $("gold").disabled = !cross || !META.gold;
  if ($("sentence").value !== String(state.sentence)) $("sentence").value = String(state.sentence);
}

function writeHash() {
  const hash = "#s=" + (state.sentence + 1) + "&sub=" + state.sublayer + "&l=" + state.layer + "&h=" + state.head +
               "&lv=" + state.level + "&sh=" + (state.shift ? 1 : 0) + "&m=" + state.method;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function parseHash() {
  const out = {};
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const int = (name) => { const v = parseInt(params.get(name), 10); return Number.isFinite(v) ? v : null; };
  if (int("s") !== null) out.sentence = int("s") - 1;
  if (params.get("sub")) out.sublayer = params.get("sub");
  if (int("l") !== null) out.layer = int("l");
  if (params.get("h")) out.head = params.get("h") === "avg" ? "avg" : int("h");
  if (params.get("lv")) out.level = params.get("lv");
  if (params.get("sh")) out.shift = params.get("sh") === "1";
  if (params.get("m")) out.method = params.get("m");
  return out;
}

function set(partial) {
  const next = Object.assign({}, state, partial);
  if (!(next.sentence >= 0 && next.sentence < META.sentences.length)) next.sentence = state.sentence;
  if (!META.sublayers.includes(next.sublayer)) next.sublayer = state.sublayer;
  if (!["subword", "word"].includes(next.level)) next.level = state.level;
  if (!["argmax", "nonzero"].includes(next.method)) next.method = state.method;
  if (next.head !== "avg" && !(Number.isInteger(next.head) && next.head >= 1)) next.head = "avg";
  if (!(Number.isInteger(next.layer) && next.layer >= 1)) next.layer = 1;
  Object.assign(state, next);
  syncControls();
  writeHash();
  return schedule();
}

function sentenceLabel(s) {
  const sentence = META.sentences[s];
  return (s + 1) + ". " + sentence.src.join(" ") + "  \u2192  " + sentence.tgt.join(" ");
}

function filterSentences() {
  const query = $("search").value.trim().toLowerCase();
  const select = $("sentence");
  select.textContent = "";
  let shown = 0;
  const number = /^#?(\d+)$/.exec(query);
  META.sentences.forEach((sentence, s) => {
    const label = sentenceLabel(s);
    if (query && !(number && Number(number[1]) === s + 1) && !label.toLowerCase().includes(query)) return;
    const option = element("option", "", label.length > 140 ? label.slice(0, 139) + "\u2026" : label);
    option.value = String(s);
    option.title = label;
    select.appendChild(option);
    shown++;
  });
  select.value = String(state.sentence);
  $("count").textContent = shown + " of " + META.sentences.length + " sentences";
}

function step(delta) {
  const options = Array.from($("sentence").options).map((o) => Number(o.value));
  if (!options.length) return;
  const at = options.indexOf(state.sentence);
  const next = at < 0 ? options[0] : options[Math.max(0, Math.min(options.length - 1, at + delta))];
  set({sentence: next});
}

function tooltip(event) {
  const tip = $("tooltip");
  const td = event.target.closest ? event.target.closest("table.heatmap td") : null;
  document.querySelectorAll("td.hover").forEach((n) => n.classList.remove("hover"));
  if (!td) { tip.style.display = "none"; return; }
  const panel = td.closest(".panel");
  const view = panel._view;
  const g = Number(td.dataset.r), h = Number(td.dataset.c);
  td.classList.add("hover");
  const lines = [];
  const checkpoint = META.checkpoints[Number(panel.dataset.checkpoint)];
  lines.push(checkpoint.label + ": " + META.sublayerLabels[state.sublayer] + ", layer " + state.layer + ", " +
             (state.head === "avg" ? "head average" : "head " + state.head));
  lines.push("query \u201c" + view.ax.rowLabels[g] + "\u201d \u2192 key \u201c" + view.ax.colLabels[h] + "\u201d");
  tip.textContent = "";
  lines.forEach((l) => tip.appendChild(element("div", "", l)));
  const weight = element("div", "");
  if (td.dataset.w === "masked") weight.textContent = "masked: this query may not attend to this key (causal)";
  else {
    weight.appendChild(document.createTextNode("weight "));
    weight.appendChild(element("span", "w", Number(td.dataset.w).toPrecision(6)));
    if (Number(td.dataset.w) === 0) weight.appendChild(document.createTextNode(" (exact zero)"));
  }
  tip.appendChild(weight);
  const flags = [];
  if (view.shown.nullRow[g]) flags.push("null row");
  if (view.gold.get(g + ":" + h)) flags.push("gold " + view.gold.get(g + ":" + h));
  if (view.links.has(g + ":" + h)) flags.push(state.method + " link");
  if (flags.length) tip.appendChild(element("div", "", flags.join(" \u00b7 ")));
  tip.style.display = "block";
  const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
  tip.style.left = Math.max(0, x) + "px";
  tip.style.top = Math.max(0, y) + "px";
}

function start() {
  const sublayer = $("sublayer");
  META.sublayers.forEach((name) => {
    const option = element("option", "", META.sublayerLabels[name]);
    option.value = name;
    sublayer.appendChild(option);
  });
  filterSentences();
  $("search").addEventListener("input", filterSentences);
  $("sentence").addEventListener("change", () => set({sentence: Number($("sentence").value)}));
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  sublayer.addEventListener("change", () => set({sublayer: sublayer.value}));
  $("layer").addEventListener("change", () => set({layer: Number($("layer").value)}));
  $("head").addEventListener("change", () => set({head: $("head").value === "avg" ? "avg" : Number($("head").value)}));
  $("level").addEventListener("change", () => set({level: $("level").value}));
  $("shift").addEventListener("change", () => set({shift: $("shift").value === "shifted"}));
  $("method").addEventListener("change", () => set({method: $("method").value}));
  $("links").addEventListener("change", () => set({links: $("links").checked}));
  $("gold").addEventListener("change", () => set({gold: $("gold").checked}));
  $("panels").addEventListener("mousemove", tooltip);
  $("panels").addEventListener("mouseleave", () => { $("tooltip").style.display = "none"; });
  window.addEventListener("hashchange", () => set(parseHash()));
  window.explorer = {meta: META, state: state, set: set, idle: () => lastRender.then(() => lastRender)};
  set(parseHash());
}

if (!META.sentences.length) {
  $("panels").textContent = "This page holds no sentences.";
  document.documentElement.dataset.ready = "1";
  window.explorer = {meta: META, state: state, set: () => Promise.resolve(), idle: () => Promise.resolve()};
} else {
  start();
}
})();
"""
