"""The send ledger, the suppression list and the consent ledger, in the store's database.

Exactly once rests on :meth:`Ledger.claim`: a row keyed by the message id is written
``in_flight`` in its own transaction *before* the provider is called, and :meth:`Ledger.finish`
sets ``sent``/``failed``/``unknown`` after. A rerun never resends a ``sent`` message; an
``in_flight`` one (the process died during the call) is reported ``unknown`` unless the channel
is idempotent; a ``failed`` one is claimed again. Two processes cannot both claim a new message:
the insert is ``ON CONFLICT DO NOTHING`` and only the one whose row went in proceeds.

The tables share :data:`adpilot.store.sql.metadata`; SQLite and PostgreSQL both work.
Times are naive UTC, as everywhere in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)

from adpilot.data import columns as C
from adpilot.delivery.base import Message, Receipt
from adpilot.errors import InputError
from adpilot.store.sql import Store, metadata

SendStatus = Literal["in_flight", "sent", "failed", "unknown"]
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complaint", "sms_stop")
CHANNELS = ("email", "sms", "push")

SENDS = Table(
    "delivery_sends", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("campaign", String(512), nullable=False),
    Column("variant", String(512), nullable=False, default=""),
    Column("user_id", String(512), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_id", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)
# frequency caps read a user's recent sends on a channel
Index("ix_delivery_sends_channel_claimed", SENDS.c.channel, SENDS.c.claimed_at)

SUPPRESSIONS = Table(
    "delivery_suppressions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(512), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("source", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("user_id", "channel", "reason", name="uq_delivery_suppression"),
)

CONSENTS = Table(
    "delivery_consents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(512), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("at", DateTime, nullable=False),
    Column("source", Text, nullable=True),
)
Index("ix_delivery_consents_channel_user", CONSENTS.c.channel, CONSENTS.c.user_id)

HOLDOUTS = Table(
    "delivery_holdouts", metadata,
    Column("campaign", String(512), primary_key=True),
    Column("user_id", String(512), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("kind", String(32), nullable=False),  # holdout (global) | campaign_holdout
    Column("at", DateTime, nullable=False),
)

_TABLES = [SENDS, SUPPRESSIONS, CONSENTS, HOLDOUTS]
_COUNTED = ("in_flight", "sent", "unknown")  # toward frequency caps: whatever may have arrived


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class SendRow:
    """One ledger row, as read back."""

    message_id: str
    status: SendStatus
    attempts: int
    reason: str | None


class Ledger:
    """Delivery state in ``store``'s database (its tables are created if missing)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        metadata.create_all(self.engine, tables=_TABLES)
        # built once: two statements per message are the ledger's whole cost
        # RETURNING tells whether the row went in (rowcount is not reliable for INSERT on psycopg)
        self._claim_insert = store._insert(SENDS).on_conflict_do_nothing(
            index_elements=["message_id"]).returning(SENDS.c.message_id)
        retake = update(SENDS).values(status="in_flight", provider=bindparam("provider"),
                                      attempts=SENDS.c.attempts + 1, claimed_at=bindparam("at"),
                                      finished_at=None, reason=None)
        self._retake_failed = retake.where(SENDS.c.message_id == bindparam("mid"),
                                           SENDS.c.status == "failed")
        self._retake_in_flight = retake.where(SENDS.c.message_id == bindparam("mid"),
                                              SENDS.c.status.in_(("failed", "in_flight")))
        self._finish = update(SENDS).where(SENDS.c.message_id == bindparam("mid")).values(
            status=bindparam("status"), provider_id=bindparam("provider_id"),
            reason=bindparam("reason"), finished_at=bindparam("at"))

    # --- the send ledger ----------------------------------------------------------------------

    def rows(self, message_ids: Iterable[str]) -> dict[str, SendRow]:
        """The ledger rows of ``message_ids`` that exist."""
        ids = list(dict.fromkeys(message_ids))
        out: dict[str, SendRow] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5_000):
                part = ids[start:start + 5_000]
                query = select(SENDS.c.message_id, SENDS.c.status, SENDS.c.attempts, SENDS.c.reason) \
                    .where(SENDS.c.message_id.in_(part))
                for mid, status, attempts, reason in conn.execute(query):
                    out[mid] = SendRow(mid, status, attempts, reason)
        return out

    def claim(self, message: Message, provider: str, now: datetime, *,
              resend_in_flight: bool = False) -> bool:
        """Mark ``message`` in flight before its provider call; True when this caller may send it.

        A new message is inserted; a ``failed`` one is taken back; an ``in_flight`` one only when
        ``resend_in_flight`` (the channel is idempotent). A ``sent`` or ``unknown`` one never.
        """
        at = _naive_utc(now)
        with self.engine.begin() as conn:
            new = conn.execute(self._claim_insert, {
                "message_id": message.message_id, "campaign": message.campaign,
                "variant": message.variant, "user_id": message.user_id, "channel": message.channel,
                "provider": provider, "status": "in_flight", "attempts": 1, "claimed_at": at})
            if new.first() is not None:
                return True
            retake = self._retake_in_flight if resend_in_flight else self._retake_failed
            return conn.execute(retake, {"mid": message.message_id, "provider": provider,
                                         "at": at}).rowcount == 1

    def finish(self, receipt: Receipt, now: datetime) -> None:
        """Record the outcome of a claimed message."""
        with self.engine.begin() as conn:
            conn.execute(self._finish, {"mid": receipt.message_id, "status": receipt.status,
                                        "provider_id": receipt.provider_id, "reason": receipt.reason,
                                        "at": _naive_utc(now)})

    def mark_unknown(self, message_id: str, reason: str, now: datetime) -> None:
        """An ``in_flight`` row found by a later run becomes ``unknown`` (not resent)."""
        with self.engine.begin() as conn:
            conn.execute(update(SENDS).where(SENDS.c.message_id == message_id,
                                             SENDS.c.status == "in_flight")
                         .values(status="unknown", reason=reason, finished_at=_naive_utc(now)))

    def recent_sends(self, channel: str, since: datetime) -> dict[str, list[datetime]]:
        """user id → claim times (naive UTC) of their messages on ``channel`` since ``since``
        that may have arrived (sent, in flight, unknown)."""
        out: dict[str, list[datetime]] = {}
        query = select(SENDS.c.user_id, SENDS.c.claimed_at).where(
            SENDS.c.channel == channel, SENDS.c.claimed_at >= _naive_utc(since),
            SENDS.c.status.in_(_COUNTED))
        with self.engine.connect() as conn:
            for user, at in conn.execute(query):
                out.setdefault(user, []).append(at)
        return out

    def status_counts(self, campaign: str | None = None) -> dict[str, int]:
        """status → number of ledger rows (of ``campaign`` when given)."""
        query = select(SENDS.c.status, func.count()).group_by(SENDS.c.status)
        if campaign is not None:
            query = query.where(SENDS.c.campaign == campaign)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

    def record_holdouts(self, held: list[tuple[Message, str]], now: datetime) -> None:
        """Record who was held out of which campaign (first time wins; reruns add nothing)."""
        if not held:
            return
        rows = [{"campaign": m.campaign, "user_id": m.user_id, "channel": m.channel, "kind": kind,
                 "at": _naive_utc(now)} for m, kind in held]
        stmt = self.store._insert(HOLDOUTS).on_conflict_do_nothing(index_elements=["campaign", "user_id"])
        with self.engine.begin() as conn:
            for start in range(0, len(rows), 5_000):
                conn.execute(stmt, rows[start:start + 5_000])

    def holdouts(self, campaign: str) -> dict[str, str]:
        """user id → ``holdout`` or ``campaign_holdout`` for ``campaign``."""
        query = select(HOLDOUTS.c.user_id, HOLDOUTS.c.kind).where(HOLDOUTS.c.campaign == campaign)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    # --- suppression ----------------------------------------------------------------------------

    def suppress(self, user_id: str, channel: str, reason: str, now: datetime, *,
                 source: str | None = None) -> bool:
        """Add ``user_id`` on ``channel`` to the suppression list; False when already there."""
        if reason not in SUPPRESSION_REASONS:
            raise InputError(f"suppression reason {reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}")
        if channel not in CHANNELS:
            raise InputError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
        stmt = self.store._insert(SUPPRESSIONS).values(
            user_id=user_id, channel=channel, reason=reason, source=source,
            created_at=_naive_utc(now)).on_conflict_do_nothing(
            index_elements=["user_id", "channel", "reason"]).returning(SUPPRESSIONS.c.id)
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def suppressed(self, channel: str) -> dict[str, str]:
        """user id → a suppression reason on ``channel`` (the first recorded)."""
        query = select(SUPPRESSIONS.c.user_id, SUPPRESSIONS.c.reason).where(
            SUPPRESSIONS.c.channel == channel).order_by(SUPPRESSIONS.c.created_at.desc())
        with self.engine.connect() as conn:
            return {user: reason for user, reason in conn.execute(query)}

    # --- consent ----------------------------------------------------------------------------------

    def record_consents(self, rows: Iterable[Mapping]) -> int:
        """Append consent records (``user_id``, ``channel``, ``granted``, ``at``, optional ``source``)."""
        batch = []
        for i, row in enumerate(rows):
            try:
                channel = str(row[C.CHANNEL])
                if channel not in CHANNELS:
                    raise ValueError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
                at = row[C.AT]
                if not isinstance(at, datetime):
                    raise ValueError(f"at {at!r} is not a datetime")
                batch.append({"user_id": str(row[C.USER_ID]), "channel": channel,
                              "granted": bool(row[C.GRANTED]), "at": _naive_utc(at),
                              "source": row.get("source")})
            except (KeyError, ValueError) as exc:
                raise InputError(f"consent record {i}: {exc}; expected user_id, channel "
                                 "(email|sms|push), granted (true|false), at (datetime)") from None
        if batch:
            with self.engine.begin() as conn:
                conn.execute(CONSENTS.insert(), batch)
        return len(batch)

    def record_consent(self, user_id: str, channel: str, granted: bool, at: datetime,
                       source: str | None = None) -> None:
        """Append one consent record."""
        self.record_consents([{"user_id": user_id, "channel": channel, "granted": granted,
                               "at": at, "source": source}])

    def consents(self, channel: str) -> dict[str, bool]:
        """user id → whether their latest consent record on ``channel`` grants it."""
        query = select(CONSENTS.c.user_id, CONSENTS.c.granted).where(CONSENTS.c.channel == channel) \
            .order_by(CONSENTS.c.at, CONSENTS.c.id)
        with self.engine.connect() as conn:
            return {user: bool(granted) for user, granted in conn.execute(query)}
