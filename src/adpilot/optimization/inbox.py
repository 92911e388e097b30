"""A durable inbox for feedback events: accept a batch in one small write, process it later.

``POST /v1/events`` stores the request body as it came (one row per batch) and answers at
once; a drainer merges many pending batches into one vectorised
:meth:`~adpilot.optimization.campaigns.Campaigns.ingest_events_rows` call and records each
batch's outcome. Nothing is lost: a batch stays in the inbox until its outcome is written, and
processing twice stores nothing twice (events are idempotent by ``event_id``), so a crash
between the two only repeats work. A batch that cannot be processed even on its own goes to
the dead letters (status ``dead``) with its reason and its body, to be retried once fixed.

Who holds a claim. A claim's status is ``claimed:<host>:<pid>:<nonce>``: ``<host>`` is a hash
of the host name and the process-id namespace (two containers are two hosts), ``<pid>`` the
process that claimed it. A claim is taken back (to ``pending``) when

- its process is gone and was on this host — checked when an inbox is opened (a server
  starting after a crash resumes at once) and before every claim (a worker process that died
  under a live server); or
- it was not renewed for :data:`LEASE`: the claimer renews it every :data:`RENEW_EVERY`
  while it works (:meth:`EventInbox.keep_claimed`), so only a claim whose process died on
  another host, or hangs, waits that long.

Taking back a live claim by mistake (a hung holder) is safe: events are stored once by id, and
the outcome is written only by the claim's current holder (:meth:`EventInbox.complete` checks
the token). A batch taken back is next processed alone, so a batch that kills its process is
found out; after :data:`MAX_RECLAIMS` such interruptions it goes to the dead letters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
    text,
    update,
)

from adpilot.errors import NotFoundError
from adpilot.jsonable import dumps
from adpilot.optimization.event_rows import PendingBatch, merge_batches, printable, split_outcomes
from adpilot.optimization.inbox_appender import InboxAppender
from adpilot.store.sql import Store, metadata

__all__ = ["EVENT_INBOX", "Claim", "EventInbox", "InboxAppender", "PendingBatch",
           "merge_batches", "split_outcomes"]

EVENT_INBOX = Table(
    "event_inbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False),
    Column("n_events", Integer, nullable=False),
    # the JSON request body (zlib-compressed above 1 KB); cleared once processed
    Column("body", LargeBinary, nullable=True),
    # pending, claimed:<host>:<pid>:<nonce>, done, or dead (a dead letter)
    Column("status", String(48), nullable=False, default="pending", index=True),
    Column("claimed_at", DateTime, nullable=True),
    Column("processed_at", DateTime, nullable=True),
    Column("result", Text, nullable=True),
    # how often a claim of it was taken back from a process that died
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
)

_COMPRESS_ABOVE = 1024  # bytes; smaller bodies are stored as they came
MAX_BATCH_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL

LEASE = timedelta(seconds=60)  # a claim not renewed for this long is taken back
RENEW_EVERY = 15.0  # seconds between renewals while a claim is processed
MAX_RECLAIMS = 5  # interrupted this often (its process died each time): a dead letter


def _decode(body: bytes) -> bytes:
    """A stored body as JSON: compressed bodies start with zlib's header byte ``x``, which no
    JSON document starts with."""
    return zlib.decompress(body) if body[:1] == b"x" else body


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _host() -> str:
    """This host and process-id namespace, as 8 hex digits: pids compare only within it."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return hashlib.sha1(f"{socket.gethostname()}/{namespace}".encode()).hexdigest()[:8]


