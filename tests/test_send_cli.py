"""Sending a stored campaign (issue 20, shells): audience, approval gate, consent and caps, the
decision log, ``adpilot send`` / ``adpilot campaign list|approve``, against a real SMTP server
(aiosmtpd on 127.0.0.1) and real stores."""

from __future__ import annotations

import csv
import email
import email.policy
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from adpilot.cli import main
from adpilot.data.ingest import ingest_file
from adpilot.delivery import get_channel, message_id
from adpilot.delivery.campaign_send import audience_ids, send_campaign
from adpilot.delivery.ledger import Ledger
from adpilot.delivery.mime import Sender
from adpilot.delivery.pacing import ManualClock
from adpilot.errors import ConfigError, InputError
from adpilot.optimization.campaigns import DECISIONS, VARIANTS, Campaigns
from adpilot.store import Store

pytest.importorskip("aiosmtpd")
from delivery_servers import SMTPServer  # noqa: E402

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SENDER = Sender(from_addr="Acme <news@acme.example>", postal_address="1 Market St, Springfield",
                public_url="https://acme.example", link_secret="test-link-secret")
COPY_A = {"subject": "Spring is here", "body": "Our new linen shirts are in.", "lang": "en",
          "passed": True}
COPY_B = {"subject": "Unreviewed subject", "body": "Copy nobody approved.", "lang": "en",
          "passed": False}


def noon_zone(now: datetime | None = None) -> str:
    """An IANA zone where it is about midday now (no quiet hours whenever the test runs)."""
    hour = (now or datetime.now(UTC)).hour
    offset = (12 - hour + 12) % 24 - 12  # in [-12, 11]
    return "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}" if offset < 0 else "")


