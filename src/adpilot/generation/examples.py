"""Copy that won: kept in the store and shown to the generator as examples.

The feedback loop (:func:`adpilot.optimization.loop.close_loop`) records each campaign's winning
variant here; :class:`~adpilot.generation.CopyGenerator` given an :class:`ExampleBank` puts the
best few for the same channel and language into its prompt ("copy of ours that won"), so new
variants start from what customers responded to.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Column, DateTime, Float, Integer, String, Table, Text, select

from adpilot.store.sql import Store, metadata

COPY_EXAMPLES = Table(
    "copy_examples", metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("variant", String(128), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("fields", Text, nullable=False),
    Column("rate", Float, nullable=False),
    Column("impressions", Integer, nullable=False),
    Column("p_best", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


class ExampleBank:
    """Winning copy per channel and language, best first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[COPY_EXAMPLES])

    def add(self, *, campaign_id: str, variant: str, channel: str, lang: str,
            fields: dict[str, str], rate: float, impressions: int, p_best: float) -> None:
        """Record (or update: idempotent per campaign and variant) a winner."""
        row = {"campaign_id": campaign_id, "variant": variant, "channel": channel, "lang": lang,
               "fields": json.dumps(fields, ensure_ascii=False), "rate": float(rate),
               "impressions": int(impressions), "p_best": float(p_best),
               "created_at": datetime.now(UTC).replace(tzinfo=None)}
        with self.store.engine.begin() as conn:
            conn.execute(COPY_EXAMPLES.delete().where(
                COPY_EXAMPLES.c.campaign_id == campaign_id, COPY_EXAMPLES.c.variant == variant))
            conn.execute(COPY_EXAMPLES.insert().values(**row))

    def table(self) -> pd.DataFrame:
        with self.store.engine.connect() as conn:
            return pd.read_sql(select(COPY_EXAMPLES), conn)

    def top(self, channel: str, lang: str, k: int = 3) -> list[str]:
        """The ``k`` winners with the highest rate for this channel and language, as text."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(COPY_EXAMPLES.c.fields).where(
                COPY_EXAMPLES.c.channel == channel, COPY_EXAMPLES.c.lang == lang)
                .order_by(COPY_EXAMPLES.c.rate.desc()).limit(k)).all()
        return [" / ".join(json.loads(r.fields).values()) for r in rows]
