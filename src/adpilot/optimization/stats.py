"""Experiment statistics for campaign variants.

- per-variant rates with Wilson intervals;
- Bayesian probability of being best and expected loss (Beta posteriors, Monte Carlo);
- an always-valid test of each variant against the control: the mixture sequential
  probability ratio test (mSPRT, Johari et al. 2017), whose p-value and confidence sequence
  stay valid however often you look;
- a sample-ratio-mismatch check (chi-square against the intended split);
- a stopping rule combining them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from adpilot.data import columns as C


def wilson(successes: np.ndarray, trials: np.ndarray, z: float = 1.96) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
    s, n = np.asarray(successes, float), np.maximum(np.asarray(trials, float), 1e-12)
    p = s / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def bayes_best(successes: np.ndarray, trials: np.ndarray, *, draws: int = 20000,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """P(each arm has the highest rate) and expected loss (rate given up by choosing it)."""
    rng = np.random.default_rng(seed)
    s, n = np.asarray(successes, float), np.asarray(trials, float)
    samples = rng.beta(1 + s[:, None], 1 + n[:, None] - s[:, None], size=(len(s), draws))
    best = samples.max(axis=0)
    p_best = np.bincount(samples.argmax(axis=0), minlength=len(s)) / draws
    return p_best, (best - samples).mean(axis=1)


def msprt(s_a: float, n_a: float, s_b: float, n_b: float, *, tau: float = 0.05,
          alpha: float = 0.05) -> tuple[float, float, float]:
    """Always-valid p-value and confidence sequence for rate_b − rate_a (normal mSPRT with a
    N(0, τ²) mixture over the effect). Returns (p_value, ci_low, ci_high)."""
    if min(n_a, n_b) < 1:
        return 1.0, -1.0, 1.0
    pa, pb = s_a / n_a, s_b / n_b
    diff = pb - pa
    var = max(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b, 1e-12)  # variance of the difference
    t2 = tau * tau
    log_lr = 0.5 * np.log(var / (var + t2)) + t2 * diff * diff / (2 * var * (var + t2))
    p_value = float(min(1.0, np.exp(-log_lr)))
    # confidence sequence: the set of effects d the mSPRT would not reject
    radius = np.sqrt(var * (var + t2) / t2 * (np.log((var + t2) / var) + 2 * np.log(1 / alpha)))
    return p_value, float(diff - radius), float(diff + radius)


def sample_ratio_mismatch(observed: np.ndarray, expected_share: np.ndarray) -> float:
    """Chi-square p-value that the observed allocation came from the intended split
    (a tiny p-value means assignment or logging is broken; do not trust the results)."""
    observed = np.asarray(observed, float)
    expected = np.asarray(expected_share, float) / np.sum(expected_share) * observed.sum()
    if observed.sum() == 0 or len(observed) < 2:
        return 1.0
    return float(st.chisquare(observed, expected).pvalue)


def variant_report(events: pd.DataFrame, *, goal: str = "click", control: str | None = None,
                   intended_share: dict | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """One row per variant: impressions, goal events, rate with Wilson CI, P(best), expected
    loss, always-valid comparison with the control, and the campaign's SRM p-value."""
    counts = pd.crosstab(events[C.VARIANT], events[C.EVENT_TYPE])
    imp = counts.get("impression", pd.Series(0, index=counts.index)).astype(float)
    succ = np.minimum(counts.get(goal, pd.Series(0, index=counts.index)).astype(float), imp)
    lo, hi = wilson(succ.to_numpy(), imp.to_numpy())
    p_best, loss = bayes_best(succ.to_numpy(), imp.to_numpy())
    out = pd.DataFrame({"impressions": imp.astype(int), goal + "s": succ.astype(int),
                        "rate": succ / imp.where(imp > 0), "ci_low": lo, "ci_high": hi,
                        "p_best": p_best, "expected_loss": loss}, index=counts.index)
    control = control if control in out.index else out.index[0]
    rows = [msprt(succ[control], imp[control], succ[v], imp[v], alpha=alpha) for v in out.index]
    out["vs_control_p"] = [r[0] for r in rows]
    out["vs_control_low"] = [r[1] for r in rows]
    out["vs_control_high"] = [r[2] for r in rows]
    share = np.array([(intended_share or {}).get(v, 1.0) for v in out.index])
    out.attrs["srm_p_value"] = sample_ratio_mismatch(imp.to_numpy(), share)
    out.attrs["control"] = control
    return out


def stopping_decision(report: pd.DataFrame, *, p_best: float = 0.95, max_loss: float = 0.001,
                      alpha: float = 0.05) -> dict:
    """Stop when one variant is very likely best with negligible expected loss, or when the
    always-valid test has separated it from the control; never while SRM is flagged."""
    if report.attrs.get("srm_p_value", 1.0) < 0.001:
        return {"stop": False, "reason": "sample ratio mismatch: check assignment and logging"}
    leader = report["p_best"].idxmax()
    row = report.loc[leader]
    if row["p_best"] >= p_best and row["expected_loss"] <= max_loss:
        return {"stop": True, "winner": leader,
                "reason": f"P(best) {row['p_best']:.3f} and expected loss {row['expected_loss']:.5f}"}
    if leader != report.attrs.get("control") and row["vs_control_p"] < alpha:
        return {"stop": True, "winner": leader,
                "reason": f"always-valid p = {row['vs_control_p']:.4f} against the control"}
    return {"stop": False, "leader": leader, "reason": "keep collecting"}
