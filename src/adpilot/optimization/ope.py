"""Off-policy evaluation: how would a new policy have done, from logs of an old one?

Logs carry the action taken, the reward and the logging propensity. Estimators (each with a
95% interval from the normal approximation of the per-row terms):
- ``ipw``: inverse propensity weighting, mean of r · π(a|x) / μ(a|x) (the one IPW
  implementation: ``targeting.metrics.policy_value_ipw`` is this with a bootstrap interval);
- ``snipw``: self-normalised IPW (divides by the mean weight: lower variance, small bias);
- ``dr``: doubly robust, a reward model's prediction under π plus the IPW-weighted residual.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from adpilot.errors import ConfigError


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a (1 - alpha) confidence interval; the one result type of every
    policy-value estimator (here and in :mod:`adpilot.targeting.metrics`)."""

    value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def ipw_terms(reward, target_prob, logging_prob) -> np.ndarray:
    """Per-row IPW contributions r · π(a|x) / μ(a|x); their mean is the policy value.

    ``target_prob`` is the probability the evaluated policy gives to the action actually taken
    (1/0 for a deterministic policy); ``logging_prob`` the logging policy's probability of it.
    """
    return (np.asarray(reward, float) * np.asarray(target_prob, float)
            / np.asarray(logging_prob, float))


