"""What ``events_chaos.py`` checks after the load: the inbox table, each acknowledged batch's
report (through the API, as a client reads it) and the events table itself."""

from __future__ import annotations

import contextlib
import os
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


def summarise(args, dialect: str, plan: Plan, out: dict, batches: dict, stored: dict,
              errors: list[str]) -> dict:
    """The results document: the figures, each invariant with whether it held, and the
    failures in words."""
    load, kills = out["load"], out["kills"]
    batches["valid_refused"] = sum(1 for b, _, _ in load.refused if not b.bad)
    for k in kills:
        for key in [k_ for k_ in k if k_.startswith("_")]:
            del k[key]
    resume_limit = args.max_resume

    def in_time(k: dict) -> bool:
        slowest = worst([k["draining_after_up_s"], k["reclaimed_after_up_s"]])
        return slowest is not None and slowest <= resume_limit

    resumes = [(k["kill"], k["draining_after_up_s"], k["reclaimed_after_up_s"]) for k in kills]
    invariants = {
        "all_sent": (out["complete"], "every batch was acknowledged or refused before --max-seconds"),
        "no_acknowledged_valid_event_lost": (not stored["missing"], f"{stored['missing']} acknowledged "
                                             f"valid events not stored ({stored['missing_processed']} "
                                             "although a batch holding them was processed; the rest "
                                             f"still in the inbox), e.g. {stored['missing_examples']}"),
        "stored_exactly_once": (not stored["duplicates"],
                                f"{stored['duplicates']} ids stored more than once"),
        "nothing_else_stored": (not stored["unexpected"] and not stored["altered"],
                                f"{stored['unexpected']} stored events that are not valid events "
                                f"(e.g. {stored['unexpected_examples']}), {stored['altered']} stored "
                                "with other values than sent"),
        "malformed_reported_or_refused": (not batches["malformed_unreported"],
                                          f"{batches['malformed_unreported']} malformed events in "
                                          f"acknowledged batches not reported, by kind "
                                          f"{batches['unreported_kinds']}"),
        "valid_events_not_rejected": (not batches["valid_rejected"] and not batches["valid_refused"],
                                      f"{batches['valid_rejected']} valid events reported as rejected, "
                                      f"{batches['valid_refused']} batches of valid events refused"),
        "batch_reports_add_up": (not batches["not_adding_up"],
                                 f"{batches['not_adding_up']} batch reports where read != kept + "
                                 "quarantined"),
        "no_server_errors": (not load.server_errors, f"{len(load.server_errors)} 5xx/429 answers, "
                             f"e.g. {load.server_errors[:2]}"),
        "none_stuck": (not out["left"]["open"] and not batches["pending"],
                       f"{len(out['left']['open'])} batches ({out['left']['open_events']} events) still "
                       f"in the inbox {args.drain_timeout:.0f} s after the load"),
        "resumes_after_restart": (all(in_time(k) for k in kills),
                                  "once a restarted server answered, processing did not start again, or "
                                  "the dead server's claims were not taken back, within "
                                  f"{resume_limit:.0f} s (kill, draining, reclaimed): "
                                  f"{resumes}"),
    }
    failures = [f"{name}: {why}" for name, (ok, why) in invariants.items() if not ok]
    n_acked = sum(len(b.valid) for b, _, _ in load.acked)
    return {
        "config": {k: str(v) for k, v in vars(args).items() if k != "db"},
        "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "database": dialect,
        "plan": plan.counts,
        "server": "adpilot serve (uvicorn, 1 worker, event inbox processed by its worker process), "
                  "SIGKILL to its process group",
        "summary": {
            "requests": load.requests, "acknowledged_batches": len(load.acked),
            "acknowledged_events": load.acked_events, "acknowledged_valid_events": n_acked,
            "refused_batches": len(load.refused),
            "refused_codes": sorted({c for _, c, _ in load.refused}),
            "refusals": [f"{c} {t}" for _, c, t in load.refused][:12],
            "connection_errors": load.conn_errors, "server_errors": len(load.server_errors),
            "load_seconds": round(out["load_s"], 3),
            "acknowledged_events_per_s": round(load.acked_events / out["load_s"], 1),
            "all_processed_seconds": round(out["processed_s"], 3),
            "processed_valid_events_per_s": round(stored["stored"] / out["processed_s"], 1),
            "left_in_inbox_batches": len(out["left"]["open"]),
            "left_in_inbox_events": out["left"]["open_events"],
            "kills": len(kills),
            "max_startup_s": worst(k["startup_s"] for k in kills),
            "max_draining_after_up_s": worst(k["draining_after_up_s"] for k in kills),
            "max_resumed_after_up_s": worst(k["resumed_after_up_s"] for k in kills),
            "max_reclaimed_after_up_s": worst(k["reclaimed_after_up_s"] for k in kills),
            "max_claimed_done_after_up_s": worst(k["claimed_done_after_up_s"] for k in kills),
            "max_backlog_done_after_up_s": worst(k["backlog_done_after_up_s"] for k in kills)},
        "kills": kills,
        "store": stored, "batch_reports": batches,
        "server_tracebacks": errors[:20],
        "invariants": {name: ok for name, (ok, _) in invariants.items()},
        "failures": failures,
    }


def worst(values) -> float | None:
    """The largest of some durations; None when there are none or one never happened."""
    values = list(values)
    return None if not values or None in values else max(values)
