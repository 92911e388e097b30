"""Delivery after a crash (a send killed with SIGKILL and run again) and SMS opt-out replies, against
a real SMTP server on 127.0.0.1 and real stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import pytest

from adpilot.delivery import Message, get_channel, message_id
from adpilot.delivery.ledger import Ledger
from adpilot.delivery.pacing import ManualClock
from adpilot.delivery.replies import is_stop_reply, record_reply
from adpilot.delivery.rules import Rules
from adpilot.delivery.send import send
from adpilot.store import Store

pytest.importorskip("aiosmtpd")
from delivery_servers import SMTPServer  # noqa: E402
from test_delivery import NOON, SENDER, grant, sms_msg  # noqa: E402


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def sqlite_ledger(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'delivery.db'}").init()
    yield Ledger(store)
    store.dispose()


_CHILD = """
import sys
from datetime import time
from adpilot.delivery import Message, get_channel
from adpilot.delivery.ledger import Ledger
from adpilot.delivery.mime import Sender
from adpilot.delivery.pacing import TokenBucket
from adpilot.delivery.rules import Rules
from adpilot.delivery.send import send
from adpilot.store import Store
url, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sender = Sender(from_addr="news@acme.example", postal_address="1 Market St",
                public_url="https://acme.example", link_secret="s")
msgs = [Message(campaign="kill", user_id=f"u{i}", channel="email", to=f"user{i}@example.test",
                text="hi", approved=True) for i in range(n)]
no_quiet_hours = Rules(quiet_start=time(0), quiet_end=time(0))  # the real clock runs here
send(msgs, get_channel("smtp", url=url, sender=sender), Ledger(Store(db).init()),
     rate_limit=TokenBucket(40, burst=1), rules=no_quiet_hours)
"""


def test_send_killed_halfway_and_rerun_sends_each_at_most_once(tmp_path, smtp):
    n = 240
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    store = Store(db).init()
    ledger = Ledger(store)
    grant(ledger, (f"u{i}" for i in range(n)), at=datetime.now(UTC) - timedelta(days=1))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, smtp.url, db, str(n)])
    deadline = time.monotonic() + 300
    while len(smtp.handler.received) < n // 3:
        assert child.poll() is None, "the sender finished before it could be killed"
        assert time.monotonic() < deadline, "the sender never got a third of the way"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(60)
    before = len(smtp.handler.received)
    assert before < n
    msgs = [Message(campaign="kill", user_id=f"u{i}", channel="email", to=f"user{i}@example.test",
                    text="hi", approved=True) for i in range(n)]
    channel = get_channel("smtp", url=smtp.url, sender=SENDER)
    try:
        rerun = send(msgs, channel, ledger, rules=Rules(quiet_start=dtime(0), quiet_end=dtime(0)))
    finally:
        channel.close()
        store.dispose()
    counts = smtp.handler.by_recipient()
    assert max(counts.values()) == 1  # nobody twice
    unknown = {m for m, o in rerun.outcomes.items() if o == "unknown"}
    assert len(unknown) <= 1  # at most the one in flight when it died
    for i in range(n):
        mid = message_id("kill", f"u{i}")
        assert counts.get(f"user{i}@example.test") == 1 or mid in unknown
    assert rerun.accounted == n and rerun.skipped.get("already_sent", 0) >= before - 1


@pytest.mark.parametrize("text", ["STOP", " stop ", "Stop.", "退订", "TD", "td", "Ｔ", "取消！",
                                  "unsubscribe"])
def test_sms_opt_out_replies_suppress(sqlite_ledger, tmp_path, text):
    grant(sqlite_ledger, ["u1"], channel="sms")
    assert record_reply(sqlite_ledger, "u1", text, NOON)
    channel = get_channel("file", outbox=tmp_path / "out")
    result = send([sms_msg("c", 1)], channel, sqlite_ledger, clock=ManualClock(NOON))
    channel.close()
    assert result.skipped == {"sms_stop": 1}


@pytest.mark.parametrize("text", ["stop by our store", "几点关门？", "OK", "退订怎么操作", ""])
def test_other_replies_are_not_opt_outs(text):
    assert not is_stop_reply(text)


def test_two_senders_racing_on_one_batch_send_each_once(db_url, smtp):
    """Two senders (each its own engine, as two processes would be) run the same batch at once: the
    claim lets exactly one of them send each message."""
    import threading

    n = 150
    stores = [Store(db_url).init() for _ in range(2)]
    ledgers = [Ledger(s) for s in stores]
    grant(ledgers[0], (f"u{i}" for i in range(n)))
    msgs = [Message(campaign="race", user_id=f"u{i}", channel="email", to=f"user{i}@example.test",
                    text="hi", approved=True) for i in range(n)]
    results = [None, None]
    start = threading.Barrier(2)

    def run(k: int) -> None:
        channel = get_channel("smtp", url=smtp.url, sender=SENDER)
        start.wait()
        try:
            results[k] = send(msgs, channel, ledgers[k], clock=ManualClock(NOON), workers=2)
        finally:
            channel.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for s in stores:
        s.dispose()
    assert all(r is not None for r in results), "a sender did not finish"
    assert smtp.handler.by_recipient() == {f"user{i}@example.test": 1 for i in range(n)}
    assert results[0].sent + results[1].sent == n
    for r in results:
        # a message the other sender had in flight while this one planned is unknown to this one
        assert r.accounted == n and r.failed == 0
        assert r.sent + r.unknown + r.skipped.get("already_sent", 0) + r.skipped.get(
            "claimed_elsewhere", 0) == n
