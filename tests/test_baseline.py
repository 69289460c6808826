"""``alignment-eval baseline``: fast_align (Dyer et al. 2013) and eflomal (Östling & Tiedemann 2016) baselines.

The synthetic corpora have a known, unambiguous alignment: every source word maps
to one target word and occurs at most once per sentence; the target rotates each
block of three words ("a b c" -> "b c a"), a reordering that is not its own inverse,
so links read the wrong way round score badly. Bounds were measured: both aligners
reach AER 0.000-0.002 on the 300-sentence corpus, swapped links 0.86.
"""

from __future__ import annotations

import json
import os
import random
import stat
import sys
import time
from pathlib import Path

import pytest

from alignment_eval import GoldAlignment, SentencePair, evaluate_files, read_alignments, score_alignments
from alignment_eval.baselines import ALIGNERS, FastAlignOptions, align_with, run_aligner, run_baseline
from alignment_eval.baselines.viterbi import fast_align_viterbi
from alignment_eval.cli import main

GOOD_AER = 0.05  # measured 0.000-0.002 for both aligners and all three runs
BROKEN_AER = 0.8  # measured 0.86 for the same links with source and target swapped


def gold_dir() -> Path:
    override = os.environ.get("ALIGNMENT_GOLD_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "word-alignment-gold"


def rotated_corpus(sentences: int, vocab: int = 50, seed: int = 1) -> tuple[list[SentencePair], list[GoldAlignment]]:
    """s<w> -> t<w>, each block of three target words rotated left; gold links are all sure."""
    rng = random.Random(seed)
    pairs, gold = [], []
    for _ in range(sentences):
        words = rng.sample(range(vocab), rng.randint(4, 10))
        order: list[int] = []  # target position j holds source word order[j]
        for start in range(0, len(words), 3):
            block = list(range(start, min(start + 3, len(words))))
            order += block[1:] + block[:1]
        pairs.append(SentencePair(tuple(f"s{w}" for w in words), tuple(f"t{words[i]}" for i in order)))
        gold.append(GoldAlignment(frozenset((i, j) for j, i in enumerate(order))))
    return pairs, gold


def write_gold_set(folder: Path, pairs: list[SentencePair], gold: list[GoldAlignment], stem: str = "toy") -> tuple[str, str]:
    """The pairs as 'src ||| tgt' and the gold as 1-based Pharaoh, like the shared gold sets."""
    text = folder / f"{stem}.src-tgt"
    text.write_text("".join(f"{' '.join(p.source)} ||| {' '.join(p.target)}\n" for p in pairs), encoding="utf-8")
    gold_path = folder / f"{stem}.gold"
    gold_path.write_text(
        "".join(" ".join(f"{i + 1}-{j + 1}" for i, j in sorted(g.sure)) + "\n" for g in gold), encoding="utf-8"
    )
    return str(text), str(gold_path)


def swapped(links: list[set[tuple[int, int]]], pairs: list[SentencePair]) -> list[set[tuple[int, int]]]:
    """Links read as (target, source): what a pipeline that forgets a flip would score."""
    return [
        {(j, i) for i, j in sentence if j < len(pair.source) and i < len(pair.target)}
        for sentence, pair in zip(links, pairs)
    ]


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[SentencePair], list[GoldAlignment]]:
    return rotated_corpus(300)


@pytest.fixture(scope="module")
def synthetic_baseline(synthetic):
    pairs, gold = synthetic
    return run_baseline(pairs, gold, ALIGNERS)


# --- recovery on a known alignment ----------------------------------------------------------


@pytest.mark.parametrize("aligner", ALIGNERS)
def test_recovers_known_alignment(synthetic, synthetic_baseline, aligner: str) -> None:
    pairs, gold = synthetic
    baseline = synthetic_baseline[aligner]
    for direction in ("forward", "reverse", "gdfa"):
        score = baseline.scores[direction]
        assert score.aer < GOOD_AER, (aligner, direction, score.aer)
        assert score.sentences == len(pairs)
    broken = score_alignments(gold, swapped(baseline.gdfa, pairs))
    assert broken.aer > BROKEN_AER


def test_signatures_record_the_run(synthetic_baseline) -> None:
    fast_align = synthetic_baseline["fast_align"]
    forward = fast_align.scores["forward"].signature
    assert forward["aligner"] == "fast_align"
    assert forward["impl"].startswith("systran-align-3.5.0")
    assert forward["dir"] == "forward" and forward["sym"] == "none"
    assert forward["lc"] == "no" and forward["train"] == "300"
    assert forward["opts"].startswith("d,o,v")
    gdfa = synthetic_baseline["eflomal"].scores["gdfa"].signature
    assert gdfa["sym"] == "grow-diag-final-and" and gdfa["dir"] == "both"
    assert gdfa["impl"] == "eflomal-2.0.0"
    assert list(gdfa)[-1] == "version"
    assert fast_align.run.deterministic and not synthetic_baseline["eflomal"].run.deterministic


