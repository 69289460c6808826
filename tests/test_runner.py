"""The experiment runner: fingerprinted steps, no stale outputs, resume after a kill, curves, significance."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mt_pipeline import experiment
from mt_pipeline.clean import CleanConfig, TrainPart, clean_train
from mt_pipeline.curves import read_log
from mt_pipeline.errors import PipelineError
from mt_pipeline.summary import SummaryRecord
from mt_pipeline.significance import mean_and_sd, paired_bootstrap
from mt_pipeline.spec import ExperimentSpec, Run, TestSet, average_checkpoints
from mt_pipeline.training import StaleRunError, TrainingRun, check_or_claim, describe_differences
from nmt_common.files import write_json

from conftest import REPO_ROOT

TOY_TRAIN = ["--lr", "0.005", "--warmup-updates", "50", "--max-tokens", "2000"]


def toy_spec(tmp_path, data_bin, **overrides):
    settings = dict(name="toy", data_bin=data_bin, spm_model=tmp_path / "unused.model",
                    test_sets={"test": TestSet("test", tmp_path / "reference.txt")},
                    out_dir=tmp_path / "results", variants=("softmax",), seeds=(1,),
                    arch="sparse_transformer_tiny", train_args=TOY_TRAIN, max_update=30,
                    checkpoint_root=tmp_path / "checkpoints", post_process="none")
    settings.update(overrides)
    return ExperimentSpec(**settings)


# --- fingerprints and refusal ------------------------------------------------------------

def fake_run(folder, max_update="300", seed="1", data="d1"):
    identity = ["fairseq-train", "<data-bin>", "--max-update", max_update, "--seed", seed, "--save-dir", "<save-dir>"]
    return TrainingRun(save_dir=folder, command=identity, identity=identity, data=data)


def test_a_changed_setting_is_refused_with_the_differences_named(tmp_path):
    folder = tmp_path / "run"
    assert check_or_claim(fake_run(folder)) == "new"
    (folder / "checkpoint_last.pt").write_text("weights")
    assert check_or_claim(fake_run(folder)) == "resume"
    with pytest.raises(StaleRunError, match=r"--max-update 300 -> 3000.*--on-change rerun"):
        check_or_claim(fake_run(folder, max_update="3000"))
    with pytest.raises(StaleRunError, match="other data or code version"):
        check_or_claim(fake_run(folder, data="d2"))
    # the refused call changed nothing
    assert json.loads((folder / "run.json").read_text())["identity"][3] == "300"


def test_rerun_keeps_the_old_run_aside_and_starts_again(tmp_path):
    folder = tmp_path / "run"
    check_or_claim(fake_run(folder))
    (folder / "checkpoint_last.pt").write_text("old weights")
    messages = []
    assert check_or_claim(fake_run(folder, seed="2"), on_change="rerun", log=messages.append) == "new"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.superseded-")]
    assert len(kept) == 1 and (kept[0] / "checkpoint_last.pt").read_text() == "old weights"
    assert not (folder / "checkpoint_last.pt").exists() and "--seed 1 -> 2" in messages[0]


def test_checkpoints_without_a_record_are_not_adopted(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "checkpoint_last.pt").write_text("someone else's")
    with pytest.raises(StaleRunError, match="no run.json records"):
        check_or_claim(fake_run(folder))


def test_a_damaged_run_record_is_named_with_its_line(tmp_path):
    folder = tmp_path / "run"
    check_or_claim(fake_run(folder))
    (folder / "run.json").write_text('{\n "identity": [\n')  # cut short, e.g. a full disk
    with pytest.raises(PipelineError, match=r"run/run\.json:3: not valid JSON"):
        check_or_claim(fake_run(folder))
    (folder / "run.json").write_text("[1, 2]")
    with pytest.raises(PipelineError, match=r"run\.json:1: expected a JSON object"):
        check_or_claim(fake_run(folder))


def test_describe_differences_lists_added_and_removed_options():
    old = ["fairseq-train", "<data>", "--patience", "4", "--fp16"]
    new = ["fairseq-train", "<data>", "--patience", "5"]
    assert describe_differences(old, new) == "--fp16 (set) -> (absent); --patience 4 -> 5"


def test_spec_rejects_checkpoint_choices_it_cannot_honour(tmp_path):
    with pytest.raises(PipelineError, match="needs validation BLEU"):
        toy_spec(tmp_path, tmp_path, checkpoint="best")
    with pytest.raises(PipelineError, match="keep_last_epochs >= 5"):
        toy_spec(tmp_path, tmp_path, checkpoint="average-last-5", keep_last_epochs=2)
    with pytest.raises(PipelineError, match="use best, last or average-last-N"):
        toy_spec(tmp_path, tmp_path, checkpoint="newest")


# --- the JSON log ---------------------------------------------------------------------------

LOG = """$ fairseq-train ...
2026-01-01 10:00:00 | INFO | train_inner | {"epoch": 1, "num_updates": "50", "loss": "9.1"}
2026-01-01 10:01:00 | INFO | valid | {"epoch": 1, "valid_loss": "8.0", "valid_nll_loss": "7.5", "valid_bleu": "3.2", "valid_num_updates": "60"}
2026-01-01 10:02:00 | INFO | train_inner | {"epoch": 2, "num_updates": "100", "loss": "7.0"}
$ fairseq-train ... (resumed after a kill during epoch 2)
2026-01-01 11:00:00 | INFO | train_inner | {"epoch": 2, "num_updates": "100", "loss": "6.9"}
2026-01-01 11:00:30 | INFO | valid | {"epoch": 2, "valid_loss": "7.0", "valid_nll_loss": "6.5", "valid_bleu": "9.5", "valid_num_updates": "120"}
2026-01-01 11:00:31 | INFO | fairseq_cli.train | early stop since valid performance hasn't improved for last 4 runs
2026-01-01 11:00:33 | INFO | train | {"epoch": 2, "train_num_updates": "120", "train_wall": "33"}
"""


def test_read_log_takes_the_json_records_and_the_latest_of_a_repeated_step(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(LOG)
    history = read_log(path)
    assert [(p.epoch, p.updates, p.bleu) for p in history.valid] == [(1, 60, 3.2), (2, 120, 9.5)]
    assert history.train_loss == [(50, 9.1), (100, 6.9)]
    assert history.starts == 2 and history.last_update == 120 and history.last_epoch == 2
    assert history.early_stopped and history.best_valid_bleu == 9.5
    # training time: each session's span of log timestamps, summed (120 s + 33 s; the hour between
    # the kill and the resume is not counted); fairseq's train_wall restarts at 0 on a resume
    assert history.train_seconds == 153.0


def test_a_run_stopped_by_patience_is_still_finished_under_a_later_cap(tmp_path):
    """Raising --max-update continues runs the old cap stopped, not runs patience stopped before it."""
    from mt_pipeline.training import DONE_FILE

    def finished(folder, updates, stopped_by):
        run = TrainingRun(save_dir=folder, command=[], data="d1",
                          identity=["fairseq-train", "<data-bin>", "--lr-scheduler", "inverse_sqrt",
                                    "--max-update", "120", "--patience", "1"])
        assert check_or_claim(run) == "new"
        (folder / "checkpoint_last.pt").write_text("weights")
        (folder / "train.log").write_text(LOG)  # validation BLEU 3.2 at 60, 9.5 at 120
        write_json(folder / DONE_FILE, {"fingerprint": run.fingerprint, "stopping": run.stopping,
                                        "updates": updates, "stopped_by": stopped_by})
        return run

    def with_cap(run, cap, patience="1"):
        identity = [*run.identity[:4], "--max-update", cap, "--patience", patience]
        return TrainingRun(save_dir=run.save_dir, command=[], identity=identity, data="d1")

    by_cap = finished(tmp_path / "cap", 120, "update/epoch budget")
    assert with_cap(by_cap, "240").done() is None  # BLEU still rising at the cap: training continues
    assert check_or_claim(with_cap(by_cap, "240")) == "resume"
    # patience 1 with scores 3.2, 9.5, then (appended) 9.0: stopped at 180, before either cap
    by_patience = finished(tmp_path / "patience", 180, "patience (validation BLEU stopped improving)")
    with open(by_patience.log_file, "a") as log:
        log.write('2026-01-01 11:01:00 | INFO | valid | {"epoch": 3, "valid_bleu": "9.0", "valid_num_updates": "180"}\n')
    later = with_cap(by_patience, "240")
    assert later.done() == {**by_patience.done(), "stopping": later.stopping}
    assert check_or_claim(later) == "done"
    assert with_cap(by_patience, "240", patience="2").done() is None  # a longer patience: not finished


def test_read_log_names_the_line_of_a_broken_record(tmp_path):
    path = tmp_path / "train.log"
    path.write_text('x | INFO | valid | {"epoch": 1, broken}\n')
    with pytest.raises(ValueError, match=r"train.log:1: a valid record that is not JSON"):
        read_log(path)


# --- significance ----------------------------------------------------------------------------

def test_paired_bootstrap_reproduces_sacrebleu_paired_bs():
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    references = [f"the cat number {i} sat on the mat near house {i % 7} ." for i in range(60)]
    baseline = [r.replace("sat", "sits") if i % 3 else r for i, r in enumerate(references)]
    system = [r.replace("mat", "rug") if i % 2 else r for i, r in enumerate(references)]
    ours = paired_bootstrap([system], [baseline], references)
    test = PairedTest([("baseline", baseline), ("system", system)], {"BLEU": BLEU()}, [references],
                      test_type="bs", n_samples=1000)
    _, scores = test()
    theirs = scores["BLEU"][1]
    assert ours.p_value == pytest.approx(theirs.p_value, abs=1e-4)
    assert ours.system_bleu == pytest.approx(theirs.score, abs=0.01)
    assert ours.ci_low < ours.delta < ours.ci_high


def test_paired_bootstrap_of_identical_systems_finds_no_difference():
    references = [f"sentence {i} is here ." for i in range(30)]
    hypotheses = [r.replace("here", "there") if i % 4 else r for i, r in enumerate(references)]
    result = paired_bootstrap([hypotheses, hypotheses], [hypotheses], references)
    assert result.delta == 0 and result.ci_low == result.ci_high == 0 and result.p_value > 0.9
    with pytest.raises(ValueError, match="has 29 lines for 30 references"):
        paired_bootstrap([hypotheses[:-1]], [hypotheses], references)


def test_mean_and_sd():
    assert mean_and_sd([1.0]) == (1.0, None)
    mean, sd = mean_and_sd([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == pytest.approx(1.0)


# --- upsampled training corpora --------------------------------------------------------------

def test_copies_of_a_corpus_survive_deduplication(tmp_path):
    (tmp_path / "a.de").write_text("ein Haus\nein Hund\nein Haus\n")
    (tmp_path / "a.en").write_text("a house\na dog\na house\n")
    (tmp_path / "g.de").write_text("die Katze\n")
    (tmp_path / "g.en").write_text("the cat\n")
    info = clean_train([TrainPart("main", tmp_path / "a.de", tmp_path / "a.en"),
                        TrainPart("gold", tmp_path / "g.de", tmp_path / "g.en", 3)],
                       tmp_path / "out.de", tmp_path / "out.en", source_lang="de", target_lang="en",
                       config=CleanConfig())
    assert (tmp_path / "out.en").read_text().splitlines() == ["a house", "a dog", "the cat", "the cat", "the cat"]
    assert info["kept"] == 5 and info["dropped"] == {"duplicate": 1}


# --- checkpoint averaging --------------------------------------------------------------------

def test_average_checkpoints_is_the_parameter_mean(tmp_path):
    import torch

    for index, value in enumerate((1.0, 3.0)):
        torch.save({"model": {"w": torch.full((2,), value), "steps": torch.tensor(index)},
                    "optimizer_history": [{"num_updates": index}], "last_optimizer_state": {"big": 1}},
                   tmp_path / f"checkpoint{index + 1}.pt")
    output = average_checkpoints([tmp_path / "checkpoint1.pt", tmp_path / "checkpoint2.pt"], tmp_path / "avg.pt")
    state = torch.load(output, weights_only=False)
    assert torch.equal(state["model"]["w"], torch.full((2,), 2.0))
    assert state["model"]["steps"].item() == 0 and state["last_optimizer_state"] is None


# --- real fairseq runs on the toy corpus -----------------------------------------------------

@pytest.mark.slow
def test_a_killed_training_resumes_and_reaches_the_same_update_count(tmp_path, toy_binarized):
    """Kill fairseq-train mid-way (after its first epoch checkpoint), start the runner again:
    it resumes from checkpoint_last.pt and stops at exactly max_update."""
    spec = toy_spec(tmp_path, toy_binarized, max_update=240)
    run = Run(spec, "softmax", 1)
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from test_runner import toy_spec; from mt_pipeline import experiment; from mt_pipeline.spec import Run; "
            "spec = toy_spec(Path(sys.argv[2]), Path(sys.argv[3]), max_update=240); "
            "experiment.train_run(Run(spec, 'softmax', 1))")
    process = subprocess.Popen([sys.executable, "-c", code, str(REPO_ROOT / "tests"), str(tmp_path), str(toy_binarized)],
                               cwd=REPO_ROOT, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoint = run.save_dir / "checkpoint_last.pt"
    deadline = time.time() + 300
    while not checkpoint.is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # let the save finish
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    from mt_pipeline.training import checkpoint_updates

    reached = checkpoint_updates(checkpoint)
    assert reached is not None and 0 < reached < 240, "the kill must land mid-way"
    assert not (run.save_dir / "train.done.json").exists()
    messages = []
    record = experiment.train_run(run, log=messages.append)
    assert any("resuming from checkpoint_last.pt" in m for m in messages)
    assert record["updates"] == 240 and checkpoint_updates(checkpoint) == 240
    history = read_log(run.save_dir / "train.log")
    assert history.starts == 2 and history.last_update == 240
    # asked again: reused, nothing trained
    messages.clear()
    assert experiment.train_run(run, log=messages.append)["updates"] == 240 and messages == []


@pytest.mark.slow
def test_changed_settings_never_re_report_old_outputs(tmp_path, toy_binarized, toy_corpus):
    """300 -> 3000 updates in miniature: refused by default; with rerun, every step runs again.
    A changed beam re-translates; an unchanged rerun does nothing."""
    reference = tmp_path / "reference.txt"
    reference.write_text((toy_corpus / "test.tgt").read_text())
    spec = toy_spec(tmp_path, toy_binarized, max_update=20, generate_args=["--max-len-a", "0", "--max-len-b", "12"])
    steps = []
    experiment.run_experiment(spec, "first", log=steps.append)
    first = json.loads((spec.out_dir / "softmax" / "seed1" / "test" / "bleu.json").read_text())
    assert any("training" in s for s in steps) and any("translating" in s for s in steps)
    summary = (spec.out_dir / "summary.md").read_text()
    assert "| softmax | 1 |" in summary and "at most 20 updates" in summary

    steps.clear()
    experiment.run_experiment(spec, "same again", log=steps.append)
    assert not any("training" in s or "translating" in s for s in steps)

    # a later stop (inverse_sqrt ignores the budget): training continues from checkpoint_last.pt
    longer = toy_spec(tmp_path, toy_binarized, max_update=40, generate_args=spec.generate_args)
    steps.clear()
    experiment.run_experiment(longer, "longer", log=steps.append)
    record = json.loads((spec.out_dir / "softmax" / "seed1" / "train.json").read_text())
    assert record["updates"] == 40 and record["stopping"] == {"--max-update": "40"}
    assert any("--max-update 20 -> 40" in s and "training continues" in s for s in steps)
    assert any("translating" in s for s in steps) and "at most 40 updates" in (spec.out_dir / "summary.md").read_text()
    second = json.loads((spec.out_dir / "softmax" / "seed1" / "test" / "bleu.json").read_text())
    assert second["hypotheses"] == first["hypotheses"]  # same file, rewritten from the new model
    assert read_log(longer_run_log(longer)).starts == 2

    # an earlier stop than where the run is, or another trajectory: refused, nothing changed
    with pytest.raises(StaleRunError, match="stops at update 20, but the run is at 40"):
        experiment.run_experiment(spec, "shorter", log=steps.append)
    other_lr = toy_spec(tmp_path, toy_binarized, max_update=40, generate_args=spec.generate_args,
                        train_args=["--lr", "0.004", *TOY_TRAIN[2:]])
    with pytest.raises(StaleRunError, match="--lr 0.005 -> 0.004"):
        experiment.run_experiment(other_lr, "other lr", log=steps.append)
    assert json.loads((spec.out_dir / "softmax" / "seed1" / "train.json").read_text())["updates"] == 40

    wider = toy_spec(tmp_path, toy_binarized, max_update=40, generate_args=spec.generate_args, beam=2)
    steps.clear()
    experiment.run_experiment(wider, "beam 2", log=steps.append)
    assert not any("training" in s for s in steps) and any("translating test (beam 2" in s for s in steps)
    assert json.loads((spec.out_dir / "softmax" / "seed1" / "test" / "bleu.json").read_text())["beam"] == 2


    # a clean clone: committed outputs, no checkpoints -> nothing is reported as this run's result
    os.replace(spec.checkpoint_root, tmp_path / "elsewhere")
    steps.clear()
    experiment.run_experiment(wider, "finished only", log=steps.append, finished_only=True)
    data = SummaryRecord.read(spec.out_dir / "summary.json")
    assert data.pending == ["softmax seed 1"] and data.rows[0].bleu["test"] == (None, None)
    assert "**Not finished yet (not in the table):** softmax seed 1" in (spec.out_dir / "summary.md").read_text()
    assert not any("training" in s for s in steps)


def longer_run_log(spec):
    return Run(spec, "softmax", 1).save_dir / "train.log"


# --- the stopping rule --------------------------------------------------------------------

def test_stopping_options_are_not_part_of_an_inverse_sqrt_trajectory(tmp_path):
    from mt_pipeline.training import split_stopping

    command = ["fairseq-train", "<data>", "--lr-scheduler", "inverse_sqrt", "--max-update", "300", "--patience", "4"]
    assert split_stopping(command) == (["fairseq-train", "<data>", "--lr-scheduler", "inverse_sqrt"],
                                       {"--max-update": "300", "--patience": "4"})
    polynomial = ["fairseq-train", "<data>", "--lr-scheduler", "polynomial_decay", "--max-update", "300"]
    assert split_stopping(polynomial) == (polynomial, {})  # its learning rate depends on the budget


def test_stop_point_replays_patience_and_budget_on_a_history():
    from mt_pipeline.curves import ValidPoint
    from mt_pipeline.training import stop_point

    valid = [ValidPoint(e, 100 * e, None, None, b) for e, b in enumerate([5, 9, 8, 9, 10, 7, 7, 7], 1)]
    assert stop_point(valid, {"--patience": "2"}) == 400  # 9 at 200, then 8, 9 (not better)
    assert stop_point(valid, {"--patience": "3"}) == 800
    assert stop_point(valid, {"--patience": "4"}) is None
    assert stop_point(valid, {"--max-update": "300", "--patience": "9"}) == 300


def test_plugin_patience_survives_a_resume(tmp_path):
    """fairseq's own --patience forgets its count on restart; the plugin's decides from the saved history."""
    from types import SimpleNamespace

    from fairseq_plugins import fairseq_compat

    cfg = SimpleNamespace(checkpoint=SimpleNamespace(patience=3, save_dir=str(tmp_path), maximize_best_checkpoint_metric=True,
                                                     best_checkpoint_metric="bleu"))

    def validate(updates, bleu):
        fairseq_compat._validation_updates["updates"] = updates
        return fairseq_compat._resumable_should_stop_early(cfg, bleu)

    assert [validate(u, b) for u, b in ((10, 5.0), (20, 9.0), (30, 8.0))] == [False, False, False]
    # killed after the validation at 40 but before its checkpoint: the resumed run repeats update 40
    assert validate(40, 8.5) is False
    assert validate(40, 8.6) is False  # replaces, does not count twice
    assert validate(50, 7.0) is True  # 8.0, 8.6, 7.0: three validations without beating 9.0
    history = json.loads((tmp_path / "early_stopping.json").read_text())
    assert history["scores"] == {"10": 5.0, "20": 9.0, "30": 8.0, "40": 8.6, "50": 7.0}
    assert fairseq_compat.validations_since_best([1, 2, 2, 3, 1], maximize=True) == 1
    (tmp_path / "early_stopping.json").write_text('{"scores": {"10": "n/a"}}')
    with pytest.raises(RuntimeError, match=r"early_stopping\.json: damaged early-stopping history"):
        validate(60, 7.0)


def test_report_commands_carry_the_environment_that_placed_the_files(monkeypatch):
    from mt_pipeline.runs import reproducing_command

    monkeypatch.delenv("GOLD_DIR", raising=False)
    monkeypatch.delenv("MULTI30K_DIR", raising=False)
    monkeypatch.setenv("CHECKPOINT_ROOT", "/big disk/ckpt")
    assert reproducing_command(["multi30k", "--finished-only"]) == (
        "'CHECKPOINT_ROOT=/big disk/ckpt' python -m mt_pipeline.runs multi30k --finished-only")


def test_sweep_verdicts_wait_for_every_setting_then_compare_best_against_best():
    from mt_pipeline.runs import sweep_verdicts

    settings = ["a", "b", "c"]
    test = {("a", "softmax"): 30.0, ("b", "softmax"): 33.0, ("c", "softmax"): None,
            ("a", "rela"): 28.0, ("b", "rela"): 31.0, ("c", "rela"): 32.0}
    (line,) = sweep_verdicts(test, settings, ["softmax", "rela"])
    assert "incomplete, 2 of 3 settings" in line
    test[("c", "softmax")] = 34.5
    (line,) = sweep_verdicts(test, settings, ["softmax", "rela"])
    assert "below softmax at every setting (gaps -2.50 to -2.00 BLEU)" in line
    assert "Best setting of rela: c (32.00); of softmax: c (34.50); best against best: -2.50" in line
    assert line.endswith("The setting does not close the gap at this budget.")
    test[("a", "rela")] = 30.5
    (line,) = sweep_verdicts(test, settings, ["softmax", "rela"])
    assert "on both sides of softmax" in line and line.endswith("The gap depends on the setting.")
