"""The explorer page's JavaScript in headless Chromium on synthetic attention (no model: seconds).

Words of several pieces exercise what the toy corpus (one piece per word) cannot: word pooling
(induce.pool_to_words), word links from piece links (rule any, induce.word_links) and gold links
spread over every piece pair. Skips, saying why, where Chromium is absent.
"""

import numpy as np
import pytest

from alignment_eval.alignments.induce import pool_to_words, word_links
from alignment_eval.alignments.io import GoldAlignment
from alignment_eval.explorer import (
    CheckpointInfo, ExplorerData, Segmentation, SentenceAttention, SentenceInfo, decode_sentence, encode_sentence,
    write_page,
)
from alignment_eval.explorer.browser import Chromium, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: install it with `make setup BROWSER=1` (scripts/install_browser.sh), or set CHROMIUM",
)
LAYERS, HEADS = 2, 3
SHAPES = {"cross": [LAYERS, HEADS], "encoder": [LAYERS, HEADS], "decoder": [LAYERS, HEADS]}
# pieces per word: source words of 1-3 pieces, target words of 1-2
SOURCE_WORDS = [1, 3, 1, 2]
TARGET_WORDS = [2, 1, 2]


def word_map(pieces_per_word):
    return [w for w, count in enumerate(pieces_per_word) for _ in range(count)]


def synthetic(seed: int, sparse: bool) -> SentenceAttention:
    rng = np.random.default_rng(seed)
    source, target = word_map(SOURCE_WORDS), word_map(TARGET_WORDS)
    sources, positions = len(source) + 1, len(target) + 1

    def weights(queries, keys):
        values = rng.random((LAYERS, HEADS, queries, keys)).astype(np.float32)
        if sparse:
            values[values < 0.55] = 0.0
        return values

    decoder = weights(positions, positions) * np.tril(np.ones((positions, positions), dtype=np.float32))
    attention = SentenceAttention(
        Segmentation([f"s{w}.{i}" for i, w in enumerate(source)], [f"t{w}.{i}" for i, w in enumerate(target)],
                     source, target),
        weights(positions, sources), weights(sources, sources), decoder)
    if sparse:
        attention.cross[1, 2, 3] = 0.0  # a null decoder row
    return attention


@pytest.fixture(scope="module")
def synthetic_page(tmp_path_factory):
    attentions = [[synthetic(10 * s + c, sparse=c == 1) for s in range(3)] for c in range(2)]
    gold = GoldAlignment(frozenset({(0, 2), (1, 1)}), frozenset({(3, 0)}))
    data = ExplorerData(
        "synthetic", [CheckpointInfo("dense", "a.pt", SHAPES), CheckpointInfo("sparse", "b.pt", SHAPES)],
        [SentenceInfo([f"S{i}" for i in range(len(SOURCE_WORDS))], [f"T{i}" for i in range(len(TARGET_WORDS))],
                      gold, line=s + 1) for s in range(3)],
        [[encode_sentence(a) for a in row] for row in attentions], [[a.segmentation for a in row] for row in attentions],
        has_gold=True, text="synthetic", gold="synthetic.gold")
    path = tmp_path_factory.mktemp("synthetic") / "page.html"
    write_page(path, data)
    return {"path": path, "attentions": attentions, "gold": gold, "data": data}


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM) as chromium:
        yield chromium


def open_view(browser, path, view):
    tab = browser.new_page()
    tab.navigate(path.resolve().as_uri() + view)
    tab.wait_for("document.documentElement.dataset.ready === '1'")
    tab.evaluate("explorer.idle()")
    return tab


def shown(tab, c):
    """{(row, column): (data-w, classes)} of checkpoint c's heatmap."""
    cells = tab.evaluate(f"""Array.from(document.querySelectorAll('.panel[data-checkpoint="{c}"] table.heatmap td'))
        .map(td => [Number(td.dataset.r), Number(td.dataset.c), td.dataset.w, td.className.split(' ')])""")
    return {(r, k): (w, set(classes)) for r, k, w, classes in cells}


