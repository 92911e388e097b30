"""A small background job runner: threads in this process, every state change written to the
store, so a restart shows interrupted jobs as failed instead of forgetting them."""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Float, String, Table, Text, select, update

from adpilot.errors import AdpilotError
from adpilot.jsonable import dumps
from adpilot.store.sql import Store, metadata

log = logging.getLogger("adpilot.api.jobs")

JOBS = Table(
    "api_jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | succeeded | failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("message", Text, nullable=True),
    Column("params", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
)

Progress = Callable[[float, str | None], None]
JobFn = Callable[[Progress], dict]
INTERRUPTED = "interrupted: the server stopped before the job finished (outcome unknown)"


# A file path in a message: starts with /, ./, ../ or ~/ (not inside a URL), or has two or more
# slashes. Clients see its last part only: the server's folders are none of their business.
_PATH = re.compile(r"(?<![\w.:/~-])(?:~|\.\.?)?/[^\s'\"`,;()<>\[\]]+"
                   r"|(?<![\w.:/~-])[\w.-]+(?:/[\w.-]+){2,}/?")


def public_error(message: str) -> str:
    """``message`` with every file path reduced to its last part (``../shared/data`` → ``data``,
    ``/srv/x/reviews.csv:`` → ``reviews.csv:``); URLs are left as they are."""
    def last_part(m: re.Match) -> str:
        token = m.group(0)
        tail = re.search(r"[.:]+$", token)
        end = tail.group(0) if tail and not token.endswith(("/.", "/..")) else ""
        core = token[: len(token) - len(end)].rstrip("/")
        return (core.rsplit("/", 1)[-1] or core) + end
    return _PATH.sub(last_part, message)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class JobRunner:
    """Run ``fn(progress)`` in a thread pool; poll with :meth:`get`."""

    def __init__(self, store: Store, *, workers: int = 2) -> None:
        self.store = store
        JOBS.create(store.engine, checkfirst=True)
        with store.engine.begin() as conn:  # whatever was in flight died with the old process
            conn.execute(update(JOBS).where(JOBS.c.status.in_(("queued", "running"))).values(
                status="failed", error=INTERRUPTED, finished_at=_now()))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adpilot-job")
        self._done: dict[str, threading.Event] = {}

    def _set(self, job_id: str, **values: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))

    def submit(self, kind: str, fn: JobFn, params: dict | None = None) -> str:
        """Queue a job; returns its id at once."""
        job_id = uuid.uuid4().hex
        with self.store.engine.begin() as conn:
            conn.execute(JOBS.insert().values(id=job_id, kind=kind, status="queued", progress=0.0,
                                              params=dumps(params or {}), created_at=_now()))
        self._done[job_id] = threading.Event()
        self._pool.submit(self._run, job_id, fn)
        return job_id

    def _run(self, job_id: str, fn: JobFn) -> None:
        self._set(job_id, status="running", started_at=_now())

        def progress(fraction: float, message: str | None = None) -> None:
            self._set(job_id, progress=max(0.0, min(1.0, float(fraction))), message=message)

        try:
            result = fn(progress)
            self._set(job_id, status="succeeded", progress=1.0, result=dumps(result),
                      finished_at=_now())
        except AdpilotError as exc:
            log.info("job %s failed: %s", job_id, exc)  # the full message, paths included
            self._set(job_id, status="failed", error=public_error(str(exc)), finished_at=_now())
        except Exception:  # a bug: keep the traceback in the server log, not in the record
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            self._set(job_id, status="failed", error="internal error (see the server log)",
                      finished_at=_now())
        finally:
            self._done.pop(job_id, threading.Event()).set()

    def wait(self, job_id: str, timeout: float) -> None:
        """Block up to ``timeout`` seconds for a job of this process to finish."""
        event = self._done.get(job_id)
        if event is not None:
            event.wait(timeout)

    def get(self, job_id: str) -> dict | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        if row is None:
            return None
        job = dict(row._mapping)
        for key in ("params", "result"):
            job[key] = json.loads(job[key]) if job[key] else None
        return job

    def list(self, limit: int = 50) -> list[dict]:
        cols = [c for c in JOBS.columns if c.name not in ("params", "result")]
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(*cols).order_by(JOBS.c.created_at.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
