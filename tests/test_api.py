"""HTTP API: the whole workflow through FastAPI's TestClient and a real uvicorn server, on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.api.jobs import JOBS, JobRunner  # noqa: E402
from adpilot.api.keys import create_key  # noqa: E402
from adpilot.api.settings import ApiSettings  # noqa: E402
from adpilot.backends.llm.base import Completion, GenerationParams, LLMBackend, Message, Usage  # noqa: E402
from adpilot.pipeline import sample_dir  # noqa: E402
from adpilot.profiling.profiles import query_profiles  # noqa: E402
from adpilot.store import Store  # noqa: E402

SAMPLE = ("customers", "products", "reviews", "transactions")


class TemplateLLM(LLMBackend):
    """A small, deterministic copywriter: fills the requested JSON fields with fixed sentences
    in the prompt's language. Real enough to drive the generator, guardrails and the API."""

    name = "template"
    EN = ("A pick we think you will like",
          "We chose this for you because it matches what you buy most. Take a look and tell us "
          "what you think of it.")
    ZH = ("为你挑选的好物",
          "根据你常买的品类，我们为你挑选了这款商品。欢迎来看看，告诉我们你的想法，"
          "我们会继续为你推荐合适的好物。")

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        fields = list((params.json_schema or {}).get("properties", {"text": {}}))
        zh = any("\u4e00" <= ch <= "\u9fff" for ch in messages[0].content)
        short, long = self.ZH if zh else self.EN
        # grounded, as the copy checks require: the name and the description's first clauses
        facts = dict(line.split(": ", 1) for line in messages[-1].content.splitlines()
                     if line.startswith(("name: ", "description: ", "名称: ", "描述: ")))
        name, about = facts.get("名称" if zh else "name"), facts.get("描述" if zh else "description")
        numbered = [m.group(1) for m in re.finditer(r"^\d+\. (.+)$", messages[-1].content, re.M)]
        named = re.search(r"^Write .+? about (.+)\.$", messages[-1].content, re.M)
        if not zh and numbered and named:  # the English prompt's numbered fact list
            name, about = named.group(1), ". ".join(f.rstrip(".") for f in numbered[:3])
        if name and about:
            first = "，".join(re.split(r"[,，。；;]\s*|\.\s+", about)[:2]) if zh else \
                ", ".join(re.split(r"[,，。；;]\s*|\.\s+", about)[:2])
            long = f"{name}：{first}。欢迎选购。" if zh else f"{name}: {first}. Shop it today."
        tag = " " + "ABCDEFGHIJ"[(params.seed or 0) % 10] if not zh else ""
        reply = {f: (short + tag if i == 0 and len(fields) > 1 else long + tag)
                 for i, f in enumerate(fields)}
        text = json.dumps(reply, ensure_ascii=False)
        return Completion(text, Usage(50, len(text) // 4), 0.001, "template")


def make_settings(tmp_path, db_url: str, **overrides) -> ApiSettings:
    return ApiSettings(home=tmp_path / "home", db=db_url, session_secret="test-secret",
                       admin_user="admin", admin_password="pw-for-tests", **overrides)


DERIVED = ("profiles", "segments", "review_aspects")  # tables the db_url fixture does not wipe


def keys_for(db_url: str) -> dict[str, str]:
    """One key per scope, in a database without derived tables left by an earlier test."""
    from sqlalchemy import text

    store = Store(db_url).init()
    with store.engine.begin() as conn:
        for name in DERIVED:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    out = {scope: create_key(store, scope, f"test {scope}")[0] for scope in ("read", "write", "admin")}
    store.dispose()
    return out


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def wait_job(client, key: str, job_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        seen.append(job["status"])
        if job["status"] in ("succeeded", "failed"):
            job["seen"] = seen
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {seen[-5:]}")


def wait_for_batch(client, url: str, headers: dict, timeout: float = 30) -> dict:
    """Poll an event batch sent without ``wait`` until the background drainer processed it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.get(url, headers=headers).json()
        if got["status"] == "processed":
            return got
        time.sleep(0.05)
    raise AssertionError(f"event batch {url} still pending after {timeout} s")


def load_sample(client, key: str) -> dict:
    """Ingest the built-in sample by upload and profile it (fast embedder) through the API."""
    for kind in SAMPLE:
        with open(sample_dir() / f"{kind}.csv", "rb") as fh:
            r = client.post(f"/v1/ingest/{kind}", headers=auth(key),
                            files={"file": (f"{kind}.csv", fh, "text/csv")})
        assert r.status_code == 200, r.text
        s = r.json()
        assert s["read"] == s["kept"] + s["quarantined"] and s["kept"] > 0
    r = client.post("/v1/profiling/jobs", headers=auth(key), json={"embedder": "lsa", "k": 2,
                                                                 "sentiment": "rating"})
    assert r.status_code == 202
    job = wait_job(client, key, r.json()["job"])
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and job["result"]["users"] > 0
    return job


@pytest.fixture
def api(tmp_path, db_url):
    """(client, keys, settings) over a fresh database, with the template copywriter."""
    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url)
    with TestClient(create_app(settings, llm_backend=TemplateLLM())) as client:
        yield client, keys, settings


def now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def test_workflow_ingest_profile_generate_campaign_feedback(api, db_url):
    client, keys, _ = api
    w, r = keys["write"], keys["read"]
    load_sample(client, w)

    # profiles: the same filters as query_profiles, paginated
    store = Store(db_url)
    expected = query_profiles(store.read("profiles"), age=(25, 45), gender="F")
    page = client.get("/v1/profiles", headers=auth(r),
                      params={"age_min": 25, "age_max": 45, "gender": "F", "limit": 3, "offset": 1})
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == len(expected)
    assert [p["user_id"] for p in body["items"]] == expected["user_id"].iloc[1:4].tolist()
    user = body["items"][0]["user_id"]
    assert client.get(f"/v1/profiles/{user}", headers=auth(r)).json()["user_id"] == user
    assert client.get("/v1/profiles/nobody", headers=auth(r)).json()["error"]["code"] == "not_found"

    segs = client.get("/v1/segments", headers=auth(r)).json()["items"]
    assert len(segs) == 2 and all(s["description"] and s["description_zh"] for s in segs)
    seg = client.get(f"/v1/segments/{segs[0]['segment']}", headers=auth(r),
                     params={"limit": 5}).json()
    assert seg["members"]["total"] == segs[0]["size"] and len(seg["members"]["items"]) <= 5

    # copy: a job, awaited inline; every variant carries its guardrail results
    gen = client.post("/v1/generate", headers=auth(w), params={"wait": 60},
                      json={"product_id": "P01", "segment": segs[0]["segment"], "channel": "email",
                            "lang": "en", "n": 2})
    assert gen.status_code in (200, 202), gen.text
    gen_job = gen.json()
    if gen.status_code == 202:  # still running after the inline wait (the first copy builds
        gen_job = wait_job(client, w, gen_job["job"])  # the scoring models): follow it
    assert gen_job["status"] == "succeeded", gen_job.get("error")
    result = gen_job["result"]
    assert len(result["variants"]) == 2
    assert all("violations" in v and "passed" in v for v in result["variants"])
    zh = client.post("/v1/generate", headers=auth(w), params={"wait": 60},
                     json={"product_id": "P01", "user_id": user, "channel": "sms", "lang": "zh",
                           "n": 1}).json()
    if zh["status"] == "running":  # the first Chinese copy also fits the complaint check (slow in CI)
        zh = wait_job(client, w, zh["job"])
    assert zh["status"] == "succeeded" and zh["result"]["lang"] == "zh"
    bulk = client.post("/v1/generate/audience", headers=auth(w),
                       json={"segment": segs[1]["segment"], "channels": ["email"]})
    job = wait_job(client, w, bulk.json()["job"])
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["messages"] == segs[1]["size"]
    score = client.post("/v1/score", headers=auth(r),
                        json={"texts": ["Soft merino that keeps you warm all winter.",
                                        "柔软的美利奴羊毛，保暖又舒适。"]})
    assert score.status_code == 200, score.text
    copies = score.json()["copies"]
    assert len(copies) == 2 and all(0 <= c["overall"] <= 1 for c in copies)
    assert copies[1]["why_readability"].endswith("characters per sentence")

    # campaign from two generated variants, a third added later
    variants = [{"variant": n, "channel": "email", "copy": v["fields"]}
                for n, v in zip("AB", result["variants"], strict=True)]
    created = client.post("/v1/campaigns", headers=auth(w),
                          json={"name": "spring", "variants": variants, "goal": "click"})
    assert created.status_code == 201
    cid = created.json()["campaign"]
    assert client.post(f"/v1/campaigns/{cid}/variants", headers=auth(w),
                       json={"variant": "C", "channel": "sms"}).status_code == 201
    assert client.post(f"/v1/campaigns/{cid}/variants", headers=auth(w),
                       json={"variant": "C"}).status_code == 400
    detail = client.get(f"/v1/campaigns/{cid}", headers=auth(r)).json()
    assert [v["variant"] for v in detail["variants"]] == ["A", "B", "C"]

    # pause stops decisions; resume restarts them
    assert client.post(f"/v1/campaigns/{cid}/pause", headers=auth(w)).json()["status"] == "paused"
    paused = client.post("/v1/decide", headers=auth(w), json={"user_id": user, "campaign": cid})
    assert paused.status_code == 400 and "paused" in paused.json()["error"]["message"]
    client.post(f"/v1/campaigns/{cid}/resume", headers=auth(w))
    users = [f"U{i}" for i in range(60)]
    decisions = [client.post("/v1/decide", headers=auth(w),
                             json={"user_id": u, "campaign": cid}).json() for u in users]
    assert {d["variant"] for d in decisions} <= {"A", "B", "C"}
    assert all(0 < d["propensity"] <= 1 for d in decisions)

    # feedback: idempotent by event id; a resent batch adds nothing
    events = []
    for d in decisions:
        events.append({"event_id": f"imp-{d['user_id']}", "campaign": cid, "variant": d["variant"],
                       "user_id": d["user_id"], "type": "impression", "time": now_iso()})
        if d["variant"] == "B" or d["user_id"].endswith("3"):
            events.append({"event_id": f"clk-{d['user_id']}", "campaign": cid,
                           "variant": d["variant"], "user_id": d["user_id"], "type": "click",
                           "time": now_iso()})
    events.append({"event_id": "bad", "campaign": cid, "variant": "Z", "user_id": "U1",
                   "type": "click", "time": now_iso()})
    first = client.post("/v1/events?wait=true", headers=auth(w), json={"events": events}).json()
    assert first["kept"] == len(events) - 1 and first["quarantined"] == 1
    assert first["rejected"][0]["reason"] == "unknown variant for this campaign"
    # without wait the batch goes to the inbox (202) and is processed in the background
    queued = client.post("/v1/events", headers=auth(w), json={"events": events})
    assert queued.status_code == 202 and queued.json()["accepted"] == len(events)
    again = wait_for_batch(client, queued.json()["status_url"], auth(r))
    assert again["already_stored"] == len(events) - 1 and again["quarantined"] == 1
    assert again["rejected"][0]["row"] == len(events)
    assert store.count("events") == len(events) - 1

    report = client.get(f"/v1/campaigns/{cid}/report", headers=auth(r)).json()
    assert report["events"] == len(events) - 1
    assert sum(v["impressions"] for v in report["variants"]) == len(decisions)
    assert "stop" in report["decision"]
    roi = client.get("/v1/reports/roi", headers=auth(r)).json()["items"]
    assert [x for x in roi if x["campaign"] == cid][0]["clicks"] == len(events) - 1 - len(decisions)
    assert client.get("/v1/reports/campaigns", headers=auth(r)).json()["items"][0]["campaign"] == cid
    assert client.get("/v1/jobs", headers=auth(r)).json()["items"]
    store.dispose()


def test_limits_and_error_shapes(tmp_path, db_url):
    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url, max_events_per_batch=10, max_body_bytes=20_000)
    app = create_app(settings, llm_backend=TemplateLLM())

    @app.get("/v1/boom", dependencies=[])
    def boom():  # a bug in a handler must not leak its message or traceback
        raise RuntimeError("secret detail /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as client:
        w = auth(keys["write"])
        too_many = client.post("/v1/events", headers=w, json={"events": [{}] * 11})
        assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "batch_too_large"
        big = client.post("/v1/events", headers={**w, "Content-Type": "application/json"},
                          content=b"x" * 30_000)
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"

        def chunks():
            for _ in range(30):
                yield b" " * 1000
        streamed = client.post("/v1/events", headers={**w, "Content-Type": "application/json"},
                               content=chunks())
        assert streamed.status_code == 413
        bad = client.post("/v1/decide", headers=w, json={"user_id": ""})
        assert bad.status_code == 422 and set(bad.json()["error"]) >= {"status", "code", "message"}
        broken = client.post("/v1/decide", headers={**w, "Content-Type": "application/json"},
                             content=b"{not json")
        assert broken.status_code == 422
        assert client.get("/v1/nothing-here", headers=w).json()["error"]["code"] == "not_found"
        assert client.get("/v1/campaigns/nope", headers=w).status_code == 404
        no_profiles = client.get("/v1/segments", headers=w)
        assert no_profiles.status_code == 409 and "profiling" in no_profiles.json()["error"]["message"]
        bug = client.get("/v1/boom")
        assert bug.status_code == 500
        assert "secret" not in bug.text and "Traceback" not in bug.text
        assert bug.json()["error"]["code"] == "internal"
        path = client.post("/v1/ingest/reviews/path", headers=auth(keys["admin"]),
                           json={"path": "/etc/passwd"})
        assert path.status_code == 400 and "disabled" in path.json()["error"]["message"]


def test_ingest_from_allowed_server_path(tmp_path, db_url):
    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url, ingest_roots=[str(sample_dir())])
    with TestClient(create_app(settings, dashboard=False)) as client:
        ok = client.post("/v1/ingest/products/path", headers=auth(keys["admin"]),
                         json={"path": str(sample_dir() / "products.csv")})
        assert ok.status_code == 200 and ok.json()["kept"] == 16
        outside = client.post("/v1/ingest/products/path", headers=auth(keys["admin"]),
                              json={"path": str(tmp_path / "x.csv")})
        assert outside.status_code == 400
        assert client.post("/v1/ingest/products/path", headers=auth(keys["write"]),
                           json={"path": str(sample_dir() / "products.csv")}).status_code == 403


def test_jobs_survive_restart_as_failed(db_url):
    store = Store(db_url).init()
    runner = JobRunner(store, workers=1)
    done = runner.submit("demo", lambda progress: (progress(0.5, "half"), {"ok": 1})[1])
    runner.wait(done, 10)
    assert runner.get(done)["status"] == "succeeded" and runner.get(done)["result"] == {"ok": 1}
    failing = runner.submit("demo", lambda progress: 1 / 0)
    runner.wait(failing, 10)
    assert runner.get(failing)["error"] == "internal error (see the server log)"
    runner.shutdown()
    with store.engine.begin() as conn:  # a job that was running when the process died
        conn.execute(JOBS.insert().values(id="lost", kind="profile", status="running",
                                          progress=0.3, created_at=datetime(2025, 1, 1)))
    restarted = JobRunner(store, workers=1)
    lost = restarted.get("lost")
    assert lost["status"] == "failed" and "interrupted" in lost["error"]
    assert restarted.get(done)["status"] == "succeeded"
    restarted.shutdown()
    store.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_real_uvicorn_server(tmp_path, db_url):
    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url, api_docs=True), llm_backend=TemplateLLM())
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok", "database": "ok"}
        assert http.get("/v1/campaigns").status_code == 401
        w = auth(keys["write"])
        cid = http.post("/v1/campaigns", headers=w,
                        json={"name": "live", "variants": [{"variant": "A"}, {"variant": "B"}]}
                        ).json()["campaign"]
        d = http.post("/v1/decide", headers=w, json={"user_id": "u1", "campaign": cid}).json()
        ev = {"event_id": "e1", "campaign": cid, "variant": d["variant"], "user_id": "u1",
              "type": "impression", "time": now_iso()}
        assert http.post("/v1/events?wait=true", headers=w,
                         json={"events": [ev, ev]}).json()["kept"] == 1
        assert http.get(f"/v1/campaigns/{cid}/report", headers=w).json()["events"] == 1
        assert http.get("/openapi.json").json()["info"]["title"] == "adpilot"
        assert http.get("/", follow_redirects=False).status_code == 303  # dashboard needs login
    store = Store(db_url)
    from adpilot.optimization.campaigns import DECISIONS

    with store.engine.connect() as conn:  # the decision reached the log when the server stopped
        assert conn.execute(DECISIONS.select()).first().user_id == "u1"
    store.dispose()


def test_keys_cli(tmp_path, db_url):
    from typer.testing import CliRunner

    from adpilot.cli.keys import app

    runner = CliRunner()
    made = runner.invoke(app, ["create", "--scope", "write", "--name", "ci", "--db", db_url,
                               "--json"])
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    assert info["key"].startswith("adp_") and info["scope"] == "write"
    listed = runner.invoke(app, ["list", "--db", db_url, "--json"])
    assert info["key"] not in listed.stdout and info["id"] in listed.stdout
    assert runner.invoke(app, ["revoke", info["id"], "--db", db_url]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["list", "--db", db_url, "--json"]).stdout)
    assert rows[0]["revoked_at"] is not None
    bad = runner.invoke(app, ["create", "--scope", "root", "--db", db_url])
    assert bad.exit_code != 0


def test_event_inbox_merges_batches_and_survives_a_restart(tmp_path, db_url):
    """Batches accepted but not yet processed when the server stops are processed by the next
    one; merged processing gives each batch the counts it would have had on its own."""
    from adpilot.api.services import CampaignService

    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url)
    store = Store(settings.db_url).init()
    service = CampaignService(store)
    cid = service.create("inbox", ["A", "B"])

    def ev(i, variant="A"):
        return {"event_id": f"x{i}", "campaign": cid, "variant": variant, "user_id": f"u{i}",
                "type": "impression", "time": now_iso()}

    batches = [[ev(0), ev(1), ev(1)],           # a repeat inside the batch: quarantined
               [ev(1), ev(2), ev(3, "Z")],     # x1 again (stored by batch 0), unknown variant
               [ev(4), {"event_id": "x5"}]]    # a row missing its fields
    # a server accepted these, then died before its drainer ran
    ids = [service.inbox.put(json.dumps({"events": b}).encode(), len(b)) for b in batches]
    assert service.inbox.pending() == 8 and store.count("events") == 0

    with TestClient(create_app(settings, llm_backend=TemplateLLM(), dashboard=False)) as client:
        r = auth(keys["read"])
        got = [wait_for_batch(client, f"/v1/events/batches/{i}", r) for i in ids]
    assert [(g["read"], g["kept"], g["quarantined"], g["already_stored"]) for g in got] == [
        (3, 2, 1, 0), (3, 2, 1, 1), (2, 1, 1, 0)]
    assert got[1]["rejected"][0]["row"] == 3
    assert got[1]["rejected"][0]["reason"] == "unknown variant for this campaign"
    assert got[2]["rejected"][0]["row"] == 2
    assert store.count("events") == 4  # x0, x1, x2, x4: each once
    assert CampaignService(store).inbox.pending() == 0
    store.dispose()


def test_inbox_group_commit_and_worker_process_keep_decisions_warm(tmp_path, db_url):
    """Batches written together by the appender thread each get their own id and come back
    whole (stored compressed); the worker process ingests them, and the campaign's decisions
    go on from memory with the updated posterior, without waiting for the database."""
    import asyncio

    from adpilot.api.services import CampaignService

    store = Store(db_url).init()
    service = CampaignService(store)  # processes the inbox in a separate worker process
    cid = service.create("appender", ["A", "B"])
    service.decide("u0", cid)
    assert service.is_warm(cid)

    def batch(start):
        return [{"event_id": f"g{i}", "campaign": cid, "variant": "B", "user_id": "u0",
                 "type": "click" if i % 2 else "impression", "time": now_iso()}
                for i in range(start, start + 20)]

    bodies = [json.dumps({"events": batch(20 * k)}).encode() for k in range(6)]

    async def send_all():
        return await asyncio.gather(*(service.enqueue_events(b, 20) for b in bodies))

    ids = asyncio.run(send_all())
    assert len(set(ids)) == 6 and service.inbox.pending() <= 120  # the worker may have begun
    want = {"impressions": [0.0, 60.0], "successes": [0.0, 60.0]}
    # the worker marks batches done, then the service swaps in the updated policy: wait for both
    deadline = time.monotonic() + 60
    cached = service._decider._policies  # read without loading: policy() would fill it itself
    while ((service.inbox.pending() or getattr(cached.get(cid), "counts", None) != want)
           and time.monotonic() < deadline):
        time.sleep(0.05)
    assert service.inbox.pending() == 0 and store.count("events") == 120
    assert [service.inbox.get(i)["kept"] for i in ids] == [20] * 6
    assert service.is_warm(cid)  # refreshed by the drainer, not dropped
    assert service._decider.policy(cid).counts == want
    service.close()
    store.dispose()
