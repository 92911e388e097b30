"""Shared CLI pieces: consoles, JSON output, progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

from adpilot.jsonable import dumps

if TYPE_CHECKING:
    from adpilot.store import Store

console = Console()
err_console = Console(stderr=True)


def print_json(payload: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else there."""
    print(dumps(payload, indent=2))


def open_store(db: str | None = None) -> Store:
    """The store at the ``--db`` URL, or at the configured one (``ADPILOT_DB``, default SQLite
    in ``ADPILOT_HOME``) when none is given: the CLI reads the settings, the library does not."""
    from adpilot.config import get_settings
    from adpilot.store import open_store as open_url

    return open_url(db or get_settings().db_url)


def model_store():
    """The :class:`~adpilot.artifacts.ModelStore` of the configured models folder
    (``ADPILOT_CACHE_DIR``/models): the CLI reads the settings and passes the store in."""
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings

    return ModelStore.from_settings(get_settings())
