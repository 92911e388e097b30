"""Sending a stored campaign: who is in the audience, which variant each customer gets, its
copy, the customer's address, then :func:`adpilot.delivery.send.send` (or its dry run).

The variant per customer is the campaign policy's choice among the variants that fit them
(active, on the channel, in their language and segment when the copy names one), drawn with a
hash of the message id: a rerun picks the same variant, so a retried or deferred message is the
same message. Approved variants are preferred; a customer whom only unapproved variants fit
gets one of them, which the sender skips as ``not_approved`` (the gate is visible in the
counts). Sent messages are logged as decisions with their propensity, so feedback events
(clicks, unsubscribes) attribute to them.

Nothing here reads the environment: the caller passes the channel, the rules and the outbox.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.delivery.base import Channel, Message, message_id
from adpilot.delivery.ledger import Ledger, _naive_utc
from adpilot.delivery.pacing import Clock, RetryPolicy, SystemClock, TokenBucket
from adpilot.delivery.rules import Rules
from adpilot.delivery.send import SEND, SendResult, plan, send, tally
from adpilot.errors import ConfigError, InputError
from adpilot.optimization.campaigns import DECISIONS, Campaigns
from adpilot.store.sql import Store

KINDS = ("email", "sms", "push")
NO_VARIANT = "no_variant"  # no active variant in the customer's language / segment / channel
# the copy fields each channel reads: (subject or title, main text), first present wins
_FIELDS = {"email": (("subject",), ("body", "text")), "sms": ((), ("text", "body")),
           "push": (("title", "subject"), ("body", "text"))}


@dataclass
class CampaignSendResult:
    """What a send (or a dry run) of a campaign did: the sender's counts, with the customers no
    variant fitted counted as ``skipped: no_variant``; ``would_send`` is the dry run's due count."""

    campaign: str
    channel: str
    dry_run: bool
    result: SendResult
    would_send: int = 0
    variants: dict[str, int] = field(default_factory=dict)  # variant → messages due / sent
    outbox: str | None = None

    def to_dict(self) -> dict:
        out = {"campaign": self.campaign, "channel": self.channel, "dry_run": self.dry_run,
               **self.result.to_dict(), "variants": dict(self.variants)}
        if self.dry_run:
            out["would_send"] = self.would_send
        if self.outbox:
            out["outbox"] = self.outbox
        return out


# --- the audience ------------------------------------------------------------------------------

def audience_ids(store: Store, audience: str | Sequence[str] = "all") -> list[str]:
    """Customer ids of ``audience``: ``all``, ``segment:ID`` (from the profiles step), a file of
    ids (one per line, or a CSV/TSV with a ``customer_id``, ``user_id`` or ``id`` column), or a
    list of ids."""
    customers = store.read("customers")[C.ID].astype(str)
    if not isinstance(audience, str):
        known = set(customers)
        unknown = [i for i in audience if str(i) not in known]
        if unknown:
            raise InputError(f"{len(unknown)} customer ids are not stored, e.g. "
                             f"{', '.join(map(repr, unknown[:5]))}")
        return list(dict.fromkeys(map(str, audience)))
    if audience == "all":
        return sorted(customers)
    if audience.startswith("segment:"):
        seg = audience.partition(":")[2]
        if not store.has_table("profiles"):
            raise ConfigError(f"audience {audience!r} needs segments: run `adpilot profile build` "
                              "(or `adpilot run`) first")
        profiles = store.read("profiles")
        known = sorted(profiles[C.SEGMENT].astype(str).unique())
        if seg not in known:
            raise InputError(f"audience {audience!r}: no segment {seg!r}; segments are "
                             f"{', '.join(known) or 'none'}")
        return sorted(profiles.loc[profiles[C.SEGMENT].astype(str) == seg, C.USER_ID].astype(str))
    return _ids_from_file(Path(audience), set(customers))


def _ids_from_file(path: Path, known: set[str]) -> list[str]:
    if not path.is_file():
        raise InputError(f"audience {str(path)!r} is not all, segment:ID or a file of customer ids")
    from adpilot.data.readers import read_table

    lines = path.read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].strip().lower() if lines else ""
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".parquet") and header not in known:
        frame = read_table(path).frame
        column = next((c for c in ("customer_id", "user_id", "id") if c in frame.columns), None)
        if column is None:
            raise InputError(f"{path}: no customer_id, user_id or id column; columns are "
                             f"{', '.join(map(str, frame.columns))}")
        values, first_row = frame[column].astype(str).str.strip().tolist(), 2
    else:
        values, first_row, column = [v.strip() for v in lines], 1, None
    ids: list[str] = []
    for i, value in enumerate(values):
        if not value:
            continue
        if value not in known:
            where = f"row {i + first_row}" + (f", column {column}" if column else "")
            raise InputError(f"{path}: {where}: {value!r} is not a stored customer id")
        ids.append(value)
    return list(dict.fromkeys(ids))


# --- customers and variants -------------------------------------------------------------------

