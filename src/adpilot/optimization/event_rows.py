"""Feedback-event rows on their way to the store: the values no database column can hold, and
several inbox batches merged into one frame and split back into one report per batch, and
:func:`store_events`, which validates, deduplicates and stores them.

A value the store cannot hold (a NUL byte, a lone surrogate such as ``"x\\ud800"``, an object or
a list where a name belongs, more characters than its column has) would fail the whole insert;
:func:`unstorable` finds such rows first, so they are quarantined with a reason like any other
invalid row and the rest of their batch goes through.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype
from sqlalchemy import select

from adpilot.data import columns as C
from adpilot.data.readers import quarantine_frame
from adpilot.data.schema import EVENTS
from adpilot.data.validation import validate
from adpilot.optimization.campaign_tables import CAMPAIGNS, DECISIONS, VARIANTS
from adpilot.store.sql import TABLES, Store

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # after json.loads every surrogate is a lone one
_NOT_A_NAME = {dict: "an object", list: "a list", tuple: "a list", set: "a set",
               bool: "a boolean", bytes: "bytes", bytearray: "bytes"}
_VALUE_CHARS = 200  # as the validator cuts values in its report


def printable(value: object) -> str:
    """A value's text for a report, cut to 200 characters, with NUL bytes and lone surrogates
    written as ``\\uXXXX`` escapes (the report itself must be storable)."""
    text = value if isinstance(value, str) else repr(value)
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text[:_VALUE_CHARS])


def campaign_ids(values) -> list[str]:
    """The distinct campaign ids among ``values`` that could name a campaign (text that fits
    the column and can be stored): the campaigns whose cached policy an ingest may change."""
    return sorted({v for v in values if isinstance(v, str) and 0 < len(v) <= 64
                   and not _UNSTORABLE.search(v)})


def _what(text: str) -> str:
    ch = _UNSTORABLE.search(text).group()
    return "a NUL byte" if ch == "\x00" else f"a lone surrogate (U+{ord(ch):04X})"


@dataclass
class Unstorable:
    """Rows with a value the store cannot hold: the first such value per row and why, and the
    columns whose very name cannot be stored (they are dropped before validation)."""

    bad: np.ndarray
    column: np.ndarray
    value: np.ndarray
    reason: np.ndarray
    drop: list = field(default_factory=list)

    def flag(self, mask: np.ndarray, column: str, values: np.ndarray, reasons) -> None:
        new = mask & ~self.bad
        if new.any():
            self.bad |= new
            self.column[new] = column
            self.value[new] = [printable(v) for v in values[new]]
            self.reason[new] = reasons[new] if isinstance(reasons, np.ndarray) else reasons


def unstorable(frame: pd.DataFrame, canonical: list[str], limits: dict[str, int]) -> Unstorable:
    """Check every value of ``frame`` (event fields in ``canonical``, anything else kept as the
    event's attributes) against what the store can hold; ``limits`` are column lengths.

    Cheap on clean data: per column pandas tells in C whether every value is a string; if so,
    its strings are joined once and checked with ``in`` and a UTF-8 encode (which refuses lone
    surrogates); rows are located only when that finds something. Only columns holding other
    types (numbers next to text, objects) take a pass per value in Python."""
    n = len(frame)
    out = Unstorable(np.zeros(n, bool), np.full(n, None, object), np.full(n, None, object),
                     np.full(n, None, object))
    for col in frame.columns:
        s = frame[col]
        if not isinstance(col, str) or not _storable(col):
            out.flag(s.notna().to_numpy(), printable(col), s.to_numpy(dtype=object),
                     f"the field name {printable(col)!r} holds a character no database can store")
            out.drop.append(col)
            continue
        if s.dtype != object:  # numbers, dates: nothing to check
            continue
        values = s.to_numpy()
        kind = infer_dtype(values, skipna=True)
        if kind == "empty":
            continue
        if kind == "string":  # the usual case: text and gaps only
            is_str = s.notna().to_numpy()
        else:
            kinds = list(map(type, values))
            is_str = np.fromiter((k is str for k in kinds), bool, n)
            _check_types(out, col, values, kinds, col in canonical)
        strings = values[is_str]
        if not len(strings):
            continue
        if not _storable("\x1f".join(strings)):
            hit = np.zeros(n, bool)
            hit[is_str] = [not _storable(t) for t in strings]
            reasons = np.full(n, "", dtype=object)
            reasons[hit] = [f"{col} holds {_what(t)}, which cannot be stored"
                            for t in values[hit]]
            out.flag(hit, col, values, reasons)
        limit = limits.get(col)
        if limit is not None and max(map(len, strings)) > limit:
            lengths = np.zeros(n, int)
            lengths[is_str] = [len(t) if len(t) <= limit else len(t.strip()) for t in strings]
            long = lengths > limit
            reasons = np.full(n, "", dtype=object)
            reasons[long] = [f"{col} has {k:,} characters; at most {limit:,} can be stored"
                             for k in lengths[long]]
            out.flag(long, col, values, reasons)
    return out


def _storable(text: str) -> bool:
    """No NUL byte and no lone surrogate (UTF-8 cannot encode one): two passes in C."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_types(out: Unstorable, col: str, values: np.ndarray, kinds: list,
                 canonical: bool) -> None:
    """Objects, lists or booleans where an event field belongs; NUL bytes and lone surrogates
    inside nested attribute values (stored as JSON text)."""
    n = len(values)
    if canonical:
        wrong = np.fromiter((k in _NOT_A_NAME for k in kinds), bool, n)
        if wrong.any():
            reasons = np.array([f"{col} must be text or a number, not {_NOT_A_NAME.get(k, '')}"
                                for k in kinds], dtype=object)
            out.flag(wrong, col, values, reasons)
        return
    nested = np.fromiter((k in (dict, list, tuple) for k in kinds), bool, n)
    if not nested.any():
        return
    as_json = np.full(n, "", dtype=object)
    # json.dumps writes a NUL as its escape: read it back as one (no NUL anywhere)
    as_json[nested] = [json.dumps(v, ensure_ascii=False, default=str).replace("\\u0000", "\x00")
                       for v in values[nested]]
    hit = np.fromiter((not _storable(t) for t in as_json), bool, n)
    if hit.any():
        out.flag(hit, col, values, np.array(
            [f"{col} holds {_what(t)}, which cannot be stored" if h else ""
             for t, h in zip(as_json, hit, strict=True)], dtype=object))


