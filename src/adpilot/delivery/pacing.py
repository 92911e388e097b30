"""Time for the sender: an injectable clock, a token-bucket rate limit and retries with backoff.

Everything that waits goes through a :class:`Clock`, so a test (or a dry run) uses
:class:`ManualClock`, whose ``sleep`` only moves its time forward.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def sleep(self, seconds: float) -> None:
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that stands still until told (``advance``, ``set``) or slept on; records its sleeps."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += timedelta(seconds=max(0.0, seconds))

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts of up to ``burst``; thread-safe."""

    def __init__(self, rate: float, *, burst: float | None = None, clock: Clock | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, rate))
        self.clock = clock or SystemClock()
        self._tokens = self.capacity
        self._stamp = self.clock.now()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting (on the clock) until one is there."""
        while True:
            with self._lock:
                now = self.clock.now()
                elapsed = (now - self._stamp).total_seconds()
                self._stamp = now
                self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            self.clock.sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient failures: ``attempts`` tries in all, exponential backoff from ``base``
    seconds up to ``cap``, with full jitter (a uniform wait in [0, backoff]) so many senders
    do not retry in step."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0
    seed: int | None = None

    def delays(self) -> list[float]:
        """The waits before the 2nd, 3rd, … attempt."""
        rng = random.Random(self.seed)
        return [rng.uniform(0, min(self.cap, self.base * 2 ** i)) for i in range(self.attempts - 1)]
