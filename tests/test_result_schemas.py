"""Result files have one schema each, shared by their writers and readers (issue 13, part 3).

So far: ``bleu.json`` (:class:`mt_pipeline.bleu.BleuRecord`) and ``translate.json``
(:class:`mt_pipeline.translate.TranslationRecord`), both read through
:func:`nmt_common.records.read_record`.
"""

import json

import pytest

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
    (lambda d: d.pop("signature"), "missing \\['signature'\\]"),
    (lambda d: d.update(bleu_score=1.0), "unknown fields \\['bleu_score'\\]"),
    (lambda d: d.update(bleu="high"), "'bleu' must be a number"),
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
    with pytest.raises(TranslationError, match="unknown fields \\['sents_per_sec'\\], missing \\['sentences_per_second'\\]"):
        TranslationRecord.read(path)
