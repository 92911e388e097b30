"""Delivery shells over HTTP and in ``adpilot run``: approve and send routes (write scope, a
background job, a dry run answered at once) and the run's delivery dry run."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from test_api import auth, keys_for, make_settings, wait_job  # noqa: E402

from adpilot import pipeline as P  # noqa: E402
from adpilot.api.app import create_app  # noqa: E402
from adpilot.data.ingest import ingest_file  # noqa: E402
from adpilot.delivery.ledger import Ledger  # noqa: E402
from adpilot.delivery.run_steps import step_campaign_delivery  # noqa: E402
from adpilot.generation.campaign import PLAN_COLUMNS  # noqa: E402
from adpilot.optimization.campaigns import Campaigns  # noqa: E402
from adpilot.pipeline import sample_dir  # noqa: E402
from adpilot.store import Store  # noqa: E402

COPY = {"subject": "Spring is here", "body": "Our new linen shirts are in.", "lang": "en",
        "passed": True}
COPY_ZH = {"subject": "春季上新", "body": "新款亚麻衬衫到货，欢迎选购。", "lang": "zh", "passed": True}


def test_approve_and_send_routes(tmp_path, db_url):
    keys = keys_for(db_url)
    outbox = tmp_path / "outbox"
    settings = make_settings(tmp_path, db_url, outbox_dir=outbox)
    with TestClient(create_app(settings)) as client:
        w = auth(keys["write"])
        with open(sample_dir() / "customers.csv", "rb") as fh:
            r = client.post("/v1/ingest/customers", headers=w,
                            files={"file": ("customers.csv", fh, "text/csv")})
        assert r.status_code == 200, r.text
        store = Store(db_url)  # consents through the library (their upload route is H3's patch)
        assert ingest_file("consents", sample_dir() / "consents.csv", store=store).kept == 94
        store.dispose()
        r = client.post("/v1/campaigns", headers=w, json={"name": "API 春季", "channel": "email",
                        "variants": [{"variant": "en", "copy": COPY}, {"variant": "zh", "copy": COPY_ZH}]})
        cid = r.json()["campaign"]
        send = f"/v1/campaigns/{cid}/send"
        assert client.post(send, headers=auth(keys["read"]), json={"dry_run": True}).status_code == 403
        gated = client.post(send, headers=w, json={"dry_run": True}).json()
        assert gated["skipped"] == {"not_approved": gated["planned"]} and gated["planned"] == 40

        r = client.post(f"/v1/campaigns/{cid}/approve", headers=w, json={"variant": "en"})
        assert r.json() == {"campaign": cid, "approved": ["en"]}
        assert client.post(f"/v1/campaigns/{cid}/approve", headers=w,
                           json={"variant": "nope"}).status_code == 404
        assert client.post(f"/v1/campaigns/{cid}/approve", headers=w, json={}).status_code == 400
        variants = client.get(f"/v1/campaigns/{cid}", headers=auth(keys["read"])).json()["variants"]
        assert {v["variant"]: v["approved"] for v in variants} == {"en": True, "zh": False}

        dry = client.post(send, headers=w, json={"dry_run": True}).json()
        assert dry["planned"] == 40 == (dry["would_send"] + sum(dry["skipped"].values())
                                        + sum(dry["deferred"].values()) + dry["unknown"])
        assert dry["skipped"].get("not_approved", 0) > 0  # the Chinese-speaking customers
        assert client.post(send, headers=w, json={"provider": "smtp"}).status_code == 400  # no URL

        r = client.post(send, headers=w, json={"customer_ids": ["C001", "C003", "C005"]})
        assert r.status_code == 202
        job = wait_job(client, keys["read"], r.json()["job"])
        assert job["status"] == "succeeded", job["error"]
        res = job["result"]
        assert res["planned"] == 3 == (res["sent"] + sum(res["skipped"].values())
                                       + sum(res["deferred"].values()) + res["failed"] + res["unknown"])
        written = list(outbox.glob("*.eml"))
        assert len(written) == res["sent"]
        bad = client.post(send, headers=w, json={"customer_ids": ["NOPE"]})
        failed = wait_job(client, keys["read"], bad.json()["job"])
        assert failed["status"] == "failed" and "NOPE" in failed["error"]


def _plan(store: Store) -> pd.DataFrame:
    """A campaign plan as the copy step writes it: one copy per language and segment, the
    Chinese one failing a guardrail; a contact decision per customer."""
    customers = store.read("customers")
    lang = customers["attributes"].str.contains('"zh"').map({True: "zh", False: "en"})
    rows = []
    for i, (user, lg) in enumerate(zip(customers["id"], lang, strict=True)):
        seg = f"S{i % 2 + 1}"
        text = (f"{COPY['subject']} {seg}\n{COPY['body']}" if lg == "en"
                else f"{COPY_ZH['subject']}{seg}\n{COPY_ZH['body']}")
        rows.append({"user_id": user, "segment": seg, "product_id": "P01", "channel": "email",
                     "lang": lg, "text": text, "passed": lg == "en",
                     "violations": "" if lg == "en" else "claim: 最好", "personalised": False,
                     "mode": "segment", "contact": i % 4 != 3})
    plan = pd.DataFrame(rows, columns=[*PLAN_COLUMNS, "contact"])
    store.write_table("profiles", plan[["user_id", "segment"]].assign(language=plan["lang"]))
    return plan


def test_run_ends_with_a_delivery_dry_run(tmp_path):
    out = tmp_path / "run"

    def copy_step(ctx):  # stands in for the LLM copy step: the plan it writes
        ctx.copy_plan = _plan(ctx.store)

    steps = [("ingest", P.step_ingest), ("copy", copy_step), ("delivery", step_campaign_delivery)]
    first = P.run(out, steps=steps, approve=True).summary()
    d = first["delivery"]
    contacted = 30  # three in four of the sample's 40 customers
    assert d["dry_run"] is True and d["planned"] == contacted
    assert d["planned"] == d["would_send"] + sum(d["skipped"].values()) + sum(d["deferred"].values())
    assert sorted(d["approved"]) == ["S1-P01-en-email", "S2-P01-en-email"]  # zh failed a guardrail
    assert d["skipped"].get("not_approved", 0) > 0
    assert first["timings"]["delivery"] < 5
    with open(out / "outbox" / "dry-run" / "plan.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == d["planned"] - d["skipped"].get("no_variant", 0)
    assert sum(r["outcome"] == "would_send" for r in rows) == d["would_send"]
    assert len(list((out / "outbox" / "dry-run").glob("*.eml"))) == d["would_send"]
    assert "Delivery (dry run)" in (out / "report.html").read_text(encoding="utf-8")
    store = Store(first["db"].replace("***", "")).init()
    assert Ledger(store).status_counts() == {}  # a dry run marks nothing as sent

    again = P.run(out, steps=steps, approve=False).summary()["delivery"]
    assert again["campaign"] == d["campaign"]  # the rerun reuses the stored campaign
    assert again["approved"] == [] and again["would_send"] == d["would_send"]
    assert len(Campaigns(store).list()) == 1
    store.dispose()


def test_studio_approve_creates_approved_variants(tmp_path, db_url):
    import re

    keys = keys_for(db_url)
    with TestClient(create_app(make_settings(tmp_path, db_url))) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"csrf": token, "api_key": keys["write"]})
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/studio").text).group(1)
        r = client.post("/studio/approve", data={
            "csrf": token, "count": "2", "channel": "email", "campaign_name": "Studio 春",
            "include_0": "on", "name_0": "A", "field:0:subject": COPY["subject"],
            "field:0:body": COPY["body"], "name_1": "B", "field:1:subject": "left out"},
            follow_redirects=False)
        assert r.status_code == 303, r.text
        cid = r.headers["location"].rsplit("/", 1)[1]
        variants = client.get(f"/v1/campaigns/{cid}", headers=auth(keys["read"])).json()["variants"]
        assert [(v["variant"], v["approved"]) for v in variants] == [("A", True)]
