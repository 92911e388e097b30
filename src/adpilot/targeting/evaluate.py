"""Evaluate uplift targeting on randomised (or propensity-logged) data, held out.

``evaluate_uplift`` fits a learner on a training split and reports, on the held-out split:
the learned policy's value, each single-arm policy's value, a contact-budget comparison with
random targeting (paired bootstrap intervals), and the Qini coefficient and AUUC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from adpilot.errors import ConfigError, MissingColumnError
from adpilot.targeting.metrics import (
    NORMALISATION,
    auuc,
    bootstrap_means,
    interval,
    qini_auc_score,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
)
from adpilot.targeting.policy import UpliftPolicy
from adpilot.targeting.uplift import make_learner

# Columns that are outcomes in common marketing exports: never features by default
# (``duration`` in bank marketing is known only after the call).
KNOWN_OUTCOMES = {"visit", "conversion", "spend", "y", "duration", "revenue", "clicks",
                  "converted", "purchase", "response"}


MAX_LEVELS = 100  # a "categorical" column with more distinct values is an id or free text


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Numeric features (numbers stored as text are converted); categorical columns one-hot
    encoded in a stable column order. Refuses high-cardinality text columns by name."""
    x = frame[features].copy()
    cats = []
    for c in features:
        if pd.api.types.is_numeric_dtype(x[c]):
            continue
        as_num = pd.to_numeric(x[c], errors="coerce")
        if as_num.notna().sum() == x[c].replace("", pd.NA).notna().sum():
            x[c] = as_num
            continue
        levels = x[c].nunique()
        if levels > MAX_LEVELS:
            raise ConfigError(f"feature column {c!r} has {levels:,} distinct text values (an id or "
                              f"free text?); leave it out with --exclude {c}")
        cats.append(c)
    return pd.get_dummies(x, columns=cats, dtype=float).astype(float)


@dataclass
class UpliftEvaluation:
    result: dict
    curves: dict = field(default_factory=dict)  # name -> (x, y) for plots


