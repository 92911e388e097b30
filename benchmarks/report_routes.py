"""Latency of the report routes (/v1/reports/roi, /v1/reports/campaigns) at 75,000 events,
before and after they aggregate in the database (issue 17, item 12), side by side.

Each side runs in its own process against the same kind of database: a fresh SQLite file with
10 campaigns (2 variants each) and 75,000 feedback events (impressions, clicks, conversions
with values, over 30 days and five channels; seed 0), served by a real uvicorn server on
127.0.0.1. The "before" side is the code at ``--baseline`` (git archive of that commit's
``src``), the "after" side is this working tree (or ``--after``). The first request is timed
apart (the after side keeps each campaign's report while its counts stay the same, so the
first request is the one that computes them all), then the median (min, max) of ``--runs``
more requests per route. The rate limit of the report routes is turned off
for the measurement (``report_rate_per_minute=0``).

Usage: python benchmarks/report_routes.py [--baseline 06a0310] [--after REF] [--events 75000]
                                          [--runs 7]
Writes benchmarks/results/report_routes.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "report_routes.json"
ROUTES = ("/v1/reports/roi", "/v1/reports/campaigns")
CHANNELS = ("email", "sms", "push", "social", "search_ad")


def build_events(campaigns: list[str], n: int, seed: int = 0):
    """``n`` events: 80% impressions, 15% clicks, 5% conversions with a value."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    kind = rng.choice(["impression", "click", "conversion"], size=n, p=[0.80, 0.15, 0.05])
    start = pd.Timestamp("2024-05-01")
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)],
        "campaign": rng.choice(campaigns, size=n),
        "variant": rng.choice(["A", "B"], size=n),
        "user_id": [f"u{u}" for u in rng.integers(0, n // 3, size=n)],
        "channel": rng.choice(CHANNELS, size=n),
        "type": kind,
        "value": np.where(kind == "conversion", rng.gamma(2.0, 20.0, size=n).round(2), np.nan),
        "time": start + pd.to_timedelta(rng.integers(0, 30 * 86400, size=n), unit="s"),
    })


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(n_events: int, runs: int, workdir: Path) -> dict:
    """Build the database, serve it, time the routes (runs in the child process)."""
    import httpx
    import uvicorn

    import adpilot
    from adpilot.api.app import create_app
    from adpilot.api.keys import create_key
    from adpilot.api.settings import ApiSettings
    from adpilot.store import Store

    url = f"sqlite:///{workdir / 'bench.db'}"
    store = Store(url).init()
    key = create_key(store, "write", "bench")[0]
    fields = set(ApiSettings.model_fields)
    options = {"home": workdir / "home", "db": url, "report_rate_per_minute": 0,
               "events_worker_process": False}
    settings = ApiSettings(**{k: v for k, v in options.items() if k in fields})
    app = create_app(settings, dashboard=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    out: dict = {"adpilot": str(Path(adpilot.__file__).parent), "events": n_events, "runs": runs}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            cids = [http.post("/v1/campaigns", json={
                "name": f"campaign {c}", "variants": [{"variant": "A"}, {"variant": "B"}]}
            ).json()["campaign"] for c in range(10)]
            store.upsert("events", build_events(cids, n_events))
            assert store.count("events") == n_events
            for route in ROUTES:
                t0 = time.perf_counter()
                first = http.get(route)
                first_s = time.perf_counter() - t0
                assert first.status_code == 200, first.text
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r = http.get(route)
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200
                out[route] = {"first_s": round(first_s, 4),
                              "median_s": round(statistics.median(times), 4),
                              "min_s": round(min(times), 4), "max_s": round(max(times), 4),
                              "bytes": len(r.content)}
    finally:
        server.should_exit = True
        thread.join(30)
        store.dispose()
    return out


def run_side(src: Path, n_events: int, runs: int) -> dict:
    """Measure in a child process that imports adpilot from ``src``."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, __file__, "--child", str(result), "--events",
                        str(n_events), "--runs", str(runs)], env=env, check=True, cwd=tmp)
        return json.loads(result.read_text())


def baseline_src(ref: str, into: Path) -> Path:
    """The ``src`` folder of commit ``ref``, unpacked from ``git archive``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="06a0310",
                        help="Commit before the change (default: the last one without it).")
    parser.add_argument("--after", default=None,
                        help="Commit to measure as 'after' (default: this working tree).")
    parser.add_argument("--events", type=int, default=75_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            Path(args.child).write_text(json.dumps(measure(args.events, args.runs, Path(tmp))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = run_side(baseline_src(args.baseline, Path(tmp) / "before"), args.events, args.runs)
        after_src = (baseline_src(args.after, Path(tmp) / "after") if args.after
                     else ROOT / "src")
        after = run_side(after_src, args.events, args.runs)
    commit = args.after or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True).stdout.strip() + "+tree"
    report = {"events": args.events, "runs": args.runs, "database": "SQLite file",
              "machine": f"{os.cpu_count()} CPU cores, shared with other jobs",
              "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
              "before": {"commit": args.baseline, **before},
              "after": {"commit": commit, **after}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.events:,} events, median of {args.runs} requests (min–max), seconds")
    print(f"{'route':<24}{'before first':>13}{'before median':>24}{'after first':>12}"
          f"{'after median':>24}{'speed-up':>9}")
    for route in ROUTES:
        b, a = before[route], after[route]
        print(f"{route:<24}{b['first_s']:>13.3f}{b['median_s']:>8.3f} ({b['min_s']:.3f}–{b['max_s']:.3f})"
              f"{a['first_s']:>12.3f}{a['median_s']:>8.3f} ({a['min_s']:.3f}–{a['max_s']:.3f})"
              f"{b['median_s'] / a['median_s']:>8.1f}×")
    print(f"load average at the end: {report['load_average_at_end']}")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
