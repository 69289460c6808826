"""alignment-eval explore end to end: toy softmax and ReLA models -> one page -> headless Chromium.

The page is checked against the attention recorded in Python (model_attention.record_pairs), the
links of alignment-eval extract, the AER metric object and attention_stats.count_layer. The browser
tests drive Debian's chromium over the DevTools pipe (alignment_eval.explorer.browser) and skip,
saying why, where it is absent. With EXPLORER_SCREENSHOT=PATH the screenshot test also writes its
PNG there (docs/explorer.png is made that way).
"""

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from alignment_eval.alignments.aer import AER
from alignment_eval.alignments.induce import pool_to_words, target_rows
from alignment_eval.alignments.io import read_gold_alignments, read_parallel_text
from alignment_eval.analysis.attention_stats import allowed_positions, count_layer
from alignment_eval.analysis.extract import extract_alignments
from alignment_eval.analysis.model_attention import encode_pairs, load_model, record_pairs
from alignment_eval.cli import main
from alignment_eval.explorer import decode_sentence
from alignment_eval.explorer.browser import Chromium, find_chromium

from conftest import train_toy_model

pytestmark = pytest.mark.slow

CHROMIUM = find_chromium()
needs_browser = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: install it with `make setup BROWSER=1` (scripts/install_browser.sh), or set CHROMIUM",
)
LABELS = ("softmax", "rela")


@pytest.fixture(scope="module")
def toy_softmax(toy_binarized, tmp_path_factory):
    """A softmax_transformer_tiny trained exactly like conftest's ReLA toy_model, to compare with it."""
    return train_toy_model(toy_binarized, tmp_path_factory.mktemp("toy_softmax"), "softmax_transformer_tiny")


@pytest.fixture(scope="module")
def checkpoints(toy_softmax, toy_model):
    return [toy_softmax, toy_model["checkpoint"]]


@pytest.fixture(scope="module")
def page(checkpoints, toy_model, tmp_path_factory):
    """The page of both toy models on the toy test text (50 pairs) with its gold; and its build time."""
    out = tmp_path_factory.mktemp("explorer") / "explorer.html"
    started = time.perf_counter()
    arguments = ["explore", "--data-dir", str(toy_model["data_dir"]), "--text", str(toy_model["text"]),
                 "--gold", str(toy_model["gold"]), "--out", str(out)]
    for checkpoint, label in zip(checkpoints, LABELS):
        arguments += ["--checkpoint", str(checkpoint), "--label", label]
    assert main(arguments) == 0
    return {"path": out, "seconds": time.perf_counter() - started}


@pytest.fixture(scope="module")
def recorded(checkpoints, toy_model):
    """Per checkpoint: the encoded pairs and the float attention of every sentence (all sublayers)."""
    pairs = read_parallel_text(toy_model["text"])
    result = []
    for checkpoint in checkpoints:
        loaded = load_model(checkpoint, data_dir=toy_model["data_dir"])
        encoded = encode_pairs(loaded, pairs)
        records = [{"cross": r.cross.numpy(), "encoder": r.encoder_self.numpy(), "decoder": r.decoder_self.numpy()}
                   for _, r in record_pairs(loaded, encoded, include_self=True)]
        result.append({"loaded": loaded, "encoded": encoded, "records": records})
    return result


