"""Every campaign's ROI from the store: events (funnel, attributed revenue), the delivery ledger
(messages sent, who was held out) and orders (revenue of treated and control customers).

Who is compared:

- treated: the customers the send ledger has a ``sent`` message of the campaign for, from the
  time of their first one;
- control: the customers recorded in the ledger's holdouts for the campaign: the stable global
  control group (:meth:`adpilot.delivery.rules.Rules.in_holdout`, a hash of the user id) and the
  campaign's own holdout, from the time they were held out. The sender decides holdouts before
  consent and suppression, so a control customer without consent on the channel, or suppressed
  on it, is left out (the treated side can only hold customers who passed those checks);
  so is one who was also sent the campaign.

A campaign without control customers, or a store without orders, gets an *attributed* ROI,
labelled so. Sums run in the database (GROUP BY); only the orders of the compared customers in
their windows are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from adpilot.data import columns as C
from adpilot.optimization.roi import (
    MESSAGE_CHANNELS,
    CampaignROI,
    Prices,
    attributed,
    campaign_cost,
    incremental,
)
from adpilot.store.sql import TABLES, Store

_IN_CHUNK = 5_000  # ids per IN (...) list


def event_totals(store: Store) -> pd.DataFrame:
    """Events counted by the database: one row per (campaign, type, channel) with ``n`` and
    the sum of ``value``."""
    ev = TABLES["events"]
    q = (select(ev.c.campaign, ev.c.type, ev.c.channel, func.count().label("n"),
                func.sum(ev.c.value).label("value"))
         .group_by(ev.c.campaign, ev.c.type, ev.c.channel))
    with store.engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=[C.CAMPAIGN, C.EVENT_TYPE, C.CHANNEL, "n",
                                                            C.VALUE])


def totals_of(events: pd.DataFrame) -> pd.DataFrame:
    """:func:`event_totals` computed from an events frame instead of by the database."""

    if events.empty:
        return pd.DataFrame(columns=[C.CAMPAIGN, C.EVENT_TYPE, C.CHANNEL, "n", C.VALUE])
    ev = pd.DataFrame({"campaign": events[C.CAMPAIGN], "type": events[C.EVENT_TYPE],
                       "channel": events.get(C.CHANNEL),
                       "value": pd.to_numeric(events.get(C.VALUE), errors="coerce")})
    return (ev.groupby([C.CAMPAIGN, C.EVENT_TYPE, C.CHANNEL], dropna=False)
            .agg(n=("type", "size"), value=("value", "sum")).reset_index())


def funnel(totals: pd.DataFrame) -> dict:
    """Impressions, clicks, conversions, CTR and CVR from one campaign's rows of totals."""
    n = totals.groupby(C.EVENT_TYPE)["n"].sum()
    imp, clk, conv = (int(n.get(k, 0)) for k in ("impression", "click", "conversion"))
    return {"impressions": imp, "clicks": clk, "conversions": conv,
            "ctr": clk / imp if imp else None, "cvr": conv / imp if imp else None}


def _ledger_tables(store: Store):
    if not store.has_table("delivery_sends"):
        return None
    from adpilot.delivery import ledger

    return ledger


def _sent_counts(store: Store) -> dict[str, dict[str, int]]:
    """campaign → channel → messages the ledger has as sent."""
    led = _ledger_tables(store)
    if led is None:
        return {}
    s = led.SENDS
    q = select(s.c.campaign, s.c.channel, func.count()).where(s.c.status == "sent") \
        .group_by(s.c.campaign, s.c.channel)
    out: dict[str, dict[str, int]] = {}
    with store.engine.connect() as conn:
        for campaign, channel, n in conn.execute(q):
            out.setdefault(campaign, {})[channel] = int(n)
    return out


def _held_campaigns(store: Store) -> set[str]:
    led = _ledger_tables(store)
    if led is None:
        return set()
    with store.engine.connect() as conn:
        return {c for (c,) in conn.execute(select(led.HOLDOUTS.c.campaign).distinct())}


