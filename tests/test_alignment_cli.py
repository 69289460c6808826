"""The ``alignment-eval`` CLI: ``aer`` and ``symmetrize`` output, and one clean error per bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alignment_eval import __version__, read_alignments
from alignment_eval.cli import build_parser, main

CONSOLE_SCRIPT = Path(sys.executable).with_name("alignment-eval")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture()
def toy(tmp_path: Path) -> dict[str, str]:
    # Case 1 of test_aer.py as files: gold (1-based) S = {(0,0),(1,1)}, P adds (1,2);
    # hyp (0-based) {(0,0),(1,2),(2,2)} -> AER 40.0%, P 66.7%, R 50.0%, 3 links, F 0.571.
    return {
        "text": write(tmp_path, "toy.src-tgt", "a b c ||| x y z\n"),
        "gold": write(tmp_path, "toy.gold", "1-1 2-2 2p3\n"),
        "hyp": write(tmp_path, "toy.hyp", "0-0 1-2 2-2\n"),
        "hyp_rev_1based": write(tmp_path, "toy.hyp.rev1", "1-1 3-2 3-3\n"),
    }


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- aer ------------------------------------------------------------------------------


def test_aer_human_output(toy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "aer", toy["gold"], toy["hyp"], "--gold-one-based", "--text", toy["text"])
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"{toy['hyp']}: 40.0% (66.7%/50.0%/3)",
        "F-Measure: 0.571",
        "gold:toy.gold|gold-base:1|hyp-base:0|rev-gold:no|rev-hyp:no|possible:P=S+P|version:0.1.0",
    ]


def test_aer_json(toy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "aer", toy["gold"], toy["hyp"], "--gold-one-based", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["aer"] == pytest.approx(0.4)
    assert record["precision"] == pytest.approx(2 / 3)
    assert record["recall"] == pytest.approx(0.5)
    assert record["f_measure"] == pytest.approx(4 / 7)
    assert record["links"] == 3 and record["sentences"] == 1
    assert record["counts"] == {"a": 3, "s": 2, "p": 3, "a_and_s": 1, "a_and_p": 2, "sentences": 1}
    assert record["signature"] == {
        "gold": "toy.gold",
        "gold-base": "1",
        "hyp-base": "0",
        "rev-gold": "no",
        "rev-hyp": "no",
        "possible": "P=S+P",
        "version": __version__,
    }


def test_aer_reverse_and_one_based_hypothesis(toy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        capsys, "aer", toy["gold"], toy["hyp_rev_1based"], "--gold-one-based", "--hyp-one-based",
        "--reverse-hyp", "--text", toy["text"], "--json",
    )
    assert code == 0
    record = json.loads(out)
    assert record["aer"] == pytest.approx(0.4)
    assert record["signature"]["hyp-base"] == "1" and record["signature"]["rev-hyp"] == "yes"


def test_aer_possible_modes_and_alpha(toy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        capsys, "aer", toy["gold"], toy["hyp"], "--gold-one-based", "--possible", "ignore-possible",
        "--f-alpha", "1", "--json",
    )
    record = json.loads(out)
    assert code == 0
    assert record["aer"] == pytest.approx(0.6)  # see test_aer.test_possible_modes
    assert record["f_measure"] == pytest.approx(1 / 3)  # alpha 1 -> precision
    assert record["signature"]["possible"] == "S=P=S"


def test_aer_empty_hypothesis_warns(tmp_path: Path, toy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path, "empty.hyp", "\n")
    code, out, err = run_main(capsys, "aer", toy["gold"], empty, "--gold-one-based")
    assert code == 0
    assert out.splitlines()[0] == f"{empty}: 100.0% (0.0%/0.0%/0)"
    assert "warning" in err and "no links" in err


# --- bad input: one clean error, exit 2 ----------------------------------------------

BAD_INPUTS = {
    # name: (gold text or bytes, hyp, text, expected fragment, expected "file:line" owner)
    "malformed": ("1-1\n", "0-x\n", None, "malformed link '0-x' (expected i-j, ipj or i-j-P)", ("hyp", 1)),
    "double-dash": ("1-1\n2-2\n", "0-0\n3--4\n", None, "malformed link '3--4'", ("hyp", 2)),
    "negative": ("-1-2\n", "0-0\n", None, "malformed link '-1-2'", ("gold", 1)),
    "zero-in-one-based": ("1-1 0-2\n", "0-0\n", None, "has index 0", ("gold", 1)),
    "out-of-range": ("1-1\n", "0-0 5-1\n", "a b ||| x y\n", "link '5-1' is out of range", ("hyp", 1)),
    "gold-out-of-range": ("1-1\n1-9\n", "0-0\n0-0\n", "a ||| b\nc ||| d\n", "link '1-9'", ("gold", 2)),
    "count-gold-hyp": ("1-1\n1-1\n", "0-0\n", None, "line count mismatch", ("hyp", None)),
    "count-text": ("1-1\n", "0-0\n", "a ||| b\nc ||| d\n", "line count mismatch", ("gold", None)),
    "empty-gold": (b"", "0-0\n", None, "file is empty", ("gold", None)),
    "empty-hyp": ("1-1\n", b"", None, "file is empty", ("hyp", None)),
    "bom": (b"\xef\xbb\xbf1-1\n", "0-0\n", None, "remove the BOM", ("gold", 1)),
    "bom-text": ("1-1\n", "0-0\n", b"\xef\xbb\xbfa ||| b\n", "remove the BOM", ("text", 1)),
    "non-utf8": ("1-1\n", "0-0\n", b"a ||| b\n\xe9t\xe9 ||| summer\n", "invalid UTF-8", ("text", 2)),
    "no-separator": ("1-1\n", "0-0\n", "a b\n", "missing ' ||| ' separator", ("text", 1)),
}


def make_files(tmp_path: Path, gold, hyp, text) -> dict[str, str]:
    paths = {}
    for role, content in (("gold", gold), ("hyp", hyp), ("text", text)):
        if content is None:
            continue
        path = tmp_path / f"case.{role}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        paths[role] = str(path)
    return paths


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_aer_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    gold, hyp, text, fragment, (owner, line) = BAD_INPUTS[case]
    paths = make_files(tmp_path, gold, hyp, text)
    argv = ["aer", paths["gold"], paths["hyp"], "--gold-one-based"]
    if "text" in paths:
        argv += ["--text", paths["text"]]
    code, out, err = run_main(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # exactly one line
    assert err.startswith("alignment-eval: error: ")
    location = paths[owner] if line is None else f"{paths[owner]}:{line}:"
    assert location in err
    assert fragment in err


def test_count_mismatch_names_both_files_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = make_files(tmp_path, "1-1\n1-1\n1-1\n", "0-0\n", None)
    code, _, err = run_main(capsys, "aer", paths["gold"], paths["hyp"], "--gold-one-based")
    assert code == 2
    assert f"{paths['hyp']} has 1 lines" in err and f"{paths['gold']} has 3 lines" in err


def test_missing_file(tmp_path: Path, toy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.hyp")
    code, _, err = run_main(capsys, "aer", toy["gold"], missing)
    assert code == 2
    assert err == f"alignment-eval: error: {missing}: No such file or directory\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aer"]) == 2
    assert main(["symmetrize", "a", "b", "--method", "grow", "--text", "t"]) == 2
    assert main([]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["aer", "--help"]) == 0
    assert "--gold-one-based" in capsys.readouterr().out


def test_parser_has_subcommands() -> None:
    parser = build_parser()
    args = parser.parse_args(["aer", "g", "h"])
    assert args.command == "aer" and callable(args.func)


# --- symmetrize ------------------------------------------------------------------------


@pytest.fixture()
def sym_files(tmp_path: Path) -> dict[str, str]:
    # Case A of test_symmetrize.py: FWD {(0,0),(1,1),(2,3)}; REV {(0,0),(3,1),(3,3)} given
    # as the reverse aligner writes it (tgt-src): "0-0 1-3 3-3". Second sentence: no links.
    return {
        "text": write(tmp_path, "s.src-tgt", "a b c d ||| w x y z\ne ||| v\n"),
        "fwd": write(tmp_path, "s.fwd", "0-0 1-1 2-3\n\n"),
        "rev": write(tmp_path, "s.rev", "0-0 1-3 3-3\n\n"),
        "fwd1": write(tmp_path, "s.fwd1", "1-1 2-2 3-4\n\n"),
        "rev1": write(tmp_path, "s.rev1", "1-1 2-4 4-4\n\n"),
    }


@pytest.mark.parametrize(
    "method, expected",
    [
        ("intersection", "0-0"),
        ("union", "0-0 1-1 2-3 3-1 3-3"),
        ("grow-diag", "0-0 1-1"),
        ("grow-diag-final", "0-0 1-1 2-3 3-1"),
        ("grow-diag-final-and", "0-0 1-1 2-3"),
    ],
)
def test_symmetrize_stdout(
    sym_files: dict[str, str], capsys: pytest.CaptureFixture[str], method: str, expected: str
) -> None:
    code, out, err = run_main(
        capsys, "symmetrize", sym_files["fwd"], sym_files["rev"], "--method", method, "--text", sym_files["text"]
    )
    assert code == 0 and err == ""
    assert out == f"{expected}\n\n"


def test_symmetrize_one_based_to_file(
    tmp_path: Path, sym_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.gdfa"
    code, out, _ = run_main(
        capsys, "symmetrize", sym_files["fwd1"], sym_files["rev1"], "--one-based",
        "--text", sym_files["text"], "-o", str(output),
    )
    assert code == 0 and out == ""
    assert output.read_text() == "0-0 1-1 2-3\n\n"  # default method grow-diag-final-and, 0-based output
    assert read_alignments(output) == [{(0, 0), (1, 1), (2, 3)}, set()]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.gdfa.")]


def test_symmetrize_bad_inputs(tmp_path: Path, sym_files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    short_rev = write(tmp_path, "short.rev", "0-0\n")
    code, _, err = run_main(capsys, "symmetrize", sym_files["fwd"], short_rev, "--text", sym_files["text"])
    assert code == 2 and "line count mismatch" in err and short_rev in err and "Traceback" not in err
    # REV links are tgt-src: "0-3" means target 0, source 3; source "e" has one token in line 2
    bad_rev = write(tmp_path, "bad.rev", "\n0-3\n")
    code, _, err = run_main(capsys, "symmetrize", sym_files["fwd"], bad_rev, "--text", sym_files["text"])
    assert code == 2 and f"{bad_rev}:2: link '0-3' is out of range: source index 3" in err


# --- the installed console script ----------------------------------------------------


def test_console_script_subprocess(tmp_path: Path, toy: dict[str, str]) -> None:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"console script not installed at {CONSOLE_SCRIPT}")
    good = subprocess.run(
        [str(CONSOLE_SCRIPT), "aer", toy["gold"], toy["hyp"], "--gold-one-based"],
        capture_output=True, text=True, timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[0] == f"{toy['hyp']}: 40.0% (66.7%/50.0%/3)"

    bad = write(tmp_path, "bad.hyp", "0-0 3-x\n")
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "aer", toy["gold"], bad, "--gold-one-based"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        f"alignment-eval: error: {bad}:1: malformed link '3-x' (expected i-j, ipj or i-j-P)\n"
    )


def test_package_imports_without_torch_or_fairseq() -> None:
    """The library and its benchmark need neither numpy nor torch; the CLI (numpy) needs neither torch nor matplotlib."""
    code = (
        "import sys, alignment_eval, alignment_eval.alignments.bench_aer, alignment_eval.bench_aer; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fairseq', 'numpy')); "
        "assert not bad, bad; "
        "import alignment_eval.cli; alignment_eval.cli.build_parser(); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fairseq', 'matplotlib')); "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