def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def _contacts(store: Store, ids: list[str]) -> pd.DataFrame:
    """Per customer id: email, phone, timezone, lang, segment (None where unknown)."""
    cust = store.read("customers")
    cust[C.ID] = cust[C.ID].astype(str)
    cust = cust.set_index(C.ID).reindex(ids)
    out = pd.DataFrame(index=pd.Index(ids, name=C.ID))
    for col in (C.EMAIL, C.PHONE, C.TIMEZONE):  # optional columns: missing → no address
        out[col] = cust[col].map(_text) if col in cust else None
    attrs = cust.get(C.ATTRIBUTES, pd.Series(index=cust.index, dtype=object))
    out["lang"] = [_text(json.loads(a).get("preferred_language")) if isinstance(a, str) and a
                   else None for a in attrs]
    out[C.SEGMENT] = None
    if store.has_table("profiles"):
        prof = store.read("profiles").astype({C.USER_ID: str}).drop_duplicates(C.USER_ID)
        prof = prof.set_index(C.USER_ID).reindex(ids)
        out[C.SEGMENT] = prof[C.SEGMENT].map(_text) if C.SEGMENT in prof else None
        if C.LANGUAGE in prof:
            out["lang"] = out["lang"].fillna(prof[C.LANGUAGE].map(_text))
    out["lang"] = out["lang"].fillna("en").map(lambda v: "zh" if v.lower().startswith("zh") else v)
    return out


@dataclass(frozen=True)
class _Variant:
    name: str
    approved: bool
    weight: float
    lang: str | None
    segment: str | None
    subject: str
    text: str
    links: tuple[str, ...]


def _variants(campaigns: Campaigns, campaign_id: str, channel: str) -> list[_Variant]:
    rows = campaigns.variants(campaign_id)
    policy = campaigns.policy(campaign_id)
    probs = dict(zip(policy.arms, np.asarray(policy.probabilities(), dtype=float), strict=True))
    title_keys, text_keys = _FIELDS[channel]
    out = []
    for r in rows.itertuples():
        copy = json.loads(r.copy or "{}")
        copy = copy if isinstance(copy, dict) else {}
        text = next((str(copy[k]) for k in text_keys if _text(copy.get(k))), "")
        if r.status != "active" or r.channel not in (None, channel) or not text \
                or probs.get(r.variant, 0.0) <= 0:
            continue
        links = copy.get("links") if isinstance(copy.get("links"), list) else []
        out.append(_Variant(r.variant, bool(r.approved), probs[r.variant], _text(copy.get("lang")),
                            _text(copy.get("segment")),
                            next((str(copy[k]) for k in title_keys if _text(copy.get(k))), ""),
                            text, tuple(map(str, links))))
    return out


def _draw(mid: str) -> float:
    """A uniform number in [0, 1) fixed by the message id (the same variant on a rerun)."""
    return int.from_bytes(hashlib.sha256(b"variant\x1f" + mid.encode()).digest()[:8], "big") / 2 ** 64


def _choose(fits: list[_Variant], mid: str) -> tuple[_Variant, float]:
    pool = [v for v in fits if v.approved] or fits
    weights = np.array([v.weight for v in pool])
    p = weights / weights.sum()
    i = min(int(np.searchsorted(np.cumsum(p), _draw(mid), side="right")), len(pool) - 1)
    return pool[i], float(p[i])


def default_channel(campaigns: Campaigns, campaign_id: str) -> str:
    """The channel the campaign's variants name when they agree on one, else ``email``."""
    named = {c for c in campaigns.variants(campaign_id)[C.CHANNEL].dropna() if c in KINDS}
    return named.pop() if len(named) == 1 else "email"


def build_messages(store: Store, campaigns: Campaigns, campaign_id: str, *,
                   audience: str | Sequence[str] = "all",
                   channel: str | None = None, limit: int | None = None, step: str = "0"
                   ) -> tuple[list[Message], dict[str, float], int]:
    """The messages of ``campaign_id`` to ``audience`` on ``channel``, each message id's
    propensity, and how many customers no variant fits."""
    camp = campaigns.get(campaign_id)
    if camp["status"] != "active":
        raise ConfigError(f"campaign {campaign_id!r} is {camp['status']}; resume it to send")
    channel = channel or default_channel(campaigns, campaign_id)
    if channel not in KINDS:
        raise ConfigError(f"channel must be one of {', '.join(KINDS)}, got {channel!r}")
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit must be 0 or more, got {limit}")
    ids = audience_ids(store, audience)[:limit]
    variants = _variants(campaigns, campaign_id, channel)
    contacts = _contacts(store, ids)
    address = {"email": C.EMAIL, "sms": C.PHONE}.get(channel)  # the contact column
    messages, propensity, unfit = [], {}, 0
    for user, row in zip(ids, contacts.itertuples(index=False), strict=True):
        segment = _text(row.segment)
        fits = [v for v in variants if v.lang in (None, row.lang) and v.segment in (None, segment)]
        if not fits:
            unfit += 1
            continue
        mid = message_id(campaign_id, user, step)
        v, p = _choose(fits, mid)
        # push gateways address a customer by their id (their devices are the gateway's business)
        to = _text(getattr(row, address)) if address else user
        zone = _text(row.timezone)
        zone = zone if zone and _known_zone(zone) else None
        messages.append(Message(campaign=campaign_id, variant=v.name, user_id=user, step=step,
                                channel=channel, to=to, subject=v.subject, text=v.text,
                                lang=v.lang or row.lang, links=list(v.links), timezone=zone,
                                approved=v.approved))
        propensity[mid] = p
    return messages, propensity, unfit


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


