"""The campaign service: decisions answered from memory, feedback events accepted into an
inbox and processed in merged batches by a background drainer thread (or a lower-priority
worker process). The API starts it, stops it and translates requests; the dashboard reads it.

Thread safety: one :class:`~adpilot.optimization.campaigns.Campaigns` answers decisions (under
a short lock), a second one ingests feedback, so a slow ingest never holds up a decision."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import ConfigError, NotFoundError
from adpilot.jsonable import plain
from adpilot.optimization.campaigns import Campaigns, Decision, EventIngest
from adpilot.optimization.event_rows import campaign_ids
from adpilot.optimization.inbox import EventInbox, InboxAppender
from adpilot.optimization.inbox_worker import InboxWorker, process_claim
from adpilot.store.sql import Store

log = logging.getLogger(__name__)

DRAIN_QUIET_SECONDS = 0.25  # no new batch for this long (a lull): process the inbox now
DRAIN_MAX_LAG_SECONDS = 2.0  # ... or at the latest this long after the first pending batch


class CampaignService:
    """One :class:`Campaigns` answers decisions from memory (under a short lock); a second one
    ingests feedback, so a slow ingest never holds up a decision."""

    def __init__(self, store: Store, *, seed: int | None = None,
                 worker_process: bool = True) -> None:
        self.store = store
        # the inbox is processed in a lower-priority process (see adpilot.optimization.
        # inbox_worker) so ingest never takes the interpreter lock from request handling
        self._worker = InboxWorker(store.url) if worker_process else None
        # decisions are logged by the flusher thread, never by the request that made them
        self._decider = Campaigns(store, seed=seed, log_batch=1_000_000)
        self._writer = Campaigns(store, seed=seed)
        self._decide_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.inbox = EventInbox(store)
        self._appender = InboxAppender(self.inbox, on_stored=self._batch_stored)
        self._drainer: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()

    def _forget(self, campaign_id: str) -> None:
        # Campaigns caches policy and channels per campaign; drop them so the next decision
        # reloads the state the writer just stored (status, variants, posterior).
        with self._decide_lock:
            self._decider.invalidate(campaign_id)

    def exists(self, campaign_id: str) -> dict:
        """The campaign's record; raises :class:`NotFoundError` for an unknown id."""
        return self._writer.get(campaign_id)

    def create(self, name: str, variants: list[str], **options: Any) -> str:
        """Create a campaign with these variants; returns its id."""
        with self._write_lock:
            return self._writer.create(name, variants, **options)

    def add_variant(self, campaign_id: str, variant: str, **options: Any) -> None:
        """Add a variant (a :class:`ConfigError` if the campaign already has one so named)."""
        self.exists(campaign_id)
        if variant in set(self._writer.variants(campaign_id)[C.VARIANT]):
            raise ConfigError(f"campaign {campaign_id!r} already has a variant {variant!r}")
        with self._write_lock:
            self._writer.invalidate(campaign_id)  # reload: another writer may have changed it
            self._writer.add_variant(campaign_id, variant, **options)
        self._forget(campaign_id)

    def set_status(self, campaign_id: str, status: str) -> None:
        """Change the campaign's status; decisions follow it at once."""
        self.exists(campaign_id)
        with self._write_lock:
            self._writer.set_status(campaign_id, status)
        self._forget(campaign_id)

    def list(self) -> pd.DataFrame:
        """Every campaign, one row each."""
        return self._writer.list()

    def variants(self, campaign_id: str) -> pd.DataFrame:
        """The campaign's variants, one row each."""
        self.exists(campaign_id)
        return self._writer.variants(campaign_id)

    def decide(self, user_id: str, campaign_id: str) -> Decision:
        """The variant (and channel) to show ``user_id``, answered from memory when warm."""
        with self._decide_lock:  # an unknown campaign raises NotFoundError (a 404) itself
            return self._decider.decide(user_id, campaign_id)

    def is_warm(self, campaign_id: str) -> bool:
        """Whether :meth:`decide` for this campaign needs no database read."""
        return self._decider.is_warm(campaign_id)

    def flush(self) -> None:
        """Write buffered decisions. The decision lock is held only to take the buffer, so
        decisions go on while it is written; the flush lock makes a caller that needs the log
        complete (event ingest) wait for a write in progress."""
        with self._flush_lock:
            with self._decide_lock:
                pending = self._decider.take_pending()
            self._decider.write_decisions(pending)

    def ingest_events(self, frame: pd.DataFrame) -> EventIngest:
        """Ingest feedback events now (not through the inbox); the campaigns they name
        decide from their updated policy afterwards."""
        self.flush()  # decisions must be in the log before events are checked against it
        with self._write_lock:
            result = self._writer.ingest_events(frame)
            for cid in campaign_ids(frame.get(C.CAMPAIGN, [])):
                self._refresh(cid)
        return result

    # --- the event inbox: accept now, process in merged batches ----------------------------
    async def enqueue_events(self, body: bytes, n_events: int) -> int:
        """Store a batch as received (one small write, committed together with the batches
        that arrive meanwhile) and wake the drainer; returns its id."""
        return await self._appender.put(body, n_events)

    def _batch_stored(self) -> None:
        self.start_drainer()
        self._wake.set()

    def retry_dead_letter(self, batch_id: int) -> None:
        """Queue a dead-lettered batch to be processed again, and wake the drainer."""
        self.inbox.retry(batch_id)
        self._batch_stored()

    def drain(self, max_events: int = 50_000) -> int:
        """Process pending inbox batches (merged into one ingest per claim) until none are
        left; returns the number of batches processed."""
        done = 0
        while True:
            if self._worker is not None and not self.inbox.has_work():
                return done  # nothing to do: do not start the worker process for nothing
            self.flush()  # decisions must be in the log before events are checked against it
            with self._write_lock:  # one writer at a time, in this process or the worker
                if self._worker is not None:
                    n, cids = self._worker.process_claim(max_events)
                else:
                    n, cids = process_claim(self.inbox, self._writer, max_events)
                for cid in cids:
                    self._refresh(cid)
            if not n:
                return done
            done += n

    def _refresh(self, campaign_id: str) -> None:
        """After ingest (under the write lock): decisions go on from the campaign's updated
        policy, loaded here rather than by the next decision."""
        self._writer.invalidate(campaign_id)
        try:
            policy = self._decider.load_policy(campaign_id)
        except NotFoundError:
            self._forget(campaign_id)
            return
        with self._decide_lock:
            self._decider.use_policy(campaign_id, policy)

    def start_drainer(self) -> None:
        """Start the background thread that processes the inbox (once; idempotent)."""
        if self._drainer is not None and self._drainer.is_alive():
            return
        with self._write_lock:
            if self._drainer is None or not self._drainer.is_alive():
                self._stop.clear()
                self._drainer = threading.Thread(target=self._drain_loop, name="adpilot-events",
                                                 daemon=True)
                self._drainer.start()

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            # Process in a lull: while batches keep arriving (each wakes us), wait — up to
            # DRAIN_MAX_LAG_SECONDS after the first — so accepting requests comes first and
            # batches arriving together merge into one ingest (per-event cost falls about 6×
            # from a 500-event batch to a 20,000-event one).
            first = time.monotonic()
            self._wake.clear()
            while (self._wake.wait(DRAIN_QUIET_SECONDS) and not self._stop.is_set()
                   and time.monotonic() - first < DRAIN_MAX_LAG_SECONDS):
                self._wake.clear()
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # the batches stay pending; the next wake retries them
                log.exception("processing the event inbox failed")
                self._stop.wait(1.0)

    def close(self) -> None:
        """Stop the drainer after processing what is pending, and flush decisions."""
        self._appender.close()
        self._stop.set()
        self._wake.set()
        if self._drainer is not None:
            self._drainer.join(30)
        try:
            self.drain()
        finally:
            if self._worker is not None:
                self._worker.close()
        self.flush()

    def report(self, campaign_id: str) -> dict:
        """The campaign's report as plain JSON types."""
        self.exists(campaign_id)
        return plain(self._writer.report(campaign_id))

    def events(self, campaign_id: str) -> pd.DataFrame:
        """The campaign's stored feedback events."""
        return self._writer.events(campaign_id)