def _normal_ci(terms: np.ndarray, z: float = 1.96) -> Estimate:
    m = float(np.mean(terms))
    se = float(np.std(terms, ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("inf")
    return Estimate(m, m - z * se, m + z * se)


def bootstrap_means(terms: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Poisson-bootstrap means of each column of ``terms`` (n × m), sharing resamples so that
    differences and ratios between columns get paired intervals. Returns (means, draws B × m)."""
    terms = np.atleast_2d(np.asarray(terms, float).T).T
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, terms.shape[1]))
    for start in range(0, n_boot, 100):  # bounded memory: 100 resamples at a time
        w = rng.poisson(1.0, size=(min(100, n_boot - start), len(terms)))
        draws[start:start + len(w)] = (w @ terms) / w.sum(axis=1, keepdims=True)
    return terms.mean(axis=0), draws


def interval(point: float, draws: np.ndarray, alpha: float = 0.05) -> Estimate:
    """``point`` with the (alpha/2, 1 - alpha/2) quantiles of its bootstrap ``draws``."""
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return Estimate(float(point), float(lo), float(hi))


def ipw(reward, target_prob, logging_prob, *, ci: Literal["normal", "bootstrap"] = "normal",
        n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> Estimate:
    """Inverse propensity weighting: the mean of :func:`ipw_terms`, with a 95% normal-theory
    interval (``ci="normal"``) or a (1 - alpha) Poisson-bootstrap one (``ci="bootstrap"``,
    ``n_boot`` resamples drawn with ``seed``)."""
    terms = ipw_terms(reward, target_prob, logging_prob)
    if ci == "normal":
        return _normal_ci(terms)
    if ci != "bootstrap":
        raise ConfigError(f"ci must be 'normal' or 'bootstrap', got {ci!r}")
    means, draws = bootstrap_means(terms, n_boot=n_boot, alpha=alpha, seed=seed)
    return interval(means[0], draws[:, 0], alpha)


def snipw(reward, target_prob, logging_prob) -> Estimate:
    w = np.asarray(target_prob, float) / np.asarray(logging_prob, float)
    r = np.asarray(reward, float)
    mean_w = w.mean()
    return _ratio_ci(float((w * r).mean() / mean_w), w, r, mean_w)


def _ratio_ci(value: float, w: np.ndarray, r: np.ndarray, mean_w: float) -> Estimate:
    """Delta-method interval of a ratio estimator."""
    terms = w * (r - value) / mean_w
    se = float(np.std(terms, ddof=1) / np.sqrt(len(terms)))
    return Estimate(value, value - 1.96 * se, value + 1.96 * se)


def dr(reward, target_prob, logging_prob, predicted_taken, predicted_under_target) -> Estimate:
    """``predicted_taken``: the reward model at the logged action; ``predicted_under_target``:
    Σ_a π(a|x) · r̂(x, a) per row."""
    w = np.asarray(target_prob, float) / np.asarray(logging_prob, float)
    terms = (np.asarray(predicted_under_target, float)
             + w * (np.asarray(reward, float) - np.asarray(predicted_taken, float)))
    return _normal_ci(terms)


def evaluate_logs(logs: pd.DataFrame, *, action_col: str, reward_col: str,
                  propensity_col: str, target: pd.DataFrame | str = "uniform",
                  position_col: str | None = None, context_cols: list[str] | None = None,
                  ) -> dict:
    """All three estimators for a target policy.

    ``target`` is ``"uniform"`` (every distinct action equally likely, per position when
    ``position_col`` is given) or a table with the action column (and the position column)
    and a ``probability`` column. The reward model for DR is the mean reward per action (per
    position), or a gradient-boosting model on ``context_cols`` when given.
    """
    for col in [action_col, reward_col, propensity_col] + ([position_col] if position_col else []):
        if col not in logs.columns:
            raise ConfigError(f"column {col!r} not in the logs; found {list(logs.columns)}")
    df = logs.copy()
    df["_a"] = df[action_col].astype(str)
    if position_col:
        df["_pos"] = df[position_col].astype(str)
    group = ["_pos"] if position_col else []
    actions = (df.groupby(group)["_a"].unique() if group else pd.Series({None: df["_a"].unique()}))
    if isinstance(target, str):
        if target != "uniform":
            raise ConfigError(f"target policy must be 'uniform' or a table, got {target!r}")
        rows = [{"_pos": pos, "_a": a, "probability": 1 / len(acts)}
                for pos, acts in actions.items() for a in acts]
        table = pd.DataFrame(rows)
    else:
        table = target.rename(columns={action_col: "_a"}).assign(_a=lambda d: d["_a"].astype(str))
        if position_col:
            table = table.rename(columns={position_col: "_pos"}).assign(
                _pos=lambda d: d["_pos"].astype(str))
        else:
            table["_pos"] = None
    table = table[["_pos", "_a", "probability"]]
    prob_key = ["_pos", "_a"] if position_col else ["_a"]
    lookup = table.set_index(prob_key)["probability"] if position_col else table.set_index(
        "_a")["probability"]
    idx = pd.MultiIndex.from_frame(df[prob_key]) if position_col else df["_a"]
    target_prob = lookup.reindex(idx).fillna(0.0).to_numpy()
    r = pd.to_numeric(df[reward_col], errors="coerce").fillna(0.0).to_numpy()
    mu = pd.to_numeric(df[propensity_col], errors="coerce").to_numpy()
    if np.isnan(mu).any() or (mu <= 0).any() or (mu > 1).any():
        raise ConfigError(f"propensities in {propensity_col!r} must be in (0, 1]")
    # reward model: mean reward per (position, action)
    means = df.assign(_r=r).groupby(prob_key)["_r"].mean()
    taken = means.reindex(idx).to_numpy()
    under = (table.assign(rhat=means.reindex(
        pd.MultiIndex.from_frame(table[prob_key]) if position_col else table["_a"]).fillna(
        float(r.mean())).to_numpy()).assign(v=lambda d: d["probability"] * d["rhat"])
        .groupby("_pos", dropna=False)["v"].sum())
    under_row = (under.reindex(df["_pos"]).to_numpy() if position_col
                 else np.full(len(df), float(under.iloc[0])))
    return {"n": int(len(df)),
            "estimates": {"ipw": ipw(r, target_prob, mu).as_dict(),
                          "snipw": snipw(r, target_prob, mu).as_dict(),
                          "dr": dr(r, target_prob, mu, taken, under_row).as_dict()}}
