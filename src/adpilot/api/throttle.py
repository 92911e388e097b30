"""Throttles against guessing and against clients that hammer expensive routes.

:class:`AuthThrottle` counts failed logins and API-key checks per client address and per
account (dashboard user name, or the id part of an API key). ``max_failures`` failures within
the window lock the client or account: every attempt is answered 429 with ``Retry-After``,
the right password included, until the lockout ends. Each further lockout of the same client
or account doubles its length, up to a ceiling; a successful login forgets the account's
failures. Lockouts are logged with the account and client, never the secret tried.

:class:`RateLimiter` is a token bucket per client: ``burst`` requests at once, then
``rate_per_minute``.

The failure counters are in memory, per process, unless ``counter`` builds
:class:`~adpilot.api.throttle_store.StoredFailureCounter`: then they live in the store and every
process serving it shares failures and lockouts. ``create_app`` (so ``adpilot serve``) uses the
store. The :class:`RateLimiter` stays in memory, per process: with several processes each has
its own buckets, so a client may make ``burst`` × processes requests at once (it protects
expensive routes from one hammering client, not a security boundary).
Memory is bounded: idle entries are dropped, and at most ``max_keys`` are kept.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("adpilot.api")

Clock = Callable[[], float]


@dataclass
class _Record:
    failures: deque = field(default_factory=deque)  # monotonic times of recent failures
    locked_until: float = 0.0
    lockouts: int = 0  # lockouts so far: the next one lasts base × 2**lockouts
    last_seen: float | None = None


class FailureCounter:
    """Failures per key within a sliding window, with a doubling lockout."""

    def __init__(self, *, max_failures: int, window: float, lockout: float, max_lockout: float,
                 clock: Clock = time.monotonic, max_keys: int = 100_000,
                 name: str = "") -> None:
        self.max_failures, self.window = max_failures, window
        self.lockout, self.max_lockout = lockout, max_lockout
        self.clock, self.max_keys = clock, max_keys
        self._records: dict[object, _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: object) -> float:
        """Seconds until ``key`` may try again (0: not locked)."""
        if self.max_failures <= 0:
            return 0.0
        with self._lock:
            record = self._records.get(key)
            return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failure(self, key: object) -> tuple[float, int]:
        """Count a failure; returns (seconds locked, failures counted) when this one locks
        ``key``, else (0, failures counted)."""
        if self.max_failures <= 0:
            return 0.0, 0
        now = self.clock()
        with self._lock:
            record = self._records.get(key)
            if record is None:
                if len(self._records) >= self.max_keys:
                    self._prune(now)
                record = self._records[key] = _Record()
            return self._count(record, now)

    def _count(self, record: _Record, now: float) -> tuple[float, int]:
        """Add a failure at ``now`` to ``record`` (see :meth:`failure`)."""
        if record.last_seen is not None and now - record.last_seen > self.window + self.max_lockout:
            record.lockouts = 0  # quiet for long enough: start again from the base lockout
        record.last_seen = now
        while record.failures and now - record.failures[0] > self.window:
            record.failures.popleft()
        record.failures.append(now)
        count = len(record.failures)
        if count < self.max_failures:
            return 0.0, count
        seconds = min(self.max_lockout, self.lockout * 2 ** record.lockouts)
        record.lockouts += 1
        record.locked_until = now + seconds
        record.failures.clear()  # after the lockout, max_failures more tries (then longer)
        return seconds, count

    def success(self, key: object) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        stale = [k for k, r in self._records.items()
                 if r.locked_until <= now and now - (r.last_seen or now) > self.window]
        for k in stale:
            del self._records[k]
        if len(self._records) >= self.max_keys:  # a flood of distinct keys: keep the locked
            for k in [k for k, r in self._records.items() if r.locked_until <= now]:
                del self._records[k]


class AuthThrottle:
    """Per-client and per-account failure counters for logins and API keys."""

    def __init__(self, *, max_failures: int, max_failures_per_client: int, window: float,
                 lockout: float, max_lockout: float, clock: Clock | None = None,
                 counter: Callable[..., FailureCounter] | None = None) -> None:
        """``counter`` builds each of the two counters (default: in memory); pass
        ``partial(StoredFailureCounter, store)`` to share them through a store."""
        options = {"window": window, "lockout": lockout, "max_lockout": max_lockout,
                   **({"clock": clock} if clock else {})}
        counter = counter or FailureCounter
        self.accounts = counter(name="account", max_failures=max_failures, **options)
        self.clients = counter(name="client", max_failures=max_failures_per_client, **options)

    @classmethod
    def from_settings(cls, settings, counter: Callable[..., FailureCounter] | None = None,
                      ) -> AuthThrottle:
        return cls(max_failures=settings.auth_max_failures,
                   max_failures_per_client=settings.auth_max_failures_per_client,
                   window=settings.auth_window_seconds, lockout=settings.auth_lockout_seconds,
                   max_lockout=settings.auth_lockout_max_seconds, counter=counter)

    def retry_after(self, client: str, account: tuple[str, str]) -> int:
        """Whole seconds to wait before this client may try this account (0: go ahead)."""
        wait = max(self.clients.retry_after(client), self.accounts.retry_after(account))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, client: str, account: tuple[str, str]) -> None:
        """Count a failed attempt by ``client`` on ``account`` (("user", name) or ("key", id))."""
        for what, who, counter in (("account", account, self.accounts),
                                   ("client", client, self.clients)):
            seconds, count = counter.failure(who)
            if seconds:
                log.warning("authentication locked: %s %r for %d s after %d failed attempts "
                            "within %d s (last from client %r on %s %r)", what, who,
                            math.ceil(seconds), count, counter.window, client, account[0],
                            account[1])

    def succeeded(self, account: tuple[str, str]) -> None:
        self.accounts.success(account)


class RateLimiter:
    """A token bucket per client: ``burst`` at once, refilled at ``rate_per_minute``."""

    def __init__(self, *, rate_per_minute: float, burst: int, clock: Clock = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst, self.clock, self.max_keys = float(burst), clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> int:
        """Take a token: 0 if the request may go ahead, else whole seconds until one is back."""
        if self.rate <= 0:
            return 0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                if len(self._buckets) >= self.max_keys and client not in self._buckets:
                    full = (self.burst - 1) / self.rate  # seconds to refill: forgettable
                    for k in [k for k, (t, a) in self._buckets.items() if now - a > full]:
                        del self._buckets[k]
                    if len(self._buckets) >= self.max_keys:  # a flood of addresses: start over
                        self._buckets.clear()
                self._buckets[client] = (tokens - 1.0, now)
                return 0
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
