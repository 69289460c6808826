"""The shared gold alignment sets parse with their documented counts and score perfectly against themselves.

The gold files are read in place from ``../shared/data/word-alignment-gold`` (or
``$ALIGNMENT_GOLD_DIR``); they are never copied into the repository (the RWTH De-En
gold may not be redistributed). Counts are from ``shared/data/SOURCES.md`` section A.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alignment_eval import (
    AlignmentInputError,
    read_alignments,
    read_gold_alignments,
    read_parallel_text,
    score_alignments,
    split_tokens,
)
from alignment_eval.cli import main


def gold_dir() -> Path:
    override = os.environ.get("ALIGNMENT_GOLD_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "word-alignment-gold"


GOLD_DIR = gold_dir()

# stem: (sentences, source tokens, target tokens, sure links, possible links)
# jaen: SOURCES.md lists 14,442 source tokens, which is the str.split() count. Splitting on
# ASCII spaces (the rule SOURCES.md prescribes, and the only one that keeps every gold index
# in range) also keeps the 5 ideographic-space (U+3000) tokens: 14,442 + 5 = 14,447.
EXPECTED = {
    "deen": (508, 9_945, 10_413, 9_613, 921),
    "enfr": (447, 7_020, 7_761, 4_038, 13_400),
    "roen": (248, 5_495, 5_639, 6_198, 0),
    "jaen": (582, 14_447, 12_608, 13_562, 0),
    "zhen": (450, 11_712, 14_850, 11_238, 178),
}


def require(*names: str) -> list[Path]:
    paths = [GOLD_DIR / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(
            f"gold alignment data not available ({', '.join(missing)} missing); "
            "set ALIGNMENT_GOLD_DIR to the word-alignment-gold folder"
        )
    return paths


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def gold_set(request: pytest.FixtureRequest):
    stem = request.param
    gold_path, text_path = require(f"{stem}.gold", f"{stem}.src-tgt")
    texts = read_parallel_text(text_path)
    gold = read_gold_alignments(gold_path, one_based=True, texts=texts, text_path=text_path)
    return stem, gold_path, text_path, texts, gold


def test_counts(gold_set) -> None:
    stem, _, _, texts, gold = gold_set
    sentences, src_tokens, tgt_tokens, sure, possible = EXPECTED[stem]
    assert len(texts) == len(gold) == sentences
    assert sum(len(pair.source) for pair in texts) == src_tokens
    assert sum(len(pair.target) for pair in texts) == tgt_tokens
    assert sum(len(g.sure) for g in gold) == sure
    assert sum(len(g.possible) for g in gold) == possible


def test_gold_against_itself(gold_set) -> None:
    _, _, _, _, gold = gold_set
    full = score_alignments(gold, [set(g.all_links) for g in gold])
    assert (full.aer, full.precision, full.recall) == (0.0, 1.0, 1.0)
    sure_only = score_alignments(gold, [set(g.sure) for g in gold])
    assert (sure_only.aer, sure_only.precision, sure_only.recall) == (0.0, 1.0, 1.0)


def test_gold_file_as_hypothesis_via_cli(gold_set, capsys: pytest.CaptureFixture[str]) -> None:
    stem, gold_path, text_path, _, gold = gold_set
    code = main(
        ["aer", str(gold_path), str(gold_path), "--gold-one-based", "--hyp-one-based", "--text", str(text_path)]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    links = sum(len(g.all_links) for g in gold)
    assert out[0] == f"{gold_path}: 0.0% (100.0%/100.0%/{links})"
    assert out[2].startswith(f"gold:{stem}.gold|gold-base:1|hyp-base:1|")


def test_jaen_ideographic_space_tokens() -> None:
    (text_path,) = require("jaen.src-tgt")
    texts = read_parallel_text(text_path)
    ideographic = [(n, pair.source.index("\u3000")) for n, pair in enumerate(texts, 1) if "\u3000" in pair.source]
    assert [n for n, _ in ideographic] == [351, 352, 354, 355, 356]
    non_space_tokens = sum(sum(1 for t in pair.source if t != "\u3000") for pair in texts)
    assert non_space_tokens == 14_442  # the SOURCES.md figure
    # str.split() would drop the U+3000 token; line 351 has a gold link to its 18th token
    line_351 = text_path.read_text(encoding="utf-8").split("\n")[350]
    assert len(split_tokens(line_351.split(" ||| ")[0])) == 18
    assert len(line_351.split(" ||| ")[0].split()) == 17


def test_denero_zhen_set() -> None:
    align_path, zh_path, en_path = require(
        "zhen-denero2011/train.align", "zhen-denero2011/train.zh", "zhen-denero2011/train.en"
    )
    gold = read_gold_alignments(align_path, one_based=False)
    assert len(gold) == 150
    assert sum(len(g.sure) for g in gold) == 3_668
    assert sum(len(g.possible) for g in gold) == 989
    zh = [split_tokens(line) for line in zh_path.read_text(encoding="utf-8").split("\n")[:-1]]
    en = [split_tokens(line) for line in en_path.read_text(encoding="utf-8").split("\n")[:-1]]
    assert len(zh) == len(en) == 150
    for g, source, target in zip(gold, zh, en):
        assert all(i < len(source) and j < len(target) for i, j in g.all_links)


def test_bicici_set_known_out_of_range_link_and_bom(tmp_path: Path) -> None:
    de_path, en_path, wa_path = require("deen-bicici100/test.de", "deen-bicici100/test.en", "deen-bicici100/de-en.wa")
    de = de_path.read_bytes()
    assert de.startswith(b"\xef\xbb\xbf")
    de_lines = de.decode("utf-8").split("\n")[:-1]
    en_lines = en_path.read_text(encoding="utf-8").split("\n")[:-1]
    joined = "".join(f"{d} ||| {e}\n" for d, e in zip(de_lines, en_lines))

    with_bom = tmp_path / "bicici_bom.src-tgt"
    with_bom.write_text(joined, encoding="utf-8")
    with pytest.raises(AlignmentInputError, match="remove the BOM") as info:
        read_parallel_text(with_bom)
    assert info.value.line == 1

    text_path = tmp_path / "bicici.src-tgt"
    text_path.write_text(joined.lstrip("\ufeff"), encoding="utf-8")
    texts = read_parallel_text(text_path)
    assert len(texts) == 100
    # SOURCES.md: sentence 63 has the out-of-bounds link 12-16 (13 English tokens)
    with pytest.raises(AlignmentInputError) as info:
        read_alignments(wa_path, texts=texts, text_path=text_path)
    assert info.value.line == 63
    assert "'12-16'" in str(info.value) and "13 target tokens" in str(info.value)
