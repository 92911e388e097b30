"""The dashboard's send page over a real uvicorn server: the copy per variant and language, the
dry run's counts, approving a variant through the CSRF-protected form, and a send into the
file outbox followed on its job page."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from test_api import Server, auth, keys_for, make_settings  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402
from adpilot.data.ingest import ingest_file  # noqa: E402
from adpilot.optimization.campaigns import Campaigns  # noqa: E402
from adpilot.pipeline import sample_dir  # noqa: E402
from adpilot.store import Store  # noqa: E402

COPY = {"subject": "Spring is here", "body": "Our new linen shirts are in.", "lang": "en"}
COPY_ZH = {"subject": "春季上新", "body": "新款亚麻衬衫到货，欢迎选购。", "lang": "zh"}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(http: httpx.Client, **fields: str) -> None:
    r = http.post("/login", data={"csrf": csrf_of(http.get("/login").text), **fields})
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers


def counts(html: str) -> dict[str, int]:
    """The count rows of a send or dry-run table, by key (planned, sent, skipped:reason…)."""
    return {k: int(n) for k, n in re.findall(r'data-key="([^"]+)">(\d+)<', html)}


def approvals(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-variant="([^"]+)" data-lang="[^"]*" data-approved="(\w+)"', html))


def buckets(c: dict[str, int], done: str) -> int:
    return c[done] + c["failed"] + c["unknown"] + sum(
        n for k, n in c.items() if k.startswith(("skipped:", "deferred:")))


def test_send_page_preview_dry_run_approve_and_send(tmp_path, db_url):
    keys = keys_for(db_url)
    outbox = tmp_path / "outbox"
    app = create_app(make_settings(tmp_path, db_url, outbox_dir=outbox))
    store = Store(db_url)
    with Server(app) as server, \
            httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as http, \
            httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as reader:
        with open(sample_dir() / "customers.csv", "rb") as fh:
            r = http.post("/v1/ingest/customers", headers=auth(keys["write"]),
                          files={"file": ("customers.csv", fh, "text/csv")})
        assert r.status_code == 200, r.text
        assert ingest_file("consents", sample_dir() / "consents.csv", store=store).kept > 0
        cid = http.post("/v1/campaigns", headers=auth(keys["write"]), json={
            "name": "Dashboard 春季", "channel": "email",
            "variants": [{"variant": "en", "copy": COPY}, {"variant": "zh", "copy": COPY_ZH}]}
        ).json()["campaign"]
        customers = len(store.read("customers"))

        login(http, username="admin", password="pw-for-tests")
        assert f'href="/campaigns/{cid}/send"' in http.get(f"/campaigns/{cid}").text
        page = http.get(f"/campaigns/{cid}/send")
        assert page.status_code == 200, page.text
        html = page.text
        # both languages' copy, neither approved; nothing can be sent yet
        for text in (COPY["subject"], COPY["body"], COPY_ZH["subject"], COPY_ZH["body"]):
            assert text in html
        assert re.findall(r'data-variant="(\w+)" data-lang="(\w+)"', html) == [("en", "en"),
                                                                               ("zh", "zh")]
        assert approvals(html) == {"en": "no", "zh": "no"}
        dry = counts(html)
        assert dry["planned"] == customers == buckets(dry, "would_send")
        assert dry["would_send"] == 0 and dry["skipped:not_approved"] == customers
        assert "试运行" in http.get(f"/campaigns/{cid}/send?lang=zh").text
        http.get(f"/campaigns/{cid}/send?lang=en")  # back to English for the rest

        # approving needs the session's CSRF token and the write scope
        assert http.post(f"/campaigns/{cid}/approve", data={"variant": "en"}).status_code == 403
        login(reader, api_key=keys["read"])
        read_page = reader.get(f"/campaigns/{cid}/send").text
        assert "approve-variant" not in read_page and 'id="send"' not in read_page
        assert reader.post(f"/campaigns/{cid}/approve", data={
            "csrf": csrf_of(read_page), "variant": "en"}).status_code == 403
        r = http.post(f"/campaigns/{cid}/approve", data={"csrf": csrf_of(html), "variant": "en"})
        assert r.status_code == 303 and unquote(r.headers["location"]) == f"/campaigns/{cid}/send"
        flags = Campaigns(store).variants(cid).set_index("variant")["approved"].astype(bool)
        assert flags.to_dict() == {"en": True, "zh": False}
        html = http.get(f"/campaigns/{cid}/send").text
        assert approvals(html) == {"en": "yes", "zh": "no"}
        dry = counts(html)
        assert dry["planned"] == customers == buckets(dry, "would_send")
        assert 0 < dry["skipped:not_approved"] < customers  # the Chinese-speaking customers

        # send into the file outbox as a background job; its page shows the counts
        r = http.post(f"/campaigns/{cid}/send", data={"csrf": csrf_of(html), "provider": "file",
                                                      "audience": "all", "channel": "email"})
        assert r.status_code == 303, r.text
        job_url = r.headers["location"]
        assert unquote(job_url).startswith(f"/campaigns/{cid}/send/jobs/")
        deadline, status = time.monotonic() + 300, None
        while time.monotonic() < deadline:
            job_page = http.get(job_url).text
            status = re.search(r'id="job-status">(\w+)<', job_page).group(1)
            if status in ("succeeded", "failed"):
                break
            assert 'http-equiv="refresh"' in job_page  # reloads itself while running
            time.sleep(0.2)
        assert status == "succeeded", job_page
        assert 'http-equiv="refresh"' not in job_page
        sent = counts(job_page)
        assert sent["planned"] == customers == buckets(sent, "sent")
        assert sent["sent"] == len(list(outbox.glob("*.eml"))) > 0
        assert sent["skipped:not_approved"] == dry["skipped:not_approved"]

        # nothing twice: the next dry run finds those messages already sent
        again = counts(http.get(f"/campaigns/{cid}/send").text)
        assert again["skipped:already_sent"] == sent["sent"]
        assert http.get(f"/campaigns/{cid}/send/jobs/nope").status_code == 404
        # the general job page shows the same job; an unknown job is a 404 there and in the studio
        job_id = unquote(job_url).rsplit("/", 1)[-1]
        assert 'id="job-status">succeeded<' in http.get(f"/jobs/{job_id}").text
        assert http.get("/jobs/nope").status_code == http.get("/studio/jobs/nope").status_code == 404
        assert http.get("/campaigns/nope").status_code == 404
        # nothing profiled yet: the segment and customer pages say so (409), never a 500
        for path in ("/segments", "/segments/0", "/users/nope"):
            assert http.get(path).status_code == 409, path
    store.dispose()
