"""The campaign tables (campaigns, their variants, the decision log) and the columns a store
made by an older version lacks."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, String, Table, Text, inspect, text

from adpilot.store.sql import Store, metadata

CAMPAIGNS = Table(
    "campaigns", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("goal", String(16), nullable=False),
    Column("audience", Text, nullable=False, default="{}"),
    Column("schedule", Text, nullable=False, default="{}"),
    Column("status", String(16), nullable=False, default="active"),
    Column("attribution_hours", Integer, nullable=False, default=72),
    Column("policy_state", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)
VARIANTS = Table(
    "campaign_variants", metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("variant", String(128), primary_key=True),
    Column("channel", String(32), nullable=True),
    Column("copy", Text, nullable=False, default="{}"),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", DateTime, nullable=False),
    # the approval gate of delivery: only approved variants are ever sent
    Column("approved", Boolean, nullable=False, default=False, server_default="0"),
    Column("approved_at", DateTime, nullable=True),
)
DECISIONS = Table(
    "decisions", metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("user_id", String(128), nullable=False),
    Column("variant", String(128), nullable=False),
    Column("channel", String(32), nullable=True),
    Column("propensity", Float, nullable=False),
    Column("time", DateTime, nullable=False),
)

GOALS = ("click", "conversion")


def now() -> datetime:
    """The current UTC time without a zone, as the tables store it."""
    return datetime.now(UTC).replace(tzinfo=None)


def add_approval_columns(store: Store) -> None:
    """Variant tables made before the approval gate get its columns (unapproved: the safe side;
    several processes may try at once)."""
    have = {c["name"] for c in inspect(store.engine).get_columns(VARIANTS.name)}
    for name, ddl in (("approved", "BOOLEAN NOT NULL DEFAULT FALSE"), ("approved_at", "TIMESTAMP")):
        if name not in have:
            with contextlib.suppress(Exception), store.engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {VARIANTS.name} ADD COLUMN {name} {ddl}"))