# --- rows that are valid but cannot be used ---------------------------------------------
def rejections(store: Store, kept: pd.DataFrame) -> pd.Series:
    """Why each valid event cannot be used ("" when it can): unknown campaign or variant,
    and — for campaigns that log decisions — no decision for its user, or outside the
    attribution window."""
    reject = pd.Series("", index=kept.index, dtype=object)
    with store.engine.connect() as conn:
        camps = pd.read_sql(select(CAMPAIGNS.c.id, CAMPAIGNS.c.attribution_hours), conn)
        variants = pd.read_sql(select(VARIANTS.c.campaign_id, VARIANTS.c.variant), conn)
    known = pd.Series(np.isin(kept[C.CAMPAIGN].to_numpy(dtype=str),
                              camps[C.ID].to_numpy(dtype=str)), index=kept.index)
    reject[~known] = "unknown campaign"
    pairs = pd.MultiIndex.from_arrays([variants["campaign_id"].astype(str),
                                       variants[C.VARIANT].astype(str)])
    known_variant = pd.Series(pd.MultiIndex.from_arrays(
        [kept[C.CAMPAIGN].astype(str), kept[C.VARIANT].astype(str)]).isin(pairs),
        index=kept.index)
    reject[known & ~known_variant] = "unknown variant for this campaign"
    window = camps.set_index(C.ID)["attribution_hours"]
    first, logged_campaigns = _decision_window(store, kept)
    if len(logged_campaigns):
        logged = kept[C.CAMPAIGN].isin(logged_campaigns)
        key = pd.MultiIndex.from_arrays([kept[C.CAMPAIGN], kept[C.USER_ID]])
        t_min = first["min"].reindex(key).to_numpy()
        t_max = first["max"].reindex(key).to_numpy()
        hours = window.reindex(kept[C.CAMPAIGN]).fillna(72).to_numpy()
        t = pd.to_datetime(kept[C.TIME]).to_numpy()
        no_decision = logged.to_numpy() & pd.isna(t_min)
        late = logged.to_numpy() & ~pd.isna(t_max) & (
            t > t_max + (hours * 3600).astype("timedelta64[s]"))
        early = logged.to_numpy() & ~pd.isna(t_min) & (t < t_min - np.timedelta64(5, "m"))
        ok = reject == ""
        reject[ok & no_decision] = "no decision logged for this user in this campaign"
        reject[(reject == "") & late] = "outside the attribution window"
        reject[(reject == "") & early] = "before the user's first decision"
    return reject