HOST = _host()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` (on this host) still runs; a zombie does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _owner_gone(status: str) -> bool:
    """Whether a claim's status names a process on this host that is gone."""
    parts = status.split(":")
    if len(parts) != 4 or parts[1] != HOST or not parts[2].isdigit():
        return False  # another host's claim, or an older format: only the lease applies
    return not _alive(int(parts[2]))


@dataclass
class Claim:
    """Batches taken for processing under one token (``taken`` counts those that went to the
    dead letters at once, their body unreadable or their processing interrupted too often)."""

    token: str
    batches: list[PendingBatch]
    taken: int


class EventInbox:
    """Pending event batches in the store."""

    def __init__(self, store: Store, *, owner_pid: int | None = None) -> None:
        self.store = store
        self.owner_pid = owner_pid or os.getpid()
        metadata.create_all(store.engine, tables=[EVENT_INBOX])
        _add_attempts_column(store)
        quote = store.engine.dialect.identifier_preparer.quote
        mark = "?" if store.dialect == "sqlite" else "%s"
        self._insert_sql = (f"INSERT INTO {quote(EVENT_INBOX.name)} (received_at, n_events, body, "
                            f"status, attempts) VALUES ({mark}, {mark}, {mark}, 'pending', 0) "
                            "RETURNING id")
        with store.engine.begin() as conn:  # what a dead process held is processed now
            self._reclaim(conn)

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

    def _open(self):
        return EVENT_INBOX.c.status.not_in(("done", "dead"))

    def pending(self) -> int:
        """Events waiting to be processed (pending or being processed)."""
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(EVENT_INBOX.c.n_events), 0))
                                    .where(self._open())).scalar_one())

    def has_work(self) -> bool:
        """Whether any batch is pending or claimed (one indexed look-up)."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(EVENT_INBOX.c.id).where(self._open()).limit(1)
                                ).first() is not None

    def _reclaim(self, conn) -> int:
        """Claims whose process is gone (this host) or whose lease ran out go back to pending;
        returns how many batches."""
        held = conn.execute(select(EVENT_INBOX.c.status, func.max(EVENT_INBOX.c.claimed_at))
                            .where(EVENT_INBOX.c.status.like("claimed:%"))
                            .group_by(EVENT_INBOX.c.status)).all()
        expired = _now() - LEASE
        lost = [s for s, at in held if _owner_gone(s) or at is None or at < expired]
        if not lost:
            return 0
        return conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.status.in_(lost)).values(
            status="pending", attempts=EVENT_INBOX.c.attempts + 1)).rowcount

    def claim(self, max_events: int) -> Claim | None:
        """Take the oldest pending batches (at least one, then up to ``max_events`` events);
        a batch whose earlier claim was interrupted is taken alone.

        The claim is one conditional UPDATE, so two drainers (several server processes on
        PostgreSQL) never take the same batch."""
        token = f"claimed:{HOST}:{self.owner_pid}:{uuid.uuid4().hex[:8]}"
        with self.store.engine.begin() as conn:
            self._reclaim(conn)
            rows = conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.n_events,
                                       EVENT_INBOX.c.attempts)
                                .where(EVENT_INBOX.c.status == "pending")
                                .order_by(EVENT_INBOX.c.id).limit(1000)).all()
            if not rows:
                return None
            if rows[0].attempts:
                take = [rows[0].id]
            else:
                fresh = [r for r in rows if not r.attempts]
                sizes = np.cumsum([r.n_events for r in fresh])
                take = [r.id for r, total in zip(fresh, sizes, strict=True)
                        if total <= max_events or r.id == rows[0].id]
            conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.id.in_(take),
                                                   EVENT_INBOX.c.status == "pending")
                         .values(status=token, claimed_at=_now()))
            got = conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.body,
                                      EVENT_INBOX.c.attempts)
                               .where(EVENT_INBOX.c.status == token)
                               .order_by(EVENT_INBOX.c.id)).all()
        batches = []
        for r in got:
            if r.attempts >= MAX_RECLAIMS:
                self.dead_letter(r.id, f"its processing was interrupted {r.attempts} times (the "
                                 "process handling it died each time)", token)
                continue
            try:
                events = json.loads(_decode(r.body))["events"]
                if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                    raise ValueError("'events' is not a list of objects")
            except (ValueError, KeyError, TypeError, zlib.error) as exc:
                self.dead_letter(r.id, f"the stored body cannot be read: {printable(str(exc))}",
                                 token)
                continue
            batches.append(PendingBatch(r.id, events))
        return Claim(token, batches, len(got)) if got else None

    def renew(self, token: str) -> None:
        """Extend a claim's lease (its holder is still working on it)."""
        with self.store.engine.begin() as conn:
            conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.status == token)
                         .values(claimed_at=_now()))

    @contextlib.contextmanager
    def keep_claimed(self, token: str) -> Iterator[None]:
        """Renew the claim every :data:`RENEW_EVERY` seconds while the block runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(RENEW_EVERY):
                with contextlib.suppress(Exception):  # best effort: the lease is the backstop
                    self.renew(token)

        thread = threading.Thread(target=renew, name="adpilot-inbox-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def complete(self, results: dict[int, dict], token: str | None = None) -> None:
        """Record each batch's outcome and drop its body (only while ``token`` still holds
        the batch, when given: a claim taken back meanwhile belongs to its new holder)."""
        with self.store.engine.begin() as conn:
            for batch_id, result in results.items():
                held = [EVENT_INBOX.c.status == token] if token else []
                conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.id == batch_id, *held)
                             .values(status="done", processed_at=_now(), body=None,
                                     result=dumps(result)))

    def dead_letter(self, batch_id: int, reason: str, token: str | None = None) -> None:
        """Set a batch aside with the reason it cannot be processed; its body is kept."""
        held = [EVENT_INBOX.c.status == token] if token else []
        with self.store.engine.begin() as conn:
            conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.id == batch_id, *held).values(
                status="dead", processed_at=_now(), result=dumps({"error": reason})))

    def release(self, token: str) -> None:
        """Give a claim's batches back to pending (processing failed for a passing reason)."""
        with self.store.engine.begin() as conn:
            conn.execute(update(EVENT_INBOX).where(EVENT_INBOX.c.status == token)
                         .values(status="pending"))

    def retry(self, batch_id: int) -> None:
        """Process a dead letter again (after the cause was fixed)."""
        with self.store.engine.begin() as conn:
            n = conn.execute(update(EVENT_INBOX).where(
                EVENT_INBOX.c.id == batch_id, EVENT_INBOX.c.status == "dead",
                EVENT_INBOX.c.body.is_not(None)).values(
                status="pending", attempts=0, processed_at=None, result=None)).rowcount
        if not n:
            raise NotFoundError(f"no dead-lettered event batch {batch_id}")

    def dead_letters(self, limit: int = 100) -> tuple[int, list[dict]]:
        """How many batches are dead letters, and the newest ``limit`` of them with reasons."""
        t = EVENT_INBOX
        with self.store.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(t)
                                 .where(t.c.status == "dead")).scalar_one()
            rows = conn.execute(select(t.c.id, t.c.n_events, t.c.received_at, t.c.processed_at,
                                       t.c.result).where(t.c.status == "dead")
                                .order_by(t.c.id.desc()).limit(limit)).all()
        return int(total), [{"batch": r.id, "events": r.n_events,
                             "received_at": r.received_at.isoformat(),
                             "failed_at": r.processed_at.isoformat() if r.processed_at else None,
                             "error": json.loads(r.result or "{}").get("error")} for r in rows]

    def get(self, batch_id: int) -> dict:
        """A batch's status (pending, processed or dead_letter) and, once processed, its
        counts and rejected rows; a dead letter has the reason it failed."""
        if not 1 <= batch_id <= MAX_BATCH_ID:
            raise NotFoundError(f"unknown event batch {batch_id}")
        with self.store.engine.connect() as conn:
            row = conn.execute(select(EVENT_INBOX.c.id, EVENT_INBOX.c.status,
                                      EVENT_INBOX.c.n_events, EVENT_INBOX.c.received_at,
                                      EVENT_INBOX.c.processed_at, EVENT_INBOX.c.result)
                               .where(EVENT_INBOX.c.id == batch_id)).first()
        if row is None:
            raise NotFoundError(f"unknown event batch {batch_id}")
        status = {"done": "processed", "dead": "dead_letter"}.get(row.status, "pending")
        out = {"batch": row.id, "status": status, "events": row.n_events,
               "received_at": row.received_at.isoformat()}
        if row.result:
            key = "failed_at" if status == "dead_letter" else "processed_at"
            out |= {key: row.processed_at.isoformat(),  # NaN → null
                    **json.loads(row.result, parse_constant=lambda _: None)}
        return out


def _add_attempts_column(store: Store) -> None:
    """Inboxes made before the ``attempts`` column get it (several processes may try at once)."""
    if "attempts" in {c["name"] for c in inspect(store.engine).get_columns(EVENT_INBOX.name)}:
        return
    with contextlib.suppress(Exception), store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {EVENT_INBOX.name} "
                          "ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"))
