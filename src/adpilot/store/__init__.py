"""Persistent store of canonical records (SQLAlchemy: SQLite by default, PostgreSQL by URL)."""

from adpilot.store.sql import Store, open_store

__all__ = ["Store", "open_store"]