def _decision_window(store: Store, kept: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """First and last decision time per (campaign, user) of this batch only, and which of
    the batch's campaigns log decisions at all (queries bounded by the batch, not the log)."""
    from sqlalchemy import func

    cids = kept[C.CAMPAIGN].unique().tolist()
    frames = []
    with store.engine.connect() as conn:
        logged = [r[0] for r in conn.execute(select(DECISIONS.c.campaign_id).where(
            DECISIONS.c.campaign_id.in_(cids)).distinct())]
        users = kept.loc[kept[C.CAMPAIGN].isin(logged), C.USER_ID].unique().tolist()
        for start in range(0, len(users), 5000):  # stay under the driver's parameter limit
            q = (select(DECISIONS.c.campaign_id, DECISIONS.c.user_id,
                        func.min(DECISIONS.c.time).label("min"),
                        func.max(DECISIONS.c.time).label("max"))
                 .where(DECISIONS.c.campaign_id.in_(logged),
                        DECISIONS.c.user_id.in_(users[start:start + 5000]))
                 .group_by(DECISIONS.c.campaign_id, DECISIONS.c.user_id))
            frames.append(pd.read_sql(q, conn))
    window = (pd.concat(frames) if frames else pd.DataFrame(
        columns=["campaign_id", C.USER_ID, "min", "max"]))
    window["min"] = pd.to_datetime(window["min"])
    window["max"] = pd.to_datetime(window["max"])
    return window.set_index(["campaign_id", C.USER_ID]), logged


# --- several inbox batches as one frame --------------------------------------------------
@dataclass
class PendingBatch:
    id: int
    events: list[dict]


def merge_batches(batches: list[PendingBatch]) -> tuple[pd.DataFrame, np.ndarray]:
    """All batches' events as one frame (values as they came: ``dtype=object`` keeps the id
    ``7`` from becoming ``7.0`` next to a missing one) and the batch index of each row."""
    events = [e for b in batches for e in b.events]
    frame = pd.DataFrame(events, dtype=object) if events else pd.DataFrame()
    return frame, np.repeat(np.arange(len(batches)), [len(b.events) for b in batches])


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Quarantined rows per reason, without the row-specific part of each reason."""
    if not len(quarantine):
        return {}
    return (quarantine[C.Q_REASON].astype(str).str.replace(r"\(first seen.*|'.*'", "", regex=True)
            .str.strip().value_counts().to_dict())


def split_outcomes(batches: list[PendingBatch], outcome: np.ndarray, quarantine: pd.DataFrame,
                   q_positions: np.ndarray) -> dict[int, dict]:
    """Per-batch reports from one merged ingest: ``outcome`` is per row of the merged frame
    (``new``, ``stored`` or ``quarantined``) and ``q_positions`` the merged row of each
    quarantine entry (whose row numbers already count within its batch)."""
    sizes = np.array([len(b.events) for b in batches], dtype=int)
    batch_of = np.repeat(np.arange(len(batches)), sizes)
    q_batch = batch_of[np.asarray(q_positions, dtype=int)]
    results: dict[int, dict] = {}
    for i, b in enumerate(batches):
        mine = batch_of == i
        qi = quarantine[q_batch == i]
        results[b.id] = {"read": int(sizes[i]),
                         "kept": int((outcome[mine] != "quarantined").sum()),
                         "quarantined": int(len(qi)),
                         "already_stored": int((outcome[mine] == "stored").sum()),
                         "reasons": reason_counts(qi),
                         "rejected": qi.head(100).to_dict(orient="records")}
    return results


@dataclass
class EventIngest:
    """What one call storing feedback events did: rows read, kept, quarantined (``quarantine``
    says why), and kept rows whose id the store already had."""

    read: int
    kept: int
    quarantined: int
    duplicates_in_store: int
    quarantine: pd.DataFrame = field(repr=False)

    def summary(self) -> dict:
        return {"read": self.read, "kept": self.kept, "quarantined": self.quarantined,
                "already_stored": self.duplicates_in_store,
                "reasons": self.quarantine[C.Q_REASON].str.replace(
                    r"\(first seen.*|'.*'", "", regex=True).str.strip().value_counts().to_dict()
                if len(self.quarantine) else {}}


def store_events(store: Store, frame: pd.DataFrame, batch: np.ndarray | None = None
                 ) -> tuple[EventIngest, np.ndarray, np.ndarray, pd.DataFrame]:
    """Validate, deduplicate and store feedback events (see
    :meth:`adpilot.optimization.campaigns.Campaigns.ingest_events_rows`): the report, each
    input row's outcome, the input row of each quarantine entry, and the newly stored events
    (for the caller's policies)."""
    frame = frame.reset_index(drop=True)
    read = len(frame)
    group = np.zeros(read, dtype=int) if batch is None else np.asarray(batch, dtype=int)
    local = np.arange(read) - np.searchsorted(group, group, side="left") + 1
    outcome = np.full(read, "quarantined", dtype=object)
    for spec in EVENTS.fields:  # a batch without a required field: every row says so
        if spec.required and spec.name not in frame.columns:
            frame[spec.name] = None
    limits = {c.name: c.type.length for c in TABLES["events"].columns
              if getattr(c.type, "length", None)}
    check = unstorable(frame, EVENTS.names, limits)
    sub = frame.drop(columns=check.drop).loc[~check.bad]
    ok = np.flatnonzero(~check.bad)
    v = validate(sub[[c for c in sub.columns if c in EVENTS.names]], EVENTS,
                 extra=sub[[c for c in sub.columns if c not in EVENTS.names]],
                 row_numbers=local[ok], groups=group[ok])
    kept = v.kept
    positions = ok[v.kept_positions]
    failed = np.ones(len(sub), dtype=bool)
    failed[v.kept_positions] = False
    parts = [(v.quarantine, ok[failed])]
    if check.bad.any():
        pre = quarantine_frame([]).reindex(range(int(check.bad.sum())))
        pre[C.Q_ROW] = pd.array(local[check.bad], dtype="Int64")
        pre[C.Q_COLUMN] = check.column[check.bad]
        pre[C.Q_VALUE] = check.value[check.bad]
        pre[C.Q_REASON] = check.reason[check.bad]
        parts.append((pre, np.flatnonzero(check.bad)))
    reject = rejections(store, kept)
    bad = (reject != "").to_numpy()
    if bad.any():
        extra = quarantine_frame([]).reindex(range(int(bad.sum())))
        extra[C.Q_ROW] = pd.array(local[positions[bad]], dtype="Int64")
        extra[C.Q_COLUMN] = C.CAMPAIGN
        extra[C.Q_VALUE] = (kept.loc[bad, C.CAMPAIGN] + "/" + kept.loc[bad, C.VARIANT]).to_numpy()
        extra[C.Q_REASON] = reject[bad].to_numpy()
        parts.append((extra, positions[bad]))
        kept = kept.loc[~bad].reset_index(drop=True)
        positions = positions[~bad]
    # an id kept in two batches: the first stores it, the later ones find it stored
    later = kept[C.EVENT_ID].duplicated(keep="first").to_numpy()
    first = kept.loc[~later]
    new_ids = store.insert_new("events", first) if len(first) else []
    # numpy, not Series.isin: pandas' Arrow strings build a scalar per looked-up value
    is_new = np.isin(first[C.EVENT_ID].to_numpy(dtype=str), np.asarray(new_ids, dtype=str))
    outcome[positions[~later]] = np.where(is_new, "new", "stored")
    outcome[positions[later]] = "stored"
    q_pos = np.concatenate([p for _, p in parts]).astype(int)
    order = np.argsort(q_pos, kind="stable")
    quarantine = pd.concat([q for q, _ in parts if len(q)] or [quarantine_frame([])],
                           ignore_index=True).iloc[order].reset_index(drop=True)
    return (EventIngest(read, len(kept), len(quarantine), len(kept) - len(new_ids),
                        quarantine), outcome, q_pos[order], first[is_new])
