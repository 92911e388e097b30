"""RFM (recency, frequency, monetary value) per customer from transaction lines, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adpilot.data import columns as C

# Classic RFM segment map on (R score, F score); M refines within. Names are in English and
# Chinese because reports and the dashboard show both.
_SEGMENTS = [  # (name_en, name_zh, r_min, r_max, f_min, f_max) — first match wins
    ("Champions", "核心客户", 4, 5, 4, 5),
    ("Loyal", "忠诚客户", 3, 5, 3, 5),
    ("New", "新客户", 4, 5, 1, 1),
    ("Promising", "潜力客户", 4, 5, 2, 3),
    ("At risk", "流失风险", 1, 2, 3, 5),
    ("Needs attention", "需关注", 3, 3, 1, 2),
    ("Hibernating", "沉睡客户", 1, 2, 1, 2),
]


def _score(values: pd.Series, *, higher_is_better: bool = True, bins: int = 5) -> pd.Series:
    """Quantile score 1..bins by rank (ties broken by order, so equal-sized bins always exist)."""
    if len(values) == 0:
        return pd.Series(dtype="int64")
    ranks = values.rank(method="first", ascending=higher_is_better)
    return (np.ceil(ranks / len(values) * bins)).clip(1, bins).astype("int64")


def compute_rfm(transactions: pd.DataFrame, *, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer: ``recency_days``, ``frequency`` (orders), ``monetary`` (net spend),
    ``first_purchase``, ``last_purchase``, scores ``r_score``/``f_score``/``m_score`` (1-5) and
    ``rfm_segment`` / ``rfm_segment_zh``.

    ``as_of`` defaults to the day after the last transaction. Returns (negative quantities)
    reduce spend; lines without a user are ignored.
    """
    tx = transactions.dropna(subset=[C.USER_ID])
    if tx.empty:
        return pd.DataFrame(columns=[C.USER_ID, "recency_days", "frequency", "monetary"])
    times = pd.to_datetime(tx[C.TIME])
    as_of = as_of or (times.max().normalize() + pd.Timedelta(days=1))
    amount = tx[C.QUANTITY].astype(float) * tx[C.UNIT_PRICE].astype(float).fillna(0)
    orders = tx[C.INVOICE] if C.INVOICE in tx and tx[C.INVOICE].notna().any() else times
    g = pd.DataFrame({C.USER_ID: tx[C.USER_ID], "time": times, "amount": amount,
                      "order": orders}).groupby(C.USER_ID, sort=True)
    rfm = g.agg(first_purchase=("time", "min"), last_purchase=("time", "max"),
                frequency=("order", "nunique"), monetary=("amount", "sum")).reset_index()
    rfm["recency_days"] = (as_of - rfm["last_purchase"]).dt.days
    rfm["r_score"] = _score(rfm["recency_days"], higher_is_better=False)
    rfm["f_score"] = _score(rfm["frequency"])
    rfm["m_score"] = _score(rfm["monetary"])
    name_en = pd.Series("Others", index=rfm.index, dtype=object)
    name_zh = pd.Series("其他", index=rfm.index, dtype=object)
    unset = np.ones(len(rfm), dtype=bool)
    for en, zh, r0, r1, f0, f1 in _SEGMENTS:
        hit = unset & rfm["r_score"].between(r0, r1).to_numpy() & rfm["f_score"].between(
            f0, f1).to_numpy()
        name_en[hit], name_zh[hit] = en, zh
        unset &= ~hit
    rfm["rfm_segment"], rfm["rfm_segment_zh"] = name_en, name_zh
    return rfm[[C.USER_ID, "recency_days", "frequency", "monetary", "first_purchase",
                "last_purchase", "r_score", "f_score", "m_score", "rfm_segment", "rfm_segment_zh"]]
