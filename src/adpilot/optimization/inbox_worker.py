"""Processing the event inbox in a separate, lower-priority process.

Ingesting a merged claim of events (validation, deduplication, the insert, the policy update)
is pandas and SQL work that holds the interpreter lock for long stretches. Run in a thread of
the API server it steals the lock from request handling: every socket read then waits for the
next switch interval, and event throughput and decision latency suffer. In its own process,
started with a lower scheduling priority (``nice``), it has its own interpreter lock and gets
the CPU only when request handling leaves some.

:func:`process_claim` is the unit of work, the same in a thread or in the worker process: claim
pending batches, ingest them as one merged frame, record each batch's outcome.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy import exc as sa_exc

from adpilot.data import columns as C
from adpilot.optimization.campaigns import Campaigns
from adpilot.optimization.event_rows import (
    PendingBatch,
    campaign_ids,
    merge_batches,
    printable,
    split_outcomes,
)
from adpilot.optimization.inbox import EventInbox
from adpilot.store.sql import Store

log = logging.getLogger(__name__)

WORKER_NICE = 10  # added to the server's niceness: the worker yields the CPU to requests
# the database is unreachable or busy: the same batches may well go through in a moment
_PASSING = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
            sa_exc.TimeoutError)


def _passing(exc: BaseException | None) -> bool:
    """Whether a failure (or the one it was raised from) is the database's, not the data's."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, _PASSING):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def failure_reason(exc: BaseException) -> str:
    """A short, storable reason for a dead letter: the database driver's own message when
    there is one (no SQL, parameters or database URL)."""
    root: BaseException = exc
    for _ in range(5):  # StoreError wraps the SQLAlchemy error, which wraps the driver's
        if isinstance(root, sa_exc.DBAPIError) or root.__context__ is None:
            break
        root = root.__context__
    root = root.orig if isinstance(root, sa_exc.DBAPIError) else exc
    first = (str(root).strip().splitlines() or [""])[0]
    return printable(f"{type(root).__name__}: {first}")[:300]


def _ingest(writer: Campaigns, batches: list[PendingBatch]) -> dict[int, dict]:
    frame, batch = merge_batches(batches)
    if frame.empty:
        return {b.id: {"read": 0, "kept": 0, "quarantined": 0, "already_stored": 0,
                       "reasons": {}, "rejected": []} for b in batches}
    result, outcome, q_positions = writer.ingest_events_rows(frame, batch)
    return split_outcomes(batches, outcome, result.quarantine, q_positions)


def process_claim(inbox: EventInbox, writer: Campaigns, max_events: int) -> tuple[int, list[str]]:
    """Claim pending batches (up to ``max_events`` events), ingest them merged, record each
    batch's outcome; returns how many batches were taken and the campaigns they touched.

    If the merged ingest fails, each batch is ingested alone, so one bad batch does not hold
    up the others; a batch that fails alone goes to the dead letters with the reason. A
    failure of the database itself (unreachable, busy) gives the claim back instead."""
    claim = inbox.claim(max_events)
    if claim is None:
        return 0, []
    cids = campaign_ids(e.get(C.CAMPAIGN) for b in claim.batches for e in b.events)
    for cid in cids:  # another process may have changed these campaigns since they were cached
        writer.invalidate(cid)
    with inbox.keep_claimed(claim.token):
        try:
            if claim.batches:
                inbox.complete(_ingest(writer, claim.batches), claim.token)
            return claim.taken, cids
        except Exception as exc:
            if _passing(exc):
                inbox.release(claim.token)
                raise
            failure = exc
        log.warning("processing %d merged event batches failed (%s); processing them one by one",
                    len(claim.batches), failure_reason(failure))
        for cid in cids:  # a half-done ingest must not leave a stale policy in the cache
            writer.invalidate(cid)
        for b in claim.batches:
            try:
                inbox.complete(_ingest(writer, [b]), claim.token)
            except Exception as exc:
                if _passing(exc):
                    inbox.release(claim.token)
                    raise
                reason = failure_reason(exc)
                log.error("event batch %d goes to the dead letters: %s", b.id, reason)
                inbox.dead_letter(b.id, reason, claim.token)
        _recount(writer, cids)
    return claim.taken, cids


def _recount(writer: Campaigns, cids: list[str]) -> None:
    """Policies rebuilt from the stored events after a failed ingest (which may have stored
    events without counting them)."""
    for cid in cids:
        with contextlib.suppress(Exception):  # an unknown campaign has no policy to rebuild
            writer.refresh_policies([cid])


# --- in the worker process -------------------------------------------------------------------
_WORKER: dict[str, tuple[EventInbox, Campaigns]] = {}


def _init_worker(nice: int, server_pid: int) -> None:
    with contextlib.suppress(OSError):  # not permitted here: run at the server's priority
        os.nice(nice)

    def exit_with_server() -> None:  # a server killed outright must not leave the worker
        while os.getppid() == server_pid:
            time.sleep(1.0)
        os._exit(0)  # an ingest cut short rolls back; its batches are claimed again later

    threading.Thread(target=exit_with_server, name="adpilot-inbox-watch", daemon=True).start()


def _process_in_worker(db_url: str, max_events: int) -> tuple[int, list[str]]:
    if db_url not in _WORKER:
        store = Store(db_url).init()
        _WORKER[db_url] = (EventInbox(store), Campaigns(store))
    inbox, writer = _WORKER[db_url]
    return process_claim(inbox, writer, max_events)


class InboxWorker:
    """One worker process (started on first use, ``spawn``ed so no server thread or lock is
    inherited) that processes inbox claims for one database."""

    def __init__(self, db_url: str, *, nice: int = WORKER_NICE) -> None:
        self.db_url, self.nice = db_url, nice
        self._pool: ProcessPoolExecutor | None = None

    def process_claim(self, max_events: int) -> tuple[int, list[str]]:
        """:func:`process_claim` in the worker process; the calling thread waits without
        holding the interpreter lock."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.nice, os.getpid()))
        try:
            return self._pool.submit(_process_in_worker, self.db_url, max_events).result()
        except BrokenProcessPool:  # the worker died (killed, out of memory): start a new one
            log.warning("the event inbox worker process died; starting a new one")
            self.close()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
