"""The delivery stage against real servers on 127.0.0.1 (aiosmtpd, a uvicorn SMS gateway) and real
stores: consent, suppression, caps, quiet hours, control group, exactly once, retries, bounces."""

from __future__ import annotations

import csv
import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from adpilot.data.csv_safe import unescape_cell
from adpilot.delivery import Message, get_channel, message_id
from adpilot.delivery.ledger import Ledger
from adpilot.delivery.links import verify
from adpilot.delivery.mime import Sender
from adpilot.delivery.pacing import ManualClock, RetryPolicy, TokenBucket
from adpilot.delivery.rules import Rules
from adpilot.delivery.send import send
from adpilot.errors import ConfigError
from adpilot.store import Store

pytest.importorskip("aiosmtpd")
from delivery_servers import GatewayServer, SMTPServer  # noqa: E402

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SENDER = Sender(from_addr="Acme 商店 <news@acme.example>", postal_address="1 Market St, Springfield",
                public_url="https://acme.example", link_secret="test-link-secret")
SECRET = "gateway-secret"


def email_msg(campaign: str, i: int, **kw) -> Message:
    base = dict(campaign=campaign, variant="A", user_id=f"u{i}", channel="email",
                to=f"user{i}@example.test", subject=f"Hello {i}", text=f"Offer for {i}",
                html=f"<p>Offer for <b>{i}</b></p>", approved=True)
    base.update(kw)
    return Message(**base)


def sms_msg(campaign: str, i: int, **kw) -> Message:
    base = dict(campaign=campaign, user_id=f"u{i}", channel="sms", to=f"+8613800{i:06d}",
                text=f"优惠 {i}", lang="zh", approved=True)
    base.update(kw)
    return Message(**base)


def grant(ledger: Ledger, users, channel="email", at=NOON - timedelta(days=30)) -> None:
    ledger.record_consents({"user_id": u, "channel": channel, "granted": True, "at": at,
                            "source": "signup"} for u in users)


@pytest.fixture
def sqlite_ledger(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'delivery.db'}").init()
    yield Ledger(store)
    store.dispose()


@pytest.fixture
def ledger(store):
    return Ledger(store)


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def gateway():
    with GatewayServer(SECRET) as server:
        yield server


