"""A durable inbox for feedback events: accept a batch in one small write, process it later.

``POST /v1/events`` stores the request body as it came (one row per batch) and answers at
once; a drainer merges many pending batches into one vectorised
:meth:`~adpilot.optimization.campaigns.Campaigns.ingest_events_rows` call and records each
batch's outcome. Nothing is lost: a batch stays in the inbox until its outcome is written, and
processing twice stores nothing twice (events are idempotent by ``event_id``), so a crash
between the two only repeats work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Column, DateTime, Integer, LargeBinary, String, Table, Text, func, select, update

from adpilot.data import columns as C
from adpilot.errors import NotFoundError
from adpilot.jsonable import dumps
from adpilot.store.sql import Store, metadata

EVENT_INBOX = Table(
    "event_inbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False),
    Column("n_events", Integer, nullable=False),
    # the JSON request body (zlib-compressed above 1 KB); cleared once processed
    Column("body", LargeBinary, nullable=True),
    Column("status", String(48), nullable=False, default="pending", index=True),
    Column("claimed_at", DateTime, nullable=True),
    Column("processed_at", DateTime, nullable=True),
    Column("result", Text, nullable=True),
)

_COMPRESS_ABOVE = 1024  # bytes; smaller bodies are stored as they came


def _decode(body: bytes) -> bytes:
    """A stored body as JSON: compressed bodies start with zlib's header byte ``x``, which no
    JSON document starts with."""
    return zlib.decompress(body) if body[:1] == b"x" else body


# A claim older than this belongs to a drainer that died; its batches go back to pending.
STALE_CLAIM = timedelta(minutes=5)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class PendingBatch:
    id: int
    events: list[dict]


class EventInbox:
    """Pending event batches in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[EVENT_INBOX])
        quote = store.engine.dialect.identifier_preparer.quote
        mark = "?" if store.dialect == "sqlite" else "%s"
        self._insert_sql = (f"INSERT INTO {quote(EVENT_INBOX.name)} (received_at, n_events, body, "
                            f"status) VALUES ({mark}, {mark}, {mark}, 'pending') RETURNING id")

    def put(self, body: bytes, n_events: int) -> int:
        """Store one batch (a JSON body ``{"events": [...]}``); returns its id."""
        return self.put_many([(body, n_events)])[0]

    def put_many(self, batches: list[tuple[bytes, int]]) -> list[int]:
        """Store batches (body, number of events) in one transaction; returns their ids.

        The hot path of ``POST /v1/events``: driver-level INSERTs (no SQL compilation or
        parameter processing per call) of each body compressed with zlib's fastest level (JSON
        event batches shrink several times, so the write-ahead log grows that much less)."""
        received = _now()
        if self.store.dialect == "sqlite":  # SQLAlchemy's own text form for SQLite dates
            received = received.strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = [(received, n, zlib.compress(body, 1) if len(body) > _COMPRESS_ABOVE else body)
                for body, n in batches]  # zlib releases the interpreter lock while it runs
        with self.store.engine.begin() as conn:
            return [int(conn.exec_driver_sql(self._insert_sql, row).scalar_one()) for row in rows]

    def pending(self) -> int:
        """Events waiting to be processed."""
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(EVENT_INBOX.c.n_events), 0))
                                    .where(EVENT_INBOX.c.status != "done")).scalar_one())

    def has_work(self) -> bool:
        """Whether any batch is pending or claimed (one indexed look-up)."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(EVENT_INBOX.c.id).where(
                EVENT_INBOX.c.status != "done").limit(1)).first() is not None

    def claim(self, max_events: int) -> list[PendingBatch]:
        """Take the oldest pending batches (at least one, then up to ``max_events`` events).

        The claim is one conditional UPDATE, so two drainers (several server processes on
        PostgreSQL) never take the same batch."""
        token = f"claimed:{uuid.uuid4().hex}"
        with self.store.engine.begin() as conn:
            conn.execute(update(EVENT_INBOX).where(
                EVENT_INBOX.c.status.like("claimed:%"),
                EVENT_INBOX.c.claimed_at < _now() - STALE_CLAIM).values(status="pending"))
            rows = conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.n_events).where(
                EVENT_INBOX.c.status == "pending").order_by(EVENT_INBOX.c.id).limit(1000)).all()
            sizes = np.cumsum([r.n_events for r in rows])
            take = [r.id for r, total in zip(rows, sizes, strict=True)
                    if total <= max_events or r.id == rows[0].id]
            if not take:
                return []
            conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.id.in_(take),
                                                   EVENT_INBOX.c.status == "pending")
                         .values(status=token, claimed_at=_now()))
            got = conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.body).where(
                EVENT_INBOX.c.status == token).order_by(EVENT_INBOX.c.id)).all()
        return [PendingBatch(r.id, json.loads(_decode(r.body))["events"]) for r in got]

    def complete(self, results: dict[int, dict]) -> None:
        """Record each batch's outcome and drop its body."""
        with self.store.engine.begin() as conn:
            for batch_id, result in results.items():
                conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.id == batch_id).values(
                    status="done", processed_at=_now(), body=None,
                    result=dumps(result)))

    def get(self, batch_id: int) -> dict:
        """A batch's status and, once processed, its counts and rejected rows."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.status,
                                      EVENT_INBOX.c.n_events, EVENT_INBOX.c.received_at,
                                      EVENT_INBOX.c.processed_at, EVENT_INBOX.c.result)
                               .where(EVENT_INBOX.c.id == batch_id)).first()
        if row is None:
            raise NotFoundError(f"unknown event batch {batch_id}")
        status = "processed" if row.status == "done" else "pending"
        out = {"batch": row.id, "status": status, "events": row.n_events,
               "received_at": row.received_at.isoformat()}
        if row.result:
            out |= {"processed_at": row.processed_at.isoformat(),  # NaN → null
                    **json.loads(row.result, parse_constant=lambda _: None)}
        return out


class InboxAppender:
    """Appends batches to an inbox from one thread, with group commit: the batches that
    arrive while a transaction is being written go together in the next one. An async caller
    waits for its batch to be committed without blocking its event loop, and the thread hop
    costs less than a general thread pool's."""

    def __init__(self, inbox: EventInbox, on_stored: Callable[[], None] | None = None) -> None:
        self.inbox, self.on_stored = inbox, on_stored
        self._waiting: list[tuple[bytes, int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    async def put(self, body: bytes, n_events: int) -> int:
        """Store one batch durably; returns its id once it is committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._stop = False
                self._thread = threading.Thread(target=self._run, name="adpilot-inbox-append",
                                                daemon=True)
                self._thread.start()
            self._waiting.append((body, n_events, loop, future))
        self._ready.set()
        return await future

    def _run(self) -> None:
        while True:
            if not self._stop:
                self._ready.wait()
            self._ready.clear()
            with self._lock:
                waiting, self._waiting = self._waiting, []
                if not waiting and self._stop:
                    self._thread = None  # a later put starts a new thread
                    return
            if not waiting:
                continue
            try:
                ids = self.inbox.put_many([(body, n) for body, n, _, _ in waiting])
                outcomes = [(_resolve, i) for i in ids]
            except Exception as exc:  # each waiting request answers with the error
                outcomes = [(_fail, exc)] * len(waiting)
            for (_, _, loop, future), (answer, value) in zip(waiting, outcomes, strict=True):
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    loop.call_soon_threadsafe(answer, future, value)
            if self.on_stored is not None:
                self.on_stored()

    def close(self) -> None:
        """Write what is waiting, then stop the thread."""
        with self._lock:
            self._stop = True
        self._ready.set()
        thread = self._thread
        if thread is not None:
            thread.join(30)


def _resolve(future: asyncio.Future, value: int) -> None:
    if not future.done():  # a request cancelled meanwhile: its batch is stored all the same
        future.set_result(value)


def _fail(future: asyncio.Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def split_outcomes(batches: list[PendingBatch], combined: pd.DataFrame, outcome: np.ndarray,
                   quarantine: pd.DataFrame, cross_duplicate: np.ndarray) -> dict[int, dict]:
    """Per-batch counts from one merged ingest: ``outcome`` is per row of ``combined`` (rows
    dropped before ingest as repeats of an earlier batch's id count as already stored)."""
    sizes = np.array([len(b.events) for b in batches])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    batch_of = np.repeat(np.arange(len(batches)), sizes)
    stored = cross_duplicate.copy()
    stored[~cross_duplicate] = outcome == "stored"
    new = np.zeros(len(combined), dtype=bool)
    new[~cross_duplicate] = outcome == "new"
    # quarantine rows number the rows that reached ingest (1-based); map them to the merged frame
    reached = np.flatnonzero(~cross_duplicate)
    q = quarantine.copy()
    q_pos = reached[q[C.Q_ROW].astype(int).to_numpy() - 1] if len(q) else np.array([], int)
    q_batch = batch_of[q_pos] if len(q) else np.array([], int)
    results: dict[int, dict] = {}
    for i, b in enumerate(batches):
        mine = batch_of == i
        qi = q[q_batch == i].copy()
        qi[C.Q_ROW] = q_pos[q_batch == i] - starts[i] + 1
        reasons = (qi[C.Q_REASON].astype(str).str.replace(r"\(first seen.*|'.*'", "", regex=True)
                   .str.strip().value_counts().to_dict() if len(qi) else {})
        results[b.id] = {"read": int(sizes[i]), "kept": int((new | stored)[mine].sum()),
                         "quarantined": int(len(qi)), "already_stored": int(stored[mine].sum()),
                         "reasons": reasons,
                         "rejected": qi.head(100).to_dict(orient="records")}
    return results


def merge_batches(batches: list[PendingBatch]) -> tuple[pd.DataFrame, np.ndarray]:
    """All batches as one frame, and which rows repeat an id first seen in an *earlier* batch
    (those are already stored by the time sequential processing would reach them; repeats
    within one batch stay in, so ingest quarantines them as it would for that batch alone)."""
    frame = pd.DataFrame.from_records([e for b in batches for e in b.events])
    if C.EVENT_ID not in frame or frame.empty:
        return frame, np.zeros(len(frame), dtype=bool)
    batch = np.repeat(np.arange(len(batches)), [len(b.events) for b in batches])
    ids = frame[C.EVENT_ID].astype(str)
    first_batch = pd.Series(batch).groupby(ids.to_numpy()).transform("min").to_numpy()
    cross = (batch > first_batch) & frame[C.EVENT_ID].notna().to_numpy()
    return frame, cross
