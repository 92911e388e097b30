"""Shared CLI pieces: consoles, JSON output, progress."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if math.isnan(o) else float(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def print_json(payload: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else there."""
    print(json.dumps(payload, ensure_ascii=False, default=_default, indent=2))
