"""What ``events_chaos.py`` checks after the load: the inbox table, each acknowledged batch's
report (through the API, as a client reads it) and the events table itself."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
from chaos_plan import Batch, Plan
from sqlalchemy import create_engine, func, or_, select, text
from sqlalchemy.engine import make_url

from adpilot.optimization.inbox import EVENT_INBOX
from adpilot.store import Store
from adpilot.store.sql import TABLES


@contextlib.contextmanager
def scratch_database(db: str | None, tmp: Path) -> Iterator[str]:
    """A fresh database for one run: a SQLite file in ``tmp``, or on the PostgreSQL server of
    ``db`` a new database (dropped afterwards), so nothing else there is read or wiped."""
    if db is None or db.startswith("sqlite"):
        yield db or f"sqlite:///{tmp / 'chaos.db'}"
        return
    url = make_url(db)
    name = f"adpilot_chaos_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def inbox_state(store: Store) -> dict:
    """Open batches (pending or claimed), the claimed ones, their events, and how many batches
    are finished (processed, or in any other final state)."""
    t = EVENT_INBOX
    is_open = or_(t.c.status == "pending", t.c.status.like("claimed:%"))
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.c.id, t.c.status, t.c.n_events).where(is_open)).all()
        done = conn.execute(select(func.count()).select_from(t).where(~is_open)).scalar_one()
    return {"open": {r.id for r in rows}, "claimed": [r.id for r in rows if r.status != "pending"],
            "tokens": {r.status for r in rows if r.status != "pending"},
            "open_events": int(sum(r.n_events for r in rows)), "done": int(done)}


def check_batches(url: str, headers: dict, acked: list[tuple[Batch, int, float]],
                  corrected: set[str]) -> dict:
    """Each acknowledged batch's report: its counts add up, every malformed event in it is
    listed with a reason, no valid one is."""
    # a malformed event resent after its corrected version was acknowledged may be counted
    # as already stored (same id) instead of rejected: both are right
    fixed_at = {}
    for b, _, when in acked:
        for i in b.valid:
            eid = b.events[i]["event_id"]
            if eid in corrected:
                fixed_at[eid] = min(when, fixed_at.get(eid, when))
    out = Counter()
    kinds_unreported: Counter = Counter()
    reasons: dict[str, str] = {}
    examples: list[dict] = []
    processed: set[int] = set()
    dead: list[dict] = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for b, batch_id, when in acked:
            r = http.get(f"/v1/events/batches/{batch_id}")
            if r.status_code != 200:
                out["not_adding_up"] += 1  # a batch that was acknowledged has no report
                if len(examples) < 5:
                    examples.append({"batch": batch_id, "status_code": r.status_code})
                continue
            rep = r.json()
            if rep.get("status") != "processed":  # pending, or a dead letter with its reason
                out["dead_letter" if rep.get("status") == "dead_letter" else "pending"] += 1
                if rep.get("status") == "dead_letter" and len(dead) < 5:
                    dead.append({"batch": batch_id, "error": str(rep.get("error"))[:300]})
                continue
            out["processed"] += 1
            processed.add(batch_id)
            n = len(b.events)
            if rep.get("read") != n or rep.get("kept", 0) + rep.get("quarantined", 0) != n:
                out["not_adding_up"] += 1
                if len(examples) < 5:
                    examples.append({k: rep.get(k) for k in ("batch", "read", "kept", "quarantined",
                                                             "already_stored", "reasons")})
            listed = {int(q["row"]): str(q.get("reason") or "") for q in rep.get("rejected") or []
                      if q.get("row") is not None}
            complete_list = rep.get("quarantined", 0) <= len(rep.get("rejected") or [])
            for i in b.bad:
                kind = b.kinds[i]
                if listed.get(i + 1):
                    reasons.setdefault(kind, listed[i + 1][:200])
                    continue
                eid = b.events[i].get("event_id")
                if isinstance(eid, str) and fixed_at.get(eid, when + 1) < when:
                    continue
                if complete_list:
                    out["malformed_unreported"] += 1
                    kinds_unreported[kind] += 1
            out["valid_rejected"] += sum(1 for i in b.valid if i + 1 in listed)
    return {"processed": out["processed"], "pending": out["pending"],
            "dead_letters": out["dead_letter"], "dead_letter_examples": dead,
            "not_adding_up": out["not_adding_up"], "not_adding_up_examples": examples,
            "malformed_unreported": out["malformed_unreported"],
            "unreported_kinds": dict(kinds_unreported), "valid_rejected": out["valid_rejected"],
            "valid_refused": 0, "reason_per_kind": reasons, "_processed": processed}


def check_store(store: Store, plan: Plan, acked: list[tuple[Batch, int, float]],
                processed: set[int]) -> dict:
    """The events table against what was sent: missing acknowledged events (and those of them
    in a batch reported processed: lost, not just late), duplicates, anything stored that is
    not a valid event, or stored with other values."""
    t = TABLES["events"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.c.event_id, t.c.variant, t.c.user_id, t.c.type)).all()
    ids = Counter(r.event_id for r in rows)
    acked_valid = {b.events[i]["event_id"] for b, _, _ in acked for i in b.valid}
    stored = set(ids)
    missing = sorted(acked_valid - stored)
    in_processed = {b.events[i]["event_id"] for b, batch_id, _ in acked if batch_id in processed
                    for i in b.valid}
    unexpected = sorted(stored - plan.expected.keys())
    altered = [r.event_id for r in rows if r.event_id in plan.expected
               and (r.variant, r.user_id, r.type) != plan.expected[r.event_id]]
    return {"stored": len(rows), "distinct_ids": len(ids), "acknowledged_valid_distinct": len(acked_valid),
            "missing": len(missing), "missing_examples": missing[:5],
            "missing_processed": len(in_processed.intersection(missing)),
            "missing_processed_examples": sorted(in_processed.intersection(missing))[:5],
            "missing_corrected_resends": len(set(missing) & plan.corrected),
            "duplicates": sum(n - 1 for n in ids.values() if n > 1),
            "unexpected": len(unexpected), "unexpected_examples": [u[:80] for u in unexpected[:5]],
            "altered": len(altered),
            "stored_not_acknowledged": len((stored & plan.expected.keys()) - acked_valid)}
