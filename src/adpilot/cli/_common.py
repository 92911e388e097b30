"""Shared CLI pieces: consoles, JSON output, progress."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from adpilot.jsonable import dumps

console = Console()
err_console = Console(stderr=True)


def print_json(payload: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else there."""
    print(dumps(payload, indent=2))