def decoded(page, c, s):
    return decode_sentence(encode_sentence(page["attentions"][c][s]), SHAPES, sum(SOURCE_WORDS), sum(TARGET_WORDS))


@pytest.mark.parametrize("head", [3, "avg"])  # head 3 of layer 2 has a null row (sparse)
@pytest.mark.parametrize("shift", [False, True])
def test_word_level_cross_attention_pools_pieces_like_induce(browser, synthetic_page, head, shift):
    s, layer = 1, 2
    tab = open_view(browser, synthetic_page["path"], f"#s={s + 1}&sub=cross&l={layer}&h={head}&lv=word&sh={int(shift)}")
    source, target = word_map(SOURCE_WORDS), word_map(TARGET_WORDS)
    for c in range(2):
        matrices = decoded(synthetic_page, c, s)["cross"][layer - 1]  # [heads, positions, sources + EOS]
        matrix = matrices.mean(axis=0) if head == "avg" else matrices[head - 1]
        rows = matrix[int(shift):int(shift) + len(target)]  # [target pieces, source pieces + EOS]
        expected = pool_to_words(rows, np.array(target), np.array([*source, len(SOURCE_WORDS)]),
                                 len(TARGET_WORDS), len(SOURCE_WORDS) + 1)
        cells = shown(tab, c)
        assert len(cells) == expected.size
        for (r, k), (weight, _) in cells.items():
            assert float(weight) == pytest.approx(expected[r, k], rel=1e-12, abs=1e-15)
        # word links: piece links of the float attention (argmax) mapped to words (rule any)
        attention = synthetic_page["attentions"][c][s].cross[layer - 1]
        float_rows = (attention.mean(axis=0) if head == "avg" else attention[head - 1])[int(shift):int(shift) + len(target), :-1]
        links = word_links(float_rows, np.array(target), np.array(source), len(TARGET_WORDS), len(SOURCE_WORDS), "argmax")
        assert {(k, r) for (r, k), (_, classes) in cells.items() if "link" in classes} == links
        sure = {(k, r) for (r, k), (_, classes) in cells.items() if "gold-sure" in classes}
        possible = {(k, r) for (r, k), (_, classes) in cells.items() if "gold-possible" in classes}
        assert sure == set(synthetic_page["gold"].sure) and possible == set(synthetic_page["gold"].possible)
    assert tab.problems() == []


def test_subword_gold_covers_every_piece_pair_and_nonzero_links_are_the_support(browser, synthetic_page):
    s, layer, head = 0, 1, 3
    tab = open_view(browser, synthetic_page["path"], f"#s={s + 1}&sub=cross&l={layer}&h={head}&lv=subword&m=nonzero")
    source, target = word_map(SOURCE_WORDS), word_map(TARGET_WORDS)
    gold = synthetic_page["gold"]
    for c in range(2):
        cells = shown(tab, c)
        sure = {(r, k) for (r, k), (_, classes) in cells.items() if "gold-sure" in classes}
        assert sure == {(t, j) for t, tw in enumerate(target) for j, sw in enumerate(source) if (sw, tw) in gold.sure}
        support = synthetic_page["attentions"][c][s].cross[layer - 1, head - 1, :len(target), :-1] > 0
        links = {(r, k) for (r, k), (_, classes) in cells.items() if "link" in classes}
        assert links == {tuple(x) for x in np.argwhere(support)}
    assert tab.problems() == []


def test_a_null_row_is_marked_and_left_unaligned(browser, synthetic_page):
    tab = open_view(browser, synthetic_page["path"], "#s=1&sub=cross&l=2&h=3&lv=subword&m=argmax")
    labels = tab.evaluate("""Array.from(document.querySelectorAll('.panel[data-checkpoint="1"] th.rowlabel'))
        .map(th => th.textContent)""")
    assert labels[3].startswith("\u2205") and sum(label.startswith("\u2205") for label in labels) == 1
    row = [(weight, classes) for (r, _), (weight, classes) in shown(tab, 1).items() if r == 3]
    assert all(weight == "0" and "null" in classes and "link" not in classes for weight, classes in row)
    assert not any(label.startswith("\u2205") for label in tab.evaluate(
        """Array.from(document.querySelectorAll('.panel[data-checkpoint="0"] th.rowlabel')).map(th => th.textContent)"""))


