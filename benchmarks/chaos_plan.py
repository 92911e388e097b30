"""The event stream of ``events_chaos.py``: valid events, resends of earlier ones, malformed
events (some corrected and resent later under the same id) and poisoned events, cut into
request bodies, with what each one is expected to become."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Value-level faults: each makes one event unusable (quarantined with a reason when processed);
# the rest of its batch stays valid.
MALFORMED = ("bad_type", "empty_id", "no_user", "bad_time", "unknown_variant", "unknown_campaign")
# Events that broke the pipeline or were stored as garbage (issue 17, defects 2 and 4): faults
# of type, length or encoding, for which a server may refuse the whole batch. Each goes in a
# batch of its own with a few valid companions (the batch that lacks a required column
# altogether has none).
POISONS = ("lone_surrogate_id", "nul_id", "object_id", "list_id", "bool_id", "huge_user_id",
           "long_channel", "nul_user_id", "lone_surrogate_user_id", "string_value")
COMPANIONS = 9  # valid events beside each poisoned one


@dataclass
class Batch:
    """One request body and what is in it (positions are 0-based in ``events``)."""

    key: int
    events: list[dict]
    valid: list[int] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)
    kinds: dict[int, str] = field(default_factory=dict)  # position -> malformed/poison kind
    body: bytes = b""

    def encode(self) -> Batch:
        # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as any client sends it
        self.body = json.dumps({"events": self.events}, ensure_ascii=True).encode()
        return self

    def valid_only(self, key: int) -> Batch:
        """The valid events alone: what a careful client resends after a 4xx for the batch."""
        return Batch(key, [self.events[i] for i in self.valid],
                     valid=list(range(len(self.valid)))).encode()


@dataclass
class Plan:
    batches: list[Batch]
    expected: dict[str, tuple[str, str, str]]  # valid event_id -> (variant, user_id, type)
    corrected: set[str]  # ids sent first malformed, then corrected
    counts: dict[str, int]


def make_plan(n_events: int, campaign: str, *, batch: int = 500, duplicates: float = 0.1,
              malformed: float = 0.02, seed: int = 0, run: str = "c") -> Plan:
    """About ``n_events`` events in batches of ``batch``; duplicates are resends of events of
    *earlier* batches (so no batch repeats an id within itself)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    expected: dict[str, tuple[str, str, str]] = {}
    serial = iter(range(10 ** 9))

    def valid() -> dict:
        i = next(serial)
        kind = "conversion" if i % 50 == 0 else "click" if i % 10 == 0 else "impression"
        e = {"event_id": f"{run}-v{i}", "campaign": campaign, "variant": "AB"[i % 2],
             "user_id": f"u{i % 5000}", "type": kind, "time": now}
        if kind == "conversion":
            e["value"] = 12.5
        if i % 3 == 0:
            e["channel"] = "email"
        expected[e["event_id"]] = (e["variant"], e["user_id"], e["type"])
        return e

    def bad(kind: str, i: int) -> dict:
        e = {"event_id": f"{run}-m{i}", "campaign": campaign, "variant": "A", "user_id": f"u{i}",
             "type": "click", "time": now}
        match kind:
            case "bad_type":
                e["type"] = "purchase"
            case "empty_id":
                e["event_id"] = ""
            case "no_user":
                del e["user_id"]
            case "bad_time":
                e["time"] = "yesterday at noon"
            case "unknown_variant":
                e["variant"] = "Z"
            case "unknown_campaign":
                e["campaign"] = "no-such-campaign"
        return e

    n_poison = len(POISONS) * (1 + COMPANIONS) + 5
    n_bad = round(n_events * malformed)
    n_dup = round(n_events * duplicates)
    n_new = max(n_events - n_bad - n_dup - n_poison, batch)
    # the stream of first sends: valid and malformed events mixed, cut into batches
    first = [("v", None)] * n_new + [("m", MALFORMED[i % len(MALFORMED)]) for i in range(n_bad)]
    rng.shuffle(first)
    slots = [first[i:i + batch] for i in range(0, len(first), batch)]
    n_batches = len(slots)
    dup_per = [0] + [n_dup // max(n_batches - 1, 1)] * (n_batches - 1)
    plans: list[list[tuple[dict, str | None]]] = []
    corrections: list[tuple[int, dict]] = []  # (batch index at or after which it goes, event)
    corrected: set[str] = set()
    m = 0
    for k, chunk in enumerate(slots):
        events: list[tuple[dict, str | None]] = []
        for tag, kind in chunk:
            if tag == "v":
                events.append((valid(), None))
                continue
            e = bad(kind, m)
            m += 1
            events.append((e, kind))
            if kind == "bad_type" and m % 2 == 0 and k + 2 < n_batches:
                fixed = dict(e, type="click")
                corrections.append((rng.randrange(k + 2, n_batches), fixed))
        plans.append(events)
    for k in range(1, n_batches):  # resends of valid events of earlier batches
        earlier = list({e["event_id"]: e for j in rng.sample(range(k), min(k, 3))
                        for e, kind in plans[j] if not kind}.values())
        plans[k] += [(dict(e), None) for e in rng.sample(earlier, min(dup_per[k], len(earlier)))]
    for k, fixed in corrections:
        expected[fixed["event_id"]] = (fixed["variant"], fixed["user_id"], fixed["type"])
        corrected.add(fixed["event_id"])
        plans[k].append((fixed, None))
    batches = []
    for events in plans:
        rng.shuffle(events)
        b = Batch(len(batches), [e for e, _ in events])
        for i, (_, kind) in enumerate(events):
            (b.bad if kind else b.valid).append(i)
            if kind:
                b.kinds[i] = kind
        batches.append(b)
    # poisoned batches at random places in the stream
    for kind in POISONS:
        events = [valid() for _ in range(COMPANIONS)]
        pos = rng.randrange(COMPANIONS + 1)
        events.insert(pos, poison(kind, run, campaign, now))
        b = Batch(0, events, valid=[i for i in range(len(events)) if i != pos], bad=[pos],
                  kinds={pos: kind})
        batches.insert(rng.randrange(len(batches) + 1), b)
    no_time = [{k: v for k, v in bad("no_time", 10 ** 8 + i).items() if k != "time"}
               for i in range(5)]
    batches.insert(rng.randrange(len(batches) + 1), Batch(
        0, no_time, bad=list(range(5)), kinds=dict.fromkeys(range(5), "missing_time_column")))
    for k, b in enumerate(batches):
        b.key = k
        b.encode()
    counts = {"events": sum(len(b.events) for b in batches), "batches": len(batches),
              "valid_distinct": len(expected), "duplicates": sum(dup_per),
              "malformed": n_bad + 5, "poisoned": len(POISONS), "corrected_resends": len(corrected)}
    return Plan(batches, expected, corrected, counts)


def poison(kind: str, run: str, campaign: str, now: str) -> dict:
    """One poisoned event (not valid in any form)."""
    e: dict = {"event_id": f"{run}-p-{kind}", "campaign": campaign, "variant": "A",
               "user_id": "u-poison", "type": "click", "time": now}
    match kind:
        case "lone_surrogate_id":
            e["event_id"] = f"{run}-x\ud800"
        case "nul_id":
            e["event_id"] = f"{run}-nul\x00id"
        case "object_id":
            e["event_id"] = {"a": 1}
        case "list_id":
            e["event_id"] = ["l"]
        case "bool_id":
            e["event_id"] = True
        case "huge_user_id":
            e["user_id"] = "u" * 1_000_000
        case "long_channel":
            e["channel"] = "c" * 10_000
        case "nul_user_id":
            e["user_id"] = "u\x00poison"
        case "lone_surrogate_user_id":
            e["user_id"] = "u\udfffpoison"
        case "string_value":
            e["value"] = "lots"
    return e
