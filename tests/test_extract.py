"""alignment-eval extract / stats end to end on a tiny ReLA model trained with fairseq-train."""

import json

import pytest

from alignment_eval.cli import main
from alignment_eval.alignments.io import read_alignments, read_parallel_text

pytestmark = pytest.mark.slow


def model_args(toy_model):
    return ["--checkpoint", str(toy_model["checkpoint"]), "--data-dir", str(toy_model["data_dir"])]


def test_extract_writes_every_layer_head_method_and_scores_them(toy_model, tmp_path, capsys):
    out = tmp_path / "extract"
    status = main(["extract", *model_args(toy_model), "--text", str(toy_model["text"]),
                   "--gold", str(toy_model["gold"]), "--out-dir", str(out)])
    assert status == 0
    report = json.loads((out / "aer.json").read_text())
    rows = report["rows"]
    # 2 layers x (4 heads + average) x 3 methods x (normal, shifted)
    assert len(rows) == 2 * 5 * 3 * 2 == len(list((out / "alignments").glob("*.align")))
    assert all(0.0 <= row[k] <= 1.0 for row in rows for k in ("aer", "precision", "recall"))
    assert {row["head"] for row in rows} == {1, 2, 3, 4, "avg"}
    assert all("layer:" in row["signature"] and "method:" in row["signature"] for row in rows)
    # the toy task is learnable: some head aligns far better than chance (a random link per word
    # would give AER around 1 - 1/6)
    assert min(row["aer"] for row in rows if row["method"] == "argmax") < 0.4
    assert "| argmax |" in (out / "aer.md").read_text()
    pairs = read_parallel_text(toy_model["text"])
    some_file = out / "alignments" / "layer2.avg.argmax.normal.align"
    assert len(read_alignments(some_file, texts=pairs, text_path=toy_model["text"])) == 50


def test_null_attention_rows_stay_unaligned(toy_model):
    from alignment_eval.analysis.extract import extract_alignments
    from alignment_eval.alignments.induce import target_rows
    from alignment_eval.analysis.model_attention import encode_pairs, load_model, record_pairs

    loaded = load_model(toy_model["checkpoint"], data_dir=toy_model["data_dir"])
    pairs = read_parallel_text(toy_model["text"])
    alignments = extract_alignments(loaded, pairs, methods=["argmax"])
    encoded = encode_pairs(loaded, pairs)
    null_words = 0
    for index, record in record_pairs(loaded, encoded):
        rows = target_rows(record.cross.numpy(), len(encoded[index].target_ids), shift=False)
        for layer in range(rows.shape[0]):
            for head in range(rows.shape[1]):
                links = alignments[next(k for k in alignments if (k.layer, k.head, k.shift) == (layer + 1, head + 1, False))][index]
                for target_word in range(rows.shape[2]):
                    if not rows[layer, head, target_word].any():
                        null_words += 1
                        assert all(t != target_word for _, t in links)
    assert null_words > 0, "the ReLA toy model should switch some heads off"


def test_reverse_direction_gives_the_same_links_in_text_orientation(toy_model, tmp_path):
    reversed_text = tmp_path / "reversed.src-tgt"
    pairs = read_parallel_text(toy_model["text"])
    reversed_text.write_text("".join(f"{' '.join(p.target)} ||| {' '.join(p.source)}\n" for p in pairs))
    for name, text, extra in (("forward", toy_model["text"], []), ("reversed", reversed_text, ["--reverse"])):
        assert main(["extract", *model_args(toy_model), "--text", str(text), "--methods", "argmax",
                     "--out-dir", str(tmp_path / name), *extra]) == 0
    forward = read_alignments(tmp_path / "forward/alignments/layer1.avg.argmax.normal.align")
    backward = read_alignments(tmp_path / "reversed/alignments/layer1.avg.argmax.normal.align", reverse=True)
    assert forward == backward


def test_stats_reports_every_sublayer_and_relas_null_attention(toy_model, tmp_path):
    out = tmp_path / "stats"
    assert main(["stats", *model_args(toy_model), "--text", str(toy_model["text"]), "--out-dir", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["normalizers"] == {"encoder": "rela", "decoder": "rela", "cross": "rela"}
    for sublayer in ("encoder", "decoder", "cross"):
        summary = stats["sublayers"][sublayer]
        assert len(summary["layers"]) == 2 and len(summary["layers"][0]["heads"]) == 4
        overall = summary["overall"]
        assert 0.0 < overall["sparsity"] < 1.0  # ReLU gives exact zeros
        assert 0.0 <= overall["null_rate"] <= 1.0
    assert stats["unknown_pieces"] == 0
    assert "cross-attention" in (out / "stats.md").read_text()


def test_bad_inputs_are_reported_with_the_file_and_no_traceback(toy_model, tmp_path, capsys):
    short_gold = tmp_path / "short.gold"
    short_gold.write_text("0-0\n")
    status = main(["extract", *model_args(toy_model), "--text", str(toy_model["text"]),
                   "--gold", str(short_gold), "--out-dir", str(tmp_path / "o")])
    error = capsys.readouterr().err
    assert status == 2 and "short.gold" in error and "Traceback" not in error
    status = main(["extract", "--checkpoint", str(tmp_path / "missing.pt"), "--text", str(toy_model["text"]),
                   "--out-dir", str(tmp_path / "o")])
    error = capsys.readouterr().err
    assert status == 2 and "missing.pt" in error and "checkpoint not found" in error
