"""Honest ROI: incremental revenue against the control groups the sender recorded, with an
interval that covers a known lift; attributed (and labelled so) where there is no control group;
the API route and the dashboard page give the new fields. Real sends (file channel), a real
SQLite store, a real uvicorn server."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pandas as pd
import pytest

from adpilot.config import Settings
from adpilot.data.ingest import ingest_file
from adpilot.delivery import Message, get_channel
from adpilot.delivery.ledger import Ledger
from adpilot.delivery.pacing import ManualClock
from adpilot.delivery.rules import Rules
from adpilot.delivery.send import send
from adpilot.optimization.roi import Prices, incremental_revenue
from adpilot.optimization.roi_store import campaign_rois, roi_frame
from adpilot.pipeline import sample_dir
from adpilot.store import Store

SEND_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIFT = 100.0 * 0.3  # a treated customer orders one more 100.00 item with probability 0.3
RULES = Rules(holdout_share=0.1, campaign_holdout_share=0.1, quiet_start=time(0),
              quiet_end=time(0))
PRICES = Prices(email=0.001, sms=0.05, push=0.0002)


def _store(db_url: str) -> Store:
    return Store(db_url).init()


def _send_campaign(store: Store, tmp_path, n: int, *, rules: Rules, no_consent_every: int = 0):
    """Send campaign ``spring`` by SMS to u0000…; consent for all but every ``no_consent_every``-th."""
    ledger = Ledger(store)
    users = [f"u{i:04d}" for i in range(n)]
    granted = [u for i, u in enumerate(users) if not no_consent_every or i % no_consent_every]
    ledger.record_consents({"user_id": u, "channel": "sms", "granted": True,
                            "at": SEND_AT - timedelta(days=60), "source": "checkout"}
                           for u in granted)
    msgs = [Message(campaign="spring", variant="A", user_id=u, channel="sms",
                    to=f"+1202555{i % 10_000:04d}", text="Spring offer", approved=True)
            for i, u in enumerate(users)]
    result = send(msgs, get_channel("file", outbox=tmp_path / "outbox"), ledger, rules=rules,
                  clock=ManualClock(SEND_AT))
    return users, set(granted), result


def _orders(store: Store, users: list[str], treated: set[str], seed: int = 1) -> None:
    """Baseline orders for everyone in the 14 days after the send, one more 100.00 order for a
    treated customer with probability 0.3, and large orders outside the window (ignored)."""
    rng = np.random.default_rng(seed)
    start = SEND_AT.replace(tzinfo=None)
    rows = []
    for u in users:
        for _ in range(rng.poisson(0.6)):
            rows.append((u, "P1", 1, round(float(rng.uniform(20, 80)), 2),
                         start + timedelta(hours=float(rng.uniform(1, 13 * 24)))))
        if u in treated and rng.random() < 0.3:
            rows.append((u, "P2", 1, 100.0, start + timedelta(hours=float(rng.uniform(1, 300)))))
        rows.append((u, "P1", 1, 500.0, start - timedelta(days=3)))    # before the send
        rows.append((u, "P1", 1, 500.0, start + timedelta(days=20)))   # after the window
    frame = pd.DataFrame(rows, columns=["user_id", "product_id", "quantity", "unit_price", "time"])
    frame.insert(0, "id", [f"t{i}" for i in range(len(frame))])
    frame["invoice"] = frame["id"]
    frame["attributes"] = "{}"
    store.upsert("transactions", frame)
    store.upsert("products", pd.DataFrame({"id": ["P1", "P2"], "currency": ["USD", "USD"],
                                           "attributes": ["{}", "{}"]}))


def test_known_lift_is_recovered_within_the_interval(tmp_path, db_url):
    store = _store(db_url)
    users, granted, result = _send_campaign(store, tmp_path, 2000, rules=RULES,
                                            no_consent_every=10)
    ledger = Ledger(store)
    sent = {u for u in users if u in granted and not RULES.in_holdout(u)
            and not RULES.in_campaign_holdout("spring", u)}
    assert result.sent == len(sent)
    _orders(store, users, sent)
    (roi,) = campaign_rois(store, prices=PRICES)
    held = ledger.holdouts("spring")
    held_with_consent = {u for u in held if u in granted}
    assert roi.kind == "incremental"
    assert roi.treated == len(sent)
    assert roi.control == len(held_with_consent) and roi.control > 250
    assert roi.control_excluded == len(held) - len(held_with_consent) > 0
    assert roi.control_global + roi.control_campaign == roi.control
    assert roi.control_global == sum(RULES.in_holdout(u) for u in held_with_consent)
    expected = LIFT * len(sent)
    assert roi.revenue_low < expected < roi.revenue_high
    assert roi.revenue_low > 0  # the lift is large enough to be told from nothing
    assert roi.interval_method == "bootstrap"
    # cost: the ledger's sends at the SMS price; ROI and its interval follow from it
    assert roi.cost.messages == {"sms": len(sent)} and roi.cost.message_source == "ledger"
    assert roi.cost.total == pytest.approx(0.05 * len(sent))
    assert roi.roi == pytest.approx((roi.revenue - roi.cost.total) / roi.cost.total)
    assert roi.roi_low < roi.roi < roi.roi_high
    assert "Incremental" in roi.note and "增量" in roi.note_zh
    row = roi_frame([roi]).iloc[0]
    assert row["kind"] == "incremental" and row["messages_by_channel"] == {"sms": len(sent)}
    store.dispose()


def test_no_control_group_is_attributed(tmp_path, db_url):
    store = _store(db_url)
    users, _, result = _send_campaign(store, tmp_path, 200, rules=Rules(quiet_start=time(0),
                                                                        quiet_end=time(0)))
    assert result.sent == 200
    _orders(store, users, set(users))
    events = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "campaign": "spring", "variant": "A",
                           "user_id": users[:3], "channel": "sms",
                           "type": ["impression", "conversion", "conversion"],
                           "value": [None, 40.0, 60.0], "time": SEND_AT.replace(tzinfo=None),
                           "attributes": "{}"})
    store.upsert("events", events)
    (roi,) = campaign_rois(store, prices=PRICES)
    assert roi.kind == "attributed" and roi.control == 0
    assert roi.revenue == roi.attributed_revenue == 100.0
    assert roi.revenue_low is None and roi.roi_low is None
    assert roi.cost.total == pytest.approx(0.05 * 200)
    assert roi.roi == pytest.approx((100.0 - 10.0) / 10.0)
    assert roi.note.startswith("Attributed, not incremental") and "归因值，而非增量" in roi.note_zh
    store.dispose()


def test_interval_covers_the_true_lift_about_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    covered, trials = 0, 120
    for seed in range(trials):
        control = rng.exponential(50, 150) * (rng.random(150) < 0.4)
        treated = rng.exponential(50, 300) * (rng.random(300) < 0.4) + 10.0
        _, low, high, _ = incremental_revenue(treated, control, n_boot=400, seed=seed)
        covered += low < 10.0 * 300 < high
    assert 0.88 <= covered / trials <= 0.995
    # large groups: the normal approximation, still around the true lift
    control = rng.exponential(50, 20_000) * (rng.random(20_000) < 0.4)
    treated = rng.exponential(50, 40_000) * (rng.random(40_000) < 0.4) + 5.0
    est, low, high, method = incremental_revenue(treated, control)
    assert method == "normal" and low < 200_000 < high and high - low < 0.5 * est
    with pytest.raises(ValueError):
        incremental_revenue(np.ones(3), np.zeros(0))
    assert incremental_revenue(np.ones(3), np.zeros(1))[1:] == (None, None, None)


def test_the_sample_campaign_is_attributed_and_costed_per_message(tmp_path):
    store = _store(f"sqlite:///{tmp_path / 'roi.db'}")
    for kind in ("customers", "products", "transactions", "events"):
        ingest_file(kind, sample_dir() / f"{kind}.csv", store=store, quarantine_dir=tmp_path)
    (roi,) = campaign_rois(store, prices=Prices.from_settings(Settings(home=tmp_path)))
    with open(sample_dir() / "events.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    imps = pd.Series([r["channel"] for r in rows if r["type"] == "impression"]).value_counts()
    revenue = sum(float(r["value"]) for r in rows if r["type"] == "conversion")
    s = Settings(home=tmp_path)
    cost = (imps["email"] * s.price_email + imps["sms"] * s.price_sms
            + imps["push"] * s.price_push + imps["social"] * 6.0 / 1000)
    assert roi.campaign == "spring-launch" and roi.kind == "attributed"
    assert roi.revenue == pytest.approx(revenue)
    assert roi.cost.total == pytest.approx(cost) and roi.cost.message_source == "impressions"
    assert roi.roi == pytest.approx((revenue - cost) / cost)
    store.dispose()


def test_api_and_dashboard_give_the_new_fields(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import re

    import httpx
    from test_api import Server, TemplateLLM, auth, keys_for, make_settings

    from adpilot.api.app import create_app

    db_url = f"sqlite:///{tmp_path / 'api.db'}"
    keys = keys_for(db_url)
    store = Store(db_url).init()
    users, granted, _ = _send_campaign(store, tmp_path, 600, rules=RULES)
    _orders(store, users, {u for u in granted if not RULES.in_holdout(u)
                           and not RULES.in_campaign_holdout("spring", u)})
    store.dispose()
    monkeypatch.setenv("ADPILOT_PRICE_SMS", "0.02")  # the settings' price, not a default
    app = create_app(make_settings(tmp_path, db_url), llm_backend=TemplateLLM())
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        got = http.get("/v1/reports/roi", headers=auth(keys["read"]))
        assert got.status_code == 200, got.text
        (item,) = got.json()["items"]
        assert item["kind"] == "incremental" and item["control"] > 0
        assert item["revenue_low"] < item["revenue"] < item["revenue_high"]
        assert item["cost"] == pytest.approx(0.02 * item["treated"])  # the app's settings
        assert item["messages_by_channel"] == {"sms": item["treated"]}
        assert item["note"].startswith("Incremental") and item["note_zh"].startswith("增量")
        form = http.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        login = http.post("/login", data={"csrf": csrf, "username": "admin",
                                          "password": "pw-for-tests", "next": "/roi"})
        assert login.status_code == 303
        page = http.get("/roi?lang=zh")
        assert page.status_code == 200, page.text[:500]
        assert 'data-kind="incremental"' in page.text and "增量：统计发送后" in page.text
        assert '<figure id="roi-chart"><svg' in page.text and "95% 区间" in page.text


def test_report_section_plots_and_tabulates_both_kinds(tmp_path):
    from adpilot.report import Report
    from adpilot.report.roi import roi_section

    store = _store(f"sqlite:///{tmp_path / 'report.db'}")
    users, granted, _ = _send_campaign(store, tmp_path, 400, rules=RULES)
    _orders(store, users, {u for u in granted if not RULES.in_holdout(u)
                           and not RULES.in_campaign_holdout("spring", u)})
    ingest_file("events", sample_dir() / "events.csv", store=store, quarantine_dir=tmp_path)
    report = Report("ROI")
    section = roi_section(report, store, prices=Prices.from_settings(Settings(home=tmp_path)))
    html = report.render()
    assert section.title == "ROI · 投资回报" and html.count("<svg") == 1
    assert "95% interval" in html and "attributed revenue (not incremental)" in html
    assert "spring-launch: Attributed, not incremental" in html
    assert "spring：增量" in html and "incremental" in html
    store.dispose()