# --- sending ------------------------------------------------------------------------------------

def send_campaign(store: Store, campaign_id: str, channel: Channel | None, *,
                  audience: str | Sequence[str] = "all", kind: str | None = None, limit: int | None = None,
                  dry_run: bool = False, rules: Rules | None = None, ledger: Ledger | None = None,
                  clock: Clock | None = None, retry: RetryPolicy | None = None,
                  rate_limit: TokenBucket | None = None, workers: int = 1,
                  outbox: str | Path | None = None, campaigns: Campaigns | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> CampaignSendResult:
    """Send ``campaign_id`` to ``audience`` on channel kind ``kind`` through ``channel``.

    ``dry_run``: decide every message's outcome now without sending or writing to the ledger;
    with ``outbox`` the dry run writes into ``outbox/dry-run`` (replaced on each dry run, so it
    never mixes with real sends): ``plan.csv`` (every message, its variant and outcome) and a
    preview of each message due (``.eml``/``.json`` and ``outbox.csv``, as the ``file`` channel
    writes them).
    """
    campaigns = campaigns or Campaigns(store)
    ledger = ledger or Ledger(store)
    clock = clock or SystemClock()
    kind = kind or default_channel(campaigns, campaign_id)
    messages, propensity, unfit = build_messages(store, campaigns, campaign_id, audience=audience,
                                                 channel=kind, limit=limit)
    if dry_run:
        decided = plan(messages, ledger, rules=rules, clock=clock,
                       idempotent=bool(channel and channel.idempotent))
        result = tally(decided)[0]  # due messages are neither sent nor anything else yet
        due = [m for m, outcome in decided if outcome == SEND]
        out = CampaignSendResult(campaign_id, kind, True, result, would_send=len(due),
                                 variants=dict(Counter(m.variant for m in due)))
        if outbox is not None:
            out.outbox = str(_write_preview(Path(outbox), decided, propensity))
    else:
        if channel is None:
            raise ConfigError("a channel is needed to send (or ask for a dry run)")
        result = send(messages, channel, ledger, rules=rules, clock=clock, retry=retry,
                      rate_limit=rate_limit, workers=workers, on_progress=on_progress)
        done = [m for m in messages if result.outcomes.get(m.message_id) in ("sent", "unknown")]
        _log_decisions(store, done, propensity, clock)
        out = CampaignSendResult(campaign_id, kind, False, result,
                                 variants=dict(Counter(m.variant for m in done
                                                       if result.outcomes[m.message_id] == "sent")))
    if unfit:
        result.planned += unfit
        result.skipped = dict(sorted({**result.skipped, NO_VARIANT: unfit}.items()))
    return out


def _write_preview(outbox: Path, decided: list[tuple[Message, str]],
                   propensity: dict[str, float]) -> Path:
    import shutil

    from adpilot.data.csv_safe import write_csv
    from adpilot.delivery.channels.file import FileChannel

    outbox = outbox / "dry-run"
    shutil.rmtree(outbox, ignore_errors=True)  # the last dry run's preview only
    outbox.mkdir(parents=True, exist_ok=True)
    rows = [{"message_id": m.message_id, "user_id": m.user_id, "variant": m.variant,
             "channel": m.channel, "lang": m.lang, "propensity": round(propensity[m.message_id], 4),
             "outcome": "would_send" if outcome == SEND else outcome} for m, outcome in decided]
    write_csv(pd.DataFrame(rows, columns=["message_id", C.USER_ID, C.VARIANT, C.CHANNEL, "lang",
                                          "propensity", "outcome"]), outbox / "plan.csv")
    preview = FileChannel(outbox)
    try:
        for m, outcome in decided:
            if outcome == SEND:
                preview.deliver(m)
    finally:
        preview.close()
    return outbox


def _log_decisions(store: Store, done: list[Message], propensity: dict[str, float],
                   clock: Clock) -> None:
    """One decision per message sent (its id is the message id: a rerun adds none)."""
    if not done:
        return
    at = _naive_utc(clock.now())
    rows = [{"decision_id": m.message_id, "campaign_id": m.campaign, "user_id": m.user_id,
             "variant": m.variant, "channel": m.channel, "propensity": propensity[m.message_id],
             "time": at} for m in done]
    stmt = store._insert(DECISIONS).on_conflict_do_nothing(index_elements=["decision_id"])
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 5_000):
            conn.execute(stmt, rows[start:start + 5_000])
