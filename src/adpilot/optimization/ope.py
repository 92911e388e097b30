"""Off-policy evaluation: how would a new policy have done, from logs of an old one?

Logs carry the action taken, the reward and the logging propensity. Estimators (each with a
95% interval from the normal approximation of the per-row terms):
- ``ipw``: inverse propensity weighting, mean of r · π(a|x) / μ(a|x);
- ``snipw``: self-normalised IPW (divides by the mean weight: lower variance, small bias);
- ``dr``: doubly robust, a reward model's prediction under π plus the IPW-weighted residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adpilot.errors import ConfigError


@dataclass(frozen=True)
class OPEEstimate:
    value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


def _normal_ci(terms: np.ndarray, z: float = 1.96) -> OPEEstimate:
    m = float(np.mean(terms))
    se = float(np.std(terms, ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("inf")
    return OPEEstimate(m, m - z * se, m + z * se)


def ipw(reward, target_prob, logging_prob) -> OPEEstimate:
    w = np.asarray(target_prob, float) / np.asarray(logging_prob, float)
    return _normal_ci(np.asarray(reward, float) * w)


def snipw(reward, target_prob, logging_prob) -> OPEEstimate:
    w = np.asarray(target_prob, float) / np.asarray(logging_prob, float)
    r = np.asarray(reward, float)
    mean_w = w.mean()
    return _ratio_ci(float((w * r).mean() / mean_w), w, r, mean_w)


def _ratio_ci(value: float, w: np.ndarray, r: np.ndarray, mean_w: float) -> OPEEstimate:
    """Delta-method interval of a ratio estimator."""
    terms = w * (r - value) / mean_w
    se = float(np.std(terms, ddof=1) / np.sqrt(len(terms)))
    return OPEEstimate(value, value - 1.96 * se, value + 1.96 * se)


def dr(reward, target_prob, logging_prob, predicted_taken, predicted_under_target) -> OPEEstimate:
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
