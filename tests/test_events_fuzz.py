"""Property-based fuzz of ``POST /v1/events`` against the real app (issue 17): random types,
lengths and unicode (lone surrogates, NUL, U+202E), ids repeated across batches, corrected
resends after quarantine, with and without ``wait``, on SQLite and PostgreSQL.

Each example is checked against a small model of the rules written here, independently of the
code: a batch is refused (422) exactly when one of its events has a field of the wrong type,
too long, or a string no database can store; otherwise every event is kept or reported with a
reason, processing the batches one after another (a duplicate within a batch is quarantined,
an id stored earlier is "already stored", an id only quarantined earlier is judged anew), the
counts add up, every acknowledged valid event is stored exactly once, and nothing answers 500.
"""

from __future__ import annotations

import json
import re
import time
from itertools import count

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sqlalchemy import select  # noqa: E402
from test_api import TemplateLLM, auth, keys_for, make_settings, now_iso  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.store.sql import TABLES  # noqa: E402

LIMITS = {"event_id": 512, "campaign": 64, "variant": 128, "user_id": 512, "type": 32,
          "time": 64, "channel": 32}
REQUIRED = ("event_id", "campaign", "variant", "user_id", "type", "time")
TYPES = ("impression", "click", "conversion")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
CID = "<campaign>"  # replaced by the real campaign id

# --- what clients send ---------------------------------------------------------------------
storable = st.sampled_from(["\u202e", "😀", "新", "é", " ", "\t", "'", '"', "\\", "=", "/"])
unstorable = st.sampled_from(["\x00", "\ud800", "\udfff"])
safe_text = st.lists(st.one_of(st.characters(codec="utf-8", exclude_characters="\x00"), storable),
                     max_size=6).map("".join)
any_text = st.lists(st.one_of(st.characters(codec="utf-8"), storable, unstorable),
                    min_size=1, max_size=6).map("".join)
junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(), st.just([1]),
                 st.just({"a": 1}), st.just("x" * 600), any_text)


def fields(junky: bool) -> st.SearchStrategy:
    """One event; ``junky`` ones may hold what the door refuses."""
    def pick(*values):
        valid = st.one_of(st.sampled_from(values), safe_text) if junky else st.sampled_from(values)
        return st.one_of(valid, junk) if junky else valid
    return st.fixed_dictionaries(
        {"event_id": pick("e1", "e2", "e3", " e1", "", "  ", "e\u202e"),
         "campaign": pick(CID, CID, CID, CID, f" {CID} ", "other"),
         "variant": pick("A", "B", "A", "B", "B ", "Z"),
         "user_id": pick("u1", "u2", "用户"),
         "type": pick("impression", "click", "impression", "Conversion", "purchase"),
         "time": pick("<now>", "<now>", "<now>", "<now>", "not a time")},
        optional={"channel": pick("email", "c" * 33),
                  "value": st.one_of(st.integers(-100, 100), st.floats(-1e6, 1e6),
                                     *([junk] if junky else [])),
                  "note": st.one_of(safe_text, st.dictionaries(safe_text, safe_text, max_size=2),
                                    *([any_text] if junky else []))})


# a batch is well-formed events, a few of them maybe refused, or a corrected resend of an
# earlier batch (same ids)
batch = st.one_of(st.lists(fields(False), min_size=1, max_size=8),
                  st.lists(fields(False), min_size=1, max_size=8),
                  st.lists(st.one_of(fields(False), fields(False), fields(True)), max_size=5),
                  st.integers(0, 3), st.integers(0, 3))
plan = st.lists(st.tuples(batch, st.booleans()), min_size=2, max_size=5)


# --- the rules -----------------------------------------------------------------------------
def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def refused(e: dict) -> bool:
    """The door refuses this event (and so its batch)."""
    if any(_UNSTORABLE.search(s) for s in _strings(e)):
        return True
    for name, limit in LIMITS.items():
        v = e.get(name)
        if v is not None and (not isinstance(v, str) or len(v) > limit):
            return True
    v = e.get("value")
    return v is not None and (isinstance(v, bool) or not isinstance(v, int | float)
                              or v != v or abs(v) == float("inf"))


def usable(e: dict, cid: str) -> tuple[bool, bool]:
    """(well-formed, usable): well-formed rows count for duplicates; usable ones are kept."""
    text_of = {k: e[k].strip() for k in REQUIRED if isinstance(e.get(k), str)}
    ok = (all(text_of.get(k) for k in REQUIRED) and text_of["type"].lower() in TYPES
          and text_of["time"] != "not a time")
    return ok, ok and text_of["campaign"] == cid and text_of["variant"] in ("A", "B")


