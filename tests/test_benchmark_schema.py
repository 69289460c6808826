"""The speed benchmarks' result files have one schema each (benchmarks/records.py), shared by the
writer and the report (issue 13, part 3): every committed file reads under it, a record survives
a round trip, and a renamed or deleted field fails where it is read, naming the file and the field.
"""

import argparse
import json
import shutil
import sys

import pytest

from conftest import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.records import AttentionResult, ModelResult  # noqa: E402
from benchmarks.report import write_report, write_report_or_exit  # noqa: E402
from nmt_common.files import InputFileError, json_text  # noqa: E402

PERF = REPO_ROOT / "results" / "perf"
COMMITTED = sorted(PERF.glob("**/*.json"))
SCHEMAS = {"attention": AttentionResult, "model": ModelResult}


def _schema(path):
    """The record of a result file, from its name: ``<benchmark>_<mode>.json``."""
    return SCHEMAS[path.name.split("_", 1)[0]]


def test_the_committed_results_cover_both_schemas():
    assert {_schema(path) for path in COMMITTED} == set(SCHEMAS.values())


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: str(path.relative_to(PERF)))
def test_every_committed_result_file_reads_under_its_schema(path):
    record = _schema(path).read(path)
    assert record.benchmark == path.name.split("_", 1)[0]
    assert path.name == f"{record.benchmark}_{record.mode}.json"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: str(path.relative_to(PERF)))
def test_a_record_round_trips_through_its_file_in_the_committed_layout(path, tmp_path):
    record = _schema(path).read(path)
    copy = tmp_path / path.name
    record.write(copy)
    assert _schema(path).read(copy) == record
    # byte for byte the committed file, but for a CPU run's machine, which now says gpu/cuda: null
    committed = json.loads(path.read_text(encoding="utf-8"))
    assert json_text(committed) == path.read_text(encoding="utf-8")
    committed["machine"].update(gpu=None, cuda=None)
    assert copy.read_text(encoding="utf-8") == json_text(committed)


def _edit(data, where, rename=None):
    """Delete (or rename to ``rename``) the field at ``where``, a path of keys and list indices."""
    *parents, key = where
    for step in parents:
        data = data[step]
    value = data.pop(key)
    if rename is not None:
        data[rename] = value


# (file, field path, new name or None to delete, what the error names)
BROKEN = [
    ("model_full.json", ("cases",), "results", "unknown field(s) results; missing field(s) cases"),
    ("model_full.json", ("cases", 1, "bucket", "decode_length"), "decode_len",
     "cases[1].bucket: unknown field(s) decode_len; missing field(s) decode_length"),
    ("model_full.json", ("cases", 0, "variants", "rela", "attention_share", "train"), None,
     "cases[0].variants.rela.attention_share: missing field(s) train"),
    ("model_full.json", ("settings", "attention_share_clock"), None,
     "settings: missing field(s) attention_share_clock"),
    ("interactive/model_full.json", ("cases", 2, "variants", "topk", "decode_ratio_to_softmax", "median"), None,
     "cases[2].variants.topk.decode_ratio_to_softmax: missing field(s) median"),
    ("attention_full.json", ("settings", "configs"), "variants",
     "settings: unknown field(s) variants; missing field(s) configs"),
    ("attention_full.json", ("points", 3, "phases", "inference"), "eval",
     "points[3].phases: unknown field(s) eval; missing field(s) inference"),
    ("attention_full.json", ("points", 0, "phases", "forward", "sparsemax", "calls_per_sample"), None,
     "points[0].phases.forward.sparsemax: missing field(s) calls_per_sample"),
    ("attention_full.json", ("machine", "torch_threads"), "threads",
     "machine: unknown field(s) threads; missing field(s) torch_threads"),
]


@pytest.mark.parametrize("name, where, rename, message", BROKEN,
                         ids=[f"{name}:{'.'.join(map(str, where))}" for name, where, _, _ in BROKEN])
def test_a_renamed_or_deleted_field_fails_naming_the_file_and_the_field(tmp_path, name, where, rename, message):
    data = json.loads((PERF / name).read_text(encoding="utf-8"))
    _edit(data, where, rename)
    path = tmp_path / name.rsplit("/", 1)[-1]
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    with pytest.raises(InputFileError) as error:
        _schema(path).read(path)
    assert error.value.path == str(path)
    assert message in str(error.value) and str(error.value).startswith(f"{path}: ")


def test_a_value_of_the_wrong_type_fails_naming_the_field(tmp_path):
    data = json.loads((PERF / "attention_full.json").read_text(encoding="utf-8"))
    data["points"][1]["phases"]["forward_backward"]["rela"]["peak_memory"]["bytes"] = "21 MB"
    path = tmp_path / "attention_full.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputFileError, match=r"points\[1\]\.phases\.forward_backward\.rela\.peak_memory\.bytes: "
                                             r"must be an integer, got \"21 MB\""):
        AttentionResult.read(path)


def test_a_model_file_is_not_an_attention_file(tmp_path):
    path = tmp_path / "attention_full.json"
    shutil.copy(PERF / "model_full.json", path)
    with pytest.raises(InputFileError, match="not the attention_full.json schema of AttentionResult: "
                                             "unknown field\\(s\\) cases; missing field\\(s\\) points"):
        AttentionResult.read(path)


def test_the_report_reads_the_committed_files_and_refuses_a_broken_one(tmp_path):
    for name in ("attention_full.json", "model_full.json"):
        shutil.copy(PERF / name, tmp_path / name)
    report = write_report(tmp_path, "full")
    assert report.read_text(encoding="utf-8") == (PERF / "summary_full.md").read_text(encoding="utf-8")
    data = json.loads((tmp_path / "model_full.json").read_text(encoding="utf-8"))
    _edit(data, ("cases", 0, "bucket", "source_lengths"))
    (tmp_path / "model_full.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputFileError, match=r"cases\[0\]\.bucket: missing field\(s\) source_lengths") as error:
        write_report(tmp_path, "full")
    assert error.value.path == str(tmp_path / "model_full.json")


def test_a_broken_file_ends_a_benchmark_command_with_a_message_not_a_traceback(tmp_path, capsys):
    data = json.loads((PERF / "model_full.json").read_text(encoding="utf-8"))
    _edit(data, ("elapsed_seconds",))
    (tmp_path / "model_full.json").write_text(json.dumps(data), encoding="utf-8")
    parser = argparse.ArgumentParser(prog="python -m benchmarks run")
    with pytest.raises(SystemExit) as exit_info:
        write_report_or_exit(parser, tmp_path, "full")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"python -m benchmarks run: error: {tmp_path / 'model_full.json'}: not the model_full.json "
                   "schema of ModelResult: missing field(s) elapsed_seconds\n")
    assert not (tmp_path / "summary_full.md").exists()
