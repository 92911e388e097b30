"""Uplift and policy-evaluation metrics with the field's standard names.

- ``qini_curve`` / ``qini_coefficient``: incremental outcomes when treating the top-scored
  first, against random targeting (Radcliffe 2007);
- ``uplift_curve`` / ``auuc``: the same with the rate difference scaled by the group size;
- ``qini_auc_score`` / ``uplift_auc_score``: the same areas normalised as scikit-uplift does
  (÷ the perfect model's area over random, so 1 = perfect ranking);
- ``uplift_at_k``: treated-minus-control outcome rate among the top k fraction;
- ``policy_value_ipw``: the value of any (stochastic) policy from randomised or logged data by
  inverse propensity weighting, with a bootstrap confidence interval.

The curves are evaluated at distinct score values, as a ROC curve is: customers with tied
scores enter together (one curve point per distinct score), so no figure depends on the order
of the rows. The points and the perfect-model curves follow scikit-uplift 0.5
(``sklift.metrics``); ``tests/test_uplift_metrics_ties.py`` checks them against it.

Two normalisations, both zero for random targeting; say which one a figure uses:

- ``qini_coefficient`` / ``auuc``: area between the curve and random targeting ÷ n² (n = people
  ranked): a share of the largest possible area, comparable across data sets of any size;
- ``qini_auc_score`` / ``uplift_auc_score``: the same area ÷ the perfect model's area over
  random (scikit-uplift's figures).
"""

from __future__ import annotations

import numpy as np

# Off-policy evaluation is the optimisation stage's (DESIGN.md); the estimate type and the
# bootstrap helpers are re-exported here for the uplift evaluation.
from adpilot.optimization.ope import Estimate, bootstrap_means, interval, ipw

__all__ = ["NORMALISATION", "Estimate", "auuc", "bootstrap_means", "interval",
           "policy_value_ipw", "qini_auc_score", "qini_coefficient", "qini_curve",
           "uplift_at_k", "uplift_auc_score", "uplift_curve"]

NORMALISATION = {
    "qini": "area between the Qini curve and random targeting ÷ n² (n = people ranked)",
    "auuc": "area between the uplift curve and random targeting ÷ n²",
    "qini_auc_score": "Qini area over random ÷ the perfect model's (scikit-uplift's "
                      "qini_auc_score; 1 = perfect)",
    "uplift_auc_score": "uplift-curve area over random ÷ the perfect model's (scikit-uplift's "
                        "uplift_auc_score; 1 = perfect)",
}


def _at_thresholds(y, score, treated) -> tuple[np.ndarray, ...]:
    """Cumulative counts when targeting by descending score, taken at the last row of each
    distinct score (tied rows enter together): (n, n_t, n_c, y_t, y_c)."""
    score = np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="stable")
    y = np.asarray(y, dtype=float)[order]
    t = np.asarray(treated, dtype=bool)[order]
    last = np.r_[np.flatnonzero(np.diff(score[order])), len(score) - 1]  # ends of tie groups
    n_t = np.cumsum(t)[last].astype(float)
    n = (last + 1).astype(float)
    y_t, y_c = np.cumsum(y * t)[last], np.cumsum(y * ~t)[last]
    return n, n_t, n - n_t, y_t, y_c


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0."""
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b != 0)


def qini_curve(y, score, treated) -> tuple[np.ndarray, np.ndarray]:
    """(x = people targeted, q = incremental outcomes) when targeting by descending score, one
    point per distinct score from (0, 0): q = Y_t − Y_c · N_t / N_c among the targeted."""
    if len(score) == 0:
        return np.array([0.0]), np.array([0.0])
    n, n_t, n_c, y_t, y_c = _at_thresholds(y, score, treated)
    return np.r_[0.0, n], np.r_[0.0, y_t - y_c * _ratio(n_t, n_c)]


def uplift_curve(y, score, treated) -> tuple[np.ndarray, np.ndarray]:
    """(x = people targeted, u = (Y_t/N_t − Y_c/N_c) × x), one point per distinct score; a group
    with nobody in it yet counts as rate 0 (as in scikit-uplift)."""
    if len(score) == 0:
        return np.array([0.0]), np.array([0.0])
    n, n_t, n_c, y_t, y_c = _at_thresholds(y, score, treated)
    return np.r_[0.0, n], np.r_[0.0, (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * n]


def _area_over(x: np.ndarray, curve: np.ndarray) -> float:
    """Area between ``curve`` and the straight line from (0, 0) to its last point."""
    if x[-1] == 0:
        return float("nan")
    return float(np.trapezoid(curve, x) - curve[-1] * x[-1] / 2)


def _area_over_random(x: np.ndarray, curve: np.ndarray) -> float:
    return _area_over(x, curve) / float(x[-1]) ** 2


def qini_coefficient(y, score, treated) -> float:
    """Area between the Qini curve and random targeting ÷ n² (0 = random; n = rows ranked).

    Tied scores are one curve point (row order does not matter). Not scikit-uplift's
    normalisation: :func:`qini_auc_score` divides by the perfect model's area instead."""
    return _area_over_random(*qini_curve(y, score, treated))


