"""Budget allocation across audiences with diminishing returns.

Each audience gets a concave response curve, conversions per ad = a · spend^b with 0 < b < 1,
fitted by Poisson regression of conversions on log(spend). The budget is split where the
marginal conversions per unit of money are equal across audiences (water-filling), and compared
with spending in proportion to past spend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adpilot.errors import ConfigError


@dataclass(frozen=True)
class Response:
    """conversions(ad spend s) = a · s^b for one audience with ``ads`` ads."""

    a: float
    b: float
    ads: int

    def conversions(self, total_spend: np.ndarray | float) -> np.ndarray:
        """Expected conversions when ``total_spend`` is spread evenly over the audience's ads."""
        per_ad = np.asarray(total_spend, dtype=float) / self.ads
        return self.ads * self.a * np.power(np.maximum(per_ad, 0), self.b)


def _poisson_slope(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> float:
    """Slope of a Poisson GLM log E[y] = c + b·x by Newton's method (two parameters; a few
    microseconds, so bootstrapping thousands of audience curves stays cheap)."""
    design = np.column_stack([np.ones_like(x), x])
    beta = np.array([np.log(max(y.mean(), 1e-9)), 0.0])
    for _ in range(iterations):
        mu = np.exp(np.clip(design @ beta, -30, 30))
        grad = design.T @ (y - mu)
        hess = design.T @ (design * mu[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return float(beta[1])


def fit_responses(ads: pd.DataFrame, *, group_cols: list[str], spend_col: str = "Spent",
                  conversions_col: str = "Total_Conversion", min_ads: int = 10,
                  b_bounds: tuple[float, float] = (0.05, 0.95)) -> dict[tuple, Response]:
    """One response curve per audience (ads with positive spend)."""
    for col in [*group_cols, spend_col, conversions_col]:
        if col not in ads.columns:
            raise ConfigError(f"column {col!r} not in the ads table; found {list(ads.columns)}")
    live = ads[ads[spend_col].astype(float) > 0]
    out = {}
    for key, g in live.groupby(group_cols, sort=True):
        if len(g) < min_ads:
            continue
        x = np.log(g[spend_col].to_numpy(dtype=float))
        y = g[conversions_col].to_numpy(dtype=float)
        b = float(np.clip(_poisson_slope(x, y), *b_bounds))
        # refit the level with b fixed, so the curve passes through the data's total
        a = float(y.sum() / np.power(g[spend_col].to_numpy(dtype=float), b).sum())
        out[key if isinstance(key, tuple) else (key,)] = Response(a, b, len(g))
    if not out:
        raise ConfigError(f"no audience has {min_ads} ads with spend; cannot fit responses")
    return out


def allocate(responses: dict[tuple, Response], budget: float) -> dict[tuple, float]:
    """Split ``budget`` to maximise total expected conversions (equal marginal returns)."""
    keys = list(responses)
    a = np.array([responses[k].a for k in keys])
    b = np.array([responses[k].b for k in keys])
    n = np.array([responses[k].ads for k in keys], dtype=float)

    def spend_at(lam: float) -> np.ndarray:
        # d/dX [n a (X/n)^b] = a b (X/n)^(b-1) = λ  →  X = n (a b / λ)^(1 / (1 - b))
        return n * np.power(a * b / lam, 1 / (1 - b))

    lo, hi = 1e-12, 1e12
    for _ in range(200):  # bisection on log λ: total spend falls as λ grows
        mid = np.sqrt(lo * hi)
        if spend_at(mid).sum() > budget:
            lo = mid
        else:
            hi = mid
    x = spend_at(np.sqrt(lo * hi))
    x *= budget / x.sum()
    return dict(zip(keys, x, strict=True))


def expected_conversions(responses: dict[tuple, Response], allocation: dict[tuple, float]) -> float:
    return float(sum(responses[k].conversions(v) for k, v in allocation.items() if k in responses))


def backtest(ads: pd.DataFrame, *, group_cols: list[str], spend_col: str = "Spent",
             conversions_col: str = "Total_Conversion", seed: int = 0,
             n_boot: int = 200) -> dict:
    """Fit curves on a random half of the ads, allocate the other half's total spend, and judge
    both allocations with curves fitted on that held-out half (bootstrapped over its ads)."""
    rng = np.random.default_rng(seed)
    half = rng.random(len(ads)) < 0.5
    train, test = ads[half], ads[~half]
    fitted = fit_responses(train, group_cols=group_cols, spend_col=spend_col,
                           conversions_col=conversions_col)
    budget = float(test[spend_col].sum())
    past = train.groupby(group_cols)[spend_col].sum()
    past.index = [k if isinstance(k, tuple) else (k,) for k in past.index]
    shares = past.reindex(list(fitted)).fillna(0)
    proportional = dict(zip(fitted, (shares / shares.sum() * budget).to_numpy(), strict=True))
    optimised = allocate(fitted, budget)
    draws = []
    for _ in range(n_boot):
        sample = test.iloc[rng.integers(0, len(test), len(test))]
        try:
            judge = fit_responses(sample, group_cols=group_cols, spend_col=spend_col,
                                  conversions_col=conversions_col, min_ads=5)
        except ConfigError:
            continue
        draws.append((expected_conversions(judge, optimised),
                      expected_conversions(judge, proportional)))
    judge = fit_responses(test, group_cols=group_cols, spend_col=spend_col,
                          conversions_col=conversions_col, min_ads=5)
    opt, prop = expected_conversions(judge, optimised), expected_conversions(judge, proportional)
    d = np.array(draws)
    diff = d[:, 0] - d[:, 1]
    return {
        "budget": budget, "audiences": [" / ".join(map(str, k)) for k in fitted],
        "optimised": {"conversions": opt, "per_1000": 1000 * opt / budget,
                      "ci": np.quantile(d[:, 0], [0.025, 0.975]).tolist()},
        "proportional": {"conversions": prop, "per_1000": 1000 * prop / budget,
                         "ci": np.quantile(d[:, 1], [0.025, 0.975]).tolist()},
        "gain": {"conversions": opt - prop, "relative": opt / prop - 1,
                 "ci": np.quantile(diff, [0.025, 0.975]).tolist(),
                 "share_of_resamples_better": float(np.mean(diff > 0))},
        "allocation": {" / ".join(map(str, k)): {"optimised": optimised[k],
                                                   "proportional": proportional[k],
                                                   "b": fitted[k].b} for k in fitted},
        "validation": "curves fitted on a random half of the ads (seed); both allocations of "
                      "the other half's total spend judged with curves fitted on that half; "
                      f"{len(draws)} bootstrap resamples of the held-out ads",
    }
