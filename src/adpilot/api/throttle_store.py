"""Failure counts and lockouts of :class:`~adpilot.api.throttle.AuthThrottle` kept in the store
(table ``auth_failures``), so that every process serving one store counts the same failures
and honours the same lockouts (several uvicorn workers, or several servers behind a balancer).

One row per client or account: its recent failure times, lockout end and lockout count, as
wall-clock seconds (a monotonic clock is per process). Keys are SHA-256 digests, so no user
name typed into a login form (sometimes a password) is stored. An update is applied only if
the row is unchanged since it was read (a version number), and retried otherwise, so two
processes counting at once lose no failure. A check reads the row at most once per
``cache_seconds`` per key and process: a lockout set by another process is honoured within
that time; one set by this process at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque

from sqlalchemy import Column, Float, Integer, String, Table, Text, delete, select, update
from sqlalchemy.exc import IntegrityError

from adpilot.api.throttle import Clock, FailureCounter, _Record
from adpilot.store.sql import Store, metadata

AUTH_FAILURES = Table(
    "auth_failures", metadata,
    Column("key", String(64), primary_key=True),  # SHA-256 of the counter's name and the key
    Column("failures", Text, nullable=False),  # JSON list of recent failure times
    Column("locked_until", Float, nullable=False),
    Column("lockouts", Integer, nullable=False),
    Column("last_seen", Float, nullable=False, index=True),
    Column("version", Integer, nullable=False),
)
_TRIES = 8


class StoredFailureCounter(FailureCounter):
    """A :class:`FailureCounter` whose records live in the store (see the module docstring)."""

    def __init__(self, store: Store, name: str, *, cache_seconds: float = 1.0,
                 clock: Clock = time.time, **options) -> None:
        super().__init__(clock=clock, **options)
        self.engine, self.name, self.cache_seconds = store.engine, name, cache_seconds
        self._seen: dict[str, tuple[float, float]] = {}  # digest -> (locked_until, read at)
        AUTH_FAILURES.create(self.engine, checkfirst=True)

    def _digest(self, key: object) -> str:
        return hashlib.sha256(f"{self.name}\0{key!r}".encode("utf-8", "backslashreplace")
                              ).hexdigest()

    def _remember(self, digest: str, locked_until: float) -> None:
        if len(self._seen) >= self.max_keys:
            self._seen.clear()
        self._seen[digest] = (locked_until, time.monotonic())

    def retry_after(self, key: object) -> float:
        if self.max_failures <= 0:
            return 0.0
        digest = self._digest(key)
        seen = self._seen.get(digest)
        if seen is None or time.monotonic() - seen[1] >= self.cache_seconds:
            with self.engine.connect() as conn:
                locked = conn.execute(select(AUTH_FAILURES.c.locked_until)
                                      .where(AUTH_FAILURES.c.key == digest)).scalar()
            seen = (locked or 0.0, 0.0)
            self._remember(digest, seen[0])
        return max(0.0, seen[0] - self.clock())

    def failure(self, key: object) -> tuple[float, int]:
        if self.max_failures <= 0:
            return 0.0, 0
        digest, t = self._digest(key), AUTH_FAILURES.c
        for _ in range(_TRIES):
            now = self.clock()
            with self.engine.begin() as conn:
                row = conn.execute(select(AUTH_FAILURES).where(t.key == digest)).first()
                record = _Record() if row is None else _Record(
                    deque(json.loads(row.failures)), row.locked_until, row.lockouts,
                    row.last_seen)
                result = self._count(record, now)
                values = {"failures": json.dumps(list(record.failures)),
                          "locked_until": record.locked_until, "lockouts": record.lockouts,
                          "last_seen": now}
                if row is None:
                    conn.execute(delete(AUTH_FAILURES).where(  # idle long enough: forgotten
                        t.last_seen < now - self.window - self.max_lockout))
                    try:
                        with conn.begin_nested():
                            conn.execute(AUTH_FAILURES.insert().values(key=digest, version=0,
                                                                       **values))
                    except IntegrityError:
                        continue  # another process counted its first failure at once
                elif not conn.execute(update(AUTH_FAILURES).where(
                        t.key == digest, t.version == row.version).values(
                        version=row.version + 1, **values)).rowcount:
                    continue  # changed since read: count again on the new state
            self._remember(digest, record.locked_until)
            return result
        return 0.0, 0  # never seen: every try met a concurrent change

    def success(self, key: object) -> None:
        digest = self._digest(key)
        with self.engine.begin() as conn:
            conn.execute(delete(AUTH_FAILURES).where(AUTH_FAILURES.c.key == digest))
        self._seen.pop(digest, None)
