"""Return on spend per campaign from feedback events: revenue (value of goal events) against an
assumed media cost per 1,000 impressions per channel.

The table is computed from counts per (campaign, type, channel): :func:`roi_from_store` has the
database count them (GROUP BY), so a report costs one aggregate query rather than a read of
every event; :func:`roi_table` counts an events frame the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from adpilot.data import columns as C
from adpilot.store.sql import TABLES, Store

# Assumed costs per 1,000 impressions (currency units); override per request.
DEFAULT_CPM = {"email": 0.5, "sms": 8.0, "push": 0.2, "social": 6.0, "search_ad": 10.0}
FALLBACK_CPM = 2.0
COLUMNS = ["campaign", "name", "impressions", "clicks", "conversions", "revenue", "cost", "roi",
           "ctr", "cvr"]


def event_totals(store: Store) -> pd.DataFrame:
    """Events counted by the database: one row per (campaign, type, channel) with ``n`` and
    the sum of ``value``."""
    ev = TABLES["events"]
    q = (select(ev.c.campaign, ev.c.type, ev.c.channel, func.count().label("n"),
                func.sum(ev.c.value).label("value"))
         .group_by(ev.c.campaign, ev.c.type, ev.c.channel))
    with store.engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=["campaign", "type", "channel", "n",
                                                            "value"])


def roi_from_store(store: Store, names: dict[str, str] | None = None, *,
                   cpm: dict[str, float] | None = None) -> pd.DataFrame:
    """:func:`roi_table` over every event in the store, aggregated in SQL."""
    return roi_from_totals(event_totals(store), names, cpm=cpm)


def roi_table(events: pd.DataFrame, names: dict[str, str] | None = None, *,
              cpm: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per campaign: impressions, clicks, conversions, revenue, cost, ROI, CTR, CVR."""
    if events.empty:
        return pd.DataFrame(columns=COLUMNS)
    ev = pd.DataFrame({"campaign": events[C.CAMPAIGN], "type": events[C.EVENT_TYPE],
                       "channel": events.get(C.CHANNEL),
                       "value": pd.to_numeric(events.get(C.VALUE), errors="coerce")})
    totals = (ev.groupby(["campaign", "type", "channel"], dropna=False)
              .agg(n=("type", "size"), value=("value", "sum")).reset_index())
    return roi_from_totals(totals, names, cpm=cpm)


def roi_from_totals(totals: pd.DataFrame, names: dict[str, str] | None = None, *,
                    cpm: dict[str, float] | None = None) -> pd.DataFrame:
    """The ROI table from counts per (campaign, type, channel) (see :func:`event_totals`)."""
    totals = totals.dropna(subset=["campaign", "type"])
    if totals.empty:
        return pd.DataFrame(columns=COLUMNS)
    cpm = {**DEFAULT_CPM, **(cpm or {})}
    n = totals["n"].astype("int64")
    value = pd.to_numeric(totals["value"], errors="coerce").fillna(0.0)
    rate = totals["channel"].map(cpm).astype(float).fillna(FALLBACK_CPM)
    imp, conv = totals["type"] == "impression", totals["type"] == "conversion"
    per = pd.DataFrame({"campaign": totals["campaign"],
                        "impressions": n.where(imp, 0), "clicks": n.where(totals["type"] == "click", 0),
                        "conversions": n.where(conv, 0), "revenue": value.where(conv, 0.0),
                        "cost": (n * rate / 1000.0).where(imp, 0.0)})
    out = per.groupby("campaign", sort=True).sum().reset_index()
    out.insert(1, "name", [(names or {}).get(c, c) for c in out["campaign"]])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["roi"] = np.where(out["cost"] > 0, (out["revenue"] - out["cost"]) / out["cost"], np.nan)
        shown = out["impressions"].where(out["impressions"] > 0)
        out["ctr"] = out["clicks"] / shown
        out["cvr"] = out["conversions"] / shown
    return out[COLUMNS].round(4)