def test_fast_align_is_reproducible(synthetic) -> None:
    pairs, _ = synthetic
    sources, targets = [p.source for p in pairs], [p.target for p in pairs]
    first = align_with("fast_align", sources, targets)
    second = align_with("fast_align", sources, targets)
    assert first == second


# --- directions ---------------------------------------------------------------------------


def one_to_two_corpus(sentences: int = 200, seed: int = 3) -> tuple[list[SentencePair], list[GoldAlignment], list[int]]:
    """Monotone s<w> -> t<w>, plus source word X at a random position translated by two target words 'x1 x2'."""
    rng = random.Random(seed)
    pairs, gold, x_positions = [], [], []
    for _ in range(sentences):
        words = rng.sample(range(40), rng.randint(3, 8))
        x = rng.randrange(len(words) + 1)
        source = [f"s{w}" for w in words]
        target = [f"t{w}" for w in words]
        source.insert(x, "X")
        target[x:x] = ["x1", "x2"]
        links = {(i, i if i < x else i + 1) for i in range(len(source)) if i != x} | {(x, x), (x, x + 1)}
        pairs.append(SentencePair(tuple(source), tuple(target)))
        gold.append(GoldAlignment(frozenset(links)))
        x_positions.append(x)
    return pairs, gold, x_positions


@pytest.mark.parametrize("aligner", ALIGNERS)
def test_directions_are_source_target(aligner: str) -> None:
    """Both runs come back as (source, target); the reverse run gives X exactly one of x1, x2.

    Measured precision 1.000 for both runs of both aligners; read swapped, 0.53-0.61.
    fast_align's forward run links X to both x1 and x2; eflomal's HMM/fertility model
    leaves x2 unaligned instead, so that check is fast_align's only.
    """
    pairs, gold, x_positions = one_to_two_corpus()
    forward, reverse = align_with(aligner, [p.source for p in pairs], [p.target for p in pairs])
    for links in (forward, reverse):
        assert score_alignments(gold, links).precision > 0.95
        assert score_alignments(gold, swapped(links, pairs)).precision < 0.75
    both_in_forward = one_in_reverse = 0
    for pair, x, fwd, rev in zip(pairs, x_positions, forward, reverse):
        x_links = {(x, x), (x, x + 1)}  # (source X, target x1) and (source X, target x2)
        both_in_forward += x_links <= fwd
        one_in_reverse += len(x_links & rev) == 1
        assert len({j for _, j in fwd}) == len(fwd)  # forward: one source word per target word
        assert len({i for i, _ in rev}) == len(rev)  # reverse: one target word per source word
    assert one_in_reverse >= 0.9 * len(pairs)
    if aligner == "fast_align":
        assert both_in_forward >= 0.9 * len(pairs)


def test_viterbi_rule() -> None:
    """fast_align's decision: NULL wins ties, the diagonal prior breaks lexical ties, the best t(f|e) wins."""

    class Table:
        word_ids = {"<eps>": 1, "a": 2, "b": 3, "x": 4, "y": 5}
        rows = {1: {4: 0.5}, 2: {4: 0.5, 5: 0.5}, 3: {4: 0.5, 5: 0.5}}

        def row(self, word):
            return self.rows.get(self.word_ids.get(word, -1), {})

    options = FastAlignOptions(prob_align_null=0.0)
    assert fast_align_viterbi(["a", "b"], ["x", "y"], Table(), 4.0, options) == {(0, 0), (1, 1)}
    uniform = FastAlignOptions(favor_diagonal=False)
    # All three candidates score 0.5/3: NULL comes first and keeps the word unaligned.
    assert fast_align_viterbi(["a", "b"], ["x"], Table(), 4.0, uniform) == set()
    Table.rows[3] = {4: 0.9}
    assert fast_align_viterbi(["a", "b"], ["x"], Table(), 4.0, uniform) == {(1, 0)}


def test_output_indices_and_empty_sides() -> None:
    pairs, _ = rotated_corpus(60)
    sources = [p.source for p in pairs] + [(), ("s1",)]
    targets = [p.target for p in pairs] + [("t1",), ()]
    run = run_aligner("fast_align", sources, targets, output_indices=[60, 0, 61])
    assert run.training_sentences == 60
    assert run.forward[0] == set() and run.forward[2] == set() and run.reverse[0] == set()
    assert run.forward[1]  # sentence 0 is aligned
    with pytest.raises(ValueError, match="unknown aligner"):
        run_aligner("giza", sources, targets)


