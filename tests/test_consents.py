"""Consents ingested like every other kind (quarantine, read = kept + quarantined) and given to
the delivery consent ledger exactly once; customers' contact columns validated; the sample's
contacts are fictional and its consents agree with its README."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from adpilot.data.ingest import ingest_file
from adpilot.delivery.ledger import CONSENTS, Ledger
from adpilot.pipeline import sample_dir
from adpilot.store import Store

CONSENTS_CSV = """customer_id,channel,granted,at,source
C1,email,true,2025-01-01T10:00:00Z,signup_form
C1,email,false,2025-02-01T10:00:00Z,preference_center
C2,SMS,yes,2025-01-03,checkout
C3,fax,true,2025-01-01T00:00:00Z,import
C4,sms,maybe,2025-01-01T00:00:00Z,import
,push,true,2025-01-01T00:00:00Z,import
C5,push,true,not a time,app
C6,push,1,2025-03-01T08:00:00+08:00,app
"""


def _ledger_rows(store: Store) -> list[tuple]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(CONSENTS.select().with_only_columns(
            CONSENTS.c.user_id, CONSENTS.c.channel, CONSENTS.c.granted, CONSENTS.c.at,
            CONSENTS.c.source)).all())


def test_consents_ingest_with_quarantine_and_ledger(tmp_path, store):
    path = tmp_path / "consents.csv"
    path.write_text(CONSENTS_CSV, encoding="utf-8")
    q = tmp_path / "q.csv"
    result = ingest_file("consents", path, store=store, quarantine_path=q)
    assert (result.read, result.kept, result.quarantined, result.inserted) == (8, 4, 4, 4)
    bad = pd.read_csv(q, dtype=str)
    assert bad[["row", "column", "value"]].fillna("").values.tolist() == [
        ["4", "channel", "fax"], ["5", "granted", "maybe"], ["6", "user_id", ""],
        ["7", "at", "not a time"]]
    assert "email, sms, push" in bad["reason"][0] and "true, false" in bad["reason"][1]
    ledger = Ledger(store)
    assert ledger.consents("email") == {"C1": False}  # the later withdrawal decides
    assert ledger.consents("sms") == {"C2": True}
    assert ledger.consents("push") == {"C6": True}
    rows = _ledger_rows(store)
    assert len(rows) == 4 and ("C6", "push", True, pd.Timestamp("2025-03-01 00:00"), "app") in [
        (u, c, g, pd.Timestamp(a), s) for u, c, g, a, s in rows]  # +08:00 stored as UTC
    # nothing twice: the same file again adds nothing to the store or to the ledger
    again = ingest_file("consents", path, store=store, quarantine_path=q)
    assert (again.kept, again.inserted) == (4, 0)
    assert _ledger_rows(store) == rows and store.count("consents") == 4


def test_bad_contact_details_quarantine_the_customer(tmp_path, store):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,age,email,phone,timezone\n"
                    "C1,30,ann@example.com,+1 (202) 555-0143,Asia/Shanghai\n"
                    "C2,31,not-an-address,,\n"
                    "C3,32,,555-0199,\n"
                    "C4,33,,,Mars/Olympus_Mons\n"
                    "C5,34,,0044 7700 900123,Europe/London\n"
                    "C6,35,,,\n", encoding="utf-8")
    q = tmp_path / "q.csv"
    result = ingest_file("customers", path, store=store, quarantine_path=q)
    assert (result.read, result.kept, result.quarantined) == (6, 3, 3)
    bad = pd.read_csv(q, dtype=str)
    assert bad[["row", "column", "value"]].values.tolist() == [
        ["2", "email", "not-an-address"], ["3", "phone", "555-0199"],
        ["4", "timezone", "Mars/Olympus_Mons"]]
    assert "E.164" in bad["reason"][1] and "IANA time zone" in bad["reason"][2]
    kept = store.read("customers").set_index("id")
    assert kept.loc["C1", "phone"] == "+12025550143"  # separators dropped: E.164
    assert kept.loc["C5", "phone"] == "+447700900123"
    assert kept.loc["C1", "timezone"] == "Asia/Shanghai" and pd.isna(kept.loc["C6", "email"])


def test_cli_ingest_consents(tmp_path):
    path = tmp_path / "consents.csv"
    path.write_text(CONSENTS_CSV, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    proc = subprocess.run([sys.executable, "-m", "adpilot", "ingest", "consents", str(path),
                           "--db", db, "--quarantine", str(tmp_path / "q.csv"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert (summary["read"], summary["kept"], summary["quarantined"]) == (8, 4, 4)
    store = Store(db).init()
    assert Ledger(store).consents("email") == {"C1": False}
    store.dispose()


def test_sample_contacts_are_fictional_and_consents_match_the_readme(tmp_path, store):
    customers = ingest_file("customers", sample_dir() / "customers.csv", store=store,
                            quarantine_dir=tmp_path)
    consents = ingest_file("consents", sample_dir() / "consents.csv", store=store,
                           quarantine_dir=tmp_path)
    assert customers.quarantined == 0 and consents.quarantined == 0
    frame = customers.frame
    assert frame["email"].dropna().str.fullmatch(r"c\d{3}@example\.(com|net)").all()
    assert frame["phone"].dropna().str.fullmatch(r"\+1\d{3}55501\d\d").all()
    china = frame["region"].isin(["Shanghai", "Beijing", "Guangzhou", "Chengdu", "Hangzhou",
                                  "Shenzhen"])
    assert (frame.loc[china, "timezone"] == "Asia/Shanghai").all()
    assert (frame.loc[frame["region"] == "London", "timezone"] == "Europe/London").all()
    ledger = Ledger(store)
    latest = {ch: sum(ledger.consents(ch).values()) for ch in ("email", "sms", "push")}
    with open(sample_dir() / "consents.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    withdrawn = sum(r["granted"] == "false" for r in rows)
    readme = (sample_dir() / "README.md").read_text(encoding="utf-8")
    assert f"| `consents.csv` | {len(rows)} |" in readme and f"{withdrawn} withdrawals" in readme
    said = re.search(r"grant e-mail to (\d+) customers, SMS to (\d+) and push to (\d+)", readme)
    assert tuple(map(int, said.groups())) == (latest["email"], latest["sms"], latest["push"])
    assert withdrawn > 0 and latest["email"] < len(frame)


def test_make_sample_is_deterministic(tmp_path):
    """The generator rewrites the shipped files byte for byte (run on a copy of tools/)."""
    root = Path(__file__).resolve().parents[1]
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("make_sample.py", "sample_contacts.py"):
        text = (root / "tools" / name).read_text(encoding="utf-8")
        shipped = 'Path(__file__).resolve().parents[1] / "src" / "adpilot" / "sample"'
        assert name != "make_sample.py" or shipped in text  # else it would write the real files
        (tools / name).write_text(text.replace(shipped, f'Path({str(tmp_path / "out")!r})'),
                                  encoding="utf-8")
    proc = subprocess.run([sys.executable, str(tools / "make_sample.py")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    made_files = sorted((tmp_path / "out").glob("*.csv"))
    assert [p.name for p in made_files] == sorted(p.name for p in sample_dir().glob("*.csv"))
    for made in made_files:
        assert made.read_bytes() == (sample_dir() / made.name).read_bytes(), made.name