def recorded_tokens(store: Store) -> dict[str, int]:
    """campaign → LLM tokens recorded with its variants' copy (``tokens`` as a number or as
    ``{"total": n}``); campaigns without a record are absent."""
    if not store.has_table("campaign_variants"):
        return {}
    from adpilot.optimization.campaigns import VARIANTS

    out: dict[str, int] = {}
    with store.engine.connect() as conn:
        for cid, copy in conn.execute(select(VARIANTS.c.campaign_id, VARIANTS.c.copy)):
            try:
                tokens = json.loads(copy or "{}").get("tokens")
            except (ValueError, AttributeError):
                continue
            if isinstance(tokens, dict):
                tokens = tokens.get("total")
            if isinstance(tokens, int | float) and tokens > 0:
                out[cid] = out.get(cid, 0) + int(tokens)
    return out


def _groups(store: Store, campaign: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(treated, control) of ``campaign``: user_id, channel, start (naive UTC) [, kind]."""
    from adpilot.delivery.ledger import HOLDOUTS, SENDS

    s, h = SENDS, HOLDOUTS
    tq = select(s.c.user_id, func.min(s.c.channel), func.min(s.c.claimed_at)).where(
        s.c.campaign == campaign, s.c.status == "sent").group_by(s.c.user_id)
    cq = select(h.c.user_id, h.c.channel, h.c.at, h.c.kind).where(h.c.campaign == campaign)
    with store.engine.connect() as conn:
        treated = pd.DataFrame(conn.execute(tq).all(), columns=[C.USER_ID, C.CHANNEL, "start"])
        control = pd.DataFrame(conn.execute(cq).all(),
                               columns=[C.USER_ID, C.CHANNEL, "start", "kind"])
    return treated, control


def _eligible_control(store: Store, control: pd.DataFrame, treated: pd.DataFrame) -> pd.DataFrame:
    """Control customers who could have been sent the campaign (see the module docstring)."""
    from adpilot.delivery.ledger import Ledger

    ledger = Ledger(store)
    keep = ~control[C.USER_ID].isin(treated[C.USER_ID])
    for channel in control[C.CHANNEL].unique():
        on = (control[C.CHANNEL] == channel).to_numpy()
        granted = ledger.consents(channel) if channel in MESSAGE_CHANNELS else {}
        suppressed = ledger.suppressed(channel) if channel in MESSAGE_CHANNELS else {}
        users = control[C.USER_ID]
        ok = users.map(granted).eq(True) & ~users.isin(list(suppressed))
        keep &= ~on | ok.to_numpy()
    return control[keep.to_numpy()]


def revenue_in_windows(store: Store, starts: pd.DataFrame, window: timedelta
                       ) -> tuple[np.ndarray, list[str]]:
    """Revenue (quantity × unit price of orders) of each customer in ``starts`` (user_id,
    start) from their start for ``window``, in the order of ``starts``; and the currencies of
    the products bought."""
    if starts.empty:
        return np.zeros(0), []
    tx, products = TABLES["transactions"], TABLES["products"]
    lo, hi = starts["start"].min(), starts["start"].max() + window
    users = starts[C.USER_ID].astype(str).unique().tolist()
    parts = []
    with store.engine.connect() as conn:
        for i in range(0, len(users), _IN_CHUNK):
            q = select(tx.c.user_id, tx.c.product_id, tx.c.quantity, tx.c.unit_price,
                       tx.c.time).where(tx.c.time >= lo, tx.c.time < hi,
                                        tx.c.user_id.in_(users[i:i + _IN_CHUNK]))
            parts.append(pd.DataFrame(conn.execute(q).all(),
                                      columns=[C.USER_ID, C.PRODUCT_ID, C.QUANTITY, C.UNIT_PRICE,
                                               C.TIME]))
        orders = pd.concat(parts, ignore_index=True)
        pids = orders[C.PRODUCT_ID].dropna().unique().tolist()
        found: set[str] = set()
        for i in range(0, len(pids), _IN_CHUNK):
            q = select(products.c.currency).where(products.c.id.in_(pids[i:i + _IN_CHUNK]))
            found |= {c for (c,) in conn.execute(q.distinct()) if c}
    currencies = sorted(found)
    joined = orders.merge(starts[[C.USER_ID, "start"]], on=C.USER_ID)
    t = pd.to_datetime(joined[C.TIME])
    start = pd.to_datetime(joined["start"])
    inside = (t >= start) & (t < start + window)
    value = (pd.to_numeric(joined[C.QUANTITY], errors="coerce")
             * pd.to_numeric(joined[C.UNIT_PRICE], errors="coerce")).fillna(0.0)
    per_user = value[inside].groupby(joined.loc[inside, C.USER_ID]).sum()
    return per_user.reindex(starts[C.USER_ID]).fillna(0.0).to_numpy(dtype=float), currencies


def campaign_rois(store: Store, names: dict[str, str] | None = None, *,
                  prices: Prices | None = None, window: timedelta = timedelta(days=14),
                  llm_tokens: dict[str, int] | None = None, campaigns: Iterable[str] | None = None,
                  totals: pd.DataFrame | None = None, n_boot: int = 2000,
                  seed: int = 0) -> list[CampaignROI]:
    """The ROI of every campaign with events, sends or holdouts (or of ``campaigns``), in
    campaign order. ``llm_tokens`` (campaign → tokens) defaults to :func:`recorded_tokens`;
    ``totals`` (see :func:`event_totals`) to the database's count of the events."""
    prices = prices or Prices()
    names = names or {}
    totals = (event_totals(store) if totals is None else totals).dropna(subset=[C.CAMPAIGN, C.EVENT_TYPE])
    sent = _sent_counts(store)
    held = _held_campaigns(store)
    tokens = recorded_tokens(store) if llm_tokens is None else llm_tokens
    wanted = sorted(set(totals[C.CAMPAIGN]) | set(sent) | held) if campaigns is None \
        else list(campaigns)
    has_orders = store.count("transactions") > 0
    by_campaign = dict(tuple(totals.groupby(C.CAMPAIGN))) if len(totals) else {}
    out = []
    for cid in wanted:
        rows = by_campaign.get(cid, totals.iloc[0:0])
        conv = rows[rows[C.EVENT_TYPE] == "conversion"]
        attributed_revenue = float(pd.to_numeric(conv[C.VALUE], errors="coerce").fillna(0).sum())
        if cid in sent:
            messages, source = sent[cid], "ledger"
        else:
            imps = rows[rows[C.EVENT_TYPE] == "impression"]
            messages = {str(ch): int(n) for ch, n in imps.groupby(
                imps[C.CHANNEL].fillna("unknown"))["n"].sum().items()}
            source = "impressions"
        cost = campaign_cost(messages, prices, llm_tokens=tokens.get(cid, 0), source=source)
        name = names.get(cid, cid)
        stats = funnel(rows)
        control = pd.DataFrame(columns=[C.USER_ID, C.CHANNEL, "start", "kind"])
        treated = pd.DataFrame(columns=[C.USER_ID, C.CHANNEL, "start"])
        if cid in held:
            treated, control = _groups(store, cid)
        eligible = _eligible_control(store, control, treated) if len(control) else control
        if len(treated) and len(eligible) and has_orders:
            t_rev, cur_t = revenue_in_windows(store, treated, window)
            c_rev, cur_c = revenue_in_windows(store, eligible, window)
            kinds = eligible["kind"].value_counts()
            out.append(incremental(
                cid, name, treated=t_rev, control=c_rev, cost=cost,
                attributed_revenue=attributed_revenue, window_days=window / timedelta(days=1),
                control_global=int(kinds.get("holdout", 0)),
                control_campaign=int(kinds.get("campaign_holdout", 0)),
                control_excluded=len(control) - len(eligible),
                currencies=sorted(set(cur_t) | set(cur_c)), funnel=stats, n_boot=n_boot,
                seed=seed))
        else:
            reason = ("no_control" if not len(eligible) else
                      "no_treated" if not len(treated) else "no_orders")
            out.append(attributed(cid, name, attributed_revenue=attributed_revenue, cost=cost,
                                  control=len(eligible), reason=reason, funnel=stats))
    return out


ROI_COLUMNS = ["campaign", "name", "kind", "revenue", "revenue_low", "revenue_high",
               "attributed_revenue", "cost", "roi", "roi_low", "roi_high", "treated", "control",
               "impressions", "clicks", "conversions", "ctr", "cvr", "note", "note_zh"]


def roi_frame(results: list[CampaignROI]) -> pd.DataFrame:
    """One row per campaign, :data:`ROI_COLUMNS` first, then the rest of each result."""
    rows = [r.as_dict() for r in results]
    if not rows:
        return pd.DataFrame(columns=ROI_COLUMNS)
    frame = pd.DataFrame(rows)
    return frame[ROI_COLUMNS + [c for c in frame.columns if c not in ROI_COLUMNS]]
