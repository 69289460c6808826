"""The explorer's packing, page assembly and command-line errors, without a model or a browser.

The browser tests (a trained toy model, headless Chromium) are in test_explorer_page.py.
"""

import ast
import base64
import json
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from alignment_eval.alignments.io import GoldAlignment
from alignment_eval.cli import main
from alignment_eval.explorer import (
    CheckpointInfo, ExplorerData, Segmentation, SentenceAttention, SentenceInfo, decode_sentence, dequantise,
    encode_sentence, quantise, render_page,
)
from alignment_eval.explorer.assets import SCRIPT
from alignment_eval.explorer.payload import cross_argmax, levels_of

from conftest import REPO_ROOT

EXPLORER = REPO_ROOT / "alignment_eval" / "explorer"


def synthetic_attention(rng, sources=5, targets=4, layers=2, heads=3, sparse=False) -> SentenceAttention:
    """Random attention of the recorded shapes; ``sparse`` zeroes most weights and one whole cross row."""

    def weights(queries, keys, causal=False):
        values = rng.random((layers, heads, queries, keys)).astype(np.float32) * 3.0  # ReLA-like: above 1
        if sparse:
            values[values < 1.8] = 0.0
        if causal:
            values *= np.tril(np.ones((queries, keys), dtype=np.float32))
        return values

    segmentation = Segmentation([f"s{i}" for i in range(sources)], [f"t{i}" for i in range(targets)],
                                list(range(sources)), list(range(targets)))
    attention = SentenceAttention(segmentation, weights(targets + 1, sources + 1), weights(sources + 1, sources + 1),
                                  weights(targets + 1, targets + 1, causal=True))
    if sparse:
        attention.cross[0, 1, 2] = 0.0  # a null row
    return attention


