"""API keys: random secrets shown once, stored as salted SHA-256 hashes, with a scope.

A key reads ``adp_<id>_<secret>``: the id finds the row, the secret is checked against the hash
in constant time. Scopes are ordered: ``admin`` can do what ``write`` can, ``write`` what
``read`` can. The library's key store: ``adpilot keys`` manages keys with it, the API and the
dashboard verify them with it (no FastAPI here, so the CLI needs no ``api`` extra).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, String, Table, select, update

from adpilot.errors import ConfigError
from adpilot.store.sql import Store, metadata

SCOPES = ("read", "write", "admin")
_RANK = {s: i for i, s in enumerate(SCOPES)}

API_KEYS = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=True),
    Column("scope", String(16), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def scope_allows(have: str, need: str) -> bool:
    """Whether a key of scope ``have`` may call an endpoint that needs ``need``."""
    return _RANK.get(have, -1) >= _RANK[need]


@dataclass(frozen=True)
class KeyInfo:
    """A key's public record: its id, label and scope (never the secret or its hash)."""

    id: str
    name: str | None
    scope: str


def create_key(store: Store, scope: str, name: str | None = None) -> tuple[str, KeyInfo]:
    """Create a key; returns the plaintext key (shown once, never stored) and its record."""
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    API_KEYS.create(store.engine, checkfirst=True)
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    with store.engine.begin() as conn:
        conn.execute(API_KEYS.insert().values(id=key_id, name=name, scope=scope, salt=salt,
                                              hash=_hash(salt, secret), created_at=_now()))
    return f"adp_{key_id}_{secret}", KeyInfo(key_id, name, scope)


def list_keys(store: Store) -> list[dict]:
    """Every key's id, name, scope and dates (never the hash)."""
    API_KEYS.create(store.engine, checkfirst=True)
    cols = [API_KEYS.c.id, API_KEYS.c.name, API_KEYS.c.scope, API_KEYS.c.created_at,
            API_KEYS.c.revoked_at]
    with store.engine.connect() as conn:
        rows = conn.execute(select(*cols).order_by(API_KEYS.c.created_at)).all()
    return [dict(r._mapping) for r in rows]


def revoke_key(store: Store, key_id: str) -> None:
    """Revoke a key by id (it stops working within the verifier's cache time)."""
    API_KEYS.create(store.engine, checkfirst=True)
    with store.engine.begin() as conn:
        n = conn.execute(update(API_KEYS).where(API_KEYS.c.id == key_id).values(
            revoked_at=_now())).rowcount
    if not n:
        raise ConfigError(f"unknown API key id {key_id!r}")


class KeyVerifier:
    """Checks presented keys against the store, caching rows for ``ttl`` seconds so a hot
    endpoint does not query the database on every request."""

    def __init__(self, store: Store, *, ttl: float = 5.0) -> None:
        self.store, self.ttl = store, ttl
        API_KEYS.create(store.engine, checkfirst=True)
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._lock = threading.Lock()

    def _row(self, key_id: str) -> dict | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        with self.store.engine.connect() as conn:
            row = conn.execute(select(API_KEYS).where(API_KEYS.c.id == key_id)).first()
        value = dict(row._mapping) if row is not None else None
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: unknown ids must not grow it forever
                self._cache.clear()
            self._cache[key_id] = (now, value)
        return value

    def is_active(self, key_id: str) -> bool:
        """Whether the key with this id exists and is not revoked (dashboard sessions)."""
        row = self._row(key_id)
        return row is not None and row["revoked_at"] is None

    def verify(self, presented: str | None) -> KeyInfo | None:
        """The key's record if ``presented`` is a valid, unrevoked key, else None."""
        if not presented or not presented.startswith("adp_"):
            return None
        key_id, _, secret = presented.removeprefix("adp_").partition("_")
        if not key_id or not secret or len(presented) > 200:
            return None
        row = self._row(key_id)
        # hash even when the id is unknown, so timing does not reveal which ids exist
        expected = row["hash"] if row else "0" * 64
        ok = hmac.compare_digest(_hash(row["salt"] if row else "-", secret), expected)
        if not ok or row is None or row["revoked_at"] is not None:
            return None
        return KeyInfo(row["id"], row["name"], row["scope"])
