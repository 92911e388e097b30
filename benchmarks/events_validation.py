"""What checking ``POST /v1/events`` bodies at the door costs: the strict per-event model read
from the body's bytes (:func:`adpilot.api.event_models.parse_events`, what the route runs)
against the loose model it replaced (``list[dict[str, Any]]``, parsed by ``json.loads`` first
as FastAPI does). Bodies like benchmarks/api_load.py sends (500 events), one with an extra
field and non-ASCII text, and one whose emoji are written as surrogate-pair escapes (the form
``json.dumps`` writes by default: it takes the exact check for lone surrogates). Medians of
``--repeats`` runs of ``--loops`` parses each, in one process, alternating the two. Then the
check the inbox drainer adds before validating a merged claim (``unstorable``: values no column
can hold), on a claim of ``--claim`` such events.

    .venv/bin/python benchmarks/events_validation.py [--repeats 9] [--loops 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from adpilot.api.event_models import parse_events

OUT = Path(__file__).parent / "results" / "events_validation.json"


class LooseEventsIn(BaseModel):
    """The body model before issue 17: any JSON object per event."""

    events: list[dict[str, Any]]


def before(body: bytes) -> list:
    return LooseEventsIn.model_validate(json.loads(body)).events


def bodies(n: int) -> dict[str, bytes]:
    now = "2025-01-01T00:00:00+00:00"
    plain = [{"event_id": f"r0e{i}", "campaign": "load-events-1234abcd", "variant": "AB"[i % 2],
              "user_id": f"u{i % 5000}", "type": "click" if i % 10 == 0 else "impression",
              "time": now} for i in range(n)]
    rich = [{**e, "channel": "wechat", "value": 1.5, "note": "新品 — ünïcode"} for e in plain]
    emoji = [{**e, "note": "好评 😀"} for e in plain]
    return {"plain": json.dumps({"events": plain}).encode(),
            "extra_field_utf8": json.dumps({"events": rich}, ensure_ascii=False).encode(),
            "emoji_as_escapes": json.dumps({"events": emoji}).encode()}


def timed(fn, body: bytes, loops: int) -> float:
    started = time.perf_counter()
    for _ in range(loops):
        fn(body)
    return (time.perf_counter() - started) / loops


def claim_check(n: int, repeats: int) -> dict:
    """Milliseconds of :func:`unstorable` on a merged claim of ``n`` events, as the drainer
    builds it (``merge_batches``: one object column per field)."""
    from adpilot.data.schema import EVENTS
    from adpilot.optimization.event_rows import PendingBatch, merge_batches, unstorable
    from adpilot.store.sql import TABLES

    events = json.loads(bodies(n)["extra_field_utf8"])["events"]
    started = time.perf_counter()
    frame, _ = merge_batches([PendingBatch(1, events)])
    merge_ms = (time.perf_counter() - started) * 1000  # for scale: building the frame
    limits = {c.name: c.type.length for c in TABLES["events"].columns
              if getattr(c.type, "length", None)}
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        assert not unstorable(frame, EVENTS.names, limits).bad.any()
        runs.append(time.perf_counter() - started)
    med = statistics.median(runs)
    return {"events": n, "ms": round(med * 1000, 1), "events_per_s": round(n / med),
            "merge_batches_ms": round(merge_ms, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--loops", type=int, default=200)
    ap.add_argument("--claim", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    out = {"config": vars(args) | {"out": str(args.out)}, "bodies": {}}
    for name, body in bodies(args.events).items():
        assert len(before(body)) == len(parse_events(body)) == args.events
        runs: dict[str, list[float]] = {"before_loose_model": [], "after_strict_model": []}
        for _ in range(args.repeats):  # alternate, so load on the machine hits both alike
            runs["before_loose_model"].append(timed(before, body, args.loops))
            runs["after_strict_model"].append(timed(parse_events, body, args.loops))
        row = {"body_bytes": len(body)}
        for k, v in runs.items():
            med = statistics.median(v)
            row[k] = {"ms_per_batch": round(med * 1000, 3),
                      "events_per_s": round(args.events / med),
                      "min_max_ms": [round(min(v) * 1000, 3), round(max(v) * 1000, 3)]}
        row["after_vs_before_time"] = round(row["after_strict_model"]["ms_per_batch"]
                                            / row["before_loose_model"]["ms_per_batch"], 3)
        out["bodies"][name] = row
        print(name, json.dumps(row))
    out["unstorable_check"] = claim_check(args.claim, args.repeats)
    print("unstorable_check", json.dumps(out["unstorable_check"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
