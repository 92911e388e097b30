"""End to end in Debian Chromium: log in, open a segment, generate copy in the studio, approve
it into a campaign, send feedback through the API, see the campaign report update. Saves a
screenshot of every main page (also into $ADPILOT_SCREENSHOTS when set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

import httpx  # noqa: E402
from test_api import Server, TemplateLLM, auth, keys_for, load_sample, make_settings, now_iso  # noqa: E402

from adpilot.api.app import create_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def test_dashboard_end_to_end(browser, tmp_path, db_url):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    extra = os.environ.get("ADPILOT_SCREENSHOTS")

    def shot(page, name: str) -> None:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)

    keys = keys_for(db_url)
    app = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM())
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        load_sample(http, keys["write"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)

        page.goto(server.url + "/")
        assert "/login" in page.url
        shot(page, "login")
        page.fill("#username", "admin")
        page.fill("#password", "pw-for-tests")
        page.click("#login")
        page.wait_for_url(server.url + "/")
        assert page.locator(".kpi").count() >= 5
        shot(page, "overview")

        page.click("text=Segments")
        page.wait_for_url("**/segments")
        assert page.locator("svg").count() >= 1
        shot(page, "segments")
        page.locator("a.segment-link").first.click()
        page.wait_for_url("**/segments/*")
        segment = page.url.rsplit("/", 1)[1]
        assert page.locator("p.lead").inner_text().strip()
        shot(page, "segment")
        page.locator("td a[href^='/users/']").first.click()
        page.wait_for_url("**/users/*")
        shot(page, "user")

        page.goto(f"{server.url}/segments/{segment}")
        page.click("#write-copy")
        page.wait_for_url("**/studio?segment=*")
        page.select_option("#channel", "email")
        page.select_option("#copy-lang", "en")
        shot(page, "studio")
        page.click("#generate")
        # the studio polls its generation job; follow it with a generous deadline (a loaded
        # machine builds the scoring models first), not a fixed short wait
        page.wait_for_selector("#approve-form", timeout=600_000)
        assert page.locator("section.variant").count() == 3
        # each variant shows its scorecard, best first
        scores = [float(page.locator(f"#score-{i}").inner_text().split()[2]) for i in range(3)]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1, scores
        page.fill("#field-0-subject", "Hand-edited subject line")
        page.uncheck("#include-2")
        page.fill("#campaign-name", "browser campaign")
        shot(page, "studio-variants")
        page.click("#approve")
        page.wait_for_url("**/campaigns/*")
        cid = page.url.rsplit("/", 1)[1]
        assert "Hand-edited subject line" in page.content()
        assert page.locator("#no-events").is_visible()
        shot(page, "campaign-new")

        # simulated delivery and feedback through the API
        w = auth(keys["write"])
        events = []
        for i in range(80):
            d = http.post("/v1/decide", headers=w, json={"user_id": f"u{i}", "campaign": cid}).json()
            events.append({"event_id": f"i{i}", "campaign": cid, "variant": d["variant"],
                           "user_id": f"u{i}", "type": "impression", "time": now_iso()})
            if (d["variant"] == "A" and i % 3 == 0) or i % 9 == 0:
                events.append({"event_id": f"c{i}", "campaign": cid, "variant": d["variant"],
                               "user_id": f"u{i}", "type": "click", "time": now_iso()})
        result = http.post("/v1/events?wait=true", headers=w, json={"events": events}).json()
        assert result["kept"] == len(events), result

        page.reload()
        assert page.locator("#event-count").inner_text() == str(len(events))
        assert page.locator("#report-table tr").count() == 3  # header + A + B
        assert page.locator("#decision").is_visible()
        assert page.locator("figure svg").count() == 2
        shot(page, "campaign-report")

        page.click("text=ROI")
        page.wait_for_url("**/roi")
        assert "browser campaign" in page.locator("#roi-table").inner_text()
        shot(page, "roi")
        page.goto(f"{server.url}/campaigns/{cid}?lang=zh")
        assert "停止决策" in page.content()
        shot(page, "campaign-report-zh")
        page.goto(server.url + "/segments")  # the language cookie persists
        assert "客群" in page.locator("h1").inner_text()
        shot(page, "segments-zh")
    assert len(list(shots.glob("*.png"))) == 12
