"""Return on spend per campaign from feedback events: revenue (value of goal events) against an
assumed media cost per 1,000 impressions per channel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adpilot.data import columns as C

# Assumed costs per 1,000 impressions (currency units); override per request.
DEFAULT_CPM = {"email": 0.5, "sms": 8.0, "push": 0.2, "social": 6.0, "search_ad": 10.0}
FALLBACK_CPM = 2.0


def roi_table(events: pd.DataFrame, names: dict[str, str] | None = None, *,
              cpm: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per campaign: impressions, clicks, conversions, revenue, cost, ROI, CTR, CVR."""
    cols = ["campaign", "name", "impressions", "clicks", "conversions", "revenue", "cost", "roi",
            "ctr", "cvr"]
    if events.empty:
        return pd.DataFrame(columns=cols)
    cpm = {**DEFAULT_CPM, **(cpm or {})}
    ev = events.assign(_value=pd.to_numeric(events.get(C.VALUE), errors="coerce").fillna(0.0))
    counts = pd.crosstab(ev[C.CAMPAIGN], ev[C.EVENT_TYPE]).reindex(
        columns=["impression", "click", "conversion"], fill_value=0)
    revenue = ev[ev[C.EVENT_TYPE] == "conversion"].groupby(C.CAMPAIGN)["_value"].sum()
    imps = ev[ev[C.EVENT_TYPE] == "impression"]
    rate = imps[C.CHANNEL].map(cpm).fillna(FALLBACK_CPM) if C.CHANNEL in imps else FALLBACK_CPM
    cost = (imps.assign(_cost=rate / 1000.0).groupby(C.CAMPAIGN)["_cost"].sum())
    out = pd.DataFrame({
        "campaign": counts.index,
        "name": [(names or {}).get(c, c) for c in counts.index],
        "impressions": counts["impression"].to_numpy(),
        "clicks": counts["click"].to_numpy(),
        "conversions": counts["conversion"].to_numpy(),
        "revenue": revenue.reindex(counts.index).fillna(0.0).to_numpy(),
        "cost": cost.reindex(counts.index).fillna(0.0).to_numpy(),
    })
    with np.errstate(divide="ignore", invalid="ignore"):
        out["roi"] = np.where(out["cost"] > 0, (out["revenue"] - out["cost"]) / out["cost"], np.nan)
        imp = out["impressions"].where(out["impressions"] > 0)
        out["ctr"] = out["clicks"] / imp
        out["cvr"] = out["conversions"] / imp
    return out[cols].round(4)
