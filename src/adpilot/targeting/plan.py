"""A delivery plan per customer: contact or not, on which channel, with which message, and
which product to feature — from the store's past campaign events and purchases.

Response rates are Beta-Binomial posteriors (empirical-Bayes prior from all customers), so a
customer with two impressions is pulled towards the average rather than trusted blindly.
Without a randomised control group in the logs, whether to contact is decided on expected
response value, not on uplift; when a control group exists, use ``adpilot uplift eval``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adpilot.data import columns as C

# Cost of one contact per channel, in the shop's currency: defaults a user can override.
DEFAULT_COSTS = {"email": 0.01, "push": 0.005, "sms": 0.05, "social": 0.02}


def _prior_strength(rates: pd.Series, weights: pd.Series, cap: float = 200.0) -> tuple[float, float]:
    """Method-of-moments Beta prior (α, β) from per-group rates."""
    m = float(np.average(rates, weights=weights)) if weights.sum() else 0.05
    v = float(np.average((rates - m) ** 2, weights=weights)) if weights.sum() else 0.0
    m = min(max(m, 1e-4), 1 - 1e-4)
    strength = m * (1 - m) / v - 1 if v > 0 else cap
    strength = float(np.clip(strength, 2.0, cap))
    return m * strength, (1 - m) * strength


def posterior_rates(events: pd.DataFrame, by: list[str], *, numerator: str = "click",
                    denominator: str = "impression") -> pd.DataFrame:
    """Posterior mean rate numerator/denominator per group of ``by`` (Beta-Binomial)."""
    counts = pd.crosstab([events[b] for b in by], events[C.EVENT_TYPE])
    num = counts.get(numerator, pd.Series(0, index=counts.index)).astype(float)
    den = counts.get(denominator, pd.Series(0, index=counts.index)).astype(float)
    num = np.minimum(num, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = (num / den).fillna(0.0)
    alpha, beta = _prior_strength(raw[den > 0], den[den > 0])
    out = pd.DataFrame({"successes": num, "trials": den,
                        "rate": (num + alpha) / (den + alpha + beta)})
    out.attrs["prior_mean"] = alpha / (alpha + beta)
    return out


@dataclass
class PlanSettings:
    value_per_conversion: float | None = None  # default: mean order value in the events
    costs: dict | None = None
    budget: float | None = None  # largest share of customers to contact


def build_plan(customers: pd.Series, events: pd.DataFrame, transactions: pd.DataFrame,
               settings: PlanSettings | None = None) -> pd.DataFrame:
    """One row per customer: contact, channel, variant, product_id, expected_value, reason."""
    settings = settings or PlanSettings()
    costs = {**DEFAULT_COSTS, **(settings.costs or {})}
    users = pd.Index(customers.astype(str).unique(), name=C.USER_ID)
    if events.empty:
        raise ValueError("no campaign events to learn response rates from")
    ctr_user_channel = posterior_rates(events, [C.USER_ID, C.CHANNEL])["rate"]
    ctr_channel = posterior_rates(events, [C.CHANNEL])
    conv = posterior_rates(events, [C.VARIANT], numerator="conversion", denominator="click")
    variant_ctr = posterior_rates(events, [C.VARIANT])
    best_variant = (variant_ctr["rate"] * conv["rate"]).idxmax()
    value = settings.value_per_conversion
    if value is None:
        paid = events.loc[events[C.EVENT_TYPE] == "conversion", C.VALUE].dropna()
        value = float(paid.mean()) if len(paid) else 1.0
    channels = list(ctr_channel.index)
    # expected value per (user, channel): P(click) · P(convert | click) · value − cost
    grid = pd.MultiIndex.from_product([users, channels], names=[C.USER_ID, C.CHANNEL])
    p_click = ctr_user_channel.reindex(grid)
    p_click = p_click.fillna(pd.Series(ctr_channel["rate"].reindex(
        grid.get_level_values(C.CHANNEL)).to_numpy(), index=grid))
    p_conv = float(conv["rate"].get(best_variant, conv.attrs["prior_mean"]))
    cost = pd.Series([costs.get(c, 0.02) for c in grid.get_level_values(C.CHANNEL)], index=grid)
    ev = (p_click * p_conv * value - cost).unstack(C.CHANNEL)
    best_channel = ev.idxmax(axis=1)
    best_value = ev.max(axis=1)
    contact = best_value > 0
    if settings.budget is not None:
        k = int(np.floor(settings.budget * len(users)))
        contact &= best_value.rank(ascending=False, method="first") <= k
    plan = pd.DataFrame({C.USER_ID: users, "contact": contact.reindex(users).to_numpy(),
                         C.CHANNEL: best_channel.reindex(users).to_numpy(),
                         C.VARIANT: best_variant,
                         "expected_value": best_value.reindex(users).round(4).to_numpy()})
    plan[C.PRODUCT_ID] = featured_products(transactions, users)
    plan["reason"] = np.select(
        [plan["contact"], plan["expected_value"] > 0],
        ["expected value " + plan["expected_value"].map("{:.3f}".format) + " on "
         + plan[C.CHANNEL], "outside the contact budget"],
        "expected value below contact cost")
    return plan


def featured_products(transactions: pd.DataFrame, users: pd.Index) -> np.ndarray:
    """The top item-co-occurrence recommendation not yet bought (popular items for new users)."""
    from adpilot.targeting.recommend import ItemCooccurrence, Popularity, top_k

    tx = transactions.dropna(subset=[C.USER_ID, C.PRODUCT_ID])
    items, i = np.unique(tx[C.PRODUCT_ID].astype(str), return_inverse=True)
    codes = pd.Categorical(tx[C.USER_ID].astype(str), categories=users).codes
    keep = codes >= 0
    import scipy.sparse as sp

    matrix = sp.csr_matrix((np.ones(keep.sum(), np.float32), (codes[keep], i[keep])),
                           shape=(len(users), len(items)))
    has_history = np.asarray(matrix.sum(axis=1)).ravel() > 0
    model = ItemCooccurrence().fit(matrix) if has_history.any() else Popularity().fit(matrix)
    recs = top_k(model, matrix, np.arange(len(users)), 1, exclude=matrix)[:, 0]
    popular = top_k(Popularity().fit(matrix), matrix, np.arange(len(users)), 1, exclude=matrix)
    return np.where(has_history, items[recs], items[popular[:, 0]])