@pytest.mark.parametrize("sublayer", ["encoder", "decoder"])
def test_word_level_self_attention_pools_both_axes_and_keeps_the_causal_mask(browser, synthetic_page, sublayer):
    s, layer, head = 2, 1, 1
    tab = open_view(browser, synthetic_page["path"], f"#s={s + 1}&sub={sublayer}&l={layer}&h={head}&lv=word")
    if sublayer == "encoder":
        groups, words = [*word_map(SOURCE_WORDS), len(SOURCE_WORDS)], len(SOURCE_WORDS) + 1  # EOS: a group of its own
    else:
        groups, words = [0, *(w + 1 for w in word_map(TARGET_WORDS))], len(TARGET_WORDS) + 1  # BOS first
    for c in range(2):
        matrix = decoded(synthetic_page, c, s)[sublayer][layer - 1, head - 1]  # [queries, keys], NaN where masked
        groups_array = np.array(groups)
        expected = pool_to_words(np.nan_to_num(matrix), groups_array, groups_array, words, words)
        open_cells = pool_to_words((~np.isnan(matrix)).astype(float), groups_array, groups_array, words, words) > 0
        cells = shown(tab, c)
        for (r, k), (weight, classes) in cells.items():
            if not open_cells[r, k]:
                assert weight == "masked" and "masked" in classes
            else:
                assert float(weight) == pytest.approx(expected[r, k], rel=1e-12, abs=1e-15)
        if sublayer == "decoder":
            assert any(weight == "masked" for weight, _ in cells.values())
    assert tab.problems() == []


def test_search_and_buttons_move_between_sentences(browser, synthetic_page):
    tab = open_view(browser, synthetic_page["path"], "")
    tab.evaluate("""(() => { const s = document.getElementById('search'); s.value = '#3';
        s.dispatchEvent(new Event('input')); })()""")
    assert tab.evaluate("Array.from(document.getElementById('sentence').options).map(o => o.value)") == ["2"]
    tab.evaluate("""(() => { const s = document.getElementById('search'); s.value = '';
        s.dispatchEvent(new Event('input')); document.getElementById('next').click(); })()""")
    tab.evaluate("explorer.idle()")
    assert tab.evaluate("explorer.state.sentence") == 1
    assert tab.evaluate("document.getElementById('count').textContent") == "3 of 3 sentences"
    assert tab.problems() == []


def test_an_empty_page_says_so(browser, tmp_path):
    path = tmp_path / "empty.html"
    write_page(path, ExplorerData("empty", [CheckpointInfo("m", "m.pt", SHAPES)], [], [[]], [[]]))
    tab = open_view(browser, path, "")
    assert "no sentences" in tab.evaluate("document.getElementById('panels').textContent")
    assert tab.problems() == []


def test_a_damaged_blob_is_reported_on_the_page(browser, synthetic_page, tmp_path):
    text = synthetic_page["path"].read_text(encoding="utf-8")
    start = text.index('<script id="w1-0" type="application/octet-stream">') + len('<script id="w1-0" type="application/octet-stream">')
    damaged = tmp_path / "damaged.html"
    damaged.write_text(text[:start] + "AAAA" + text[start + 4:], encoding="utf-8")
    tab = browser.new_page()
    tab.navigate(damaged.resolve().as_uri())
    tab.wait_for("document.getElementById('error').style.display === 'block'")
    assert "could not show this view" in tab.evaluate("document.getElementById('error').textContent")
    assert any("console.error" in problem for problem in tab.problems())
    assert all(url.startswith("file://") for url in tab.requests())  # only the page itself was requested
