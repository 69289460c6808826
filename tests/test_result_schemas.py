"""Result files have one schema each, shared by their writers and readers (issue 13, part 3).

So far: ``bleu.json`` (:class:`mt_pipeline.bleu.BleuRecord`).
"""

import json

import pytest

from mt_pipeline.bleu import BleuInputError, BleuRecord, score


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
