"""Result files have one schema each, shared by their writers and readers (issue 13, part 3).

``bleu.json`` (:class:`mt_pipeline.bleu.BleuRecord`), ``translate.json``
(:class:`mt_pipeline.translate.TranslationRecord`), ``aer.json``, ``stats.json`` and ``baseline.json``
(:mod:`alignment_eval.alignments.records`), all read through :func:`nmt_common.records.read_record`.
The benchmark files have theirs in ``tests/test_benchmark_schema.py``.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import pytest

from alignment_eval.alignments import AER, GoldAlignment, evaluate_files
from alignment_eval.alignments.errors import AlignmentInputError
from alignment_eval.alignments.records import (
    AerReport, AerRow, BaselineReport, BaselineScore, StatsReport, best_rows,
)
from nmt_common.records import RecordError, from_json, to_json

from mt_pipeline.bleu import BleuInputError, BleuRecord, score
from mt_pipeline.translate import Translation, TranslationError, TranslationRecord


def test_bleu_record_round_trips_and_its_signature_comes_from_the_metric(tmp_path):
    (tmp_path / "hyp").write_text("a cat sat on the mat\nthe dog ran\n", encoding="utf-8")
    (tmp_path / "ref").write_text("a cat sat on the mat\nthe dog ran away\n", encoding="utf-8")
    record = score(tmp_path / "hyp", tmp_path / "ref")
    assert record.signature.startswith("nrefs:1|") and "version:" in record.signature
    path = tmp_path / "bleu.json"
    record.write(path)
    assert BleuRecord.read(path) == record
    assert json.loads(path.read_text())["bleu"] == record.bleu


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("signature"), "missing field\\(s\\) signature"),
    (lambda d: d.update(bleu_score=1.0), "unknown field\\(s\\) bleu_score"),
    (lambda d: d.update(bleu="high"), "bleu: must be a finite number, got \"high\""),
    (lambda d: d.update(sentences=2.5), "sentences: must be an integer"),
])
def test_a_changed_field_fails_naming_the_file(tmp_path, change, message):
    data = BleuRecord(bleu=30.0, chrf=55.0, signature="s", chrf_signature="c", hypotheses="h",
                      references="r", sentences=2).as_dict()
    change(data)
    path = tmp_path / "bleu.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BleuInputError, match=message) as error:
        BleuRecord.read(path)
    assert str(path) in str(error.value)


def test_a_damaged_bleu_json_is_an_error_naming_it(tmp_path):
    path = tmp_path / "bleu.json"
    path.write_text('{"bleu": 3', encoding="utf-8")
    with pytest.raises(BleuInputError, match="not a readable bleu.json") as error:
        BleuRecord.read(path)
    assert str(path) in str(error.value)


def test_translation_record_round_trips_and_refuses_another_schema(tmp_path):
    translation = Translation(output=tmp_path / "test.hyp", sentences=3, seconds=1.5, sentences_per_second=2.0,
                              command=["fairseq-generate", "data bin", "--beam", "4"])
    path = tmp_path / "translate.json"
    translation.write_record(path)
    record = TranslationRecord.read(path)
    assert record == translation.record()
    assert record.command == "fairseq-generate 'data bin' --beam 4"
    data = json.loads(path.read_text())
    data["sents_per_sec"] = data.pop("sentences_per_second")
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TranslationError, match="unknown field\\(s\\) sents_per_sec; missing field\\(s\\) sentences_per_second"):
        TranslationRecord.read(path)


# --- the converter every schema uses -------------------------------------------------------------


@dataclass(frozen=True)
class _Inner:
    value: float
    label: Optional[str] = None


@dataclass(frozen=True)
class _Outer:
    count: int
    flag: bool
    head: Union[int, str]
    inner: Dict[str, List[_Inner]]
    span: Tuple[int, int] = (0, 1)


def test_from_json_converts_nested_records_and_round_trips():
    data = {"count": 3, "flag": True, "head": "avg", "inner": {"cross": [{"value": 1}, {"value": 0.5, "label": "x"}]}}
    record = from_json(_Outer, data)
    assert record.inner["cross"][0] == _Inner(1.0) and isinstance(record.inner["cross"][0].value, float)
    assert to_json(record) == {**data, "inner": {"cross": [{"value": 1.0, "label": None}, {"value": 0.5, "label": "x"}]},
                               "span": [0, 1]}
    assert from_json(_Outer, to_json(record)) == record


@pytest.mark.parametrize("change, where", [
    (lambda d: d["inner"]["cross"][1].update(value="0.5"), "inner.cross[1].value: must be a finite number"),
    (lambda d: d["inner"]["cross"][0].update(value=math.nan), "inner.cross[0].value: must be a finite number"),
    (lambda d: d.update(count=True), "count: must be an integer"),
    (lambda d: d.update(count=2.0), "count: must be an integer"),
    (lambda d: d.update(flag=1), "flag: must be true or false"),
    (lambda d: d.update(head=None), "head: must be an integer or a string, got null"),
    (lambda d: d["inner"].update(cross={}), "inner.cross: must be a list"),
    (lambda d: d.update(span=[1, 2, 3]), "span: must be a list of 2 items, got 3"),
    (lambda d: d.update(span=[1, "2"]), "span[1]: must be an integer"),
    (lambda d: d["inner"]["cross"][0].update(extra=1), "inner.cross[0]: unknown field(s) extra"),
])
def test_from_json_names_the_field_path_of_a_wrong_value(change, where):
    data = {"count": 3, "flag": True, "head": 1, "inner": {"cross": [{"value": 1}, {"value": 0.5}]}}
    change(data)
    with pytest.raises(RecordError, match=re.escape(where)):
        from_json(_Outer, data)


# --- aer.json, stats.json, baseline.json ---------------------------------------------------------

RESULTS = Path(__file__).resolve().parents[1] / "results"
ALIGNMENT_SCHEMAS = {"aer.json": AerReport, "stats.json": StatsReport, "baseline.json": BaselineReport}


@pytest.mark.parametrize("name", sorted(ALIGNMENT_SCHEMAS))
def test_every_committed_alignment_result_reads_under_its_schema(name):
    paths = sorted(RESULTS.rglob(name))
    assert paths, f"no committed {name} under {RESULTS}"
    for path in paths:
        record = ALIGNMENT_SCHEMAS[name].read(path)
        assert to_json(record) == json.loads(path.read_text(encoding="utf-8")), path  # nothing lost or renamed


def _gold():
    return [GoldAlignment(frozenset({(0, 0), (1, 1)}), frozenset({(1, 2)})), GoldAlignment(frozenset({(0, 1)}))]


def test_the_aer_signature_is_derived_from_the_metric_object_that_scored():
    hypothesis = [{(0, 0), (1, 2)}, {(0, 1), (1, 1)}]
    metric = AER(_gold(), "toy.gold", gold_one_based=True)
    result = metric.score(hypothesis, layer=2, head="avg", method="argmax", shift=True, subword="any")
    assert str(result.signature) == ("gold:toy.gold|gold-base:1|hyp-base:0|rev-gold:no|rev-hyp:no|possible:P=S+P"
                                     "|layer:2|head:avg|method:argmax|shift:yes|subword:any|version:0.1.0")
    # |A|=4, |S|=3, |P|=4, |A∩S|=2, |A∩P|=3: AER = 1 - 5/7
    assert result.aer == pytest.approx(1 - 5 / 7)
    strict = AER(_gold(), "toy.gold", gold_one_based=True, possible="ignore-possible").score(hypothesis)
    assert "possible:S=P=S" in str(strict.signature) and strict.aer == pytest.approx(1 - 4 / 7)
    row = AerRow.from_result(result, layer=2, head="avg", method="argmax", shift=True, file="f.align")
    assert row.signature == str(result.signature) and row.where == "L2Havg"
    with pytest.raises(ValueError, match="unknown possible-link mode"):
        AER(_gold(), "toy.gold", possible="sure-only")


def test_evaluate_files_scores_through_the_metric_object(tmp_path):
    (tmp_path / "toy.gold").write_text("1-1 2-2 2p3\n1-2\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("0-0 1-2\n0-1 1-1\n", encoding="utf-8")
    result = evaluate_files(tmp_path / "toy.gold", tmp_path / "hyp", gold_one_based=True,
                            signature_extra={"method": "argmax"})
    expected = AER(_gold(), "toy.gold", gold_one_based=True).score([{(0, 0), (1, 2)}, {(0, 1), (1, 1)}],
                                                                   method="argmax")
    assert result == expected


def test_an_aer_row_without_a_metric_signature_is_refused():
    from alignment_eval.alignments import score_alignments

    unsigned = score_alignments(_gold(), [set(), set()])
    with pytest.raises(ValueError, match="no signature"):
        AerRow.from_result(unsigned, layer=1, head=1, method="argmax", shift=False, file="f")


def test_aer_report_round_trips_and_checks_its_rows(tmp_path):
    metric = AER(_gold(), "toy.gold")
    rows = [AerRow.from_result(metric.score(links, layer=1, head=head, method="argmax", shift=False),
                               layer=1, head=head, method="argmax", shift=False, file=f"{head}.align")
            for head, links in [(1, [{(0, 0)}, set()]), (2, [{(0, 0), (1, 1)}, {(0, 1)}]), ("avg", [set(), set()])]]
    report = AerReport(checkpoint="c.pt", text="t", gold="g", reverse=False, subword_rule="any", threshold=0.3,
                       sentences=2, rows=rows, best=best_rows(rows))
    assert report.best["argmax.normal.best-head"].head == 2 and report.best["argmax.normal.avg"].head == "avg"
    report.write(tmp_path / "aer.json")
    assert AerReport.read(tmp_path / "aer.json") == report
    data = json.loads((tmp_path / "aer.json").read_text())
    data["rows"][0]["head"] = 0
    (tmp_path / "aer.json").write_text(json.dumps(data))
    with pytest.raises(AlignmentInputError, match="rows\\[0\\]: head must be a 1-based integer") as error:
        AerReport.read(tmp_path / "aer.json")
    assert str(tmp_path / "aer.json") in str(error.value)


def test_stats_json_written_by_the_statistics_reads_back_equal(tmp_path):
    from alignment_eval.analysis.attention_stats import SublayerStatistics

    rng = np.random.default_rng(0)
    per_sublayer = {}
    for name in ("encoder", "decoder", "cross"):
        statistics = SublayerStatistics(name)
        for _ in range(3):
            weights = rng.random((2, 4, 5, 5))  # [layers, heads, queries, keys]
            weights[weights < 0.4] = 0.0
            statistics.add_sentence(weights)
        per_sublayer[name] = statistics.summary()
    report = StatsReport(checkpoint="c.pt", sentences=3, unknown_pieces=0,
                         normalizers={name: "rela" for name in per_sublayer}, alpha={}, sublayers=per_sublayer,
                         text="t")
    report.write(tmp_path / "stats.json")
    again = StatsReport.read(tmp_path / "stats.json")
    assert again == report
    assert 0.3 < again.overall("cross").sparsity < 0.5 and len(again.sublayers["decoder"].layers[1].heads) == 4


def test_baseline_score_keeps_the_metric_result():
    result = AER(_gold(), "toy.gold").score([{(0, 0)}, {(0, 1)}], aligner="fast_align", dir="forward")
    score = BaselineScore.from_result(result)
    assert score.signature_str == str(result.signature) and score.signature["aligner"] == "fast_align"
    assert from_json(BaselineScore, to_json(score)) == score


# --- the rows of the reports: pairs' report.json and the experiments' summary.json ---------------


def test_pairs_report_rows_have_one_schema(tmp_path, capsys):
    import shutil

    from mt_pipeline.errors import PipelineError
    from mt_pipeline.pairs import PairReport, direction, main

    config = direction("en-de").config
    for variant, bleu in (("softmax", 30.0), ("rela", 29.0)):
        folder = tmp_path / config / variant
        folder.mkdir(parents=True)
        BleuRecord(bleu=bleu, chrf=55.0, signature="nrefs:1|tok:13a", chrf_signature="c", hypotheses="h",
                   references="r", sentences=2).write(folder / "bleu.json")
        # Hydra's log of one make train session, next to the checkpoints (configs/base/transformer_base.yaml)
        log = tmp_path / "checkpoints" / config / variant / "hydra" / "2026-01-31_12-00-00" / "hydra_train.log"
        log.parent.mkdir(parents=True)
        log.write_text("[2026-01-31 12:00:00,100][fairseq_cli.train][INFO] - {'_name': None}\n"
                       "[2026-01-31 12:00:30,000][train][INFO] - epoch 001 | loss 3.1 | wps 1000.0 | ups 2\n"
                       "[2026-01-31 12:01:00,900][fairseq_cli.train][INFO] - done training in 60.0 seconds\n",
                       encoding="utf-8")
    seed_folder = tmp_path / config / "rela" / "seed2"  # make bleu ... SEED=2: one seed of make sweep
    seed_folder.mkdir()
    BleuRecord(bleu=28.5, chrf=54.0, signature="nrefs:1|tok:13a", chrf_signature="c", hypotheses="h",
               references="r", sentences=2).write(seed_folder / "bleu.json")
    attention = RESULTS / "multi30k-de-en" / "rela" / "seed1" / "attention"
    shutil.copytree(attention, tmp_path / config / "rela" / "attention", ignore=shutil.ignore_patterns("alignments"))
    assert main(["report", "--pair", "en-de", "--results", str(tmp_path), "--checkpoints", str(tmp_path / "checkpoints")]) == 0
    markdown = capsys.readouterr().out
    report = PairReport.read(tmp_path / config / "report.json")
    softmax, rela, rela_seed2 = report.rows
    assert (rela_seed2.variant, rela_seed2.bleu) == ("rela (seed 2)", 28.5)
    assert (softmax.variant, softmax.bleu, softmax.train_wps, softmax.sparsity_cross) == ("softmax", 30.0, 1000.0, None)
    assert softmax.train_seconds == 60.0 and rela_seed2.train_seconds is None  # no log in its checkpoint folder
    committed = AerReport.read(attention / "aer.json").best["argmax.normal.best-head"]
    assert rela.aer_best["argmax.normal.best-head"].aer == committed.aer and rela.null_rate_cross > 0
    assert f"| rela | 29.00 | 55.00 | 1000 (1.00x) | 0.02 | - | {committed.aer:.3f} ({committed.layer}, {committed.head}) |" \
        in markdown
    data = json.loads((tmp_path / config / "report.json").read_text())
    data["rows"][1]["aer_best"]["argmax.normal.avg"]["layer"] = "3"
    (tmp_path / config / "report.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match=re.escape("rows[1].aer_best.argmax.normal.avg.layer: must be an integer")):
        PairReport.read(tmp_path / config / "report.json")


@pytest.mark.parametrize("path", sorted(p for p in RESULTS.rglob("summary.json") if p.parent.name != "baselines"),
                         ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_experiment_summary_reads_under_its_schema(path):
    from mt_pipeline.summary import SummaryRecord, read_aligner_summary

    summary = SummaryRecord.read(path)
    assert to_json(summary) == json.loads(path.read_text(encoding="utf-8"))
    assert {row.variant for row in summary.rows} >= {run.variant for run in summary.runs}
    baselines = path.parent / "baselines" / "summary.json"
    if baselines.is_file():
        assert summary.baselines == read_aligner_summary(baselines)