def make_audience(tmp_path, store: Store, n: int, *, zone: str = "UTC") -> dict[str, set[str]]:
    """``n`` customers ingested from files: 5% never gave e-mail consent, 2% (with consent)
    unsubscribed, the rest eligible; one in 200 with consent has no e-mail address."""
    ids = [f"U{i:05d}" for i in range(n)]
    no_consent = {u for i, u in enumerate(ids) if i % 20 == 0}
    unsubscribed = {u for i, u in enumerate(ids) if i % 50 == 1}
    no_email = {u for i, u in enumerate(ids) if i % 200 == 7}
    with (tmp_path / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "age", "region", "preferred_language", "email", "timezone"])
        for u in ids:
            w.writerow([u, 30, "London", "en", "" if u in no_email else f"{u.lower()}@example.test",
                        zone])
    with (tmp_path / "consents.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "channel", "granted", "at", "source"])
        for u in ids:
            if u not in no_consent:
                w.writerow([u, "email", "true", "2026-01-05T10:00:00Z", "signup"])
    for kind in ("customers", "consents"):
        got = ingest_file(kind, tmp_path / f"{kind}.csv", store=store)
        assert got.kept == got.read, got.summary()
    ledger = Ledger(store)
    for u in unsubscribed:
        ledger.suppress(u, "email", "unsubscribed", NOON - timedelta(days=2), source="test")
    eligible = set(ids) - no_consent - unsubscribed - no_email
    return {"ids": set(ids), "eligible": eligible, "no_consent": no_consent,
            "unsubscribed": unsubscribed, "no_email": no_email - no_consent - unsubscribed}


def recipients(smtp) -> dict[str, int]:
    return dict(smtp.handler.by_recipient())


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def outbox_rows(outbox) -> list[dict]:
    with (outbox / "outbox.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_ten_thousand_each_eligible_once_gate_and_cap(tmp_path, store):
    n = 10_000
    who = make_audience(tmp_path, store, n)
    camps = Campaigns(store)
    cid = camps.create("Spring", ["A", "B"], channel="email", policy="fixed",
                       copies={"A": COPY_A, "B": COPY_B})
    assert camps.approve(cid, all_passed=True) == ["A"]  # B failed a guardrail: not approved
    assert camps.approve(cid, all_passed=True) == []  # nothing new the second time
    clock = ManualClock(NOON)
    outbox = tmp_path / "outbox"

    def send_now(campaign: str) -> dict:
        channel = get_channel("file", outbox=outbox, sender=SENDER)
        try:
            return send_campaign(store, campaign, channel, clock=clock).to_dict()
        finally:
            channel.close()

    counts = send_now(cid)
    assert counts["planned"] == n
    assert counts["sent"] == len(who["eligible"])
    assert counts["skipped"] == {"no_consent": len(who["no_consent"]),
                                 "unsubscribed": len(who["unsubscribed"]),
                                 "no_address": len(who["no_email"])}
    assert counts["deferred"] == {} and counts["failed"] == counts["unknown"] == 0
    assert counts["sent"] + sum(counts["skipped"].values()) == counts["planned"]
    rows = outbox_rows(outbox)
    assert sorted(r["name"] for r in rows) == sorted(who["eligible"])  # exactly one each
    assert sorted(p.stem for p in outbox.glob("*.eml")) == sorted(
        message_id(cid, u) for u in who["eligible"])
    # the gate: only the approved variant's copy went out
    assert {(r["variant"], r["subject"]) for r in rows} == {("A", COPY_A["subject"])}
    assert counts["variants"] == {"A": len(who["eligible"])}
    # every message sent is a logged decision with its propensity (feedback attributes to it)
    with store.engine.connect() as conn:
        logged = conn.execute(select(DECISIONS.c.user_id, DECISIONS.c.variant,
                                     DECISIONS.c.propensity)
                              .where(DECISIONS.c.campaign_id == cid)).all()
    assert sorted(r.user_id for r in logged) == sorted(who["eligible"])
    assert {(r.variant, r.propensity) for r in logged} == {("A", 1.0)}

    again = send_now(cid)  # a rerun sends nothing again and logs no decision twice
    assert again["sent"] == 0 and again["skipped"]["already_sent"] == len(who["eligible"])
    with store.engine.connect() as conn:
        assert conn.execute(select(DECISIONS.c.decision_id)).all().__len__() == len(logged)

    # a second campaign the same day: everyone who got one is at their daily cap
    second = camps.create("Flash sale", ["X"], channel="email", copies={"X": COPY_A}, approved=True)
    clock.advance(hours=3)
    capped = send_now(second)
    assert capped["sent"] == 0
    assert capped["skipped"]["frequency_cap"] == len(who["eligible"])
    assert len(outbox_rows(outbox)) == len(who["eligible"])  # nothing more written


def test_unapproved_variants_are_never_sent_until_approved(tmp_path, store):
    who = make_audience(tmp_path, store, 200)
    camps = Campaigns(store)
    cid = camps.create("Gate", ["A"], channel="email", copies={"A": COPY_A})
    clock = ManualClock(NOON)
    outbox = tmp_path / "outbox"
    channel = get_channel("file", outbox=outbox, sender=SENDER)
    gated = send_campaign(store, cid, channel, clock=clock).to_dict()
    assert gated["planned"] == 200 and gated["skipped"] == {"not_approved": 200}
    assert gated["sent"] == 0 and not list(outbox.glob("*.eml"))
    assert Ledger(store).status_counts(cid) == {}
    camps.approve(cid, "A")
    sent = send_campaign(store, cid, channel, clock=clock).to_dict()
    channel.close()
    assert sent["sent"] == len(who["eligible"])
    assert sorted(p.stem for p in outbox.glob("*.eml")) == sorted(
        message_id(cid, u) for u in who["eligible"])


def test_audience_language_and_no_variant(tmp_path, store):
    who = make_audience(tmp_path, store, 100)
    ids = sorted(who["ids"])
    (tmp_path / "few.txt").write_text("\n".join(ids[:7]) + "\n", encoding="utf-8")
    assert audience_ids(store, str(tmp_path / "few.txt")) == ids[:7]
    (tmp_path / "bad.csv").write_text("customer_id\nU00001\nNOPE\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.csv: row 3, column customer_id: 'NOPE'"):
        audience_ids(store, str(tmp_path / "bad.csv"))
    with pytest.raises(ConfigError, match="segments"):
        audience_ids(store, "segment:S1")
    camps = Campaigns(store)
    # only Chinese copy: these English-speaking customers fit no variant
    cid = camps.create("ZH only", ["Z"], channel="email", approved=True,
                       copies={"Z": {"subject": "春季上新", "body": "新款亚麻衬衫到货。", "lang": "zh"}})
    got = send_campaign(store, cid, None, dry_run=True, clock=ManualClock(NOON),
                        audience=str(tmp_path / "few.txt")).to_dict()
    assert got == {"campaign": cid, "channel": "email", "dry_run": True, "planned": 7, "sent": 0,
                   "skipped": {"no_variant": 7}, "deferred": {}, "failed": 0, "unknown": 0,
                   "variants": {}, "would_send": 0}
    camps.set_status(cid, "paused")
    with pytest.raises(ConfigError, match="paused"):
        send_campaign(store, cid, None, dry_run=True)


def test_approval_columns_added_to_an_older_variants_table(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    with store.engine.begin() as conn:  # the table as it was before the approval gate
        conn.execute(text("CREATE TABLE campaign_variants (campaign_id VARCHAR(64) NOT NULL, "
                          "variant VARCHAR(128) NOT NULL, channel VARCHAR(32), copy TEXT NOT NULL, "
                          "status VARCHAR(16) NOT NULL, created_at DATETIME NOT NULL, "
                          "PRIMARY KEY (campaign_id, variant))"))
        conn.execute(text("INSERT INTO campaign_variants VALUES ('old', 'A', 'email', '{}', "
                          "'active', '2025-01-01 00:00:00')"))
    Campaigns(store)
    Campaigns(store)  # a second process finds the columns there
    with store.engine.connect() as conn:
        row = conn.execute(select(VARIANTS.c.approved, VARIANTS.c.approved_at)).one()
    assert row.approved is False and row.approved_at is None  # old variants start unapproved
    store.dispose()


def test_cli_send_list_approve_json(tmp_path, monkeypatch, capsys, smtp):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url).init()
    who = make_audience(tmp_path, store, 300, zone=noon_zone())
    cid = Campaigns(store).create("CLI", ["A", "B"], channel="email",
                                  copies={"A": COPY_A, "B": COPY_B})
    store.dispose()
    for key, value in {"ADPILOT_SMTP_URL": smtp.url, "ADPILOT_SMTP_FROM": "Acme <news@acme.example>",
                       "ADPILOT_POSTAL_ADDRESS": "1 Market St", "ADPILOT_PUBLIC_URL": "https://acme.example",
                       "ADPILOT_LINK_SECRET": "s3cret"}.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> dict:
        capsys.readouterr()
        assert main([*args, "--db", url, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    listed = run("campaign", "list")["items"]
    assert [(v["variant"], v["approved"], v["passed"]) for v in listed[0]["variants"]] == [
        ("A", False, True), ("B", False, False)]
    assert run("campaign", "approve", "--campaign", cid, "--all-passed") == {
        "campaign": cid, "approved": ["A"]}
    dry = run("send", "--campaign", cid, "--provider", "smtp", "--dry-run", "--limit", "100")
    assert dry["dry_run"] is True and dry["planned"] == 100 and dry["sent"] == 0
    assert dry["would_send"] + sum(dry["skipped"].values()) + sum(dry["deferred"].values()) == 100
    assert recipients(smtp) == {}  # a dry run sends nothing
    doc = run("send", "--campaign", cid, "--provider", "smtp", "--channel", "email")
    assert set(doc) == {"campaign", "channel", "dry_run", "planned", "sent", "skipped", "deferred",
                        "failed", "unknown", "variants"}
    assert doc["planned"] == 300 == (doc["sent"] + sum(doc["skipped"].values())
                                     + sum(doc["deferred"].values()) + doc["failed"] + doc["unknown"])
    got = recipients(smtp)
    assert doc["sent"] == len(who["eligible"]) == len(got) and set(got.values()) == {1}
    assert set(got) == {f"{u.lower()}@example.test" for u in who["eligible"]}
    subjects = {email.message_from_bytes(m.content, policy=email.policy.default)["Subject"]
                for m in smtp.handler.received}
    assert subjects == {COPY_A["subject"]}  # never the unapproved B
    assert main(["send", "--campaign", "nope", "--db", url]) != 0  # unknown campaign: an error line
    assert main(["campaign", "approve", "--campaign", cid, "--db", url]) != 0  # neither V nor all
