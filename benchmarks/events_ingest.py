"""Feedback events: ingest 1,000,000 events with 5% duplicates (exact counts), and time a
decision in process.

Data: a Thompson campaign with 3 variants; 100,000 users each get a logged decision, then
impressions (9.5 per user on average), clicks (3% of impressions) and conversions; 5% of the
rows are repeated event ids (re-sent batches), in a shuffled order. SQLite file store.

Usage: python benchmarks/events_ingest.py [--events 1000000]
Writes benchmarks/results/events_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.optimization.campaigns import Campaigns
from adpilot.store import Store

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db").init()
        camps = Campaigns(store, seed=0, log_batch=5000)
        cid = camps.create("bench", ["A", "B", "C"], channel="email")
        # decision latency in process (policy cached, decisions logged in batches)
        lat = []
        for u in range(args.users):
            t = time.perf_counter()
            d = camps.decide(f"u{u}", cid)
            lat.append(time.perf_counter() - t)
            del d
        camps.flush()
        decisions = camps.decisions(cid)
        unique = int(args.events * 0.95)
        user = rng.integers(0, args.users, unique)
        variant = decisions.set_index("user_id")["variant"].reindex(
            [f"u{u}" for u in user]).to_numpy()
        kind = np.where(rng.random(unique) < 0.03, "click", "impression")
        kind = np.where((kind == "click") & (rng.random(unique) < 0.1), "conversion", kind)
        t0 = decisions["time"].min()
        frame = pd.DataFrame({
            "event_id": [f"e{i:08d}" for i in range(unique)], "campaign": cid,
            "variant": variant, "user_id": [f"u{u}" for u in user], "channel": "email",
            "type": kind, "value": np.where(kind == "conversion", 49.0, np.nan),
            "time": (t0 + pd.to_timedelta(rng.integers(60, 3600, unique), unit="s")).astype(str)})
        dupes = frame.sample(args.events - unique, random_state=0)
        batch = pd.concat([frame, dupes]).sample(frac=1, random_state=1).reset_index(drop=True)
        t = time.perf_counter()
        first = camps.ingest_events(batch)
        secs = time.perf_counter() - t
        stored = store.count("events")
        t = time.perf_counter()
        again = camps.ingest_events(batch)
        secs_again = time.perf_counter() - t
        assert first.read == args.events and first.kept == unique, first.summary()
        assert first.quarantined == args.events - unique and stored == unique
        assert store.count("events") == unique and again.duplicates_in_store == unique
        policy = camps.policy(cid)
        result = {
            "events": args.events, "unique": unique, "duplicates": args.events - unique,
            "stored": stored, "quarantined": first.quarantined,
            "ingest_seconds": round(secs, 2), "events_per_s": round(args.events / secs),
            "reingest_seconds": round(secs_again, 2), "stored_after_reingest": store.count("events"),
            "decision_us": {"median": statistics.median(lat) * 1e6,
                            "p99": float(np.quantile(lat, 0.99)) * 1e6,
                            "max": max(lat) * 1e6, "n": len(lat)},
            "posterior_alpha": policy.state()["alpha"],
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events_ingest.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
