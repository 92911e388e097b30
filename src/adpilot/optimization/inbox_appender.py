"""Appending batches to the event inbox from one writer thread, with group commit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adpilot.optimization.inbox import EventInbox


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