class Model:
    """The batches processed one after another."""

    def __init__(self, cid: str) -> None:
        self.cid, self.stored = cid, {}

    def process(self, events: list[dict]) -> tuple[set[int], int]:
        quarantined, already, seen = set(), 0, set()
        for row, e in enumerate(events, 1):
            formed, ok = usable(e, self.cid)
            key = e["event_id"].strip() if formed else None
            if not formed or key in seen:
                quarantined.add(row)
                continue
            seen.add(key)
            if not ok:
                quarantined.add(row)
            elif key in self.stored:
                already += 1
            else:
                self.stored[key] = (e["variant"].strip(), e["type"].strip().lower())
        return quarantined, already


def corrected(events: list[dict], cid: str) -> list[dict]:
    return [{"event_id": e["event_id"], "campaign": cid, "variant": "A", "user_id": "u1",
             "type": "click", "time": "<now>"} for e in events]


def namespaced(events: list[dict], prefix: str, cid: str) -> list[dict]:
    """Each example's ids apart from earlier examples' (leading blanks stay in front)."""
    out = []
    for e in events:
        e = {k: (cid if v == CID else f" {cid} " if v == f" {CID} " else
                 now_iso() if v == "<now>" else v) for k, v in e.items()}
        v = e["event_id"]
        if isinstance(v, str) and v.strip():
            e["event_id"] = v[:len(v) - len(v.lstrip())] + prefix + v.lstrip()
        out.append(e)
    return out


@pytest.fixture
def live(tmp_path, db_url):
    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM(), dashboard=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        w = auth(keys["write"])
        cid = client.post("/v1/campaigns", headers=w, json={
            "name": "fuzz", "variants": [{"variant": "A"}, {"variant": "B"}]}).json()["campaign"]
        yield client, w, cid


def test_events_endpoint_fuzz(live):
    client, w, cid = live
    state = client.app.state.adpilot
    examples = count()

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(plan)
    def check(steps):
        prefix, model, sent = f"x{next(examples)}-", Model(cid), []
        queued: list[tuple[int, list[dict], set[int], int]] = []
        for spec, wait in steps:
            events = (corrected(sent[spec % len(sent)], cid) if isinstance(spec, int) and sent
                      else [] if isinstance(spec, int) else spec)
            events = namespaced(events, prefix, cid)
            body = json.dumps({"events": events}).encode()  # surrogates as \\u escapes
            if wait:
                state.campaigns.drain()  # async batches first: processing order = send order
            r = client.post(f"/v1/events?wait={str(wait).lower()}", headers={
                **w, "Content-Type": "application/json"}, content=body)
            assert r.status_code != 500, r.text
            if any(refused(e) for e in events):
                assert r.status_code == 422, (events, r.text)
                assert "body.events." in r.json()["error"]["message"]
                continue
            assert r.status_code in (200, 202), (events, r.text)
            sent.append(events)
            expected = model.process(events)
            if r.status_code == 202:
                queued.append((r.json()["batch"], events, *expected))
            else:
                assert_report(r.json(), events, *expected)
        state.campaigns.drain()
        for batch_id, events, quarantined, already in queued:
            got = poll(client, w, batch_id)
            assert_report(got, events, quarantined, already)
        with state.store.engine.connect() as conn:
            rows = conn.execute(select(TABLES["events"].c.event_id, TABLES["events"].c.variant,
                                       TABLES["events"].c.type)
                                .where(TABLES["events"].c.event_id.like(f"{prefix}%"))).all()
        assert {r.event_id: (r.variant, r.type) for r in rows} == model.stored
        assert len(rows) == len(model.stored)  # each once

    started = time.monotonic()
    check()
    assert time.monotonic() - started < 240  # bounded: a slow machine, not a hang


def poll(client, w, batch_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.get(f"/v1/events/batches/{batch_id}", headers=w)
        assert got.status_code == 200, got.text
        if got.json()["status"] != "pending":
            return got.json()
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} still pending after {timeout} s")


def assert_report(got: dict, events: list[dict], quarantined: set[int], already: int) -> None:
    n = len(events)
    assert got.get("status", "processed") == "processed", got
    assert got["read"] == n and got["kept"] + got["quarantined"] == n, got
    rejected = {q["row"]: q["reason"] for q in got.get("rejected", [])}
    assert set(rejected) == quarantined and all(rejected.values()), (events, got)
    assert got["quarantined"] == len(quarantined) and got["already_stored"] == already, (
        events, got)
