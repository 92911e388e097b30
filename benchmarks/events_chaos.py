"""Chaos benchmark of the events pipeline: 4 clients send about 200,000 events (10% resends,
2% malformed, a few poisoned events: lone surrogates, NUL bytes, ids given as objects, a 1 MB
user_id, a batch without a required column) to a real ``adpilot serve`` (uvicorn, 127.0.0.1, a
temporary ADPILOT_HOME and database) while the server is killed with SIGKILL three times at
seeded random moments and restarted. A batch not acknowledged (an HTTP error, a connection
failure) is resent; after a 4xx the client resends the batch's valid events alone.

Then it checks, in the database itself, that every acknowledged valid event is stored exactly
once and as sent, nothing else is stored, every malformed event is refused with a 4xx or
reported with its reason, every batch's report adds up, and nothing is stuck: per kill, the time
from the restart until processing resumes and until the batches the dead server held are
processed. Figures go to ``benchmarks/results/events_chaos_<database>.json``; the exit status is
1 when an invariant fails (each failure is printed).

    .venv/bin/python benchmarks/events_chaos.py [--events 200000] [--db URL] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from chaos_checks import check_batches, check_store, inbox_state, scratch_database, summarise
from chaos_plan import Batch, make_plan
from loadkit import free_port

from adpilot.api.keys import create_key
from adpilot.store import Store

RESULTS = Path(__file__).parent / "results"
EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Pool|Timeout)\b.*:")


class Server:
    """``adpilot serve`` in its own process group (the server and its inbox worker)."""

    def __init__(self, home: Path, db: str, port: int) -> None:
        self.home, self.db, self.port = home, db, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.home / f"server-{self.starts}.log", "wb")  # noqa: SIM115 (the child keeps it)
        env = os.environ | {"ADPILOT_HOME": str(self.home), "ADPILOT_DB": self.db,
                            "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adpilot", "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "warning"], env=env, stdout=log, stderr=log,
            start_new_session=True)
        log.close()

    async def healthy(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/health")).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL to the whole group, as a crash takes the server and its worker at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the worker process must be gone as well
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()

    def errors_logged(self) -> list[str]:
        """The exception lines (``SomeError: message``) the server processes wrote, distinct,
        in order."""
        lines: list[str] = []
        for path in sorted(self.home.glob("server-*.log"), key=lambda p: int(p.stem.split("-")[1])):
            for line in path.read_text(errors="replace").splitlines():
                if EXCEPTION_LINE.match(line) and line[:300] not in lines:
                    lines.append(line[:300])
        return lines


class Load:
    """The clients' shared state: what is still to send, what was acknowledged or refused."""

    def __init__(self, batches: list[Batch], clients: int) -> None:
        self.clients, self.finished = clients, 0
        self.queue: asyncio.Queue[Batch] = asyncio.Queue()
        for b in batches:
            self.queue.put_nowait(b)
        self.next_key = len(batches)
        self.outstanding = len(batches)
        self.acked: list[tuple[Batch, int, float]] = []  # (batch, inbox batch id, when)
        self.refused: list[tuple[Batch, int, str]] = []
        self.acked_events = 0
        self.requests = self.conn_errors = 0
        self.server_errors: list[str] = []
        self.done = asyncio.Event()