def test_message_id_is_deterministic_and_checked():
    a = email_msg("c1", 1)
    assert a.message_id == message_id("c1", "u1", 0) == email_msg("c1", 1, text="other").message_id
    assert a.message_id != email_msg("c2", 1).message_id != email_msg("c1", 1, step=1).message_id
    with pytest.raises(ValueError, match="is not the id"):
        email_msg("c1", 1, message_id="0" * 32)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        email_msg("c1", 1, timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown delivery channel 'fax'"):
        get_channel("fax")


def test_ten_thousand_to_file_outbox_counts_add_up(sqlite_ledger, tmp_path):
    n = 10_000
    no_consent = {i for i in range(n) if i % 20 == 0}  # 5%
    unsubscribed = {i for i in range(n) if i % 50 == 1}  # 2%, all with consent
    # half the 5% never gave consent; the other half withdrew it (the latest record wins), and
    # another 5% withdrew and then gave it again
    grant(sqlite_ledger, (f"u{i}" for i in range(n) if i % 40 != 0))
    sqlite_ledger.record_consents(
        [{"user_id": f"u{i}", "channel": "email", "granted": False, "at": NOON - timedelta(days=3)}
         for i in range(n) if i % 20 in (0, 5)]
        + [{"user_id": f"u{i}", "channel": "email", "granted": True, "at": NOON - timedelta(days=1)}
           for i in range(n) if i % 20 == 5])
    for i in unsubscribed:
        sqlite_ledger.suppress(f"u{i}", "email", "unsubscribed", NOON, source="test")
    outbox = tmp_path / "outbox"
    channel = get_channel("file", outbox=outbox, sender=SENDER)
    msgs = [email_msg("spring", i, subject="=HYPERLINK(\"x\")" if i == 7 else f"Hello {i}")
            for i in range(n)]
    result = send(msgs, channel, sqlite_ledger, clock=ManualClock(NOON))
    channel.close()

    eligible = set(range(n)) - no_consent - unsubscribed
    assert result.to_dict() == {"planned": n, "sent": len(eligible),
                                "skipped": {"no_consent": 500, "unsubscribed": 200},
                                "deferred": {}, "failed": 0, "unknown": 0}
    assert result.accounted == result.planned
    emls = sorted(p.stem for p in outbox.glob("*.eml"))
    assert emls == sorted(message_id("spring", f"u{i}") for i in eligible)
    with (outbox / "outbox.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["name"] for r in rows) == sorted(f"u{i}" for i in eligible)  # each exactly once
    assert list(rows[0])[:3] == ["email", "name", "attributes"]
    row7 = next(r for r in rows if r["name"] == "u7")
    assert row7["subject"].startswith("'=") and unescape_cell(row7["subject"]) == "=HYPERLINK(\"x\")"
    assert sqlite_ledger.status_counts("spring") == {"sent": len(eligible)}


def test_smtp_each_received_once_with_headers_and_rerun_sends_nothing(ledger, smtp):
    n = 300
    grant(ledger, (f"u{i}" for i in range(n)))
    msgs = [email_msg("welcome", i, **({"lang": "zh", "subject": "欢迎 新品"} if i % 3 == 0 else {}))
            for i in range(n)]
    channel = get_channel("smtp", url=smtp.url, sender=SENDER)
    try:
        result = send(msgs, channel, ledger, clock=ManualClock(NOON))
        assert result.sent == n and result.accounted == n
        assert channel.connections_opened == 1  # one connection reused for every message
        rerun = send(msgs, channel, ledger, clock=ManualClock(NOON + timedelta(hours=1)))
    finally:
        channel.close()
    assert rerun.to_dict()["sent"] == 0 and rerun.skipped == {"already_sent": n}
    counts = smtp.handler.by_recipient()
    assert counts == {f"user{i}@example.test": 1 for i in range(n)}
    ids = set()
    for received in smtp.handler.received:
        mail = email.message_from_bytes(received.content, policy=email.policy.default)
        assert received.mail_from == "news@acme.example"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = mail["List-Unsubscribe"].strip("<>")
        assert url.startswith("https://acme.example/u/")
        claims = verify(url.rsplit("/", 1)[1], "test-link-secret", "unsubscribe")
        assert claims is not None and claims.message_id == mail["X-Adpilot-Message-Id"]
        ids.add(mail["Message-ID"])
        assert mail.get_content_type() == "multipart/alternative"
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert "1 Market St, Springfield" in text and "1 Market St, Springfield" in html
        if mail["Subject"] == "欢迎 新品":
            assert "退订" in text and "退订" in html
        else:
            assert "Unsubscribe" in text and "<b>" in html
    assert len(ids) == n  # a unique Message-ID each


def test_in_flight_is_unknown_over_smtp_but_resent_over_webhook(ledger, smtp, gateway):
    grant(ledger, ["u1", "u2"])
    grant(ledger, ["u1", "u2"], channel="sms")
    # a run that died during the provider call leaves its claim behind (one message per
    # campaign, user and step whatever its channel, so the SMS is another campaign's)
    stuck_mail, stuck_sms = email_msg("c", 1), sms_msg("s", 1)
    assert sms_msg("c", 1).message_id == stuck_mail.message_id
    assert ledger.claim(stuck_mail, "smtp", NOON - timedelta(minutes=5))
    assert ledger.claim(stuck_sms, "webhook", NOON - timedelta(minutes=5))
    assert not ledger.claim(stuck_mail, "smtp", NOON)  # a second claimant loses

    mail = get_channel("smtp", url=smtp.url, sender=SENDER)
    try:
        result = send([stuck_mail, email_msg("c", 2)], mail, ledger, clock=ManualClock(NOON))
        again = send([stuck_mail], mail, ledger, clock=ManualClock(NOON + timedelta(hours=2)))
    finally:
        mail.close()
    assert (result.sent, result.unknown, result.accounted) == (1, 1, 2)
    assert again.unknown == 1 and again.sent == 0
    assert smtp.handler.by_recipient() == {"user2@example.test": 1}  # never resent
    assert ledger.rows([stuck_mail.message_id])[stuck_mail.message_id].status == "unknown"

    sms = get_channel("webhook", url=gateway.url, secret=SECRET)
    try:
        result = send([stuck_sms, sms_msg("s", 2)], sms, ledger, clock=ManualClock(NOON))
        rerun = send([stuck_sms, sms_msg("s", 2)], sms, ledger, clock=ManualClock(NOON))
    finally:
        sms.close()
    assert result.sent == 2 and rerun.skipped == {"already_sent": 2}
    keys = [key for key, ok in gateway.gateway.requests]
    assert keys == [stuck_sms.message_id, sms_msg("s", 2).message_id]  # idempotency key = message id
    assert all(ok for _, ok in gateway.gateway.requests)
    assert gateway.gateway.delivered[stuck_sms.message_id]["text"] == "优惠 1"


def test_smtp_connection_lost_during_data_is_unknown_and_never_resent(ledger, smtp):
    grant(ledger, ["u1", "u2"])
    smtp.handler.drop_in_data = {"user1@example.test"}
    channel = get_channel("smtp", url=smtp.url, sender=SENDER)
    try:
        first = send([email_msg("c", 1), email_msg("c", 2)], channel, ledger, clock=ManualClock(NOON))
        again = send([email_msg("c", 1), email_msg("c", 2)], channel, ledger,
                     clock=ManualClock(NOON + timedelta(hours=1)))
    finally:
        channel.close()
    mid = email_msg("c", 1).message_id
    assert first.outcomes == {mid: "unknown", email_msg("c", 2).message_id: "sent"}
    assert "during DATA" in first.reasons[mid]
    assert again.unknown == 1 and again.skipped == {"already_sent": 1}
    assert smtp.handler.by_recipient() == {"user1@example.test": 1, "user2@example.test": 1}


def test_webhook_signature_retries_and_permanent_failures(ledger, gateway):
    grant(ledger, ["u1", "u2", "u3"], channel="sms")
    flaky, refused = sms_msg("c", 1), sms_msg("c", 2)
    gateway.gateway.scripted = {flaky.message_id: [503, 429], refused.message_id: [422]}
    clock = ManualClock(NOON)
    sms = get_channel("webhook", url=gateway.url, secret=SECRET)
    bad = get_channel("webhook", url=gateway.url, secret="wrong-secret")
    try:
        result = send([flaky, refused], sms, ledger, clock=clock, retry=RetryPolicy(seed=3))
        forged = send([sms_msg("c", 3)], bad, ledger, clock=clock, retry=RetryPolicy(seed=3))
    finally:
        sms.close()
        bad.close()
    assert result.outcomes == {flaky.message_id: "sent", refused.message_id: "failed"}
    assert len(clock.sleeps) == 2 and all(s >= 0 for s in clock.sleeps)  # two retries, no real sleep
    assert "HTTP 422" in result.reasons[refused.message_id]
    assert forged.failed == 1 and "HTTP 401" in next(iter(forged.reasons.values()))
    assert list(gateway.gateway.delivered) == [flaky.message_id]


def test_smtp_4xx_is_retried_and_5xx_is_a_bounce(ledger, smtp):
    grant(ledger, ["u1", "u2", "u3"])
    smtp.handler.scripted = {"user1@example.test": ["451 4.7.1 greylisted", "421 4.3.2 busy"],
                             "user2@example.test": ["550 5.1.1 no such user"]}
    clock = ManualClock(NOON)
    channel = get_channel("smtp", url=smtp.url, sender=SENDER)
    try:
        result = send([email_msg("c", i) for i in (1, 2, 3)], channel, ledger, clock=clock,
                      retry=RetryPolicy(attempts=4, seed=1))
        later = send([email_msg("d", 2)], channel, ledger,
                     clock=ManualClock(NOON + timedelta(days=3)))
    finally:
        channel.close()
    assert (result.sent, result.failed) == (2, 1)
    assert smtp.handler.rcpt_attempts["user1@example.test"] == 3 and len(clock.sleeps) == 2
    assert smtp.handler.by_recipient() == {"user1@example.test": 1, "user3@example.test": 1}
    assert "550" in result.reasons[email_msg("c", 2).message_id]
    assert ledger.suppressed("email") == {"u2": "bounced"}
    assert later.skipped == {"bounced": 1}


def test_frequency_cap_across_campaigns(sqlite_ledger, tmp_path):
    users = range(5)
    grant(sqlite_ledger, (f"u{i}" for i in users))
    channel = get_channel("file", outbox=tmp_path / "out")
    first = send([email_msg("a", i) for i in users], channel, sqlite_ledger, clock=ManualClock(NOON))
    same_day = send([email_msg("b", i) for i in users], channel, sqlite_ledger,
                    clock=ManualClock(NOON + timedelta(hours=3)))
    next_day = send([email_msg("b", i) for i in users], channel, sqlite_ledger,
                    clock=ManualClock(NOON + timedelta(hours=25)))
    third = send([email_msg("c", i) for i in users], channel, sqlite_ledger,
                 clock=ManualClock(NOON + timedelta(days=2, hours=2)))
    fourth = send([email_msg("e", i) for i in users], channel, sqlite_ledger,
                  clock=ManualClock(NOON + timedelta(days=3, hours=2)))  # 4th in a week: over 3
    loose = send([email_msg("e", i) for i in users], channel, sqlite_ledger,
                 rules=Rules(caps={timedelta(days=1): 1}),
                 clock=ManualClock(NOON + timedelta(days=3, hours=2)))
    channel.close()
    assert first.sent == 5 and same_day.skipped == {"frequency_cap": 5} and same_day.sent == 0
    assert next_day.sent == 5 and third.sent == 5
    assert fourth.skipped == {"frequency_cap": 5} and loose.sent == 5
    # the cap counts messages on the same channel only
    grant(sqlite_ledger, ["u0"], channel="sms")
    sms = send([sms_msg("s", 0)], channel, sqlite_ledger, clock=ManualClock(NOON + timedelta(hours=3)))
    assert sms.sent == 1


def test_quiet_hours_defer_and_a_later_run_sends(sqlite_ledger, tmp_path):
    grant(sqlite_ledger, ["u1", "u2"])
    late_night = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai, 15:00 in London
    msgs = [email_msg("c", 1, timezone="Asia/Shanghai"), email_msg("c", 2, timezone="Europe/London")]
    channel = get_channel("file", outbox=tmp_path / "out")
    night = send(msgs, channel, sqlite_ledger, clock=ManualClock(late_night))
    morning = send(msgs, channel, sqlite_ledger,
                   clock=ManualClock(late_night + timedelta(hours=9, minutes=30)))
    channel.close()
    assert night.to_dict()["deferred"] == {"quiet_hours": 1} and night.sent == 1
    assert night.outcomes[msgs[0].message_id] == "deferred:quiet_hours"
    assert morning.sent == 1 and morning.outcomes[msgs[0].message_id] == "sent"  # 08:30 there
    assert morning.skipped == {"already_sent": 1}
    assert Rules().quiet(datetime(2026, 6, 1, 23, 59, tzinfo=UTC), None)
    assert not Rules().quiet(datetime(2026, 6, 1, 8, 0, tzinfo=UTC), None)


def test_control_group_is_stable_and_never_messaged(sqlite_ledger, tmp_path):
    n = 2_000
    grant(sqlite_ledger, (f"u{i}" for i in range(n)))
    rules = Rules(holdout_share=0.1, caps={})
    channel = get_channel("file", outbox=tmp_path / "out")
    first = send([email_msg("a", i) for i in range(n)], channel, sqlite_ledger, rules=rules,
                 clock=ManualClock(NOON))
    second = send([email_msg("b", i) for i in range(n)], channel, sqlite_ledger, rules=rules,
                  clock=ManualClock(NOON))
    held = {m for m, o in first.outcomes.items() if o == "skipped:holdout"}
    assert 200 - 60 < len(held) < 200 + 60  # binomial(2000, 0.1): ±4.5 sd
    assert second.skipped == {"holdout": len(held)} and first.sent == n - len(held)
    sent_users = {u for u in range(n) if first.outcomes[message_id("a", f"u{u}")] == "sent"}
    assert {message_id("b", f"u{u}") for u in sent_users} == {
        m for m, o in second.outcomes.items() if o == "sent"}
    recorded = sqlite_ledger.holdouts("a")
    assert {message_id("a", u) for u in recorded} == held and set(recorded.values()) == {"holdout"}
    # a per-campaign holdout on top: different customers in each campaign, recorded as such
    per = Rules(campaign_holdout_share=0.2, caps={})
    c, d = (send([email_msg(k, i) for i in range(n)], channel, sqlite_ledger, rules=per,
                 clock=ManualClock(NOON)) for k in "cd")
    channel.close()
    held_c = set(sqlite_ledger.holdouts("c"))
    held_d = set(sqlite_ledger.holdouts("d"))
    assert 400 - 90 < len(held_c) < 400 + 90 and c.skipped == {"campaign_holdout": len(held_c)}
    assert d.skipped == {"campaign_holdout": len(held_d)} and held_c != held_d


def test_not_approved_and_no_address_are_skipped(sqlite_ledger, tmp_path):
    grant(sqlite_ledger, ["u1", "u2", "u3"])
    channel = get_channel("file", outbox=tmp_path / "out")
    result = send([email_msg("c", 1, approved=False), email_msg("c", 2, to=None), email_msg("c", 3),
                   email_msg("c", 3)], channel, sqlite_ledger, clock=ManualClock(NOON))
    channel.close()
    assert result.to_dict() == {"planned": 4, "sent": 1, "skipped": {
        "duplicate": 1, "no_address": 1, "not_approved": 1}, "deferred": {}, "failed": 0, "unknown": 0}


def test_token_bucket_paces_on_the_clock(sqlite_ledger, tmp_path):
    grant(sqlite_ledger, (f"u{i}" for i in range(30)))
    clock = ManualClock(NOON)
    channel = get_channel("file", outbox=tmp_path / "out")
    result = send([email_msg("c", i) for i in range(30)], channel, sqlite_ledger, clock=clock,
                  rate_limit=TokenBucket(10, burst=10, clock=clock), rules=Rules(caps={}))
    channel.close()
    assert result.sent == 30
    assert sum(clock.sleeps) == pytest.approx(2.0, abs=0.01)  # 10 at once, then 10 a second


def test_concurrent_workers_send_each_once_over_reused_connections(ledger, smtp):
    n = 120
    grant(ledger, (f"u{i}" for i in range(n)))
    channel = get_channel("smtp", url=smtp.url, sender=SENDER)
    try:
        result = send([email_msg("w", i) for i in range(n)], channel, ledger, workers=4,
                      clock=ManualClock(NOON))
    finally:
        channel.close()
    assert result.sent == n
    assert smtp.handler.by_recipient() == {f"user{i}@example.test": 1 for i in range(n)}
    assert 1 <= channel.connections_opened <= 4  # one per worker thread at most
