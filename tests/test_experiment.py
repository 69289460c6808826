"""Translation, BLEU, per-pair steps and a reduced end-to-end demo run."""

import json

import pytest

from mt_pipeline.bleu import BleuInputError, score
from mt_pipeline.pairs import main as pairs_main
from mt_pipeline.summary import SummaryRecord
from mt_pipeline.translate import TranslationError, parse_generate_output

from conftest import REPO_ROOT, SHARED_DATA, run_console_script

GENERATE_OUTPUT = """\
S-1\tzwei
H-1\t-0.2\t▁two
D-1\t-0.2\ttwo
S-0\teins
H-0\t-0.1\t▁one
D-0\t-0.1\tone
Generate test with beam=4
"""


def test_generate_output_is_put_back_in_sentence_order():
    assert parse_generate_output(GENERATE_OUTPUT) == ["one", "two"]
    assert parse_generate_output(GENERATE_OUTPUT, expected=2) == ["one", "two"]


def test_missing_or_repeated_sentences_are_errors():
    with pytest.raises(TranslationError, match="translated 2 of 3 sentences"):
        parse_generate_output(GENERATE_OUTPUT, expected=3)
    with pytest.raises(TranslationError, match="sentence 0 twice"):
        parse_generate_output(GENERATE_OUTPUT + "D-0\t-0.1\tone\n")


def test_bleu_with_signature_and_clear_input_errors(tmp_path):
    reference = tmp_path / "ref.en"
    reference.write_text("the cat sat on the mat .\nit was a sunny day .\n")
    result = score(reference, reference)
    assert result.bleu == 100.0 and result.sentences == 2
    assert "tok:13a" in result.signature and "version:" in result.signature
    short = tmp_path / "short.en"
    short.write_text("the cat\n")
    with pytest.raises(BleuInputError, match="short.en has 1 lines but .*ref.en has 2"):
        score(short, reference)
    broken = tmp_path / "broken.en"
    broken.write_bytes(b"fine\n\xff\xfe bad\n")
    with pytest.raises(BleuInputError, match=r"broken.en:2: not valid UTF-8"):
        score(broken, reference)


def test_pair_steps_name_the_problem(tmp_path, capsys):
    assert pairs_main(["bleu", "--pair", "de-xx"]) == 2
    assert "unknown language pair 'de-xx'" in capsys.readouterr().err
    assert pairs_main(["align", "--pair", "en-fi", "--attn", "rela"]) == 2
    assert "no gold word alignment for en-fi" in capsys.readouterr().err
    assert pairs_main(["report", "--pair", "en-de", "--results", str(tmp_path)]) == 2
    assert "no variant has been scored yet" in capsys.readouterr().err


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path):
    """`make demo` at a few updates: prepare -> train softmax and rela side by side -> translate -> BLEU ->
    stats/AER -> summary with bootstrap and curves; a second call does no work twice."""
    out, data_bin = tmp_path / "results", tmp_path / "data-bin"
    arguments = ["python", "-m", "mt_pipeline.runs", "demo", "--max-update", "15", "--max-len-b", "30", "--out", out,
                 "--data-bin", data_bin, "--checkpoint-root", tmp_path / "checkpoints"]
    result = run_console_script(*arguments, cwd=tmp_path, timeout=900)
    summary = (out / "summary.md").read_text()
    data = SummaryRecord.read(out / "summary.json")
    rows = data.rows
    assert [row.variant for row in rows] == ["softmax", "rela"] and data.pending == []
    assert all(0.0 <= row.bleu["tatoeba-test"][0] <= 100.0 and "tok:13a" in row.bleu_signature for row in rows)
    assert rows[1].bootstrap.samples == 1000 and "paired-bs|n:1000" in rows[1].bootstrap.signature
    for variant in ("softmax", "rela"):
        hypotheses = (out / variant / "seed1" / "tatoeba-test" / "test.hyp").read_text().splitlines()
        assert len(hypotheses) == 500  # every test sentence, in order
        record = json.loads((out / variant / "seed1" / "train.json").read_text())
        assert record["updates"] == 15 and record["history"]["valid"]
    assert "| rela | 1 |" in summary and "python -m mt_pipeline.runs demo" in summary
    assert "Evaluated checkpoint: **last**" in summary and (out / "curves.png").is_file()
    if (SHARED_DATA / "word-alignment-gold" / "deen.gold").is_file():
        assert all(0.0 <= row.aer["argmax.normal.avg"][0] <= 1.0 for row in rows)
        assert rows[0].null_rate["cross"][0] == 0.0  # softmax never attends to nothing
        assert (out / "alignment-report" / "aer_per_layer.png").is_file()
    again = run_console_script(*arguments, cwd=tmp_path, timeout=900)
    progress = again.stdout + again.stderr  # progress messages go to stderr
    assert "] training" not in progress and "translating" not in progress
    assert [(r.variant, r.seed) for r in SummaryRecord.read(out / "summary.json").runs] == [
        ("softmax", 1), ("rela", 1)]  # rebuilt, not appended to
    assert result.returncode == 0
