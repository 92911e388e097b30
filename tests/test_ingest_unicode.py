"""Files holding what no database can store or no decoder can read (issue 17): a JSON record
with a lone surrogate (``"\\ud800"``, written as the JSON escape) or bytes that are not UTF-8 is
quarantined on its own, with the file, line, column and value, and every other record is kept;
a CSV file that is UTF-8 but for a damaged line is a clear error naming the line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adpilot.data.ingest import ingest_file
from adpilot.data.readers import read_table
from adpilot.errors import InputError
from adpilot.store import Store

GOOD = [{"customer_id": "c1", "region": "北京", "age": "30"},
        {"customer_id": "c2", "region": "x\U0001F600", "age": "41"},  # a pair: a good emoji
        {"customer_id": "c4", "region": "上海", "age": "52"}]
POISON = {"customer_id": "c3", "region": "x\ud800", "age": "33"}  # pandas would store "x"


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)  # json.dumps escapes \ud800


def test_a_lone_surrogate_row_is_quarantined_and_the_others_are_stored(db_url, tmp_path):
    path = tmp_path / "customers.jsonl"
    path.write_text(jsonl([GOOD[0], GOOD[1], POISON, GOOD[2]]), encoding="utf-8")
    assert "\\ud800" in path.read_text(encoding="utf-8")
    store = Store(db_url).init()

    result = ingest_file("customers", path, store=store, quarantine_dir=tmp_path)

    assert (result.read, result.kept, result.quarantined, result.inserted) == (4, 3, 1, 3)
    stored = store.read("customers").set_index("id")
    assert sorted(stored.index) == ["c1", "c2", "c4"]
    assert stored.loc["c2", "region"] == "x\U0001F600" and stored.loc["c4", "region"] == "上海"
    (entry,) = pd.read_csv(result.quarantine_file).to_dict("records")
    assert entry["row"] == 3 and entry["line"] == 3 and entry["column"] == "region"
    assert entry["value"] == "x\\ud800"
    assert entry["reason"].startswith("customers.jsonl line 3, column region: an unpaired "
                                      "surrogate (x\\ud800)")
    assert str(tmp_path) not in entry["reason"]  # the file's name, not the server's path
    store.engine.dispose()


def test_rows_after_a_quarantined_record_keep_their_number(tmp_path):
    path = tmp_path / "customers.jsonl"
    path.write_text(jsonl([GOOD[0], POISON, {"customer_id": "c5", "age": "abc"}]),
                    encoding="utf-8")
    result = ingest_file("customers", path)
    rows = result.quarantine.set_index("row")["reason"].to_dict()
    assert set(rows) == {2, 3} and "surrogate" in rows[2] and "age" in rows[3]


def test_a_json_array_file_is_read_record_by_record(tmp_path):
    path = tmp_path / "customers.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in [GOOD[0], POISON, GOOD[1]])
                    + ",\n[1, 2]\n]\n", encoding="utf-8")
    raw = read_table(path)
    assert raw.frame["customer_id"].tolist() == ["c1", "c2"]
    assert raw.row_numbers.tolist() == [1, 3] and raw.read == 4
    errors = raw.parse_errors.to_dict("records")
    assert [(e["row"], e["line"]) for e in errors] == [(2, 3), (4, 5)]
    assert "customers.json line 3, column region" in errors[0]["reason"]
    assert errors[1]["reason"] == "JSON record is not an object"
    broken = tmp_path / "broken.json"
    broken.write_text('[{"a": 1},\n{"a": 2}\n{"a": 3}]', encoding="utf-8")
    with pytest.raises(InputError, match="broken JSON array at line 3"):
        read_table(broken)


def test_a_jsonl_line_that_is_not_utf8_is_quarantined_alone(tmp_path):
    path = tmp_path / "customers.jsonl"
    body = jsonl(GOOD).encode("utf-8").split(b"\n")
    path.write_bytes(b"\n".join([body[0], b'{"customer_id": "c9", "region": "\xff\xfe"}',
                                 *body[1:]]))
    result = ingest_file("customers", path)
    assert (result.read, result.kept, result.quarantined) == (4, 3, 1)
    assert result.encoding == "utf-8"
    (entry,) = result.quarantine.to_dict("records")
    assert entry["line"] == 2 and "not valid UTF-8" in entry["reason"]
    assert sorted(result.frame["id"]) == ["c1", "c2", "c4"]


def test_a_damaged_utf8_csv_is_a_clear_error_naming_the_line(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,region\nc1,北京\n".encode() + b"c2,\xe4\xb8\x8a\xff\n"
                     + "c3,深圳\n".encode())
    with pytest.raises(InputError, match=r"customers\.csv: is UTF-8 except for bytes that are "
                                         r"not valid UTF-8 on line\(s\) 3;"):
        read_table(path)