def page_meta(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script id="explorer-meta" type="application/json">(.*?)</script>', text).group(1))


def page_blob(path: Path, c: int, s: int) -> bytes:
    text = path.read_text(encoding="utf-8")
    return base64.b64decode(re.search(rf'<script id="w{c}-{s}" type="application/octet-stream">(.*?)</script>', text).group(1))


# --- the page's data, without a browser ------------------------------------------------------------


def test_the_page_holds_every_sublayer_layer_and_head_within_one_step(page, recorded, toy_model):
    meta = page_meta(page["path"])
    gold = read_gold_alignments(toy_model["gold"])
    assert [c["label"] for c in meta["checkpoints"]] == list(LABELS)
    assert [c["normalizers"]["cross"] for c in meta["checkpoints"]] == ["softmax", "rela"]
    assert meta["sublayers"] == ["cross", "encoder", "decoder"] and meta["levels"] == 255
    assert len(meta["sentences"]) == 50 and meta["gold"] == "test.align"
    assert {tuple(link) for link in meta["sentences"][7]["sure"]} == set(gold[7].sure)
    for c, checkpoint in enumerate(meta["checkpoints"]):
        assert checkpoint["shapes"] == {"cross": [2, 4], "encoder": [2, 4], "decoder": [2, 4]}
        for s in (0, 7, 49):
            seg = meta["sentences"][s]["seg"][checkpoint["seg"][s]]
            decoded = decode_sentence(page_blob(page["path"], c, s), checkpoint["shapes"],
                                      len(seg["srcPieces"]), len(seg["tgtPieces"]))
            for name, weights in recorded[c]["records"][s].items():
                step = weights.max(axis=(-2, -1), keepdims=True) / 255  # [layers, heads, 1, 1]
                allowed = allowed_positions(name, *weights.shape[2:])
                shown = decoded[name]
                assert np.isnan(shown[..., ~allowed]).all()
                assert (np.abs(shown - weights)[..., allowed] <= np.broadcast_to(step, weights.shape)[..., allowed]
                        * (1 + 1e-6)).all()
                assert ((shown == 0) == (weights == 0))[..., allowed].all()  # exact zeros stay exact
    assert page["seconds"] < 120  # the models load in seconds; 2 x 50 sentences are recorded in well under 1 s


def test_reverse_shows_the_model_orientation(checkpoints, toy_model, tmp_path):
    pairs = read_parallel_text(toy_model["text"])
    reversed_text = tmp_path / "reversed.src-tgt"
    reversed_text.write_text("".join(f"{' '.join(p.target)} ||| {' '.join(p.source)}\n" for p in pairs))
    reversed_gold = tmp_path / "reversed.gold"
    gold = read_gold_alignments(toy_model["gold"])
    reversed_gold.write_text("".join(" ".join(f"{t}-{s}" for s, t in sorted(g.sure)) + "\n" for g in gold))
    out = tmp_path / "reversed.html"
    assert main(["explore", "--checkpoint", str(checkpoints[1]), "--data-dir", str(toy_model["data_dir"]),
                 "--text", str(reversed_text), "--gold", str(reversed_gold), "--reverse", "--cross-only",
                 "--sentences", "5", "--bits", "6", "--out", str(out)]) == 0
    meta = page_meta(out)
    assert len(meta["sentences"]) == 5 and meta["reverse"] and meta["sublayers"] == ["cross"] and meta["levels"] == 63
    assert meta["sentences"][2]["src"] == list(pairs[2].source)  # the model's source: the text's target
    assert {tuple(link) for link in meta["sentences"][2]["sure"]} == set(gold[2].sure)


def test_the_experiment_runner_builds_one_page_and_skips_it_when_nothing_changed(
        checkpoints, toy_model, tmp_path, monkeypatch):
    from mt_pipeline import experiment
    from mt_pipeline.spec import ExperimentSpec, GoldSet, Run, TestSet

    spec = ExperimentSpec(name="toy", data_bin=toy_model["data_dir"], spm_model=tmp_path / "no.model",
                          test_sets={"test": TestSet("test", tmp_path / "ref")}, out_dir=tmp_path / "results",
                          variants=("softmax", "rela"), seeds=(1, 2), checkpoint_root=tmp_path / "checkpoints",
                          gold=GoldSet(text=toy_model["text"], alignment=toy_model["gold"], one_based=False))
    runs = [Run(spec, variant, seed) for variant in spec.variants for seed in spec.seeds]
    by_variant = dict(zip(spec.variants, checkpoints))
    monkeypatch.setattr(experiment, "training_run", lambda run: type("Done", (), {"done": lambda self: {}})())
    monkeypatch.setattr(experiment, "chosen_checkpoint", lambda run: by_variant[run.variant] if run.seed == 1 else None)
    monkeypatch.setattr(experiment, "EXPLORER_SENTENCES", 10)
    messages = []
    page_path = experiment.explorer_page(spec, runs, log=messages.append)
    assert page_path == spec.out_dir / "explorer" / "explorer.html" and not messages
    meta = page_meta(page_path)
    assert [c["label"] for c in meta["checkpoints"]] == ["softmax (seed 1)", "rela (seed 1)"]
    assert len(meta["sentences"]) == 10 and meta["gold"] == "test.align"
    marker = spec.out_dir / "explorer" / "explorer.done.json"
    built = (page_path.stat().st_mtime_ns, marker.read_text())
    assert experiment.explorer_page(spec, runs, log=messages.append) == page_path
    assert (page_path.stat().st_mtime_ns, marker.read_text()) == built  # skipped: same checkpoints, text, settings
    monkeypatch.setattr(experiment, "EXPLORER_SENTENCES", 5)
    experiment.explorer_page(spec, runs, log=messages.append)
    assert len(page_meta(page_path)["sentences"]) == 5  # another setting: built again


def test_make_explore_compares_the_variants_of_a_direction_on_its_gold(checkpoints, toy_model, tmp_path, monkeypatch,
                                                                      capsys):
    """``make explore PAIR=ro-en ATTN=softmax,rela`` (python -m mt_pipeline.pairs explore) on a toy layout:
    checkpoints/<config>/<variant>/, the gold set in GOLD_DIR (1-based), the toy data standing in for the data-bin."""
    import types

    from mt_pipeline import pairs

    for variant, checkpoint in zip(LABELS, checkpoints):
        folder = tmp_path / "checkpoints" / "wmt16_ro_en" / variant
        folder.mkdir(parents=True)
        (folder / "checkpoint_last.pt").symlink_to(checkpoint)
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    shutil.copyfile(toy_model["text"], gold_dir / "roen.src-tgt")
    gold = read_gold_alignments(toy_model["gold"])
    (gold_dir / "roen.gold").write_text("".join(" ".join(f"{s + 1}-{t + 1}" for s, t in sorted(g.sure)) + "\n"
                                                for g in gold))
    monkeypatch.setattr(pairs, "_prepared", lambda args, d: types.SimpleNamespace(
        data_bin=toy_model["data_dir"], spm_models={}, test_source=None, test_reference=None))
    arguments = ["explore", "--pair", "ro-en", "--attn", "softmax,rela", "--checkpoints", str(tmp_path / "checkpoints"),
                 "--results", str(tmp_path / "results"), "--gold-dir", str(gold_dir), "--sentences", "4"]
    assert pairs.main(arguments) == 0
    page_path = tmp_path / "results" / "wmt16_ro_en" / "explorer" / "explorer.html"
    assert capsys.readouterr().out.strip() == str(page_path)
    meta = page_meta(page_path)
    assert [c["label"] for c in meta["checkpoints"]] == list(LABELS) and len(meta["sentences"]) == 4
    assert {tuple(link) for link in meta["sentences"][3]["sure"]} == set(gold[3].sure)
    assert pairs.main([*arguments[:4], "entmax15", *arguments[5:]]) == 2
    assert "wmt16_ro_en/entmax15: no checkpoint (train first: make train PAIR=ro-en ATTN=entmax15)" in \
        capsys.readouterr().err
    assert pairs.main([*arguments[:4], "relu", *arguments[5:]]) == 2
    assert "unknown attention variant 'relu'" in capsys.readouterr().err


# --- in the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM, width=1280, height=700) as chromium:
        yield chromium


def open_page(browser, path: Path, view: str = ""):
    tab = browser.new_page()
    tab.navigate(path.resolve().as_uri() + view)
    tab.wait_for("document.documentElement.dataset.ready === '1'")
    tab.evaluate("explorer.idle()")
    return tab


def cells(tab, c: int) -> list:
    """[row, column, data-w, classes] of every heatmap cell of checkpoint c."""
    return tab.evaluate(f"""Array.from(document.querySelectorAll('.panel[data-checkpoint="{c}"] table.heatmap td'))
        .map(td => [Number(td.dataset.r), Number(td.dataset.c), td.dataset.w, td.className])""")


def row_labels(tab, c: int) -> list:
    return tab.evaluate(f"""Array.from(document.querySelectorAll('.panel[data-checkpoint="{c}"] th.rowlabel'))
        .map(th => th.textContent)""")


def choose(tab, select_id: str, value: str) -> None:
    """Pick an option the way a user does: the select's value changes and it fires 'change'."""
    tab.evaluate(f"""(() => {{ const s = document.getElementById({json.dumps(select_id)});
        s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()""")
    tab.evaluate("explorer.idle()")


@needs_browser
def test_the_page_loads_offline_without_console_errors(browser, page):
    tab = open_page(browser, page["path"])
    assert tab.problems() == []
    requests = tab.requests()
    assert requests and all(url.startswith("file://") for url in requests), requests  # nothing from a network
    assert tab.evaluate("document.querySelectorAll('.panel').length") == 2
    assert tab.evaluate("document.querySelectorAll('table.heatmap').length") == 2


@needs_browser
def test_choosing_a_sentence_layer_and_head_changes_the_heatmap(browser, page, recorded):
    tab = open_page(browser, page["path"])
    first = cells(tab, 0)
    # search by text: the target words of sentence 13 (unique in the toy test set), then pick it
    target = " ".join(recorded[0]["loaded"].target_dictionary[int(i)] for i in recorded[0]["encoded"][12].target_ids)
    tab.evaluate(f"""(() => {{ const s = document.getElementById('search'); s.value = {json.dumps(target)};
        s.dispatchEvent(new Event('input')); }})()""")
    options = tab.evaluate("Array.from(document.getElementById('sentence').options).map(o => o.value)")
    assert "12" in options and len(options) < 50
    choose(tab, "sentence", "12")
    assert row_labels(tab, 0) == target.split(" ")  # the rows are the chosen sentence's target pieces
    second = cells(tab, 0)
    assert second != first
    choose(tab, "layer", "2")
    third = cells(tab, 0)
    assert third != second and tab.evaluate("document.documentElement.dataset.rendered").startswith("12|cross|2|avg")
    choose(tab, "head", "3")
    fourth = cells(tab, 0)
    assert fourth != third and tab.evaluate("explorer.state.head") == 3
    assert "h=3" in tab.evaluate("location.hash")  # the view can be shared as a link
    assert tab.problems() == []


@needs_browser
@pytest.mark.parametrize("sublayer,level", [("cross", "subword"), ("cross", "word"), ("encoder", "subword"),
                                            ("decoder", "subword")])
def test_a_cells_weight_equals_the_recorded_attention(browser, page, recorded, sublayer, level):
    sentence, layer, head = 4, 2, 3
    tab = open_page(browser, page["path"], f"#s={sentence + 1}&sub={sublayer}&l={layer}&h={head}&lv={level}")
    for c in range(2):
        weights = recorded[c]["records"][sentence][sublayer][layer - 1, head - 1]  # [queries, keys]
        encoded = recorded[c]["encoded"][sentence]
        step = weights.max() / 255
        if sublayer == "cross":
            expected = weights[:len(encoded.target_ids)]  # normal rows: the row that predicts each piece
            if level == "word":
                source = pool_to_words(expected[:, :-1], encoded.target_word_of_piece, encoded.source_word_of_piece,
                                       encoded.n_target_words, encoded.n_source_words)
                eos = pool_to_words(expected[:, -1:], encoded.target_word_of_piece, np.zeros(1, dtype=np.int64),
                                    encoded.n_target_words, 1)
                expected = np.concatenate([source, eos], axis=1)
        else:
            expected = weights
        allowed = allowed_positions(sublayer, *expected.shape)
        shown = cells(tab, c)
        assert len(shown) == expected.size
        for row, column, weight, classes in shown:
            if not allowed[row, column]:
                assert weight == "masked" and "masked" in classes
                continue
            assert abs(float(weight) - expected[row, column]) <= step * (1 + 1e-6), (c, row, column)
            assert (float(weight) == 0) == (expected[row, column] == 0)
    # hover: the tooltip shows the weight of the cell under the mouse
    row, column = np.unravel_index(np.argmax(expected), expected.shape)
    selector = f'.panel[data-checkpoint="1"] td[data-r="{row}"][data-c="{column}"]'
    x, y = tab.evaluate(f"""(() => {{ const td = document.querySelector('{selector}'); td.scrollIntoView({{block: 'center'}});
        const r = td.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    tab.mouse_move(x, y)
    shown = tab.wait_for("document.getElementById('tooltip').style.display === 'block' && "
                         "document.querySelector('#tooltip .w') && document.querySelector('#tooltip .w').textContent")
    assert abs(float(shown) - expected[row, column]) <= step * (1 + 1e-6)
    assert tab.evaluate(f"document.querySelector('{selector}').classList.contains('hover')")
    assert tab.problems() == []


@needs_browser
@pytest.mark.parametrize("method,shift", [("argmax", False), ("nonzero", True)])
def test_gold_and_induced_links_are_drawn_at_their_cells_and_scored(browser, page, recorded, toy_model, method, shift):
    sentence, layer, head = 9, 2, 2
    pairs = read_parallel_text(toy_model["text"])
    gold = read_gold_alignments(toy_model["gold"])
    view = f"#s={sentence + 1}&sub=cross&l={layer}&h={head}&m={method}&sh={int(shift)}"
    for level in ("word", "subword"):  # the toy corpus has one piece per word: both levels show the words
        tab = open_page(browser, page["path"], view + f"&lv={level}")
        for c in range(2):
            links = extract_alignments(recorded[c]["loaded"], pairs[sentence:sentence + 1], methods=[method])
            key = next(k for k in links if (k.layer, k.head, k.shift) == (layer, head, shift))
            expected_links = links[key][0]
            shown = cells(tab, c)
            sure = {(row, column) for row, column, _, classes in shown if "gold-sure" in classes.split()}
            assert sure == {(t, s) for s, t in gold[sentence].sure} and sure
            drawn = {(row, column) for row, column, _, classes in shown if "link" in classes.split()}
            assert drawn == {(t, s) for s, t in expected_links}
            score = AER([gold[sentence]], "test.align").score([expected_links])
            aer = tab.evaluate(f"""document.querySelector('.panel[data-checkpoint="{c}"] .stat-aer').dataset.value""")
            assert float(aer) == pytest.approx(score.aer, abs=1e-12)
    tab.evaluate("(() => { const g = document.getElementById('gold'); g.checked = false; "
                 "g.dispatchEvent(new Event('change')); })()")
    tab.evaluate("explorer.idle()")
    assert tab.evaluate("document.querySelectorAll('td.gold-sure').length") == 0
    assert tab.problems() == []


@needs_browser
def test_null_rows_masked_cells_sparsity_and_null_rate_follow_attention_stats(browser, page, recorded):
    rela = recorded[1]
    found = None  # (sentence, layer, head, target piece) of a ReLA cross row that attends to nothing
    for s, record in enumerate(rela["records"]):
        pieces = len(rela["encoded"][s].target_ids)
        assert target_rows(record["cross"], pieces, shift=False).shape[2] == pieces
        rows = record["cross"][:, :, :pieces]  # [layers, heads, target pieces, source pieces + EOS]: normal rows
        null = np.argwhere(~rows.any(axis=-1))
        if len(null):
            found = (s, *null[0])
            break
    assert found is not None, "the ReLA toy model should switch some heads off"
    s, layer, head, piece = map(int, found)
    tab = open_page(browser, page["path"], f"#s={s + 1}&sub=cross&l={layer + 1}&h={head + 1}")
    labels = row_labels(tab, 1)
    assert labels[piece].startswith("\u2205")  # marked as a null row
    row_cells = [cell for cell in cells(tab, 1) if cell[0] == piece]
    assert all(weight == "0" and "null" in classes.split() for _, _, weight, classes in row_cells)
    for c in range(2):
        weights = recorded[c]["records"][s]["cross"][layer]  # [heads, queries, keys]
        counts = count_layer(weights, allowed_positions("cross", *weights.shape[1:]))
        rates = tab.evaluate(f"""Array.from(document.querySelectorAll('.panel[data-checkpoint="{c}"] .null-rate'))
            .map(e => Number(e.dataset.value))""")
        assert rates == pytest.approx([h.null_rows / h.rows for h in counts.heads], abs=1e-12)
        sparsity = tab.evaluate(f"""Number(document.querySelector('.panel[data-checkpoint="{c}"] .stat-sparsity').dataset.value)""")
        assert sparsity == pytest.approx(counts.heads[head].zeros / counts.heads[head].positions, abs=1e-12)
    # decoder self-attention: the causal mask is drawn as masked, not as zero weights
    choose(tab, "sublayer", "decoder")
    positions = len(rela["encoded"][s].target_ids) + 1
    shown = cells(tab, 1)
    masked = [cell for cell in shown if "masked" in cell[3].split()]
    assert len(masked) == positions * (positions - 1) // 2 and all(cell[1] > cell[0] for cell in masked)
    assert all(cell[2] != "masked" and "masked" not in cell[3].split() for cell in shown if cell[1] <= cell[0])
    weights = rela["records"][s]["decoder"][layer]
    counts = count_layer(weights, allowed_positions("decoder", *weights.shape[1:]))
    sparsity = tab.evaluate("""Number(document.querySelector('.panel[data-checkpoint="1"] .stat-sparsity').dataset.value)""")
    assert sparsity == pytest.approx(counts.heads[head].zeros / counts.heads[head].positions, abs=1e-12)
    assert tab.problems() == []


@needs_browser
def test_screenshot(browser, page, tmp_path):
    """The README's picture: softmax and ReLA side by side on a toy sentence (layer 1, head 2, where the
    ReLA head switches off for two target words), a softmax cell hovered."""
    tab = open_page(browser, page["path"], "#s=6&sub=cross&l=1&h=2&lv=subword&m=argmax&sh=0")
    x, y = tab.evaluate("""(() => { const r = document.querySelector('.panel[data-checkpoint="0"] td[data-r="0"][data-c="4"]')
        .getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
    tab.mouse_move(x, y)
    tab.wait_for("document.getElementById('tooltip').style.display === 'block'")
    png = tab.screenshot(tmp_path / "explorer.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 700)
    assert tab.problems() == []
    target = os.environ.get("EXPLORER_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)
