"""Load test on loopback: POST /v1/events with concurrent clients (100,000 events including
duplicates, 500 per request) against a real uvicorn server in its own process, compared in the
same run with a bare endpoint of the same framework that only parses the same batches (same body
model, same async handler style, no auth, no database). POST /v1/decide latency is measured while
the events load runs, from a client in its own process (as the ad server calling it would be) on a
connection opened before the load starts, as a decision client keeps one. The events endpoint
stores each batch in the durable inbox and answers 202; the run then waits until the background
drainer has processed everything and reports that end-to-end rate too. Checks in the database that
no event is lost and none is stored twice. Five repetitions, medians with min and max. Request
bodies are encoded once before sending so that the load generator, which shares the machine's
cores with the server, costs the same in both phases.

    nice .venv/bin/python benchmarks/api_load.py [--events 100000] [--batch 500] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

import httpx
import numpy as np
from loadkit import free_port, pct, wait_healthy
from sqlalchemy import func, select

from adpilot.api.keys import create_key
from adpilot.api.routers.campaigns import EventsIn
from adpilot.api.settings import ApiSettings
from adpilot.optimization.inbox import EventInbox
from adpilot.store import Store
from adpilot.store.sql import TABLES

OUT = Path(__file__).parent / "results" / "api_load.json"


async def post_batches(url: str, path: str, batches: list[list[dict]], headers: dict,
                       clients: int, deadline: float) -> dict:
    """Send every batch with ``clients`` concurrent senders; latency per request."""
    queue: asyncio.Queue = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while not queue.empty() and time.monotonic() < deadline:
            batch = queue.get_nowait()
            t = time.perf_counter()
            r = await client.post(path, content=batch[1], headers=headers)
            latencies.append(time.perf_counter() - t)
            if r.status_code not in (200, 202):
                errors.append(f"{r.status_code} {r.text[:200]}")
            else:
                sent += batch[0]

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(sender(client) for _ in range(clients)))
    seconds = time.perf_counter() - started
    return {"requests": len(latencies), "events": sent, "seconds": round(seconds, 3),
            "events_per_s": round(sent / seconds, 1), "requests_per_s": round(len(latencies) / seconds, 2),
            "p50_ms": round(pct(latencies, 50), 2), "p99_ms": round(pct(latencies, 99), 2),
            "errors": errors[:5], "n_errors": len(errors), "complete": queue.empty()}


def decide_client(url: str, cid: str, headers: dict, stop, ready, out, limit: int) -> None:
    """Decisions from their own process, as the ad server that calls /v1/decide would make
    them: timed apart from the event senders' event loop, whose own work would otherwise be
    counted as server latency."""
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        # open the keep-alive connection before the load starts, untimed: a decision client
        # connects once
        client.post("/v1/decide", json={"user_id": "warm", "campaign": cid},
                    headers=headers).raise_for_status()
        ready.set()
        i = 0
        while not stop.is_set() and i < limit:
            t = time.perf_counter()
            r = client.post("/v1/decide", json={"user_id": f"d{i}", "campaign": cid},
                            headers=headers)
            latencies.append(time.perf_counter() - t)
            r.raise_for_status()
            i += 1
            time.sleep(0.005)
    out.put(latencies)


async def phase(url: str, path: str, batches, headers, clients, deadline, decide_cid=None) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    decider = (ctx.Process(target=decide_client, args=(url, decide_cid, headers, stop, ready, out,
                                                        20_000), daemon=True)
               if decide_cid else None)
    if decider:
        decider.start()
        await asyncio.to_thread(ready.wait, 60)
    result = await post_batches(url, path, batches, headers, clients, deadline)
    stop.set()
    if decider:
        lat = await asyncio.to_thread(out.get, True, 60)
        decider.join(10)
        result["decide"] = {"requests": len(lat), "p50_ms": round(pct(lat, 50), 2),
                            "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat) * 1000, 2)}
        result["decide_latencies_ms"] = [x * 1000 for x in lat]
    return result


def serve(home: Path, db: str, port: int) -> None:
    """The server process: the adpilot app plus the bare endpoint."""
    import uvicorn

    from adpilot.api.app import create_app

    settings = ApiSettings(home=home, db=db, session_secret="load")
    app = create_app(settings, dashboard=False)

    @app.post("/bench/bare")
    async def bare(body: EventsIn) -> dict:  # same framework, body model and handler style
        return {"read": len(body.events)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--duplicates", type=float, default=0.1, help="Share of resent events.")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5, help="Repetitions (median reported).")
    ap.add_argument("--max-seconds", type=float, default=300, help="Stop sending after this.")
    ap.add_argument("--db", default=None, help="Database URL (default: a temporary SQLite file).")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--serve", nargs=3, metavar=("HOME", "DB", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), args.serve[1], int(args.serve[2]))
        return

    tmp = Path(tempfile.mkdtemp(prefix="adpilot-load-"))
    db = args.db or f"sqlite:///{tmp / 'load.db'}"
    store = Store(db).init()
    key, _ = create_key(store, "write", "load test")
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp), db, str(port)],
                              env=os.environ | {"PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    wait_healthy(url)
    try:
        with httpx.Client(base_url=url, headers=headers) as c:
            ev_cid = c.post("/v1/campaigns", json={"name": "load events", "variants": [
                {"variant": v} for v in "AB"]}).json()["campaign"]
            dec_cid = c.post("/v1/campaigns", json={"name": "load decide", "variants": [
                {"variant": v} for v in "ABC"]}).json()["campaign"]

        rng = random.Random(0)
        n_unique = int(args.events * (1 - args.duplicates))
        now = datetime.now(UTC).replace(tzinfo=None).isoformat()
        results = {"config": {k: str(v) for k, v in vars(args).items() if k != "serve"},
                   "database": store.dialect, "unique_events": n_unique * args.repeats,
                   "events_sent": args.events * args.repeats,
                   "server": "uvicorn, 1 worker, own process, both servers alike "
                             f"(uvloop: {bool(find_spec('uvloop'))}, httptools: "
                             f"{bool(find_spec('httptools'))}); event inbox processed by a "
                             "lower-priority worker process", "bare": [], "events": []}
        inbox = EventInbox(store)
        sent_ids: set[str] = set()
        for rep in range(args.repeats):  # fresh event ids each repetition: all new work
            unique = [{"event_id": f"r{rep}e{i}", "campaign": ev_cid, "variant": "AB"[i % 2],
                       "user_id": f"u{i % 5000}", "type": "click" if i % 10 == 0 else "impression",
                       "time": now} for i in range(n_unique)]
            stream = unique + [rng.choice(unique) for _ in range(args.events - n_unique)]
            rng.shuffle(stream)
            chunks = [stream[i:i + args.batch] for i in range(0, len(stream), args.batch)]
            batches = [(len(b), json.dumps({"events": b}).encode()) for b in chunks]
            results["bare"].append(asyncio.run(phase(
                url, "/bench/bare", batches, headers, args.clients,
                time.monotonic() + args.max_seconds)))
            started = time.monotonic()
            ev = asyncio.run(phase(url, "/v1/events", batches, headers, args.clients,
                                   started + args.max_seconds, decide_cid=dec_cid))
            while inbox.pending() and time.monotonic() - started < args.max_seconds * 2:
                time.sleep(0.02)
            processed_s = time.monotonic() - started
            ev |= {"left_in_inbox": inbox.pending(), "all_processed_seconds": round(processed_s, 3),
                   "processed_events_per_s": round(ev["events"] / processed_s, 1)}
            results["events"].append(ev)
            sent_ids |= {e["event_id"] for b in chunks[:ev["requests"]] for e in b}
    finally:
        server.terminate()
        server.wait(30)

    table = TABLES["events"]
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(table).where(
            table.c.campaign == ev_cid)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(table.c.event_id))).where(
            table.c.campaign == ev_cid)).scalar_one()
    results["check"] = {"stored": int(stored), "distinct_ids": int(distinct),
                        "expected": len(sent_ids), "lost": len(sent_ids) - int(stored),
                        "duplicates_stored": int(stored) - int(distinct)}

    def median(phase_name: str, key: str) -> float:
        return float(np.median([r[key] for r in results[phase_name]]))

    def span(phase_name: str, key: str) -> list[float]:
        return [min(r[key] for r in results[phase_name]), max(r[key] for r in results[phase_name])]

    decide = [x for r in results["events"] for x in r["decide_latencies_ms"]]
    for r in results["events"]:
        del r["decide_latencies_ms"]
    bare, accepted = median("bare", "events_per_s"), median("events", "events_per_s")
    processed = median("events", "processed_events_per_s")
    results["summary"] = {
        "repetitions": args.repeats,
        "bare_events_per_s": {"median": bare, "min_max": span("bare", "events_per_s")},
        "events_accepted_per_s": {"median": accepted, "min_max": span("events", "events_per_s")},
        "events_processed_per_s": {"median": processed,
                                   "min_max": span("events", "processed_events_per_s")},
        "events_vs_bare_throughput": round(accepted / bare, 3), "target_ratio": 0.6,
        "processed_vs_bare_throughput": round(processed / bare, 3),
        "events_p50_ms": median("events", "p50_ms"), "events_p99_ms": median("events", "p99_ms"),
        "decide_requests": len(decide),
        "decide_p50_ms": round(float(np.percentile(decide, 50)), 2) if decide else None,
        "decide_p99_ms": round(float(np.percentile(decide, 99)), 2) if decide else None,
        "target_decide_p99_ms": 20,
        "ok_no_loss": results["check"]["lost"] == 0 and results["check"]["duplicates_stored"] == 0,
        "events_complete": all(r["complete"] for r in results["events"])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["summary"] | {"check": results["check"]}, indent=2))


if __name__ == "__main__":
    main()
