"""``alignment-eval report``: Markdown/JSON/PNG report over extract and stats results."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from alignment_eval.cli import main
from alignment_eval.analysis.report import build_report, gdfa_lines, read_baselines

from conftest import REPO_ROOT, run_console_script

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMMAND = "alignment-eval report --run softmax=runs/softmax --run 'rela (6L)=runs/rela' --out-dir out"

# argmax AER of a 2-layer, 2-head model: (layer, head, shift) -> AER.  Best: layer 2 head 1, normal.
SOFTMAX_AER = {
    (1, 1, False): 0.612, (1, 2, False): 0.587, (1, "avg", False): 0.553,
    (2, 1, False): 0.237, (2, 2, False): 0.418, (2, "avg", False): 0.301,
    (1, 1, True): 0.521, (1, 2, True): 0.498, (1, "avg", True): 0.467,
    (2, 1, True): 0.389, (2, 2, True): 0.356, (2, "avg", True): 0.344,
}
# ReLA: its best is the shifted attention of layer 1, head 2.
RELA_AER = {
    (1, 1, False): 0.702, (1, 2, False): 0.655, (1, "avg", False): 0.681,
    (2, 1, False): 0.274, (2, 2, False): 0.263, (2, "avg", False): 0.289,
    (1, 1, True): 0.145, (1, 2, True): 0.112, (1, "avg", True): 0.198,
    (2, 1, True): 0.433, (2, 2, True): 0.47, (2, "avg", True): 0.402,
}


def aer_json(table: dict) -> dict:
    """aer.json as ``extract`` writes it, argmax rows from ``table`` and one threshold row."""
    rows = []
    for (layer, head, shift), aer in table.items():
        head_name = head if head == "avg" else f"head{head}"
        rows.append({
            "layer": layer, "head": head, "method": "argmax", "shift": shift,
            "aer": aer, "precision": round(1 - aer + 0.01, 3), "recall": round(1 - aer - 0.01, 3),
            "f_measure": 1 - aer, "links": 400, "file": f"layer{layer}.{head_name}.argmax.{'shift' if shift else 'normal'}.align",
            "signature": f"gold:toy.gold|gold-base:0|hyp-base:0|rev-gold:no|rev-hyp:no|possible:P=S+P|layer:{layer}"
                         f"|head:{head}|method:argmax|shift:{'yes' if shift else 'no'}|subword:any|version:0.1.0",
        })
    rows.append({"layer": 1, "head": 1, "method": "threshold", "shift": False, "aer": 0.5, "precision": 0.5,
                 "recall": 0.5, "f_measure": 0.5, "links": 380, "file": "layer1.head1.threshold.normal.align",
                 "signature": "gold:toy.gold|method:threshold|version:0.1.0"})
    return {"checkpoint": "ckpt/checkpoint_best.pt", "text": "toy.src-tgt", "gold": "toy.gold", "reverse": False,
            "subword_rule": "any", "threshold": 0.3, "sentences": 50, "rows": rows, "best": {}}


COUNTS = {"positions": 2000, "rows": 304, "null_rows": 0}  # not shown by the report


def layer_stats(layer: int, sparsity: float, null_rate: float, js: float) -> dict:
    heads = [{"head": h, "sparsity": sparsity, "null_rate": null_rate, "entropy": 0.9, **COUNTS} for h in (1, 2)]
    return {"layer": layer, "sparsity": sparsity, "null_rate": null_rate, "entropy": 0.9, **COUNTS,
            "js_diversity": js, "js_rows": 300, "js_excluded_rows": 4, "heads": heads}


def stats_json(normalizer: str, sparsity: float, null_rate: float, alpha: dict) -> dict:
    sublayer = {
        "layers": [layer_stats(1, sparsity, null_rate, 0.41), layer_stats(2, sparsity / 2, null_rate / 2, 0.2)],
        "overall": {"sparsity": sparsity * 0.75, "null_rate": null_rate * 0.75, "entropy": 0.9, **COUNTS,
                    "js_diversity": 0.3},
    }
    return {"checkpoint": "ckpt/checkpoint_best.pt", "sentences": 50, "unknown_pieces": 0,
            "normalizers": {name: normalizer for name in ("encoder", "decoder", "cross")}, "alpha": alpha,
            "sublayers": {name: sublayer for name in ("encoder", "decoder", "cross")}}


def baseline_score(aer: float, precision: float, recall: float, links: int, signature: str) -> dict:
    """One ``results`` entry of baseline.json as ``alignment-eval baseline`` writes it."""
    return {"aer": aer, "precision": precision, "recall": recall, "f_measure": 2 * precision * recall / (precision + recall),
            "f_alpha": 0.5, "links": links, "sentences": 50,
            "counts": {"a": links, "s": 380, "p": 420, "a_and_s": 250, "a_and_p": 270, "sentences": 50},
            "signature": dict(part.split(":", 1) for part in signature.split("|")), "signature_str": signature}


def baseline_json(aligners: dict) -> dict:
    """baseline.json with ``{aligner: {direction: score}}``."""
    return {
        "text": "toy.src-tgt", "gold": "toy.gold", "gold_one_based": False, "possible": "p-includes-s",
        "lowercase": False, "gold_sentences": 50, "extra_sentences": 0, "symmetrization": "grow-diag-final-and",
        "link_order": "source-target, 0-based, in every file (reverse runs are flipped)",
        "alignment_eval_version": "0.1.0",
        "aligners": {name: {"aligner": name, "implementation": "systran-align-3.5.0", "options": "d,o,v",
                            "deterministic": True, "training_sentences": 50, "seconds": 0.1, "details": {},
                            "results": results, "files": {d: f"{name}.{d}.align" for d in results}}
                     for name, results in aligners.items()},
    }


BASELINE = baseline_json({
    "fast_align": {
        "forward": baseline_score(0.331, 0.6, 0.7, 390, "gold:toy.gold|sym:none"),
        "reverse": baseline_score(0.342, 0.6, 0.7, 385, "gold:toy.gold|dir:reverse"),
        "gdfa": baseline_score(0.287, 0.7, 0.7, 400, "gold:toy.gold|sym:gdfa"),
    },
})


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))
    return path


@pytest.fixture
def runs(tmp_path):
    """Two fake models: softmax (aer.json + stats.json) and ReLA (both, with a learned alpha), plus baselines."""
    softmax, rela = tmp_path / "runs" / "softmax", tmp_path / "runs" / "rela"
    write_json(softmax / "aer.json", aer_json(SOFTMAX_AER))
    write_json(softmax / "stats.json", stats_json("softmax", 0.0, 0.0, {}))
    write_json(rela / "aer.json", aer_json(RELA_AER))
    write_json(rela / "stats.json", stats_json("rela", 0.62, 0.083, {"cross.0": [1.31, 1.77]}))
    write_json(tmp_path / "baseline" / "baseline.json", BASELINE)
    return {"softmax": softmax, "rela (6L)": rela, "baseline": tmp_path / "baseline"}


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"


def test_report_from_synthetic_runs(runs, tmp_path):
    out = tmp_path / "new" / "report"
    report = build_report({"softmax": runs["softmax"], "rela (6L)": runs["rela (6L)"]}, out,
                          baseline_dir=runs["baseline"], command=COMMAND)
    for name in ("aer_per_layer.png", "stats.png"):
        assert_png(out / name)
    assert not (out / "attention_heads.png").exists()
    assert not list(out.glob(".*")), "temporary files left behind"
    markdown = (out / "report.md").read_text()
    assert COMMAND in markdown
    assert "| argmax | normal | best head | softmax | 2 | 1 | **0.237** | 0.773 | 0.753 |" in markdown
    assert "| argmax | shifted | best head | rela (6L) | 1 | 2 | **0.112** | 0.898 | 0.878 |" in markdown
    assert "| fast_align | gdfa | 0.287 |" in markdown
    assert "| rela (6L) | cross-attention | rela | 1 | 0.620 | 0.083 | 0.900 | 0.410 | 4 |" in markdown
    assert "1.310, 1.770" in markdown  # learned alpha
    assert "![AER per decoder layer](aer_per_layer.png)" in markdown and "(stats.png)" in markdown
    assert "gold:toy.gold|sym:gdfa" in markdown and "layer:2|head:1|method:argmax|shift:no" in markdown
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    best = report["runs"]["softmax"]["best"]["argmax.normal.best-head"]
    assert (best["layer"], best["head"], best["aer"]) == (2, 1, 0.237)
    assert best["alignment_file"] == str(runs["softmax"] / "alignments" / "layer2.head1.argmax.normal.align")
    assert report["runs"]["rela (6L)"]["aer_file"] == str(runs["rela (6L)"] / "aer.json")
    per_layer = report["runs"]["rela (6L)"]["aer_per_layer"]["shift"]
    assert [(p["layer"], p["best_head"]["head"], p["average"]["aer"]) for p in per_layer] == [(1, 2, 0.198), (2, 1, 0.402)]


def test_runs_with_only_one_json_and_another_method(runs, tmp_path):
    (runs["softmax"] / "aer.json").unlink()
    (runs["rela (6L)"] / "stats.json").unlink()
    out = tmp_path / "out"
    report = build_report({"softmax": runs["softmax"], "rela": runs["rela (6L)"]}, out, method="threshold",
                          command="alignment-eval report ...")
    assert report["runs"]["softmax"]["aer_per_layer"] is None and report["runs"]["rela"]["attention"] is None
    assert set(report["figures"]) == {"aer_per_layer", "stats"}
    curve = report["runs"]["rela"]["aer_per_layer"]["normal"]
    assert [(p["layer"], p["best_head"]["aer"], p["average"]) for p in curve] == [(1, 0.5, None)]
    assert "## AER per decoder layer (threshold)" in (out / "report.md").read_text()


def test_baseline_json_of_the_baseline_command(tmp_path):
    """``alignment-eval baseline`` nests the scores under aligners.<name>.results, signatures as objects."""
    gdfa_score = baseline_score(0.086, 0.904, 0.923, 293, "gold:test.align|sym:grow-diag-final-and")
    document = baseline_json({"fast_align": {"gdfa": gdfa_score, "forward": {**gdfa_score, "aer": 0.08}}})
    write_json(tmp_path / "baseline.json", document)
    path, aligners = read_baselines(tmp_path)
    assert path == tmp_path / "baseline.json"
    assert list(aligners["fast_align"]) == ["forward", "gdfa"]
    gdfa = aligners["fast_align"]["gdfa"]
    assert gdfa["aer"] == 0.086 and gdfa["signature"] == "gold:test.align|sym:grow-diag-final-and"
    assert gdfa["alignment_file"] == str(tmp_path / "fast_align.gdfa.align")
    assert gdfa_lines(aligners) == [("fast_align gdfa", 0.086)]


def test_a_baseline_json_of_another_layout_is_refused_naming_the_field(tmp_path):
    document = baseline_json({"fast_align": {"gdfa": baseline_score(0.1, 0.9, 0.9, 10, "gold:g|sym:gdfa")}})
    del document["aligners"]["fast_align"]["results"]["gdfa"]["links"]
    write_json(tmp_path / "baseline.json", document)
    with pytest.raises(ValueError, match="aligners.fast_align.results.gdfa: missing field.s. links") as error:
        read_baselines(tmp_path)
    assert str(tmp_path / "baseline.json") in str(error.value)


def test_report_without_heatmap_does_not_import_torch(runs, tmp_path):
    script = (
        "import sys\n"
        "from alignment_eval.cli import main\n"
        f"code = main(['report', '--run', 'softmax={runs['softmax']}', '--baseline', '{runs['baseline']}', "
        f"'--out-dir', '{tmp_path / 'out'}'])\n"
        "assert code == 0, code\n"
        "assert 'torch' not in sys.modules, 'report imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO_ROOT, timeout=120)
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "alignment-eval report --run softmax=" in markdown  # rebuilt command line when called in-process


def test_console_script_reports_bad_json_without_traceback(runs, tmp_path):
    (runs["softmax"] / "stats.json").write_text('{\n "sublayers": {\n  "cross": [1, 2,]\n }\n}\n')
    result = run_console_script("alignment-eval", "report", "--run", f"softmax={runs['softmax']}",
                                "--out-dir", tmp_path / "out", check=False)
    assert result.returncode == 2
    assert f"{runs['softmax'] / 'stats.json'}:3: malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def _bad_inputs(runs: dict, tmp_path: Path):
    """(case, extra arguments, text the error must contain); each case may also break a file."""
    malformed = write_json(tmp_path / "malformed" / "aer.json", {})
    malformed.write_text('{\n "rows": [\n  {"layer": 1,, "head": 1}\n ]\n}\n')
    no_aer = write_json(tmp_path / "no_aer" / "aer.json", aer_json(SOFTMAX_AER))
    document = json.loads(no_aer.read_text())
    del document["rows"][3]["aer"]
    no_aer.write_text(json.dumps(document))
    (tmp_path / "empty").mkdir()
    return {
        "missing run folder": (["--run", f"x={tmp_path / 'nowhere'}"], f"{tmp_path / 'nowhere'}: run folder not found"),
        "folder without json": (["--run", f"x={tmp_path / 'empty'}"], f"{tmp_path / 'empty'}: holds neither aer.json"),
        "malformed json": (["--run", f"x={malformed.parent}"], f"{malformed}:3: malformed JSON"),
        "row without aer": (["--run", f"x={no_aer.parent}"], "rows[3]: missing field(s) aer"),
        "run without NAME=": (["--run", str(runs["softmax"])], f"{runs['softmax']}: --run expects NAME=PATH"),
        "empty name": (["--run", f"={runs['softmax']}"], "--run expects NAME=PATH"),
        "duplicate name": (["--run", f"a={runs['softmax']}", "--run", f"a={runs['softmax']}"], "given twice"),
        "baseline folder without baseline.json": (
            ["--run", f"a={runs['softmax']}", "--baseline", str(tmp_path / "empty")],
            f"{tmp_path / 'empty' / 'baseline.json'}: baseline file not found"),
        "heatmap checkpoint without NAME=": (
            ["--run", f"a={runs['softmax']}", "--heatmap-checkpoint", "ckpt.pt", "--heatmap-text", "t.txt"],
            "ckpt.pt: --heatmap-checkpoint expects NAME=PATH"),
        "heatmap text without checkpoint": (
            ["--run", f"a={runs['softmax']}", "--heatmap-text", "t.txt"], "t.txt: --heatmap-text needs --heatmap-checkpoint"),
    }


def test_bad_inputs_exit_2_naming_the_file(runs, tmp_path, capsys):
    for case, (arguments, expected) in _bad_inputs(runs, tmp_path).items():
        code = main(["report", *arguments, "--out-dir", str(tmp_path / "out")])
        captured = capsys.readouterr()
        assert code == 2, case
        assert expected in captured.err, (case, captured.err)
        assert captured.err.startswith("alignment-eval: error: ") and "Traceback" not in captured.err, case
    assert not (tmp_path / "out").exists()


def _numbers(report: dict):
    """(name, value, upper bound) of every AER, precision, recall, sparsity, null rate and JS diversity."""
    for model, run in report["runs"].items():
        for key, point in run["best"].items():
            for field in ("aer", "precision", "recall"):
                yield f"{model} best {key} {field}", point[field], 1.0
        for attention, points in run["aer_per_layer"].items():
            for point in points:
                for kind in ("best_head", "average"):
                    yield f"{model} {attention} layer {point['layer']} {kind}", point[kind]["aer"], 1.0
        for sublayer, summary in run["attention"]["sublayers"].items():
            heads = summary["layers"][0]["heads"]
            for layer in [*summary["layers"], {**summary["overall"], "layer": "all"}]:
                where = f"{model} {sublayer} layer {layer['layer']}"
                yield f"{where} sparsity", layer["sparsity"], 1.0
                yield f"{where} null rate", layer["null_rate"], 1.0
                if layer["js_diversity"] is not None:  # nats: at most ln(heads)
                    yield f"{where} JS diversity", layer["js_diversity"], math.log(heads)


@pytest.mark.slow
def test_report_end_to_end_with_a_trained_model(toy_model, tmp_path):
    model_args = ["--checkpoint", str(toy_model["checkpoint"]), "--data-dir", str(toy_model["data_dir"]),
                  "--text", str(toy_model["text"])]
    run_dir = tmp_path / "rela"
    assert main(["extract", *model_args, "--gold", str(toy_model["gold"]), "--out-dir", str(run_dir)]) == 0
    assert main(["stats", *model_args, "--out-dir", str(run_dir)]) == 0
    out = tmp_path / "report"
    assert main(["report", "--run", f"rela={run_dir}", "--out-dir", str(out),
                 "--heatmap-checkpoint", f"rela={toy_model['checkpoint']}", "--heatmap-text", str(toy_model["text"]),
                 "--heatmap-sentence", "1", "--data-dir", str(toy_model["data_dir"])]) == 0
    for name in ("aer_per_layer.png", "stats.png", "attention_heads.png"):
        assert_png(out / name)
    report = json.loads((out / "report.json").read_text())
    numbers = list(_numbers(report))
    assert len(numbers) > 40
    for name, value, upper in numbers:
        assert 0.0 <= value <= upper + 1e-9, (name, value, upper)
    heatmap = report["heatmap"]
    first_line = Path(toy_model["text"]).read_text().splitlines()[0]
    assert heatmap["source_pieces"] == first_line.split(" ||| ")[0].split() + ["</s>"]
    assert heatmap["decoder_inputs"] == ["</s>"] + first_line.split(" ||| ")[1].split()
    markdown = (out / "report.md").read_text()
    assert "![Cross-attention per layer and head](attention_heads.png)" in markdown
    assert "## Best AER" in markdown and "## Attention statistics" in markdown
