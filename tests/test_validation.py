"""Validation: every row is kept or quarantined with row, column, value and reason."""

from __future__ import annotations

import pandas as pd
import pytest

from adpilot.data import ColumnMapping, ingest_file
from adpilot.data.language import detect_language
from adpilot.data.schema import REVIEWS, TRANSACTIONS
from adpilot.data.validation import validate
from adpilot.errors import ConfigError, MissingColumnError


def _reviews(tmp_path, rows: list[str], header="review_id,text,rating,created_at"):
    path = tmp_path / "reviews.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_bad_ratings_dates_and_empty_text_are_quarantined(tmp_path):
    path = _reviews(tmp_path, [
        "r1,Lovely fabric,5,2024-03-01",
        "r2,Runs small,five,2024-03-02",
        "r3,Too tight,9,2024-03-03",
        "r4,,4,2024-03-04",
        "r5,Great,4,not a date",
        "r6,Fine,3.5,2024-03-06T10:00:00+08:00",
        "r7,Okay,0,2024-03-07",
    ])
    result = ingest_file("reviews", path, quarantine_dir=tmp_path / "q")
    assert (result.read, result.kept, result.quarantined) == (7, 2, 5)
    q = pd.read_csv(result.quarantine_file, dtype=str).set_index("row")
    assert q.loc["2", "column"] == "rating" and q.loc["2", "value"] == "five"
    assert q.loc["2", "reason"] == "rating is not a number"
    assert q.loc["3", "reason"] == "rating is outside its scale (expected between 1 and 5)"
    assert q.loc["3", "value"] == "9"
    assert q.loc["4", "reason"] == "empty text"
    assert q.loc["5", "column"] == "created_at"
    assert q.loc["7", "value"] == "0"
    kept = result.frame.set_index("id")
    assert kept.loc["r6", "created_at"] == pd.Timestamp("2024-03-06 02:00:00")  # UTC


def test_duplicate_ids_keep_the_first_and_name_it(tmp_path):
    path = _reviews(tmp_path, ["a,one,5,", "b,two,4,", "a,three,3,", "a,four,2,"])
    result = ingest_file("reviews", path, quarantine_dir=tmp_path)
    assert result.frame["text"].tolist() == ["one", "two"]
    assert result.quarantine["reason"].tolist() == ["duplicate id (first seen in data row 1)"] * 2
    assert result.quarantine["row"].tolist() == [3, 4]


def test_quarantine_is_written_only_where_the_caller_says(tmp_path, isolated_home):
    """The library reads no settings: without a path or folder the quarantined rows stay in the
    result and no file is written (the CLI passes ``Settings.quarantine_dir``)."""
    path = _reviews(tmp_path, ["a,one,5,", "b,,4,"])
    result = ingest_file("reviews", path)
    assert result.quarantined == 1 and result.quarantine_file is None
    assert result.quarantine["reason"].tolist() == ["empty text"]
    assert not (isolated_home / "quarantine").exists()
    named = ingest_file("reviews", path, quarantine_path=tmp_path / "bad.csv")
    assert named.quarantine_file == str(tmp_path / "bad.csv")
    assert pd.read_csv(named.quarantine_file)["reason"].tolist() == ["empty text"]


def test_a_50mb_text_cell_is_quarantined_not_stored(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('id,text,rating\n1,"' + "x" * 50_000_000 + '",5\n2,normal review,4\n')
    result = ingest_file("reviews", path, quarantine_dir=tmp_path)
    assert (result.read, result.kept, result.quarantined) == (2, 1, 1)
    reason = result.quarantine["reason"][0]
    assert reason == "text has 50,000,000 characters; at most 20,000 are accepted"
    assert len(result.quarantine["value"][0]) <= 200  # the report does not carry the 50 MB


def test_derived_ids_are_stable_and_keep_real_repeats():
    frame = pd.DataFrame({"text": ["好", "好", "不错"], "rating": ["5", "5", "4"]})
    first = validate(frame, REVIEWS).kept["id"].tolist()
    second = validate(frame, REVIEWS).kept["id"].tolist()
    assert first == second and len(set(first)) == 3


def test_unmapped_columns_are_kept_as_attributes():
    frame = pd.DataFrame({"text": ["nice"]})
    extra = pd.DataFrame({"Department": ["Tops"], "Age": ["34"]})
    kept = validate(frame, REVIEWS, extra=extra).kept
    assert kept["attributes"][0] == '{"Department":"Tops","Age":"34"}'


def test_transactions_need_product_quantity_time():
    frame = pd.DataFrame({"product_id": ["p1", "p2", ""], "quantity": ["2", "x", "1"],
                          "time": ["2024-01-01", "2024-01-02", "2024-01-03"]})
    result = validate(frame, TRANSACTIONS)
    assert result.kept["product_id"].tolist() == ["p1"]
    assert result.quarantine["reason"].tolist() == ["quantity is not a number", "empty product_id"]


def test_language_detection_zh_en():
    langs = detect_language(pd.Series(["面料很舒服", "iPhone很好用", "Runs small, order up",
                                       "I love the 麓织 brand products", "12345", None]))
    assert langs.tolist() == ["zh", "zh", "en", "en", "und", "und"]


def test_missing_column_names_the_column_and_what_was_found(tmp_path):
    path = _reviews(tmp_path, ["r1,ok,5,"])
    with pytest.raises(MissingColumnError) as err:
        ingest_file("reviews", path, mapping=ColumnMapping({"text": "Review Text"}))
    msg = str(err.value)
    assert "'Review Text' is missing" in msg and "'review_id', 'text', 'rating'" in msg
    assert str(path) in msg and err.value.exit_code == 2


def test_required_column_absent_without_mapping(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,comment\n1,hi\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="required text column 'text' is missing"):
        ingest_file("reviews", path)


def test_yaml_mapping_file(tmp_path):
    path = _reviews(tmp_path, ["r1,Soft and warm,5,2024-01-01"],
                    header="ID,Body,Stars,When")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns:\n  id: ID\n  text: Body\n  rating: Stars\n  created_at: When\n",
                       encoding="utf-8")
    result = ingest_file("reviews", path, mapping=ColumnMapping.from_yaml(mapping))
    assert result.frame.loc[0, "rating"] == 5 and result.frame.loc[0, "id"] == "r1"


def test_unknown_canonical_column_in_mapping(tmp_path):
    path = _reviews(tmp_path, ["r1,x,5,"])
    with pytest.raises(ConfigError, match="unknown canonical column"):
        ingest_file("reviews", path, mapping=ColumnMapping({"stars": "rating"}))