# --- CLI ----------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["baseline", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs, gold = rotated_corpus(200)
    text, gold_path = write_gold_set(tmp_path, pairs, gold)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "--text", text, "--gold", gold_path, "--gold-one-based", "--aligner", "fast_align", "eflomal",
        "--out-dir", str(out_dir),
    )
    assert code == 0, err
    assert "| fast_align | grow-diag-final-and |" in out and "| eflomal | reverse (tgt→src) |" in out
    report = json.loads((out_dir / "baseline.json").read_text(encoding="utf-8"))
    assert (out_dir / "baseline.md").read_text(encoding="utf-8") == out
    assert report["gold_sentences"] == 200 and report["extra_sentences"] == 0
    for aligner in ALIGNERS:
        entry = report["aligners"][aligner]
        assert entry["training_sentences"] == 200
        for direction in ("forward", "reverse", "gdfa"):
            result = entry["results"][direction]
            assert 0.0 <= result["aer"] < GOOD_AER
            assert result["signature"]["aligner"] == aligner
            # Every file is 0-based source-target and rescoring it reproduces the JSON.
            path = out_dir / entry["files"][direction]
            rescored = evaluate_files(gold_path, path, gold_one_based=True, text_path=text)
            assert rescored.aer == pytest.approx(result["aer"])
            assert rescored.links == result["links"]
    assert not list(out_dir.glob(".*")), "temporary files left behind"


