"""Stated fallbacks: when a default model cannot be had (no data folder, no cache, no network),
a stage runs a simpler method instead and says so — one warning line per fallback per process,
and in the report of every run that used it (``adpilot run --json`` ``fallbacks``, the HTML
report's section). Never a silent downgrade.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

log = logging.getLogger("adpilot")


@dataclass(frozen=True)
class Fallback:
    """``stage`` ran ``instead`` because ``reason``; ``fix`` says how to get the real thing."""

    stage: str
    instead: str
    reason: str
    fix: str = ""

    def line(self) -> str:
        return (f"fallback: {self.stage} uses {self.instead} ({self.reason})"
                + (f"; {self.fix}" if self.fix else ""))

    def as_dict(self) -> dict:
        return asdict(self)


_lock = threading.Lock()
_warned: set[str] = set()
_recorders: list[dict[str, Fallback]] = []


def note(stage: str, instead: str, reason: str, fix: str = "") -> Fallback:
    """Record that ``stage`` fell back; the first time per process per stage it is logged as
    one warning line. Call it every time the fallback is used (it is cheap): each run that is
    recording gets it once."""
    fb = Fallback(stage, instead, reason, fix)
    with _lock:
        first = stage not in _warned
        _warned.add(stage)
        for rec in _recorders:
            rec.setdefault(stage, fb)
    if first:
        log.warning(fb.line())
    return fb


@contextmanager
def recording() -> Iterator[dict[str, Fallback]]:
    """Collect the fallbacks noted while the block runs (in any thread), by stage."""
    rec: dict[str, Fallback] = {}
    with _lock:
        _recorders.append(rec)
    try:
        yield rec
    finally:
        with _lock:
            _recorders.remove(rec)


def unavailable_reason(exc: BaseException) -> str:
    """A short reason from a data/model error (its ``short`` line when it has one)."""
    text = getattr(exc, "short", None) or str(exc)
    return text if len(text) <= 300 else text[:297] + "…"
