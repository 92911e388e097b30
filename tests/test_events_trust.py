"""The feedback-event pipeline keeps its promise (issue 17, items 1-4 and 8): no acknowledged
event is lost, one bad input never blocks the others, a crash does not stall processing, and
event fields are checked at the door. On SQLite and PostgreSQL, with real stores and servers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select, text, update  # noqa: E402
from test_api import TemplateLLM, auth, keys_for, make_settings, now_iso  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.api.services import CampaignService  # noqa: E402
from adpilot.optimization import inbox as inbox_mod  # noqa: E402
from adpilot.optimization.inbox import EVENT_INBOX, HOST, EventInbox  # noqa: E402
from adpilot.store import Store  # noqa: E402
from adpilot.store.sql import TABLES  # noqa: E402


@pytest.fixture
def service(db_url):
    store = Store(db_url).init()
    svc = CampaignService(store, worker_process=False)  # the same process_claim, in-thread
    yield svc
    svc.close()
    store.dispose()


def ev(cid: str, eid: str, **over) -> dict:
    return {"event_id": eid, "campaign": cid, "variant": "A", "user_id": f"u-{eid}",
            "type": "impression", "time": now_iso(), **over}


def put(svc: CampaignService, events: list[dict]) -> int:
    return svc.inbox.put(json.dumps({"events": events}).encode(), len(events))


def counts(report: dict) -> tuple[int, int, int, int]:
    return report["read"], report["kept"], report["quarantined"], report["already_stored"]


def stored(store: Store) -> dict[str, dict]:
    with store.engine.connect() as conn:
        return {r.event_id: dict(r._mapping) for r in conn.execute(select(TABLES["events"]))}


# --- item 1: the merged report is the truth about each batch ----------------------------
def test_corrected_resend_after_quarantine_is_stored(service):
    cid = service.create("resend", ["A", "B"])
    first = put(service, [ev(cid, "e1", type="purchase"), ev(cid, "e2")])
    corrected = put(service, [ev(cid, "e1", type="click")])
    again = put(service, [ev(cid, "e1", type="click"), ev(cid, "e2")])
    service.drain()  # the three batches are merged into one claim
    got = [service.inbox.get(i) for i in (first, corrected, again)]
    assert counts(got[0]) == (2, 1, 1, 0) and "type must be one of" in got[0]["rejected"][0]["reason"]
    assert counts(got[1]) == (1, 1, 0, 0)  # before: kept 1, already_stored 1, never stored
    assert counts(got[2]) == (2, 2, 0, 2)
    rows = stored(service.store)
    assert set(rows) == {"e1", "e2"} and rows["e1"]["type"] == "click"


def test_empty_event_ids_are_quarantined_not_already_stored(service):
    cid = service.create("empty ids", ["A"])
    ids = [put(service, [ev(cid, "") for _ in range(100)]) for _ in range(2)]
    service.drain()
    for i in ids:  # before: 198 of the 200 reported as already stored
        got = service.inbox.get(i)
        assert counts(got) == (100, 0, 100, 0) and got["reasons"] == {"empty event_id": 100}
    assert stored(service.store) == {}


def test_merged_processing_equals_one_batch_after_another(db_url, tmp_path):
    """The same batches, merged into one claim in one database and processed one claim per
    batch in another: every report and the stored events are the same."""
    def scenario(url: str, one_by_one: bool) -> tuple[list, dict]:
        store = Store(url).init()
        svc = CampaignService(store, worker_process=False, seed=1)
        cid = svc.create("same", ["A", "B"])
        batches = [[ev(cid, "a"), ev(cid, "a"), ev(cid, "b", variant="Z")],
                   [ev(cid, "b"), ev(cid, "a"), ev(cid, "c", type="nope"), ev(cid, "")],
                   [ev(cid, "c"), ev(cid, "c"), ev(cid, "b", variant="Z"), {"event_id": "d"}],
                   [ev(cid, "d"), ev(cid, "x", user_id="n\x00ul"), ev(cid, "x")]]
        ids = []
        for b in batches:
            ids.append(put(svc, b))
            if one_by_one:
                svc.drain()
        svc.drain()
        reports = json.loads(json.dumps([{k: v for k, v in svc.inbox.get(i).items()
                                          if k not in ("batch", "received_at", "processed_at")}
                                         for i in ids]).replace(cid, "CID"))
        rows = {k: (v["variant"], v["type"]) for k, v in stored(store).items()}
        svc.close()
        store.dispose()
        return reports, rows

    merged = scenario(db_url, one_by_one=False)
    alone = scenario(f"sqlite:///{tmp_path / 'alone.db'}", one_by_one=True)
    assert merged == alone
    assert merged[1] == {"a": ("A", "impression"), "b": ("A", "impression"),
                         "c": ("A", "impression"), "d": ("A", "impression"),
                         "x": ("A", "impression")}
    assert [counts(r) for r in merged[0]] == [(3, 1, 2, 0), (4, 2, 2, 1), (4, 1, 3, 0),
                                              (3, 2, 1, 0)]


# --- item 2: validate at the door, isolate what still fails -----------------------------
def test_unstorable_values_are_quarantined_and_the_rest_goes_through(service):
    """Events a client sent past the door (an older server, a direct inbox write): each value
    no column can hold is quarantined with its reason; nothing fails the batch."""
    cid = service.create("poison", ["A"])
    bad = [ev(cid, "x\ud800"), ev(cid, "n1", user_id="a\x00b"), ev(cid, "n2", channel="c" * 10_000),
           ev(cid, "n3", user_id={"a": 1}), ev(cid, "n4", user_id=True), ev(cid, "n5", note="\ud83d"),
           ev(cid, "n6", **{"k\x00": 1}), ev(cid, "n7", extra={"deep": ["\x00"]})]
    poisoned = put(service, [ev(cid, "ok1"), *bad])
    others = [put(service, [ev(cid, f"g{k}-{i}") for i in range(100)]) for k in range(3)]
    service.drain()
    got = service.inbox.get(poisoned)
    assert got["status"] == "processed" and counts(got) == (9, 1, 8, 0), got
    reasons = {q["row"]: q["reason"] for q in got["rejected"]}
    assert "lone surrogate (U+D800)" in reasons[2] and "NUL" in reasons[3]
    assert "10,000 characters; at most 512" in reasons[4]
    assert "not an object" in reasons[5] and "not a boolean" in reasons[6]
    assert "note holds a lone surrogate" in reasons[7] and "field name" in reasons[8]
    assert "extra holds a NUL" in reasons[9]
    assert all(counts(service.inbox.get(i)) == (100, 100, 0, 0) for i in others)
    assert len(stored(service.store)) == 301


def test_batch_without_required_fields_is_processed(service):
    only = put(service, [{"event_id": "only"}])
    service.drain()
    got = service.inbox.get(only)
    assert got["status"] == "processed" and counts(got) == (1, 0, 1, 0)
    assert got["rejected"][0]["reason"].startswith("empty ")


POISON_TRIGGER = {
    "sqlite": ["CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_id = 'poison' "
               "BEGIN SELECT RAISE(ABORT, 'poisoned event refused'); END"],
    "postgresql": ["CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.event_id = "
                   "'poison' THEN RAISE EXCEPTION 'poisoned event refused'; END IF; "
                   "RETURN NEW; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW "
                   "EXECUTE FUNCTION poison()"]}
DROP_TRIGGER = {"sqlite": ["DROP TRIGGER poison"],
                "postgresql": ["DROP TRIGGER poison ON events", "DROP FUNCTION poison()"]}


def test_a_failing_batch_goes_to_the_dead_letters_and_the_others_through(tmp_path, db_url):
    """The database refuses one event (a real trigger): the merged claim fails, its batches
    are processed one by one, the failing one is dead-lettered with its reason — visible in
    the API and on the dashboard — and goes through once retried after the fix."""
    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url)
    store = Store(db_url).init()
    svc = CampaignService(store, worker_process=False)
    cid = svc.create("dead letters", ["A"])
    with store.engine.begin() as conn:
        for sql in POISON_TRIGGER[store.dialect]:
            conn.execute(text(sql))
    good1 = put(svc, [ev(cid, f"a{i}") for i in range(50)])
    poisoned = put(svc, [ev(cid, "fine"), ev(cid, "poison")])
    unreadable = svc.inbox.put(b'{"events": [{"event_id": "trunc', 1)
    good2 = put(svc, [ev(cid, f"b{i}") for i in range(50)])
    assert svc.drain() == 4
    assert counts(svc.inbox.get(good1)) == counts(svc.inbox.get(good2)) == (50, 50, 0, 0)
    dead = svc.inbox.get(poisoned)
    assert dead["status"] == "dead_letter" and "poisoned event refused" in dead["error"]
    assert "INSERT" not in dead["error"] and "sqlite:" not in dead["error"]
    assert svc.inbox.get(unreadable)["status"] == "dead_letter"
    assert svc.inbox.pending() == 0 and not svc.inbox.has_work()
    svc.close()

    with TestClient(create_app(settings, llm_backend=TemplateLLM())) as client:
        r = auth(keys["read"])
        got = client.get(f"/v1/events/batches/{poisoned}", headers=r).json()
        assert got["status"] == "dead_letter" and got["events"] == 2
        listed = client.get("/v1/events/dead-letters", headers=r).json()
        assert listed["total"] == 2 and {d["batch"] for d in listed["items"]} == {
            poisoned, unreadable}
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        client.post("/login", data={"csrf": token, "username": "admin",
                                    "password": "pw-for-tests"})
        overview = client.get("/").text
        assert 'id="dead-letters"' in overview and "poisoned event refused" in overview
        with store.engine.begin() as conn:
            for sql in DROP_TRIGGER[store.dialect]:
                conn.execute(text(sql))
        w = auth(keys["write"])
        assert client.post(f"/v1/events/dead-letters/{good1}/retry", headers=w).status_code == 404
        retry = client.post(f"/v1/events/dead-letters/{poisoned}/retry", headers=w)
        assert retry.status_code == 202
        state = client.app.state.adpilot
        state.campaigns.drain()
        assert counts(client.get(f"/v1/events/batches/{poisoned}", headers=r).json()) == (
            2, 2, 0, 0)
    assert {"fine", "poison"} <= set(stored(store)) and len(stored(store)) == 102
    store.dispose()


# --- item 3: a crash does not stall processing ------------------------------------------
CLAIM_AND_DIE = textwrap.dedent("""
    import os, signal, sys
    from adpilot.optimization.inbox import EventInbox
    from adpilot.store import Store
    inbox = EventInbox(Store(sys.argv[1]).init())
    claim = inbox.claim(1000)
    print(len(claim.batches), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # died holding the claim
""")


def test_claims_of_a_killed_process_are_processed_at_once(service, db_url):
    cid = service.create("crash", ["A"])
    ids = [put(service, [ev(cid, f"c{k}-{i}") for i in range(10)]) for k in range(3)]
    died = subprocess.run([sys.executable, "-c", CLAIM_AND_DIE, db_url], capture_output=True,
                          text=True, timeout=120)
    assert died.returncode == -9 and died.stdout.strip() == "3", died.stderr
    with service.store.engine.connect() as conn:
        assert all(s.startswith(f"claimed:{HOST}:") for s in conn.execute(
            select(EVENT_INBOX.c.status)).scalars())
    # a server starting now (a new inbox) takes the claim back at once, not after the lease
    restarted = EventInbox(service.store)
    with service.store.engine.connect() as conn:
        assert set(conn.execute(select(EVENT_INBOX.c.status)).scalars()) == {"pending"}
    assert service.drain() == 3  # interrupted batches are processed alone
    assert [counts(restarted.get(i)) for i in ids] == [(10, 10, 0, 0)] * 3


def test_live_and_other_hosts_claims_are_left_until_their_lease_ends(service):
    cid = service.create("lease", ["A"])
    mine, other, expired = (put(service, [ev(cid, f"l{i}")]) for i in range(3))
    now = inbox_mod._now()
    tokens = {mine: f"claimed:{HOST}:{service.inbox.owner_pid}:aaaa",  # this live process
              other: "claimed:0badc0de:1:bbbb",  # another host: its pid means nothing here
              expired: "claimed:0badc0de:1:cccc"}
    with service.store.engine.begin() as conn:
        for i, token in tokens.items():
            at = now - inbox_mod.LEASE * 2 if i == expired else now
            conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.id == i)
                         .values(status=token, claimed_at=at))
    EventInbox(service.store)
    with service.store.engine.connect() as conn:
        status = dict(conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.status)).all())
    assert status == {mine: tokens[mine], other: tokens[other], expired: "pending"}


def test_a_batch_that_keeps_killing_its_process_goes_to_the_dead_letters(service, db_url):
    cid = service.create("killer", ["A"])
    killer = put(service, [ev(cid, "k")])
    with service.store.engine.begin() as conn:  # taken back from dead processes before
        conn.execute(update(EVENT_INBOX).values(attempts=inbox_mod.MAX_RECLAIMS - 1))
    died = subprocess.run([sys.executable, "-c", CLAIM_AND_DIE, db_url], capture_output=True,
                          text=True, timeout=120)
    assert died.returncode == -9
    fine = put(service, [ev(cid, "f")])
    service.drain()
    got = service.inbox.get(killer)
    assert got["status"] == "dead_letter" and "interrupted 5 times" in got["error"]
    assert counts(service.inbox.get(fine)) == (1, 1, 0, 0)


# --- items 4 and 8: strict fields at the door, no 500 -----------------------------------
@pytest.fixture
def api(tmp_path, db_url):
    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM(), dashboard=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        cid = client.post("/v1/campaigns", headers=auth(keys["write"]), json={
            "name": "door", "variants": [{"variant": "A"}]}).json()["campaign"]
        yield client, auth(keys["write"]), cid


REFUSED = [
    ("event_id", {"a": 1}, "valid string"), ("event_id", ["x"], "valid string"),
    ("event_id", True, "valid string"), ("event_id", 7, "valid string"),
    ("event_id", "e" * 513, "at most 512"), ("user_id", "u" * 5000, "at most 512"),
    ("channel", "c" * 10_000, "at most 32"), ("campaign", "c" * 65, "at most 64"),
    ("value", "12", "valid number"), ("value", True, "valid number"),
    ("user_id", "a\x00b", "NUL byte"), ("event_id", "x\ud800", "lone surrogate (U+D800)"),
    ("note", "\udfff", "lone surrogate (U+DFFF)"), ("note", {"k": ["\x00"]}, "NUL byte"),
]


def test_event_fields_are_refused_with_422_naming_event_and_field(api):
    client, w, cid = api
    for field, value, message in REFUSED:
        for wait in ("false", "true"):
            events = [ev(cid, "fine"), ev(cid, "bad", **{field: value})]
            body = json.dumps({"events": events}).encode()  # surrogates as \\u escapes
            r = client.post(f"/v1/events?wait={wait}", headers={
                **w, "Content-Type": "application/json"}, content=body)
            assert r.status_code == 422, (field, value, r.text)
            err = r.json()["error"]["message"]
            assert f"events.1.{field}" in err and message in err, err
    assert client.app.state.adpilot.store.count("events") == 0
    assert client.app.state.adpilot.campaigns.inbox.pending() == 0


def test_surrogate_bytes_and_rtl_marks(api):
    client, w, cid = api
    raw = b'{"events": [{"event_id": "x\xed\xa0\x80", "campaign": "c"}]}'  # CESU-8 surrogate
    r = client.post("/v1/events", headers={**w, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == 422
    rtl = ev(cid, "rtl\u202e", user_id="\u202eevil", note="😀 \u202e")  # storable: kept as is
    got = client.post("/v1/events?wait=true", headers=w, json={"events": [rtl]}).json()
    assert counts(got) == (1, 1, 0, 0)
    assert stored(client.app.state.adpilot.store)["rtl\u202e"]["user_id"] == "\u202eevil"


def test_the_500s_of_issue_17_are_4xx_or_quarantine(api):
    client, w, _ = api
    only = client.post("/v1/events?wait=true", headers=w, json={"events": [{"event_id": "only"}]})
    assert only.status_code == 200 and counts(only.json()) == (1, 0, 1, 0)
    assert only.json()["rejected"][0]["reason"].startswith("empty ")
    lone = client.post("/v1/events?wait=true", headers={**w, "Content-Type": "application/json"},
                       content=b'{"events": [{"event_id": "x\\ud800"}]}')
    assert lone.status_code == 422 and "events.0.event_id" in lone.json()["error"]["message"]
    for batch, status in (("99999999999999999999999", 422), (str(2**31), 422), ("0", 422),
                          ("-1", 422), ("123456", 404)):
        got = client.get(f"/v1/events/batches/{batch}", headers=w)
        assert got.status_code == status, (batch, got.text)
    for body in (b'{"events": "x"}', b'{"events": [1, 2]}', b'{"evts": []}', b"[]", b"{",
                 b'{"events": [{"value": 1e999}]}'):
        r = client.post("/v1/events", headers={**w, "Content-Type": "application/json"},
                        content=body)
        assert r.status_code == 422, (body, r.text)
    schema = client.app.openapi()["paths"]["/v1/events"]["post"]["requestBody"]
    props = schema["content"]["application/json"]["schema"]["properties"]["events"]["items"]
    assert props["properties"]["event_id"]["anyOf"][0]["maxLength"] == 512
