"""Translation, BLEU, per-pair steps and a reduced end-to-end demo run."""

import json

import pytest

from mt_pipeline.bleu import BleuInputError, score
from mt_pipeline.pairs import main as pairs_main
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
    """`make demo` at a few updates: prepare -> train softmax and rela -> translate -> BLEU -> stats/AER -> report."""
    out, data_bin = tmp_path / "results", tmp_path / "data-bin"
    result = run_console_script(
        "python", "-m", "mt_pipeline.runs", "demo", "--max-update", "15", "--max-len-b", "30", "--out", out, "--data-bin", data_bin,
        cwd=tmp_path, timeout=900,
    )
    summary = (out / "summary.md").read_text()
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [row["variant"] for row in rows] == ["softmax", "rela"]
    assert all(0.0 <= row["bleu"] <= 100.0 and "tok:13a" in row["bleu_signature"] for row in rows)
    for variant in ("softmax", "rela"):
        hypotheses = (out / variant / "test.hyp").read_text().splitlines()
        assert len(hypotheses) == 500  # every test sentence, in order
    assert "| rela |" in summary and "Command: `python -m mt_pipeline.runs demo" in summary
    if (SHARED_DATA / "word-alignment-gold" / "deen.gold").is_file():
        assert all(0.0 <= row["aer_best"]["argmax.normal.avg"]["aer"] <= 1.0 for row in rows)
        assert rows[0]["null_rate_cross"] == 0.0  # softmax never attends to nothing
        assert (out / "alignment-report" / "aer_per_layer.png").is_file()
    # resuming does no work twice: every step is skipped and the summary is rebuilt
    again = run_console_script(
        "python", "-m", "mt_pipeline.runs", "demo", "--max-update", "15", "--max-len-b", "30", "--out", out, "--data-bin", data_bin,
        cwd=tmp_path, timeout=900,
    )
    assert "] training" not in again.stdout and (out / "summary.md").read_text().count("| rela |") == 1
    assert result.returncode == 0


def test_outputs_whose_checkpoint_is_gone_are_kept_aside_and_the_variant_runs_again(tmp_path, monkeypatch):
    """A clean clone has committed outputs (train.done, translate.json, ...) but no checkpoints:
    every step must run again instead of reporting the old outputs as new, and the old ones stay."""
    from mt_pipeline import experiment

    spec = experiment.ExperimentSpec(name="t", data_bin=tmp_path / "bin", spm_model=tmp_path / "spm.model",
                                     test_reference=tmp_path / "ref", out_dir=tmp_path / "out",
                                     checkpoint_root=tmp_path / "checkpoints")
    old = spec.out_dir / "rela"
    old.mkdir(parents=True)
    for name, text in (("train.done", "old\n"), ("translate.json", '{"sentences_per_second": 1.0}'),
                       ("bleu.json", "{}")):
        (old / name).write_text(text)
    steps = []

    def fake_run(command, log_path):
        steps.append("train")
        checkpoint = spec.checkpoint_root / "t" / "rela" / "checkpoint_last.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text("new model")
        log_path.parent.mkdir(parents=True, exist_ok=True)  # as the real _run does
        log_path.write_text("done training in 1.0 seconds\n")

    class Record:
        def write_record(self, path):
            steps.append("translate")
            path.write_text('{"sentences_per_second": 2.0}')

    class Scores:
        def as_dict(self):
            steps.append("bleu")
            return {"bleu": 3.0, "chrf": 20.0, "signature": "nrefs:1"}

    monkeypatch.setattr(experiment, "_run", fake_run)
    monkeypatch.setattr(experiment, "translate", lambda *args, **kwargs: Record())
    monkeypatch.setattr(experiment.bleu_module, "score", lambda *args: Scores())
    logged = []
    experiment.run_variant(spec, "rela", log=logged.append)
    assert steps == ["train", "translate", "bleu"]
    kept = [p for p in spec.out_dir.iterdir() if p.name.startswith("rela.without-checkpoint-")]
    assert len(kept) == 1 and (kept[0] / "train.done").read_text() == "old\n"
    assert "kept as" in logged[0]
    assert json.loads((old / "translate.json").read_text())["sentences_per_second"] == 2.0
    # with its checkpoint present, a finished variant is left alone (resume)
    steps.clear()
    experiment.run_variant(spec, "rela", log=logged.append)
    assert steps == []
