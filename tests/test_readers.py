"""Readers: formats, encodings and files that cannot be used at all."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adpilot.data.encoding import detect_encoding
from adpilot.data.readers import read_table
from adpilot.errors import InputError

ZH_ROWS = "id,text,rating\n1,这件衣服面料很好，尺码偏小,4\n2,物流太慢了，客服态度差,1\n"


def test_gbk_csv_is_detected_and_read_correctly(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(ZH_ROWS.encode("gbk"))
    assert detect_encoding(path) == "gb18030"
    raw = read_table(path)
    assert raw.encoding == "gb18030"
    assert raw.frame["text"].tolist() == ["这件衣服面料很好，尺码偏小", "物流太慢了，客服态度差"]


def test_utf8_bom_header_is_clean(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(ZH_ROWS.encode("utf-8-sig"))
    raw = read_table(path)
    assert raw.encoding == "utf-8-sig"
    assert list(raw.frame.columns) == ["id", "text", "rating"]


def test_explicit_gbk_encoding_is_read_as_gb18030(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(ZH_ROWS.encode("gbk"))
    assert read_table(path, encoding="gbk").frame["text"][1] == "物流太慢了，客服态度差"


def test_wrong_explicit_encoding_names_file_and_offset(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(ZH_ROWS.encode("gbk"))
    with pytest.raises(InputError, match=r"gbk\.csv: bytes at offset ~\d+ are not valid utf-8"):
        read_table(path, encoding="utf-8")


def test_tsv_and_semicolon_csv(tmp_path):
    tsv = tmp_path / "a.tsv"
    tsv.write_text("id\ttext\n1\thello, world\n", encoding="utf-8")
    assert read_table(tsv).frame["text"][0] == "hello, world"
    semi = tmp_path / "b.csv"
    semi.write_text('"age";"y"\n30;"yes"\n', encoding="utf-8")
    assert read_table(semi).frame.to_dict("list") == {"age": ["30"], "y": ["yes"]}


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"id,text,rating\n", "has a header but no data rows"),
])
def test_empty_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_table(path)
    assert str(path) in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="nope.csv: file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_table(tmp_path)


def test_unknown_suffix_asks_for_format(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="cannot tell the file format"):
        read_table(path)


def test_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,text\n1,"never closed\n2,fine\n3,fine\n', encoding="utf-8")
    with pytest.raises(InputError, match="broken quoting: a quoted field opened in data row 1"):
        read_table(path)


def test_line_with_extra_fields_is_quarantined_with_its_line(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,text,rating\n1,"ok, quoted",5\n2,unquoted, comma,4\n3,fine,3\n',
                    encoding="utf-8")
    raw = read_table(path)
    assert raw.frame["id"].tolist() == ["1", "3"]
    assert raw.read == 3
    (entry,) = raw.parse_errors.to_dict("records")
    assert entry["line"] == 3 and "line has 4 fields, expected 3" in entry["reason"]


def test_jsonl_with_a_broken_line_keeps_the_rest(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({"id": "a", "text": "good"}), "{not json", json.dumps({"id": "b",
             "text": "also good"}), "[1, 2]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = read_table(path)
    assert raw.frame["id"].tolist() == ["a", "b"]
    assert raw.parse_errors["line"].tolist() == [2, 4]
    assert raw.read == 4


def test_parquet_keeps_types(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1", "2"], "quantity": [3, 4]}).to_parquet(path)
    raw = read_table(path)
    assert raw.frame["quantity"].tolist() == [3, 4] and raw.encoding is None


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="cannot be read as Parquet"):
        read_table(path)
