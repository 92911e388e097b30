"""The store: idempotent ingest on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from adpilot.data import ColumnMapping, ingest_file
from adpilot.data.schema import SCHEMAS
from adpilot.store import Store
from adpilot.store.sql import StoreError

WOMENS = ColumnMapping({"text": "Review Text", "rating": "Rating", "product_id": "Clothing ID"})


def test_second_identical_ingest_adds_nothing(store, shared_data, tmp_path):
    path = shared_data / "reviews" / "womens_clothing_ecommerce_reviews.csv"
    first = ingest_file("reviews", path, mapping=WOMENS, store=store, quarantine_dir=tmp_path)
    assert first.inserted == first.kept == 22641 and store.count("reviews") == 22641
    second = ingest_file("reviews", path, mapping=WOMENS, store=store, quarantine_dir=tmp_path)
    assert second.inserted == 0 and store.count("reviews") == 22641
    runs = store.ingest_runs()
    assert runs["read"].tolist() == [23486, 23486] and runs["inserted"].tolist() == [22641, 0]


def test_reingest_updates_changed_rows_in_place(store, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,title,price\np1,Silk shirt,59\np2,Wool scarf,25\n", encoding="utf-8")
    ingest_file("products", path, store=store)
    path.write_text("id,title,price\np1,Silk shirt,49\np3,Linen dress,80\n", encoding="utf-8")
    result = ingest_file("products", path, store=store)
    assert result.inserted == 1
    table = store.read("products").set_index("id")
    assert table.loc["p1", "price"] == 49 and sorted(table.index) == ["p1", "p2", "p3"]


def test_round_trip_keeps_chinese_text_and_types(store, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,user_id,text,rating,created_at\n"
                    "r1,c1,面料舒服，尺码标准,5,2025-01-02 03:04:05\n", encoding="utf-8")
    ingest_file("reviews", path, store=store)
    row = store.read("reviews").iloc[0]
    assert row["text"] == "面料舒服，尺码标准" and row["language"] == "zh"
    assert row["rating"] == 5.0 and str(row["created_at"]) == "2025-01-02 03:04:05"


def test_every_kind_has_a_table(store):
    assert {k: store.count(k) for k in SCHEMAS} == {k: 0 for k in SCHEMAS}


def test_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open database"):
        Store("postgresql+psycopg://nobody:secret@127.0.0.1:9/none").init()


def test_password_is_not_shown_in_messages():
    store = Store("postgresql+psycopg://u:topsecret@127.0.0.1:9/db")
    assert "topsecret" not in store.safe_url