def test_cli_json_and_extra_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """20 gold pairs alone align badly with fast_align; 280 extra pairs (both file forms) fix it."""
    pairs, gold = rotated_corpus(300)
    text, gold_path = write_gold_set(tmp_path, pairs[:20], gold[:20])
    code, out, _ = run_cli(capsys, "--text", text, "--gold", gold_path, "--gold-one-based", "--aligner", "fast_align", "--json")
    assert code == 0
    alone = json.loads(out)["aligners"]["fast_align"]["results"]["gdfa"]["aer"]
    assert alone > 0.15  # measured 0.24

    joint = tmp_path / "extra.src-tgt"
    joint.write_text("".join(f"{' '.join(p.source)} ||| {' '.join(p.target)}\n" for p in pairs[20:160]), encoding="utf-8")
    (tmp_path / "extra.src").write_text("".join(" ".join(p.source) + "\n" for p in pairs[160:]), encoding="utf-8")
    (tmp_path / "extra.tgt").write_text("".join(" ".join(p.target) + "\n" for p in pairs[160:]), encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(
        capsys, "--text", text, "--gold", gold_path, "--gold-one-based", "--aligner", "fast_align", "--json",
        "--extra", str(joint), "--extra-src", str(tmp_path / "extra.src"), "--extra-tgt", str(tmp_path / "extra.tgt"),
        "--out-dir", str(out_dir),
    )
    assert code == 0
    report = json.loads(out)
    entry = report["aligners"]["fast_align"]
    assert report["extra_sentences"] == 280 and entry["training_sentences"] == 300
    assert entry["results"]["gdfa"]["signature"]["train"] == "300"
    assert entry["results"]["gdfa"]["aer"] < GOOD_AER
    assert len(read_alignments(out_dir / "fast_align.gdfa.align")) == 20


def test_cli_lowercase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Random capitalisation splits every word in two unless --lowercase merges them back."""
    pairs, gold = rotated_corpus(150)
    rng = random.Random(5)
    cased = [
        SentencePair(tuple(w.upper() if rng.random() < 0.5 else w for w in p.source), p.target) for p in pairs
    ]
    text, gold_path = write_gold_set(tmp_path, cased, gold)
    code, out, _ = run_cli(
        capsys, "--text", text, "--gold", gold_path, "--gold-one-based", "--aligner", "fast_align", "--lowercase", "--json"
    )
    assert code == 0
    result = json.loads(out)["aligners"]["fast_align"]["results"]["gdfa"]
    assert result["signature"]["lc"] == "yes"
    assert result["aer"] < GOOD_AER


def test_cli_line_count_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs, gold = rotated_corpus(10)
    text, _ = write_gold_set(tmp_path, pairs, gold)
    _, gold_path = write_gold_set(tmp_path, pairs[:9], gold[:9], stem="short")
    code, out, err = run_cli(capsys, "--text", text, "--gold", gold_path, "--gold-one-based")
    assert code == 2 and out == ""
    assert err.startswith("alignment-eval: error: ") and "line count mismatch" in err
    assert "short.gold" in err and "Traceback" not in err


def test_cli_unknown_aligner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs, gold = rotated_corpus(10)
    text, gold_path = write_gold_set(tmp_path, pairs, gold)
    code, _, err = run_cli(capsys, "--text", text, "--gold", gold_path, "--aligner", "giza")
    assert code == 2
    assert "invalid choice: 'giza'" in err and "Traceback" not in err


def test_cli_unpaired_extra_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs, gold = rotated_corpus(10)
    text, gold_path = write_gold_set(tmp_path, pairs, gold)
    extra = tmp_path / "extra.src"
    extra.write_text("s1 s2\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--text", text, "--gold", gold_path, "--gold-one-based", "--extra-src", str(extra))
    assert code == 2 and "--extra-tgt" in err and "Traceback" not in err


def test_cli_missing_aligners(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pairs, gold = rotated_corpus(10)
    text, gold_path = write_gold_set(tmp_path, pairs, gold)
    base = ["--text", text, "--gold", gold_path, "--gold-one-based"]

    monkeypatch.setattr("alignment_eval.baselines.route_systran_align.SYSTRAN_MODULE", "systran_align_not_installed")
    code, _, err = run_cli(capsys, *base, "--aligner", "fast_align")
    assert code == 2 and "pip install systran-align" in err and "--fast-align-binary" in err
    monkeypatch.undo()

    monkeypatch.setitem(sys.modules, "eflomal", None)  # makes `import eflomal` fail
    code, _, err = run_cli(capsys, *base, "--aligner", "eflomal")
    assert code == 2 and "pip install eflomal" in err and "Traceback" not in err

    code, _, err = run_cli(capsys, *base, "--aligner", "fast_align", "--fast-align-binary", str(tmp_path / "nope"))
    assert code == 2 and "not found" in err


FAKE_FAST_ALIGN = """\
import sys
args = sys.argv[1:]
with open(sys.argv[0] + ".calls", "a") as log:
    log.write(" ".join(args) + "\\n")
corpus = args[args.index("-i") + 1]
for line in open(corpus, encoding="utf-8"):
    first, second = (side.split() for side in line.split(" ||| "))
    # Each word of the second side j links to word j * n // m of the first side.
    print(" ".join(f"{j * len(first) // len(second)}-{j}" for j in range(len(second))))
"""


def test_fast_align_binary_route(tmp_path: Path) -> None:
    """A stand-in fast_align binary: runs on src|||tgt and tgt|||src with -d -o -v; the second run is flipped."""
    fake = tmp_path / "fast_align"
    fake.write_text(f"#!{sys.executable}\n{FAKE_FAST_ALIGN}", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    sources = [("a", "b", "c"), ("a", "b"), ("a",)]
    targets = [("x", "y"), ("x", "y", "z", "w"), ()]
    run = run_aligner("fast_align", sources, targets, fast_align=FastAlignOptions(binary=str(fake)))
    assert run.forward == [{(0, 0), (1, 1)}, {(0, 0), (0, 1), (1, 2), (1, 3)}, set()]
    assert run.reverse == [{(0, 0), (1, 0), (2, 1)}, {(0, 0), (1, 2)}, set()]
    assert run.implementation == "binary-fast_align"
    calls = (tmp_path / "fast_align.calls").read_text().splitlines()
    assert len(calls) == 2
    assert all({"-d", "-o", "-v"} <= set(call.split()) and "-r" not in call.split() for call in calls)


# --- the real De-En gold ---------------------------------------------------------------------


def test_deen_gold_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both aligners on the 508 RWTH De-En sentences alone (read in place, never copied).

    Measured gdfa AER: fast_align 0.494, eflomal 0.39; a diagonal guess scores 0.75.
    """
    folder = gold_dir()
    text, gold = folder / "deen.src-tgt", folder / "deen.gold"
    if not (text.is_file() and gold.is_file()):
        pytest.skip(f"De-En gold not available at {folder}; set ALIGNMENT_GOLD_DIR to the word-alignment-gold folder")
    start = time.perf_counter()
    code, out, err = run_cli(capsys, "--text", str(text), "--gold", str(gold), "--gold-one-based", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["gold_sentences"] == 508
    for aligner in ALIGNERS:
        for direction, result in report["aligners"][aligner]["results"].items():
            for key in ("aer", "precision", "recall", "f_measure"):
                assert 0.0 <= result[key] <= 1.0, (aligner, direction, key)
            assert result["aer"] < 0.65, (aligner, direction)  # measured 0.39-0.51
            assert result["sentences"] == 508
    assert time.perf_counter() - start < 60
