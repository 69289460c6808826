"""The speed benchmark harness (benchmarks/): runs end to end and writes well-formed outputs.

No timing assertions: the harness runs here in its "smoke" mode (the quick mode's code
with tiny sizes) only to check what it writes.
"""

import sys

import pytest
import torch

from conftest import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import attention as attention_benchmark  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks.records import AttentionResult, ModelResult, Summary  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_summary(entry):
    assert entry.min <= entry.median <= entry.max


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf")
    # one thread, as the CLI's default and every record: with more, the CPU-time clock of the attention
    # shares also counts threads spinning between small operations (a replay share of 13.5 was seen
    # on 2 loaded cores); the test process's own setting is restored afterwards
    threads = torch.get_num_threads()
    try:
        assert main(["run", "--mode", "smoke", "--out", str(out), "--threads", "1", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_every_output_file_is_written(smoke_run):
    names = {path.name for path in smoke_run.iterdir()}
    assert names == {
        "attention_smoke.json", "attention_smoke.png", "model_smoke.json", "model_smoke.png", "summary_smoke.md",
    }
    for name in ("attention_smoke.png", "model_smoke.png"):
        assert (smoke_run / name).read_bytes()[:8] == PNG_MAGIC


def test_model_results_have_every_case_and_variant_as_a_ratio_to_softmax(smoke_run):
    from benchmarks import model

    result = ModelResult.read(smoke_run / "model_smoke.json")
    assert result.benchmark == "model" and result.mode == "smoke" and result.reference == "softmax"
    assert [case.name for case in result.cases] == [case.name for case in model.MODES["smoke"].cases]
    rounds = result.settings.rounds
    for case in result.cases:
        assert set(case.variants) == set(common.VARIANTS)
        bucket = case.bucket
        assert case.model.parameters == case.variants["softmax"].parameters
        for variant, entry in case.variants.items():
            assert entry.arch == f"{variant}_transformer_{case.model.size}"
            for ratio in (entry.train_tokens_per_second, entry.decode_sentences_per_second,
                          entry.train_ratio_to_softmax, entry.decode_ratio_to_softmax,
                          entry.train_cpu_ratio_to_softmax, entry.decode_cpu_ratio_to_softmax):
                _check_summary(ratio)
                assert ratio.n == rounds and ratio.median > 0
            # every hypothesis decodes exactly decode_length tokens + EOS: the same work for every variant
            sentences = bucket.decode_sentences_per_round
            assert entry.decode_generated_tokens == sentences * (bucket.decode_length + 1)
            # decoding: attention time inside the timed pass, so at most the pass; training: a replay of the
            # captured calls over a separately timed step, an estimate that load on the cores can push past 1
            assert 0 < entry.attention_share.decode <= 1
            assert 0 < entry.attention_share.train <= 1.5
        softmax = case.variants["softmax"]
        for ratio in (softmax.train_ratio_to_softmax, softmax.decode_ratio_to_softmax,
                      softmax.train_cpu_ratio_to_softmax, softmax.decode_cpu_ratio_to_softmax):
            assert ratio.median == 1.0
    machine = result.machine
    assert machine.cpu_model and machine.logical_cpus and machine.torch_threads >= 1
    assert machine.torch and machine.fairseq and machine.device == "cpu"


def test_attention_results_cover_every_configuration_phase_and_point(smoke_run):
    result = AttentionResult.read(smoke_run / "attention_smoke.json")
    settings = attention_benchmark.MODES["smoke"]
    assert result.reference == "softmax_fused"
    assert result.settings.configs == list(common.ATTENTION_CONFIGS)
    assert [(p.batch, p.heads, p.keys) for p in result.points] == list(settings.points)
    for point in result.points:
        for phase in attention_benchmark.PHASES:
            timings = getattr(point.phases, phase)
            assert set(timings) == set(common.ATTENTION_CONFIGS)
            for entry in timings.values():
                _check_summary(entry.seconds)
                _check_summary(entry.time_vs_softmax_fused)
                assert entry.peak_memory.bytes >= 0


def test_summary_names_the_command_machine_and_every_variant(smoke_run):
    text = (smoke_run / "summary_smoke.md").read_text()
    assert "python -m benchmarks run --mode smoke" in text
    assert "cpu_model" in text and "torch_threads" in text
    for variant in common.VARIANTS:
        assert f"| {variant} |" in text
    for case in ModelResult.read(smoke_run / "model_smoke.json").cases:
        assert f"| {case.name} |" in text
    assert "replay estimate" in text and "Worst and best case per variant" in text
    assert "![model](model_smoke.png)" in text and "![attention](attention_smoke.png)" in text


def test_peak_memory_sees_a_tensor_allocated_during_the_call():
    import torch

    measured = common.peak_memory(lambda: torch.ones(1024, 1024).sum(), torch.device("cpu"))
    assert measured.bytes >= 4 * 1024 * 1024


def test_summary_statistics():
    assert common.summary([3.0, 1.0, 2.0, 4.0]) == Summary(median=2.5, min=1.0, max=4.0, q1=1.75, q3=3.25, n=4)


def test_decode_sentences_sets_every_decoding_batch(tmp_path):
    assert main(["run", "--mode", "smoke", "--only", "model", "--variants", "rela", "--rounds", "1",
                 "--cases", "tiny/len20", "--decode-sentences", "3",
                 "--out", str(tmp_path), "--threads", "0", "--device", "cpu"]) == 0
    result = ModelResult.read(tmp_path / "model_smoke.json")
    (case,) = result.cases
    assert result.settings.decode_sentences == 3
    assert case.bucket.decode_batches == [(3, 20)] and case.bucket.decode_sentences_per_round == 3
    assert case.variants["rela"].decode_generated_tokens == 3 * (case.bucket.decode_length + 1)


def test_variants_and_rounds_options_choose_what_the_model_benchmark_compares(tmp_path):
    assert main(["run", "--mode", "smoke", "--only", "model", "--variants", "rela", "--rounds", "1",
                 "--out", str(tmp_path), "--threads", "0", "--device", "cpu"]) == 0
    result = ModelResult.read(tmp_path / "model_smoke.json")
    assert result.settings.variants == ["softmax", "rela"]  # softmax is always the reference
    assert result.settings.rounds == 1
    assert len(result.cases) == 2
    for case in result.cases:
        assert list(case.variants) == ["softmax", "rela"]
        assert case.variants["rela"].train_ratio_to_softmax.n == 1
    assert "--variants rela --rounds 1" in result.command


def test_cases_option_chooses_which_cases_run(tmp_path):
    assert main(["run", "--mode", "smoke", "--only", "model", "--cases", "tiny/len20", "--variants", "topk",
                 "--rounds", "1", "--out", str(tmp_path), "--threads", "0", "--device", "cpu"]) == 0
    result = ModelResult.read(tmp_path / "model_smoke.json")
    assert [case.name for case in result.cases] == ["tiny/len20"]
    assert result.cases[0].bucket.label == "len20"
    text = (tmp_path / "summary_smoke.md").read_text()
    assert "| tiny/len20 |" in text and "tiny/len6" not in text


@pytest.mark.parametrize("arguments, message", [
    (["--variants", "relu"], "unknown attention variant(s) relu"),
    (["--rounds", "0"], "rounds must be >= 1, got 0"),
    (["--decode-sentences", "0"], "decode-sentences must be >= 1, got 0"),
    (["--cases", "tiny/len6,tiny/huge"], "unknown case(s) tiny/huge in smoke mode; choose from tiny/len6, tiny/len20"),
])
def test_bad_benchmark_options_are_rejected_with_a_message(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--mode", "smoke", "--only", "model", "--out", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("arguments, message", [
    (["--variants", "softmax,relu"], "unknown attention variant(s) relu"),
    (["--cases", "small/long"], "unknown case(s) small/long in smoke mode"),
])
def test_the_model_benchmark_alone_checks_its_options_the_same_way(arguments, message, tmp_path, capsys):
    from benchmarks import model

    with pytest.raises(SystemExit) as exit_info:
        model.main(["--mode", "smoke", *arguments, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_norm_benchmark_prints_every_implementation_and_its_ratio(capsys):
    import re

    from benchmarks import norm
    from fairseq_plugins import cpu_kernels

    norm.main(["--rows", "8", "--dim", "16", "--repeat", "1", "--threads", "0"])
    # fairseq's first import may log to stdout before the report: start at the report's first line
    out = capsys.readouterr().out
    lines = out[out.index("gated RMS norm"):].splitlines()
    assert lines[0].startswith("gated RMS norm, 8 x 16")
    expected = (["C++ kernels"] if cpu_kernels.kernels() is not None else []) + ["PyTorch", "autograd"]
    for phase, line in zip(("forward", "forward+backward"), lines[1:]):
        assert line.strip().startswith(phase + ":")
        cells = re.findall(r"(C\+\+ kernels|PyTorch|autograd) +([0-9]+) us \(([0-9.]+)x\)", line)
        assert [name for name, _, _ in cells] == expected
        assert all(float(ratio) > 0 for _, _, ratio in cells) and cells[-1][2] == "1.00"

    if cpu_kernels.kernels() is not None:  # the decoding kernel against torch's operators, d 16 and 64
        assert [line.split(":")[0] for line in lines[3:5]] == ["inference, 32 x 16  ", "inference, 32 x 64  "]
        assert all("kernel" in line and "torch operators" in line for line in lines[3:5])


def test_rows_benchmark_prints_every_normalizer_at_every_width_and_both_maskings(capsys):
    from benchmarks import rows

    rows.main(["--scores", "4096", "--repeat", "1", "--threads", "0"])
    out = capsys.readouterr().out
    report = out[out.index("# python -m benchmarks.rows"):]
    header = next(line for line in report.splitlines() if line.startswith("| keys"))
    assert [cell.split()[0] for cell in header.strip("|").split("|")[2:]] == list(rows.NORMALIZERS)
    for keys in rows.KEYS:
        for kind in ("random", "causal"):
            line = next(line for line in report.splitlines() if line.startswith(f"| {keys} ({kind})"))
            assert "(1.00x)" in line.split("|")[3]  # softmax against itself
    assert "| 7 x 128 x 128 |" in report and "| 3 x 256 x 256 |" in report


def test_causal_score_rows_mask_exactly_the_future():
    from benchmarks.rows import score_rows

    scores = score_rows(64, 64 * 128, causal=True)  # [128, 64]: two blocks of 64 rows
    assert scores.shape == (128, 64)
    block = torch.isneginf(scores[64:])
    assert torch.equal(block, torch.triu(torch.ones(64, 64, dtype=torch.bool), 1))


@pytest.mark.parametrize("module, arguments", [
    ("rows", ["--scores", "10"]), ("rows", ["--repeat", "0"]), ("rows", ["--threads", "-1"]),
    ("norm", ["--decode-rows", "0"]), ("norm", ["--dim", "0"]), ("norm", ["--threads", "-2"]),
])
def test_microbenchmarks_reject_bad_options_with_a_message(module, arguments, capsys):
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"benchmarks.{module}").main(arguments)
    assert stop.value.code == 2
    assert "must be >= " in capsys.readouterr().err
