"""The service against a hostile client (issue 17, items 5, 6 and 12), through a real uvicorn
server: login and API-key guessing is throttled with an expiring lockout, logout and a password
change end dashboard sessions, every response carries the browser hardening headers, the API
docs are off unless configured, report routes aggregate in the database and are rate-limited."""

from __future__ import annotations

import logging
import re
import time
import uuid

import pytest

pytest.importorskip("fastapi")

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import event  # noqa: E402
from test_api import Server, TemplateLLM, auth, keys_for, make_settings  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402

PASSWORD = "pw-for-tests"  # make_settings' admin password


def client_at(server: Server, ip: str) -> httpx.Client:
    """An HTTP client whose connections come from ``ip`` (any 127.x address is loopback), so a
    test can play several clients against one server."""
    return httpx.Client(base_url=server.url, timeout=60, follow_redirects=False,
                        transport=httpx.HTTPTransport(local_address=ip))


def login_form(http: httpx.Client) -> str:
    page = http.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def try_login(http: httpx.Client, user: str, password: str) -> httpx.Response:
    return http.post("/login", data={"csrf": login_form(http), "username": user,
                                     "password": password, "next": "/campaigns"})


def poll_until(fn, deadline_s: float = 60.0):
    """Call ``fn`` until it returns something truthy (lockouts expire on the server's clock)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = fn()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not reached before the deadline")


THROTTLE = {"auth_max_failures": 5, "auth_max_failures_per_client": 8, "auth_window_seconds": 60,
            "auth_lockout_seconds": 10.0}  # long enough for the bursts below on a slow machine


@pytest.fixture
def served(tmp_path, db_url):
    """A real server with small throttle limits; yields (server, keys)."""
    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url, **THROTTLE), llm_backend=TemplateLLM())
    with Server(app) as server:
        yield server, keys


def test_wrong_passwords_lock_the_account_then_the_lock_expires(served, caplog):
    server, _ = served
    caplog.set_level(logging.WARNING, logger="adpilot.api")
    with client_at(server, "127.0.0.2") as attacker, client_at(server, "127.0.0.3") as owner:
        answers = [try_login(attacker, "admin", f"guess-{i}").status_code for i in range(12)]
        assert answers[:5] == [303] * 5, answers  # the first failures are plain "wrong password"
        assert set(answers[5:]) == {429}, answers
        # the right password from another client is refused too while the account is locked
        locked = try_login(owner, "admin", PASSWORD)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) >= 1
        assert "Too many failed" in locked.text
        lockouts = [r.getMessage() for r in caplog.records if "locked" in r.getMessage()]
        assert lockouts and any("'admin'" in m for m in lockouts)
        assert not any(PASSWORD in m or "guess-" in m for m in lockouts)  # no secret logged
        # the lockout expires: the owner gets in and the session works
        ok = poll_until(lambda: (r := try_login(owner, "admin", PASSWORD)).status_code == 303 and r)
        assert ok.headers["location"] == "/campaigns"
        assert owner.get("/campaigns").status_code == 200


def test_one_client_guessing_many_accounts_is_locked_out(served):
    server, _ = served
    with client_at(server, "127.0.0.4") as attacker, client_at(server, "127.0.0.5") as other:
        answers = [try_login(attacker, f"user{i}", "x").status_code for i in range(12)]
        assert answers[:8] == [303] * 8 and set(answers[8:]) == {429}, answers
        assert try_login(attacker, "admin", PASSWORD).status_code == 429
        assert try_login(other, "admin", PASSWORD).status_code == 303  # only that client


def test_api_key_guesses_are_throttled_per_client_and_per_key(served):
    server, keys = served
    read = keys["read"]
    key_id = read.split("_")[1]
    with client_at(server, "127.0.0.6") as guesser, client_at(server, "127.0.0.7") as owner:
        codes = [guesser.get("/v1/campaigns", headers=auth(f"adp_{uuid.uuid4().hex[:12]}_x{i}"))
                 .status_code for i in range(100)]
        assert codes[:8] == [401] * 8 and set(codes[8:]) == {429}, codes
        refused = guesser.get("/v1/campaigns", headers=auth(read))  # even a valid key
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert owner.get("/v1/campaigns", headers=auth(read)).status_code == 200
    # wrong secrets for one key id from several clients lock that key id
    for n, ip in enumerate(("127.0.0.8", "127.0.0.9", "127.0.0.10")):
        with client_at(server, ip) as c:
            for i in range(2):
                c.get("/v1/campaigns", headers=auth(f"adp_{key_id}_wrong{n}{i}"))
    with client_at(server, "127.0.0.11") as fresh:
        assert fresh.get("/v1/campaigns", headers=auth(read)).status_code == 429
        poll_until(lambda: fresh.get("/v1/campaigns", headers=auth(read)).status_code == 200)


def test_logout_ends_the_session_for_reads_and_writes(served):
    server, keys = served
    w = auth(keys["write"])
    with client_at(server, "127.0.0.12") as browser:
        cid = browser.post("/v1/campaigns", headers=w, json={
            "name": "logout test", "variants": [{"variant": "A"}, {"variant": "B"}]}).json()["campaign"]
        assert try_login(browser, "admin", PASSWORD).status_code == 303
        cookie = browser.cookies["adpilot_session"]
        page = browser.get(f"/campaigns/{cid}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        assert browser.post("/logout", data={"csrf": csrf}).status_code == 303
    # the old cookie, replayed after logout, is refused for reads and for the campaign change
    with client_at(server, "127.0.0.13") as replay:
        replay.cookies.set("adpilot_session", cookie)
        assert replay.get("/campaigns").status_code == 303
        change = replay.post(f"/campaigns/{cid}/status", data={"csrf": csrf, "action": "pause"})
        assert change.status_code == 303 and change.headers["location"].startswith("/login")
        assert replay.get(f"/v1/campaigns/{cid}", headers=w).json()["status"] == "active"


def new_password(settings):
    return settings.model_copy(update={"admin_password": SecretStr("a-new-password")})


def test_a_password_change_ends_existing_sessions(tmp_path, db_url):
    keys_for(db_url)
    first = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM())
    with Server(first) as server, client_at(server, "127.0.0.14") as browser:
        assert try_login(browser, "admin", PASSWORD).status_code == 303
        cookie = browser.cookies["adpilot_session"]
        assert browser.get("/campaigns").status_code == 200
    # the same secret and database, a new ADPILOT_ADMIN_PASSWORD
    second = create_app(new_password(make_settings(tmp_path, db_url)),
                        llm_backend=TemplateLLM())
    with Server(second) as server, client_at(server, "127.0.0.14") as browser:
        browser.cookies.set("adpilot_session", cookie)
        assert browser.get("/campaigns").status_code == 303
        browser.cookies.clear()
        assert try_login(browser, "admin", "a-new-password").status_code == 303
        assert browser.get("/campaigns").status_code == 200
        current = browser.cookies["adpilot_session"]
    third = create_app(new_password(make_settings(tmp_path, db_url)),
                       llm_backend=TemplateLLM())
    with Server(third) as server, client_at(server, "127.0.0.14") as browser:
        browser.cookies.set("adpilot_session", current)  # same password: survives a restart
        assert browser.get("/campaigns").status_code == 200


HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
           "referrer-policy": "same-origin"}


def test_security_headers_on_dashboard_and_api(served):
    server, keys = served
    with client_at(server, "127.0.0.15") as http:
        assert try_login(http, "admin", PASSWORD).status_code == 303
        responses = [http.get("/login"), http.get("/"), http.get("/campaigns"),
                     http.get("/static/style.css"), http.get("/health"),
                     http.get("/v1/campaigns", headers=auth(keys["read"])),
                     http.get("/v1/campaigns"), http.get("/no-such-page")]
        for r in responses:
            for name, value in HEADERS.items():
                assert r.headers.get(name) == value, (r.url, name, r.headers)
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, csp
            assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        # the dashboard's pages need no inline script: no <script> without src, no javascript:
        for path in ("/", "/campaigns", "/login", "/no-such-campaign-page"):
            html = http.get(path).text
            assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "javascript:" not in html


def test_api_docs_are_off_by_default_and_configurable(tmp_path, db_url):
    keys_for(db_url)
    with Server(create_app(make_settings(tmp_path, db_url), dashboard=False)) as server:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert httpx.get(server.url + path).status_code == 404, path
    settings = make_settings(tmp_path, db_url, api_docs=True)
    with Server(create_app(settings, dashboard=False)) as server:
        assert httpx.get(server.url + "/openapi.json").json()["info"]["title"] == "adpilot"
        docs = httpx.get(server.url + "/docs")
        assert docs.status_code == 200 and "frame-ancestors 'none'" in docs.headers[
            "content-security-policy"]


def send_events(http: httpx.Client, key: str, n_campaigns: int = 3, per: int = 40) -> list[str]:
    """Campaigns with impressions, clicks and conversions (with values) over two days and
    several channels, one channel missing."""
    cids = []
    for c in range(n_campaigns):
        cid = http.post("/v1/campaigns", headers=auth(key), json={
            "name": f"report {c}", "variants": [{"variant": "A"}, {"variant": "B"}]}).json()["campaign"]
        cids.append(cid)
        events = []
        for i in range(per):
            day = "2024-05-01" if i % 3 else "2024-05-02"
            base = {"campaign": cid, "variant": "AB"[i % 2], "user_id": f"u{i}",
                    "time": f"{day}T10:{i % 60:02d}:00"}
            channel = (None, "email", "sms", "social")[i % 4]
            if channel:
                base["channel"] = channel
            events.append({**base, "event_id": f"{cid}-i{i}", "type": "impression"})
            if i % 4 == 0:
                events.append({**base, "event_id": f"{cid}-c{i}", "type": "click"})
            if i % 8 == 0:
                events.append({**base, "event_id": f"{cid}-v{i}", "type": "conversion",
                               "value": 10.0 + i})
        r = http.post("/v1/events?wait=true", headers=auth(key), json={"events": events})
        assert r.status_code == 200 and r.json()["quarantined"] == 0, r.text
    return cids


def test_reports_aggregate_in_the_database_and_match_the_per_event_figures(tmp_path, db_url):
    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM())
    state = app.state.adpilot
    with Server(app) as server, client_at(server, "127.0.0.16") as http:
        r = auth(keys["read"])
        cids = send_events(http, keys["write"])
        statements: list[str] = []

        def seen(conn, cursor, statement, *args) -> None:
            statements.append(" ".join(statement.lower().split()))

        event.listen(state.store.engine, "before_cursor_execute", seen)
        try:
            roi = http.get("/v1/reports/roi", headers=r).json()
            reports = http.get("/v1/reports/campaigns", headers=r).json()["items"]
        finally:
            event.remove(state.store.engine, "before_cursor_execute", seen)
        reading_events = [s for s in statements if re.search(r"\bfrom events\b", s)]
        assert reading_events, statements
        for s in reading_events:  # every read of the events table is aggregated by the database
            assert "group by" in s, s
        # the same figures as computed from every event row
        from adpilot.api.services import jsonable, records
        from adpilot.optimization.roi import Prices
        from adpilot.optimization.roi_store import campaign_rois, roi_frame, totals_of

        names = dict(zip(state.campaigns.list()["id"], state.campaigns.list()["name"], strict=True))
        expected = records(roi_frame(campaign_rois(
            state.store, names, prices=Prices.from_settings(state.settings),
            totals=totals_of(state.store.read("events")))))
        assert roi["items"] == expected
        assert {i["campaign"] for i in roi["items"]} == set(cids)
        assert [i["campaign"] for i in reports] == list(state.campaigns.list()["id"])
        for item in reports:
            assert item == jsonable(state.campaigns.report(item["campaign"]))
        assert all(item["events"] > 0 and item["allocation_by_day"] for item in reports)
        # reports are reused while the counts stay the same, and never once they move
        assert http.get("/v1/reports/campaigns", headers=r).json()["items"] == reports
        more = {"event_id": "late-1", "campaign": cids[0], "variant": "B", "user_id": "late",
                "type": "impression", "time": "2024-05-03T09:00:00", "channel": "push"}
        assert http.post("/v1/events?wait=true", headers=auth(keys["write"]),
                         json={"events": [more]}).json()["kept"] == 1
        again = {i["campaign"]: i for i in http.get("/v1/reports/campaigns", headers=r).json()["items"]}
        before = {i["campaign"]: i for i in reports}
        assert again[cids[0]]["events"] == before[cids[0]]["events"] + 1
        assert again[cids[0]]["allocation_by_day"]["2024-05-03"] == {"A": 0, "B": 1}
        for cid in cids:
            assert again[cid] == jsonable(state.campaigns.report(cid))


def test_expensive_routes_are_rate_limited_per_client(tmp_path, db_url):
    keys = keys_for(db_url)
    settings = make_settings(tmp_path, db_url, report_burst=3, report_rate_per_minute=6)
    with Server(create_app(settings, llm_backend=TemplateLLM())) as server:
        r = auth(keys["read"])
        with client_at(server, "127.0.0.17") as busy, client_at(server, "127.0.0.18") as other:
            codes = [busy.get("/v1/reports/roi", headers=r).status_code for _ in range(3)]
            assert codes == [200] * 3
            limited = busy.get("/v1/reports/campaigns", headers=r)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.json()["error"]["code"] == "too_many_requests"
            assert other.get("/v1/reports/campaigns", headers=r).status_code == 200
            assert busy.get("/v1/campaigns", headers=r).status_code == 200  # cheap routes are not
            # the dashboard's expensive pages share the client's bucket
            assert try_login(busy, "admin", PASSWORD).status_code == 303
            for _ in range(5):  # empty the bucket again, however slow the machine was
                if busy.get("/v1/reports/roi", headers=r).status_code == 429:
                    break
            page = busy.get("/roi")
            assert page.status_code == 429 and int(page.headers["retry-after"]) >= 1
            assert "Too many requests" in page.text
            assert busy.get("/campaigns").status_code == 200
            # a token comes back after 60 / 6 = 10 s
            poll_until(lambda: busy.get("/v1/reports/roi", headers=r).status_code == 200, 60)


def test_dashboard_works_under_its_content_security_policy(tmp_path, db_url):
    """In Debian Chromium: every main page renders its charts with no CSP violation, and the
    logout button ends the session."""
    from pathlib import Path

    sync_api = pytest.importorskip("playwright.sync_api")
    from test_api import load_sample
    from test_dashboard_browser import CHROMIUM, FLAGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM())
    with (Server(app) as server, httpx.Client(base_url=server.url, timeout=60) as http,
          sync_api.sync_playwright() as p):
        load_sample(http, keys["write"])
        cids = send_events(http, keys["write"], n_campaigns=1)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(server.url + "/login")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_url(server.url + "/")
        for path in ("/", "/segments", f"/campaigns/{cids[0]}", "/roi", "/campaigns"):
            page.goto(server.url + path)
            assert "/login" not in page.url, path
        page.goto(f"{server.url}/campaigns/{cids[0]}")
        assert page.locator("figure svg").count() == 2
        assert page.evaluate("() => getComputedStyle(document.querySelector('header')).display")
        page.click("button.link")  # log out
        page.wait_for_url("**/login")
        page.goto(server.url + "/campaigns")
        assert "/login" in page.url
        browser.close()
    assert violations == []
