"""Pairs "which of two variants of the same test got the higher click-through rate", from
A/B outcomes: the Upworthy headline tests, or adpilot's own campaign events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adpilot.data import columns as C


def arms_from_upworthy(tests: pd.DataFrame) -> pd.DataFrame:
    """One row per (test, distinct headline): impressions and clicks summed over the arms
    that differ only in image or excerpt."""
    g = (tests.groupby(["clickability_test_id", "headline"], sort=True)
         .agg(impressions=("impressions", "sum"), clicks=("clicks", "sum"),
              test_week=("test_week", "min")).reset_index())
    g = g.rename(columns={"clickability_test_id": "test_id", "headline": C.TEXT})
    g["ctr"] = g["clicks"] / g["impressions"].where(g["impressions"] > 0)
    return g.dropna(subset=["ctr"])


def arms_from_events(events: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """Own campaigns as tests: ``events`` (canonical) and ``variants`` with campaign_id,
    variant and the copy text in ``text``."""
    counts = pd.crosstab([events[C.CAMPAIGN], events[C.VARIANT]], events[C.EVENT_TYPE])
    arms = pd.DataFrame({"impressions": counts.get("impression", 0),
                         "clicks": counts.get("click", 0)}).reset_index()
    arms = arms.merge(variants.rename(columns={"campaign_id": C.CAMPAIGN}),
                      on=[C.CAMPAIGN, C.VARIANT])
    arms = arms.rename(columns={C.CAMPAIGN: "test_id"})
    arms["ctr"] = arms["clicks"] / arms["impressions"].where(arms["impressions"] > 0)
    arms["test_week"] = np.nan
    return arms.dropna(subset=["ctr"])[["test_id", C.TEXT, "impressions", "clicks", "test_week",
                                        "ctr"]]


def make_pairs(arms: pd.DataFrame) -> pd.DataFrame:
    """All within-test pairs of distinct texts with different CTR, each once (a < b by row).

    ``label`` = 1 when a's CTR is higher; ``z`` = the two-proportion z statistic of the
    difference (how much evidence the pair carries).
    """
    a = arms.reset_index(drop=True).reset_index(names="row")
    m = a.merge(a, on="test_id", suffixes=("_a", "_b"))
    m = m[(m["row_a"] < m["row_b"]) & (m["text_a"] != m["text_b"]) & (m["ctr_a"] != m["ctr_b"])]
    pooled = (m["clicks_a"] + m["clicks_b"]) / (m["impressions_a"] + m["impressions_b"])
    se = np.sqrt(pooled * (1 - pooled) * (1 / m["impressions_a"] + 1 / m["impressions_b"]))
    out = pd.DataFrame({"test_id": m["test_id"], "text_a": m["text_a"], "text_b": m["text_b"],
                        "ctr_a": m["ctr_a"], "ctr_b": m["ctr_b"],
                        "label": (m["ctr_a"] > m["ctr_b"]).astype(int),
                        "z": ((m["ctr_a"] - m["ctr_b"]) / se.where(se > 0)).fillna(0).abs(),
                        "test_week": m["test_week_a"]})
    return out.reset_index(drop=True)
