"""Delivery throughput on loopback: messages per second to a local SMTP server (aiosmtpd, in its own
process) through :func:`adpilot.delivery.send.send` — ledger, rules, one reused connection per
worker thread — against a plain ``smtplib`` loop sending the same rendered messages in the same run
(a new connection per message, as a naive script does, and, for honesty, one reused connection);
the same through the webhook channel to a small uvicorn gateway (own process, checks the HMAC);
and the cost of the send ledger per message (claim before the provider call + finish after), on
SQLite and, when ``ADPILOT_TEST_PG_URL`` is set, PostgreSQL. Medians of ``--repeat`` runs.

    nice .venv/bin/python benchmarks/delivery.py [--messages 1000] [--workers 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from adpilot.delivery import Message, get_channel
from adpilot.delivery.ledger import Ledger
from adpilot.delivery.mime import Sender, render_email
from adpilot.delivery.rules import Rules
from adpilot.delivery.send import send
from adpilot.store import Store

OUT = Path(__file__).parent / "results" / "delivery.json"
SENDER = Sender(from_addr="Bench <bench@bench.example>", postal_address="1 Bench Road",
                public_url="https://bench.example", link_secret="bench")
SECRET = "bench-secret"
# every run sends new campaigns: no caps or quiet hours so only delivery is measured
RULES = Rules(caps={}, quiet_start=dtime(0), quiet_end=dtime(0))

_SMTP_SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller
LATENCY = float(sys.argv[2])
class H:
    async def handle_DATA(self, server, session, envelope):
        if LATENCY:
            await asyncio.sleep(LATENCY)  # a provider's answer time (queueing, spam checks)
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1])); c.start()
print("ready", flush=True)
sys.stdin.read()
"""

