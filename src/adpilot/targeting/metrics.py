"""Uplift and policy-evaluation metrics with the field's standard names.

- ``qini_curve`` / ``qini_coefficient``: incremental outcomes when treating the top-scored
  first, against random targeting (Radcliffe 2007);
- ``uplift_curve`` / ``auuc``: the same with the rate difference scaled by the group size;
- ``uplift_at_k``: treated-minus-control outcome rate among the top k fraction;
- ``policy_value_ipw``: the value of any (stochastic) policy from randomised or logged data by
  inverse propensity weighting, with a bootstrap confidence interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a (1 - alpha) confidence interval."""

    value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def _sorted(y, score, treated):
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    y = np.asarray(y, dtype=float)[order]
    t = np.asarray(treated, dtype=bool)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    return n_t, n_c, y_t, y_c


def qini_curve(y, score, treated) -> tuple[np.ndarray, np.ndarray]:
    """(x = people targeted, q = incremental outcomes) when targeting by descending score."""
    n_t, n_c, y_t, y_c = _sorted(y, score, treated)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    x = np.arange(1, len(q) + 1)
    return np.concatenate([[0], x]), np.concatenate([[0.0], q])


def uplift_curve(y, score, treated) -> tuple[np.ndarray, np.ndarray]:
    """(x = people targeted, u = rate difference among them × x)."""
    n_t, n_c, y_t, y_c = _sorted(y, score, treated)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where((n_t > 0) & (n_c > 0), y_t / np.maximum(n_t, 1) - y_c / np.maximum(n_c, 1),
                        0.0)
    x = np.arange(1, len(diff) + 1)
    return np.concatenate([[0], x]), np.concatenate([[0.0], diff * x])


def _area_over_random(x: np.ndarray, curve: np.ndarray) -> float:
    random_line = curve[-1] * x / x[-1]
    return float(np.trapezoid(curve - random_line, x) / (x[-1] ** 2))


def qini_coefficient(y, score, treated) -> float:
    """Area between the Qini curve and random targeting, per person² (0 = random)."""
    return _area_over_random(*qini_curve(y, score, treated))


def auuc(y, score, treated) -> float:
    """Area between the uplift curve and random targeting, per person² (0 = random)."""
    return _area_over_random(*uplift_curve(y, score, treated))


def uplift_at_k(y, score, treated, k: float = 0.3) -> float:
    """Treated minus control outcome rate among the top ``k`` fraction by score."""
    n = max(1, int(round(len(score) * k)))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n]
    y = np.asarray(y, dtype=float)[order]
    t = np.asarray(treated, dtype=bool)[order]
    if t.all() or (~t).all():
        return float("nan")
    return float(y[t].mean() - y[~t].mean())


def ipw_terms(y, action, policy_prob, propensity) -> np.ndarray:
    """Per-row IPW contributions y · π(a|x) / p(a|x); their mean is the policy value.

    ``policy_prob`` is the probability the evaluated policy gives to the action actually taken
    (1/0 for a deterministic policy); ``propensity`` the logging policy's probability of it.
    """
    del action  # the caller already resolved π(a_i|x_i); kept for a readable call site
    return np.asarray(y, float) * np.asarray(policy_prob, float) / np.asarray(propensity, float)


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
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return Estimate(float(point), float(lo), float(hi))


def policy_value_ipw(y, policy_prob, propensity, *, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> Estimate:
    """Value of a policy by inverse propensity weighting with a bootstrap interval."""
    terms = ipw_terms(y, None, policy_prob, propensity)
    means, draws = bootstrap_means(terms, n_boot=n_boot, alpha=alpha, seed=seed)
    return interval(means[0], draws[:, 0], alpha)