def auuc(y, score, treated) -> float:
    """Area between the uplift curve and random targeting ÷ n² (0 = random; n = rows ranked).

    Tied scores are one curve point. :func:`uplift_auc_score` is scikit-uplift's normalisation
    (÷ the perfect model's area)."""
    return _area_over_random(*uplift_curve(y, score, treated))


def qini_auc_score(y, score, treated, *, negative_effect: bool = True) -> float:
    """Qini area over random ÷ the perfect model's area over random (scikit-uplift's
    ``qini_auc_score``: 1 = perfect ranking, 0 = random). The perfect model ranks treated
    responders first and control responders last (``negative_effect=True``), or, with
    ``negative_effect=False``, reaches the total gain at once and stays there."""
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=bool)
    actual = _area_over(*qini_curve(y, score, t))
    if negative_effect:
        perfect = _area_over(*qini_curve(y, y * t - y * ~t, t))
    else:
        gain = y[t].sum() - t.sum() * _ratio(np.array([y[~t].sum()]), np.array([(~t).sum()]))[0]
        perfect = _area_over(np.array([0.0, gain, len(y)]), np.array([0.0, gain, gain]))
    return float(actual / perfect) if perfect else float("nan")


def uplift_auc_score(y, score, treated) -> float:
    """Uplift-curve area over random ÷ the perfect model's (scikit-uplift's
    ``uplift_auc_score``: 1 = perfect ranking, 0 = random)."""
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=bool)
    actual = _area_over(*uplift_curve(y, score, t))
    control_responders = np.sum((y == 1) & ~t)
    treated_non_responders = np.sum((y == 0) & t)
    summand = y if control_responders > treated_non_responders else t.astype(float)
    perfect = _area_over(*uplift_curve(y, 2.0 * (y == t) + summand, t))
    return float(actual / perfect) if perfect else float("nan")


def uplift_at_k(y, score, treated, k: float = 0.3) -> float:
    """Treated minus control outcome rate among the top ``k`` fraction by score."""
    n = max(1, int(round(len(score) * k)))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n]
    y = np.asarray(y, dtype=float)[order]
    t = np.asarray(treated, dtype=bool)[order]
    if t.all() or (~t).all():
        return float("nan")
    return float(y[t].mean() - y[~t].mean())


def policy_value_ipw(y, policy_prob, propensity, *, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> Estimate:
    """Value of a policy by inverse propensity weighting with a bootstrap interval
    (:func:`adpilot.optimization.ope.ipw`, the one IPW implementation, with ``ci="bootstrap"``)."""
    return ipw(y, policy_prob, propensity, ci="bootstrap", n_boot=n_boot, alpha=alpha, seed=seed)
