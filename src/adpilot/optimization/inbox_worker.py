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

import numpy as np

from adpilot.data import columns as C
from adpilot.data.readers import quarantine_frame
from adpilot.optimization.campaigns import Campaigns
from adpilot.optimization.inbox import EventInbox, merge_batches, split_outcomes
from adpilot.store.sql import Store

log = logging.getLogger(__name__)

WORKER_NICE = 10  # added to the server's niceness: the worker yields the CPU to requests


def process_claim(inbox: EventInbox, writer: Campaigns, max_events: int) -> tuple[int, list[str]]:
    """Claim pending batches (up to ``max_events`` events), ingest them merged, record each
    batch's outcome; returns how many batches were processed and the campaigns they touched."""
    batches = inbox.claim(max_events)
    if not batches:
        return 0, []
    frame, cross = merge_batches(batches)
    cids = frame[C.CAMPAIGN].dropna().astype(str).unique().tolist() if C.CAMPAIGN in frame else []
    for cid in cids:  # another process may have changed these campaigns since they were cached
        writer.invalidate(cid)
    if (~cross).any():
        result, outcome = writer.ingest_events_rows(frame[~cross])
        quarantine = result.quarantine
    else:
        outcome, quarantine = np.array([], dtype=object), quarantine_frame([])
    inbox.complete(split_outcomes(batches, frame, outcome, quarantine, cross))
    return len(batches), cids


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
