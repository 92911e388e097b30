"""Helpers shared by the load benchmarks that drive a real ``adpilot`` server on loopback
(``api_load.py``, ``events_chaos.py``): a free port, waiting for ``/health``, percentiles in
milliseconds."""

from __future__ import annotations

import socket
import time

import httpx
import numpy as np


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile of durations in seconds, in milliseconds (NaN when empty)."""
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def wait_healthy(url: str, attempts: int = 600, pause: float = 0.1) -> bool:
    """Poll ``{url}/health`` until it answers 200 (at most ``attempts`` tries, ``pause``
    seconds after each refused connection); returns whether it did."""
    for _ in range(attempts):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(pause)
    return False