async def client(load: Load, url: str, headers: dict, deadline: float, rate: float) -> None:
    """One client: send, resend until acknowledged, at ``rate`` events/s (0: no pacing)."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        while time.monotonic() < deadline:
            try:
                b = load.queue.get_nowait()
            except asyncio.QueueEmpty:
                if load.outstanding == 0:
                    break
                await asyncio.sleep(0.05)  # a batch may come back for its valid events alone
                continue
            fails, started = 0, time.monotonic()
            while time.monotonic() < deadline:
                load.requests += 1
                try:
                    r = await http.post("/v1/events", content=b.body)
                except httpx.TransportError:  # the server is down or died mid-request
                    load.conn_errors += 1
                    await asyncio.sleep(min(0.1 * 2 ** min(fails, 4), 1.0))
                    fails += 1
                    continue
                if r.status_code == 202:
                    load.acked.append((b, int(r.json()["batch"]), time.monotonic()))
                    load.acked_events += len(b.events)
                    break
                if r.status_code >= 500 or r.status_code == 429:
                    load.server_errors.append(f"{r.status_code} {r.text[:200]}")
                    fails += 1
                    if fails < 5:
                        await asyncio.sleep(0.2)
                        continue
                load.refused.append((b, r.status_code, r.text[:300]))
                if b.bad and b.valid:  # resend the batch's valid events alone
                    load.queue.put_nowait(b.valid_only(load.next_key))
                    load.next_key += 1
                    load.outstanding += 1
                break
            load.outstanding -= 1
            if rate:
                await asyncio.sleep(max(0.0, len(b.events) / rate - (time.monotonic() - started)))
    load.finished += 1
    if load.finished == load.clients:
        load.done.set()


class Monitor(threading.Thread):
    """Polls the inbox table; per kill it records when processing starts again after the
    restart (a new claim is taken, a batch is processed, or none is left: ``draining``), when
    a batch is first processed (or none is left: ``resumed``), when no batch is held any more
    by a claim of the dead server (taken back, or processed: ``reclaimed``), when the batches it
    had claimed are processed (``claimed_done``), every batch open at the kill
    (``backlog_done``), and when the inbox is first empty (``inbox_empty``)."""

    MARKS = ("draining", "reclaimed", "resumed", "claimed_done", "backlog_done", "inbox_empty")

    def __init__(self, store: Store) -> None:
        super().__init__(daemon=True, name="chaos-monitor")
        self.store, self.kills, self.stop = store, [], threading.Event()

    def watch(self, kill: dict, restarted: float) -> None:
        kill["_t0"], kill["_done0"], kill["_at"] = restarted, inbox_state(self.store)["done"], {}
        self.kills.append(kill)

    def run(self) -> None:
        while not self.stop.wait(0.1):
            state, now = inbox_state(self.store), time.monotonic()
            for k in self.kills:
                seen = {"inbox_empty": not state["open"],
                        "draining": (state["done"] > k["_done0"] or not state["open"]
                                     or bool(state["tokens"] - k["_tokens"])),
                        "resumed": state["done"] > k["_done0"] or not state["open"],
                        "reclaimed": not state["tokens"] & k["_tokens"],
                        "claimed_done": not set(k["_claimed"]) & state["open"],
                        "backlog_done": not set(k["_open"]) & state["open"]}
                for mark, yes in seen.items():
                    if yes:
                        k["_at"].setdefault(mark, now)

    @classmethod
    def figures(cls, kill: dict) -> None:
        """Seconds from the restart (``<mark>_s``) and from the restarted server's first
        answer to /health (``<mark>_after_up_s``) for each mark."""
        for mark in cls.MARKS:
            at = kill["_at"].get(mark)
            kill[f"{mark}_s"] = None if at is None else round(at - kill["_t0"], 3)
            kill[f"{mark}_after_up_s"] = (None if at is None or kill.get("_up") is None
                                          else round(max(0.0, at - kill["_up"]), 3))


async def run_load(args, server: Server, store: Store, plan, headers, monitor) -> dict:
    rng = random.Random(args.seed + 1)
    total = plan.counts["events"]
    marks = sorted(rng.uniform(0.15, 0.85) for _ in range(args.kills))
    load = Load(plan.batches, args.clients)
    started = time.monotonic()
    deadline = started + args.max_seconds
    senders = [asyncio.create_task(client(load, server.url, headers, deadline, args.rate / args.clients))
               for _ in range(args.clients)]
    kills, floor = [], 0
    for n, mark in enumerate(marks, 1):
        # at the seeded mark, and not before 2% more events are acknowledged since the last
        # restart: each kill hits a server that is taking load again
        while (load.acked_events < max(mark * total, floor) and not load.done.is_set()):
            await asyncio.sleep(0.005)
        if load.done.is_set() and not inbox_state(store)["open"]:
            break  # everything sent and processed: a kill now would test nothing
        # a kill is most telling while the worker holds a claim: wait for one (a claim is
        # taken once the restarted server's worker process is up) and kill at once
        wait_until = time.monotonic() + args.claim_wait
        while not inbox_state(store)["claimed"] and time.monotonic() < wait_until:
            await asyncio.sleep(0.01)
        t_kill = time.monotonic()
        server.kill()
        state = inbox_state(store)
        kill = {"kill": n, "at_s": round(t_kill - started, 3), "acked_events_at_kill": load.acked_events,
                "open_batches_at_kill": len(state["open"]), "claimed_batches_at_kill": len(state["claimed"]),
                "open_events_at_kill": state["open_events"], "_claimed": state["claimed"],
                "_tokens": state["tokens"],
                "_open": sorted(state["open"])}
        restarted = time.monotonic()
        server.start()
        monitor.watch(kill, restarted)
        ok = await server.healthy()
        kill["_up"] = time.monotonic() if ok else None
        kill["startup_s"] = round(time.monotonic() - restarted, 3) if ok else None
        kill["downtime_s"] = round(time.monotonic() - t_kill, 3) if ok else None
        kills.append(kill)
        floor = load.acked_events + 0.02 * total
    await asyncio.gather(*senders)
    load_s = time.monotonic() - started
    # every batch answered: now the inbox must empty
    drain_deadline = time.monotonic() + args.drain_timeout
    while inbox_state(store)["open"] and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.1)
    left = inbox_state(store)
    processed_s = time.monotonic() - started
    return {"load": load, "kills": kills, "load_s": load_s, "processed_s": processed_s,
            "left": left, "complete": load.queue.empty() and load.outstanding == 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true",
                    help="Smoke run: 5,000 events (unless --events is given), 1,000 events/s.")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rate", type=float, default=20_000,
                    help="Events/s all clients together (0: as fast as the server answers).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", default=None, help="Database URL (default: a temporary SQLite file); on "
                    "PostgreSQL a scratch database is created on that server and dropped afterwards.")
    ap.add_argument("--max-seconds", type=float, default=900, help="Stop sending after this.")
    ap.add_argument("--drain-timeout", type=float, default=120,
                    help="After the load, how long the inbox may take to empty.")
    ap.add_argument("--max-resume", type=float, default=30,
                    help="Most seconds from a restarted server's first answer until processing "
                    "starts again and the dead server's claims are taken back.")
    ap.add_argument("--claim-wait", type=float, default=30,
                    help="At a kill's mark, wait up to this long for the worker to hold a claim.")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--label", default="", help="Free text kept with the results (e.g. the commit).")
    args = ap.parse_args()
    if args.quick and "--events" not in sys.argv:
        args.events = 5_000
    if args.quick:
        args.batch, args.rate = min(args.batch, 250), min(args.rate or 1_000, 1_000)

    tmp = Path(tempfile.mkdtemp(prefix="adpilot-chaos-"))
    with scratch_database(args.db, tmp) as db:
        store = Store(db).init()
        key, _ = create_key(store, "write", "chaos benchmark")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        server = Server(tmp, db, free_port())
        server.start()
        monitor = Monitor(store)
        try:
            if not asyncio.run(server.healthy()):
                raise SystemExit(f"the server did not start: {server.errors_logged()}")
            with httpx.Client(base_url=server.url, headers=headers) as c:  # a campaign without
                r = c.post("/v1/campaigns", json={"name": "chaos", "variants": [  # decisions
                    {"variant": v} for v in "AB"]})             # accepts events of any user
                r.raise_for_status()
                cid = r.json()["campaign"]
            plan = make_plan(args.events, cid, batch=args.batch, seed=args.seed,
                             run=uuid.uuid4().hex[:6])
            monitor.start()
            out = asyncio.run(run_load(args, server, store, plan, headers, monitor))
            monitor.stop.set()
            batches = check_batches(server.url, headers, out["load"].acked, plan.corrected)
        finally:
            monitor.stop.set()
            server.stop()
        stored = check_store(store, plan, out["load"].acked, batches.pop("_processed"))
        for kill in out["kills"]:
            Monitor.figures(kill)
        results = summarise(args, store.dialect, plan, out, batches, stored, server.errors_logged())
        store.dispose()
    path = args.out or RESULTS / f"events_chaos_{results['database']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(json.dumps({k: results[k] for k in ("summary", "kills", "failures")}, indent=2))
    for f in results["failures"]:
        print(f"INVARIANT FAILED: {f}", file=sys.stderr)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