def test_quantisation_keeps_zeros_exact_and_stays_within_one_step():
    rng = np.random.default_rng(0)
    weights = rng.random((3, 4, 7, 9)) ** 4  # many tiny weights
    weights[weights < 0.05] = 0.0
    weights[0, 0] = 0.0  # an all-zero matrix
    weights[1, 2, 3, 4] = 1e-9  # far below half a step
    q, step = quantise(weights)
    assert q.dtype == np.uint8 and step.shape == (3, 4) and step[0, 0] == 0.0
    assert ((q == 0) == (weights == 0)).all()  # exact zeros exact, nothing else becomes zero
    assert q[1, 2, 3, 4] == 1
    error = np.abs(dequantise(q, step) - weights)
    steps = np.broadcast_to(step[..., None, None].astype(np.float64), weights.shape)  # [3, 4, 7, 9]
    assert (error <= steps * (1 + 1e-6)).all()  # within one step ...
    rounded = weights >= steps / 2
    assert (error[rounded] <= steps[rounded] / 2 * (1 + 1e-6)).all()  # ... half a step unless clamped to 1
    assert np.allclose(step[1:], weights[1:].max(axis=(-2, -1)) / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        quantise(-weights)
    assert levels_of(6) == 63
    with pytest.raises(ValueError):
        levels_of(9)


def test_a_blob_decodes_to_the_quantised_weights_and_the_float_argmax():
    rng = np.random.default_rng(1)
    for sparse in (False, True):
        attention = synthetic_attention(rng, sparse=sparse)
        blob = encode_sentence(attention)
        shapes = {"cross": [2, 3], "encoder": [2, 3], "decoder": [2, 3]}
        decoded = decode_sentence(blob, shapes, sources=5, targets=4)
        for name, matrix in attention.matrices().items():
            q, step = quantise(matrix)
            expected = dequantise(q, step)
            if name == "decoder":
                upper = ~np.tril(np.ones(matrix.shape[2:], dtype=bool))
                assert np.isnan(decoded[name][:, :, upper]).all()  # masked cells are not stored
                expected[:, :, upper] = np.nan
            assert np.array_equal(decoded[name], expected, equal_nan=True)
        # argmax of every head and the head average, EOS column excluded, from the float weights
        with_average = np.concatenate([attention.cross, attention.cross.mean(axis=1, keepdims=True)], axis=1)
        assert np.array_equal(decoded["argmax"], with_average[..., :-1].argmax(axis=-1))
        assert decoded["argmax"].shape == (2, 4, 5)
    cross_only = SentenceAttention(attention.segmentation, attention.cross)
    decoded = decode_sentence(encode_sentence(cross_only), {"cross": [2, 3]}, sources=5, targets=4)
    assert set(decoded) == {"cross", "argmax", "steps"}


def test_argmax_ties_follow_the_float_weights_not_the_quantised_ones():
    cross = np.zeros((1, 1, 2, 4), dtype=np.float32)
    cross[0, 0, 0, :3] = [0.5, 0.5 + 1e-6, 0.2]  # 1e-6 is far below one 8-bit step
    q, _ = quantise(cross)
    assert q[0, 0, 0, 0] == q[0, 0, 0, 1]  # equal once quantised
    assert cross_argmax(cross)[0, 0, 0] == 1  # the float argmax, as alignment-eval extract induces it


def test_fewer_bits_give_smaller_blobs_and_wrong_shapes_are_refused():
    rng = np.random.default_rng(2)
    attention = synthetic_attention(rng, sources=30, targets=30)
    assert len(encode_sentence(attention, levels_of(4))) < len(encode_sentence(attention, levels_of(8)))
    wrong = SentenceAttention(attention.segmentation, attention.cross[:, :, :-1])
    with pytest.raises(ValueError, match=r"cross attention has shape"):
        encode_sentence(wrong)


def page_data(rng, sentences=3, title="Toy </script><!-- & co") -> ExplorerData:
    blobs, segmentations, infos = [[], []], [[], []], []
    for s in range(sentences):
        for c in range(2):
            attention = synthetic_attention(rng, sparse=c == 1)
            blobs[c].append(encode_sentence(attention))
            segmentations[c].append(attention.segmentation)
        infos.append(SentenceInfo([f"s{i}" for i in range(5)], ["t0", "</script>", "t2", "ü"],
                                  GoldAlignment(frozenset({(0, 3)}), frozenset({(1, 2)})), line=s + 1))
    shapes = {"cross": [2, 3], "encoder": [2, 3], "decoder": [2, 3]}
    return ExplorerData(title, [CheckpointInfo("softmax", "a.pt", shapes), CheckpointInfo("rela", "b.pt", shapes)],
                        infos, blobs, segmentations, has_gold=True, text="toy.src-tgt", gold="toy.gold")


def test_the_page_is_self_contained_and_its_data_reads_back():
    data = page_data(np.random.default_rng(3))
    page = render_page(data)
    assert page.startswith("<!DOCTYPE html>")
    # nothing to fetch: no external URL, no src/href attribute, no CSS import, and a CSP forbidding requests
    assert not re.search(r"https?://", page)
    assert not re.search(r"\s(src|href)\s*=", page)
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page
    # text never closes a script early: every '<' inside the JSON is escaped
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1 + 2 * 3 + 1
    attributes, meta_text = scripts[0]
    assert 'id="explorer-meta"' in attributes and "<" not in meta_text
    meta = json.loads(meta_text)
    assert meta == json.loads(json.dumps(data.meta()))
    assert meta["sentences"][0]["tgt"][1] == "</script>" and meta["sentences"][0]["sure"] == [[0, 3]]
    assert meta["checkpoints"][1]["seg"] == [0, 0, 0]  # both checkpoints share one segmentation per sentence
    assert len(meta["sentences"][0]["seg"]) == 1
    for attributes, body in scripts[1:-1]:
        c, s = map(int, re.search(r'id="w(\d+)-(\d+)"', attributes).groups())
        assert zlib.decompress(base64.b64decode(body)) == zlib.decompress(data.blobs[c][s])
    assert "&lt;/script&gt;" in page  # the title, escaped


def test_segmentations_that_differ_are_stored_per_checkpoint():
    data = page_data(np.random.default_rng(4), sentences=1)
    data.segmentations[1][0] = Segmentation(["x"] * 5, ["y"] * 4, list(range(5)), list(range(4)))
    meta = data.meta()
    assert len(meta["sentences"][0]["seg"]) == 2 and [c["seg"] for c in meta["checkpoints"]] == [[0], [1]]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the script's syntax check needs it")
def test_the_script_is_valid_javascript(tmp_path):
    script = tmp_path / "explorer.js"
    script.write_text(SCRIPT)
    result = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- the command's errors name the file ------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_command_errors_name_the_file_and_line(tmp_path, capsys):
    text = write(tmp_path / "toy.src-tgt", "a b ||| x y\nc ||| z\n")
    checkpoint = write(tmp_path / "model.pt", "not a checkpoint")
    base = ["explore", "--checkpoint", str(checkpoint), "--text", str(text), "--out", str(tmp_path / "page.html")]

    assert main([*base[:2], str(tmp_path / "missing.pt"), *base[3:]]) == 2
    assert f"{tmp_path / 'missing.pt'}: checkpoint not found" in capsys.readouterr().err

    short_gold = write(tmp_path / "short.gold", "0-0\n")
    assert main([*base, "--gold", str(short_gold)]) == 2
    assert "short.gold" in capsys.readouterr().err

    bad_gold = write(tmp_path / "bad.gold", "0-0 1-1\n0-5\n")
    assert main([*base, "--gold", str(bad_gold)]) == 2
    err = capsys.readouterr().err
    assert f"{bad_gold}:2:" in err and "out of range" in err and "Traceback" not in err

    broken_text = write(tmp_path / "broken.src-tgt", "a ||| b\nno separator\n")
    assert main([*base[:3], "--text", str(broken_text), *base[5:]]) == 2
    assert f"{broken_text}:2:" in capsys.readouterr().err

    assert main([*base, "--label", "one", "--label", "two"]) == 2
    assert "2 --label for 1 --checkpoint" in capsys.readouterr().err

    assert main([*base, "--sentences", "0"]) == 2
    assert "--sentences: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "page.html").exists()


def test_explore_is_registered_and_the_parser_loads_no_torch():
    code = ("import sys; import alignment_eval.cli as c; p = c.build_parser(); "
            "p.parse_args(['explore', '--checkpoint', 'a', '--checkpoint', 'b', '--text', 't', '--out', 'o']); "
            "import alignment_eval.explorer.page, alignment_eval.explorer.payload, alignment_eval.explorer.browser; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'fairseq', 'matplotlib')]; "
            "assert not bad, bad[:5]")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr


def test_the_explorer_imports_only_its_layer_and_nothing_inside_functions():
    """explorer -> analysis, alignments, nmt_common (as interpretability); torch only through
    analysis.model_attention; no import hidden in a function (tests/test_package_boundaries.py's rules)."""
    allowed = ("nmt_common", "alignment_eval.alignments", "alignment_eval.analysis", "alignment_eval.explorer")
    ours = ("alignment_eval", "fairseq_plugins", "nmt_common", "mt_pipeline", "benchmarks")
    heavy = ("torch", "fairseq", "sentencepiece", "matplotlib")
    problems = []
    for path in sorted(EXPLORER.glob("*.py")):
        module = f"alignment_eval.explorer.{path.stem}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for function in functions:
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    problems.append(f"{module}: import inside {function.name}")
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = "alignment_eval.explorer".split(".")
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                names = [base]
            for name in names:
                top = name.split(".")[0]
                if top in heavy:
                    problems.append(f"{module} imports {name}")
                if top in ours and not any(name == a or name.startswith(a + ".") for a in allowed):
                    problems.append(f"{module} imports {name}")
    assert not problems, "\n".join(problems)
