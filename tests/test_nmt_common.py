"""nmt_common: atomic writes, JSON format, line reading, Markdown tables, logging, versions."""

import gzip
import json
import logging
import subprocess
import sys

import pytest

from nmt_common.files import (
    InputFileError,
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    iter_lines,
    read_lines,
    write_json,
)
from nmt_common.logs import setup_logging
from nmt_common.markdown import markdown_table
from nmt_common.version import package_version


def test_a_failed_atomic_write_leaves_the_old_file_and_no_partial_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write("half of the new")
            raise RuntimeError("writer failed")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "new" / "folder") as temporary:
            temporary.mkdir()
            (temporary / "file").write_text("x")
            raise RuntimeError("writer failed")
    assert list((tmp_path / "new").iterdir()) == []


def test_atomic_writes_replace_the_file_and_keep_its_permissions(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "a\nb\n")
    assert path.read_bytes() == b"a\nb\n"
    path.chmod(0o640)
    atomic_write_bytes(path, "ünï\n".encode("utf-8"))
    assert path.read_text(encoding="utf-8") == "ünï\n" and path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_write_json_format(tmp_path):
    path = tmp_path / "data.json"
    data = {"b": 1, "a": [1, 2], "text": "Δ"}
    write_json(path, data)
    assert path.read_text(encoding="utf-8") == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ],\n  "text": "Δ"\n}\n'
    write_json(path, {"b": 1}, indent=1)
    assert path.read_text() == json.dumps({"b": 1}, indent=1) + "\n"


def test_read_lines_splits_on_newline_only_and_names_file_and_line_of_bad_utf8(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffa\r\nb\rc\u2028d\n\ne".encode("utf-8"))
    assert read_lines(path) == ["a", "b\rc\u2028d", "", "e"]
    packed = tmp_path / "t.txt.gz"
    packed.write_bytes(gzip.compress(b"x\ny\n"))
    assert read_lines(packed) == ["x", "y"]
    path.write_bytes(b"ok\nbad \xff\n")
    with pytest.raises(InputFileError, match=r"t\.txt:2: not valid UTF-8") as error:
        read_lines(path)
    assert isinstance(error.value, ValueError) and (error.value.path, error.value.line) == (str(path), 2)
    assert list(iter_lines(path, strict=False)) == ["ok", None]
    with pytest.raises(InputFileError, match=r"missing\.txt: file not found"):
        read_lines(tmp_path / "missing.txt")


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, "x"], ["2.50", None]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2.50 | None |")
    assert markdown_table(["only"], []) == "| only |\n|---|"


def test_setup_logging_prefixes_the_package_and_marks_warnings(capsys):
    logger = setup_logging(0, "nmt_common_test")
    logging.getLogger("nmt_common_test.sub").info("step done")
    logger.warning("careful")
    logger.debug("hidden")
    setup_logging(-1, "nmt_common_test")
    logger.info("hidden too")
    assert capsys.readouterr().err == "[nmt_common_test] step done\n[nmt_common_test] warning: careful\n"


def test_version_of_the_toolkit_and_a_fallback():
    assert package_version() != "0+unknown"
    assert package_version("no-such-distribution-here", fallback=None) is None


def test_nmt_common_imports_only_the_standard_library():
    code = ("import sys, nmt_common.files, nmt_common.markdown, nmt_common.figures, nmt_common.logs, "
            "nmt_common.version, nmt_common.machine, nmt_common.variants; "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib', 'fairseq') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path):
    from nmt_common.figures import pyplot, save_figure

    plt = pyplot()
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    path = save_figure(figure, tmp_path / "plots" / "line.png")
    assert path.read_bytes().startswith(b"\x89PNG") and not plt.fignum_exists(figure.number)
    assert sorted(p.name for p in path.parent.iterdir()) == ["line.png"]
