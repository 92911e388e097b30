"""A store made by an older version (a record table without a newer optional column) takes new files."""

from __future__ import annotations

import sqlite3

import pandas as pd

from adpilot.store import Store


def test_init_adds_columns_a_newer_schema_declares(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the customers table as it was before email/phone/timezone
        conn.execute("CREATE TABLE customers (customer_id VARCHAR(128) PRIMARY KEY, age INTEGER, "
                     "attributes TEXT NOT NULL DEFAULT '{}')")
        conn.execute("INSERT INTO customers (customer_id, age) VALUES ('C1', 30)")
    store = Store(f"sqlite:///{db}").init()
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(customers)")}
    assert {"email", "phone", "timezone"} <= columns
    store.init()  # a second init finds nothing to add and does not fail
    frame = pd.read_sql("SELECT customer_id, age, email FROM customers", store.engine)
    assert frame.to_dict("records") == [{"customer_id": "C1", "age": 30, "email": None}]