_GATEWAY = """
import asyncio, sys, uvicorn
sys.path.insert(0, sys.argv[2])
from adpilot.delivery.channels.webhook import verify_signature
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive(); body += m.get("body", b"")
        if not m.get("more_body"): break
    h = dict(scope["headers"])
    ok = verify_signature(body, h.get(b"x-adpilot-signature", b"").decode(), sys.argv[3])
    if float(sys.argv[4]):
        await asyncio.sleep(float(sys.argv[4]))
    await send({"type": "http.response.start", "status": 200 if ok else 401, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def messages(campaign: str, n: int, channel: str = "email") -> list[Message]:
    to = (lambda i: f"user{i}@bench.example") if channel == "email" else (lambda i: f"+86138{i:08d}")
    return [Message(campaign=campaign, variant="A", user_id=f"u{i}", channel=channel, to=to(i),
                    subject=f"Offer {i}", text=f"Hello {i}, our spring offer.", html=f"<p>Hello {i}</p>",
                    approved=True) for i in range(n)]


def plain_loop(url_port: int, rendered: list[tuple[str, bytes]], *, reuse: bool) -> float:
    """Seconds for a plain smtplib loop over the pre-rendered messages."""
    t = time.perf_counter()
    if reuse:
        with smtplib.SMTP("127.0.0.1", url_port) as conn:
            for to, data in rendered:
                conn.sendmail(SENDER.address, [to], data)
    else:
        for to, data in rendered:
            with smtplib.SMTP("127.0.0.1", url_port) as conn:
                conn.sendmail(SENDER.address, [to], data)
    return time.perf_counter() - t


def adpilot_send(channel_factory, ledger: Ledger, msgs: list[Message], workers: int) -> tuple[float, int]:
    channel = channel_factory()
    t = time.perf_counter()
    result = send(msgs, channel, ledger, rules=RULES, workers=workers)
    channel.close()
    return time.perf_counter() - t, result.sent


def ledger_cost(url: str, n: int) -> dict:
    """Microseconds per message for claim + finish, alone (no provider)."""
    from adpilot.delivery.base import Receipt

    store = Store(url).init()
    ledger = Ledger(store)
    msgs = messages(f"ledger-{time.time_ns()}", n)
    now = datetime.now(UTC)
    t = time.perf_counter()
    for m in msgs:
        ledger.claim(m, "bench", now)
        ledger.finish(Receipt(message_id=m.message_id, status="sent"), now)
    dt = time.perf_counter() - t
    store.dispose()
    return {"messages": n, "us_per_message": round(dt / n * 1e6, 1)}


def run_at_latency(args, latency: float, tmp: Path) -> dict:
    """Every measurement against servers that take ``latency`` seconds to accept a message."""
    n = args.messages
    smtp_port, gw_port = free_port(), free_port()
    src = str(Path(__file__).resolve().parents[1] / "src")
    smtp_proc = subprocess.Popen([sys.executable, "-c", _SMTP_SERVER, str(smtp_port), str(latency)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    gw_proc = subprocess.Popen([sys.executable, "-c", _GATEWAY, str(gw_port), src, SECRET, str(latency)])
    tag = f"{int(latency * 1000)}ms"
    try:
        assert smtp_proc.stdout.readline().strip() == "ready"
        wait_port(smtp_port)
        wait_port(gw_port)
        store = Store(f"sqlite:///{tmp / f'bench-{tag}.db'}").init()
        ledger = Ledger(store)
        at = datetime.now(UTC) - timedelta(days=1)
        for kind in ("email", "sms"):
            ledger.record_consents({"user_id": f"u{i}", "channel": kind, "granted": True, "at": at}
                                   for i in range(n))
        smtp_url = f"smtp://127.0.0.1:{smtp_port}"
        many = f"{args.workers}_workers"
        runs: dict[str, list[float]] = {k: [] for k in (
            "smtplib_new_connection_each", "smtplib_one_connection", "adpilot_smtp_1_worker",
            f"adpilot_smtp_{many}", "adpilot_webhook_1_worker", f"adpilot_webhook_{many}")}
        for r in range(args.repeat):
            base = messages(f"plain-{tag}-{r}", n)
            rendered = [(m.to, render_email(m, SENDER)) for m in base]  # the same bytes adpilot sends
            runs["smtplib_new_connection_each"].append(n / plain_loop(smtp_port, rendered, reuse=False))
            runs["smtplib_one_connection"].append(n / plain_loop(smtp_port, rendered, reuse=True))
            for workers in (1, args.workers):
                key = "1_worker" if workers == 1 else many
                dt, sent = adpilot_send(lambda: get_channel("smtp", url=smtp_url, sender=SENDER), ledger,
                                        messages(f"smtp-{tag}-{r}-{workers}", n), workers)
                assert sent == n, f"smtp sent {sent} of {n}"
                runs[f"adpilot_smtp_{key}"].append(n / dt)
                dt, sent = adpilot_send(
                    lambda: get_channel("webhook", url=f"http://127.0.0.1:{gw_port}/sms", secret=SECRET),
                    ledger, messages(f"sms-{tag}-{r}-{workers}", n, "sms"), workers)
                assert sent == n, f"webhook sent {sent} of {n}"
                runs[f"adpilot_webhook_{key}"].append(n / dt)
            print(f"{tag} run {r + 1}: " + ", ".join(f"{k}={v[-1]:.0f}/s" for k, v in runs.items()),
                  flush=True)
        store.dispose()
    finally:
        smtp_proc.stdin.close()
        smtp_proc.terminate()
        gw_proc.terminate()
        smtp_proc.wait(30)
        gw_proc.wait(30)
    rates = {k: summary(v) for k, v in runs.items()}
    best = rates[f"adpilot_smtp_{many}"]["median"]
    return {"server_latency_ms": latency * 1000, "messages_per_second": rates,
            "speedup_vs_smtplib_new_connection_each": round(
                best / rates["smtplib_new_connection_each"]["median"], 2),
            "speedup_vs_smtplib_one_connection": round(best / rates["smtplib_one_connection"]["median"], 2)}


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latency-ms", default="0,20",
                    help="server answer times to measure at, comma-separated (0: bare loopback)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="adpilot-delivery-bench-"))
    results = [run_at_latency(args, float(ms) / 1000, tmp) for ms in args.latency_ms.split(",")]
    ledger_runs = {"sqlite": ledger_cost(f"sqlite:///{tmp / 'ledger.db'}", args.messages)}
    if os.environ.get("ADPILOT_TEST_PG_URL"):
        ledger_runs["postgresql"] = ledger_cost(os.environ["ADPILOT_TEST_PG_URL"], args.messages)
    doc = {
        "benchmark": "delivery", "messages": args.messages, "workers": args.workers,
        "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "runs": results,
        "ledger_claim_and_finish": ledger_runs,
        "notes": "adpilot figures include the ledger (SQLite, two transactions per message), consent "
                 "and suppression lookups and rendering; the smtplib loops send pre-rendered bytes. "
                 "server_latency_ms is how long the server waits before accepting each message "
                 "(0: bare loopback, CPU-bound; 20: closer to a real provider).",
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