def evaluate_uplift(frame: pd.DataFrame, *, treatment_col: str, control: str, outcome: str,
                    features: list[str] | None = None, exclude: list[str] | None = None,
                    budget: float = 0.5, learner: str = "dr", test_size: float = 0.3,
                    propensity_col: str | None = None, seed: int = 0, n_boot: int = 1000,
                    path: str | None = None) -> UpliftEvaluation:
    """Fit on ``1 - test_size`` of the rows, evaluate on the rest (stratified by arm)."""
    for col in [treatment_col, outcome] + ([propensity_col] if propensity_col else []):
        if col not in frame.columns:
            raise MissingColumnError(col, list(frame.columns), path=path)
    treatment = frame[treatment_col].astype(str)
    if control not in set(treatment):
        raise ConfigError(f"control value {control!r} not found in {treatment_col!r}; values: "
                          f"{sorted(set(treatment))[:10]}")
    dropped = {treatment_col, outcome, *(exclude or []), *([propensity_col] if propensity_col else [])}
    if features is None:
        features = [c for c in frame.columns if c not in dropped and c not in KNOWN_OUTCOMES
                    and c.lower() not in KNOWN_OUTCOMES]
    y = pd.to_numeric(frame[outcome], errors="coerce")
    if y.isna().any():
        raise ConfigError(f"outcome {outcome!r} has {int(y.isna().sum())} non-numeric values")
    x = feature_matrix(frame, features)
    idx_train, idx_test = train_test_split(np.arange(len(frame)), test_size=test_size,
                                           random_state=seed, stratify=treatment)
    t_all = treatment.to_numpy()
    if propensity_col:
        prop_all = frame[propensity_col].astype(float).to_numpy()
    else:  # randomised: the arm shares are the propensities
        shares = treatment.value_counts(normalize=True)
        prop_all = treatment.map(shares).to_numpy(dtype=float)
    model = make_learner(learner, control=control, seed=seed).fit(
        x.to_numpy()[idx_train], t_all[idx_train], y.to_numpy()[idx_train])
    up = model.predict_uplift(x.to_numpy()[idx_test])
    arms = model.treatments_
    y_te, t_te, p_te = y.to_numpy()[idx_test], t_all[idx_test], prop_all[idx_test]

    def arm_name(decisions: np.ndarray) -> np.ndarray:
        names = np.array([control, *arms], dtype=object)
        return names[decisions + 1]

    learned = arm_name(UpliftPolicy().decide(up))
    k = int(np.floor(budget * len(up)))
    budgeted = arm_name(UpliftPolicy(budget=budget).decide(
        np.where(up.max(axis=1, keepdims=True) > -np.inf, up, 0) + 1e-12))  # top-k by uplift
    # π(a|x) for each evaluated policy, at the arm actually taken
    policies = {"policy": (learned == t_te).astype(float)}
    for arm in [control, *arms]:
        policies[f"arm:{arm}"] = (t_te == arm).astype(float)
    policies["budget_policy"] = (budgeted == t_te).astype(float)
    frac = k / len(up)
    # random targeting of the same fraction, each contacted customer gets a random message
    policies["budget_random"] = np.where(t_te == control, 1 - frac, frac / len(arms))
    names = list(policies)
    terms = np.column_stack([y_te * policies[n] / p_te for n in names])
    means, draws = bootstrap_means(terms, n_boot=n_boot, seed=seed)
    est = {n: interval(means[i], draws[:, i]) for i, n in enumerate(names)}
    bp, br = names.index("budget_policy"), names.index("budget_random")
    lift_draws = draws[:, bp] / draws[:, br] - 1
    lift = interval(means[bp] / means[br] - 1, lift_draws)
    # incremental outcomes over contacting nobody (what the contacts themselves bring)
    nc = names.index(f"arm:{control}")
    inc_draws = (draws[:, bp] - draws[:, nc]) / (draws[:, br] - draws[:, nc]) - 1
    inc_lift = interval((means[bp] - means[nc]) / (means[br] - means[nc]) - 1, inc_draws)
    # Qini / AUUC: score = best uplift; treated = got the recommended arm, vs control
    best_arm = np.array(arms, dtype=object)[up.argmax(axis=1)]
    score = up.max(axis=1)
    keep = (t_te == best_arm) | (t_te == control)
    treated = t_te[keep] != control
    qx, qy = qini_curve(y_te[keep], score[keep], treated)
    best_single = max(arms + [control], key=lambda a: est[f"arm:{a}"].value)
    result = {
        "n_train": len(idx_train), "n_test": len(idx_test), "learner": learner,
        "outcome": outcome, "control": control, "arms_evaluated": [control, *arms],
        "features": features,
        "policy": {**est["policy"].as_dict(),
                   "share_by_arm": pd.Series(learned).value_counts(normalize=True).round(4)
                   .to_dict()},
        "arms": {a: est[f"arm:{a}"].as_dict() for a in [control, *arms]},
        "best_single_arm": best_single,
        "policy_vs_best_arm": {
            **interval(means[0] - means[names.index(f"arm:{best_single}")],
                       draws[:, 0] - draws[:, names.index(f"arm:{best_single}")]).as_dict()},
        "budget": {"fraction": frac, "policy_value": est["budget_policy"].as_dict(),
                   "random_value": est["budget_random"].as_dict(),
                   "relative_lift": lift.as_dict(),
                   "incremental_lift": inc_lift.as_dict()},
        "qini": round(qini_coefficient(y_te[keep], score[keep], treated), 6),
        "auuc": round(auuc(y_te[keep], score[keep], treated), 6),
        "qini_auc_score": round(qini_auc_score(y_te[keep], score[keep], treated), 6),
        "uplift_auc_score": round(uplift_auc_score(y_te[keep], score[keep], treated), 6),
        "normalisation": NORMALISATION,
        "uplift_at_30": round(uplift_at_k(y_te[keep], score[keep], treated, 0.3), 6),
        "seed": seed, "test_size": test_size, "bootstrap": n_boot,
    }
    rx = np.array([0, qx[-1]])
    return UpliftEvaluation(result, {"qini": (qx, qy), "qini_random": (rx, np.array([0, qy[-1]]))})
