"""Campaign simulator calibrated from real data, to test allocation policies end to end.

Arms' click-through rates come from real Upworthy headline tests (arms with the same headline
aggregated); impressions arrive in batches, the policy allocates each batch, and observes the
clicks of the previous batches (feedback is never instant in practice). Outputs cumulative
regret against the oracle (always the best arm) and the share of traffic on the best arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adpilot.optimization.policies import FixedSplit, Policy, ThompsonSampling


def upworthy_tests(arms: pd.DataFrame, *, min_impressions: int = 1000,
                   min_arms: int = 3) -> pd.DataFrame:
    """Per test and distinct headline: impressions, clicks, ctr (tests with enough arms)."""
    g = (arms.groupby(["clickability_test_id", "headline"])[["impressions", "clicks"]].sum()
         .reset_index())
    g = g[g["impressions"] >= min_impressions]
    g["ctr"] = g["clicks"] / g["impressions"]
    size = g.groupby("clickability_test_id")["headline"].transform("size")
    return g[size >= min_arms].reset_index(drop=True)


def median_spread_test(tests: pd.DataFrame) -> np.ndarray:
    """CTRs of the test whose best/median CTR ratio is the median over all tests."""
    stats = tests.groupby("clickability_test_id")["ctr"].agg(["max", "median"])
    ratio = stats["max"] / stats["median"]
    chosen = (ratio - ratio.median()).abs().idxmin()
    return tests.loc[tests["clickability_test_id"] == chosen, "ctr"].to_numpy()


@dataclass
class SimResult:
    """Per batch: cumulative impressions, clicks, oracle clicks, share of the batch on best."""

    impressions: np.ndarray
    clicks: np.ndarray
    oracle_clicks: np.ndarray
    best_share: np.ndarray

    @property
    def regret(self) -> np.ndarray:
        return self.oracle_clicks - self.clicks

    def share_on_best_at(self, impressions: int, window: int = 1000) -> float:
        """Share of the impressions in the window ending at ``impressions`` that went to best."""
        per_batch = np.diff(np.concatenate([[0], self.impressions]))
        end = np.searchsorted(self.impressions, impressions, side="right")
        start = np.searchsorted(self.impressions, impressions - window, side="right")
        w = per_batch[start:end]
        return float(np.sum(self.best_share[start:end] * w) / max(np.sum(w), 1))


def simulate(policy: Policy, ctrs: np.ndarray, *, impressions: int = 20000, batch: int = 100,
             seed: int = 0) -> SimResult:
    """Run ``policy`` against Bernoulli arms with the given click-through rates."""
    rng = np.random.default_rng(seed)
    ctrs = np.asarray(ctrs, float)
    best = int(ctrs.argmax())
    n_batches = impressions // batch
    clicks = np.zeros(n_batches)
    share = np.zeros(n_batches)
    for b in range(n_batches):
        p = policy.probabilities()
        counts = rng.multinomial(batch, p)
        got = rng.binomial(counts, ctrs)
        for i in np.flatnonzero(counts):
            if isinstance(policy, ThompsonSampling):
                policy.update_counts(policy.arms[i], float(got[i]), float(counts[i]))
        clicks[b] = got.sum()
        share[b] = counts[best] / batch
    shown = np.arange(1, n_batches + 1) * batch
    return SimResult(shown, np.cumsum(clicks), shown * ctrs[best], share)


def compare_policies(ctrs: np.ndarray, *, impressions: int = 20000, runs: int = 20,
                     batch: int = 100, floor: float = 0.05, seed: int = 0) -> dict:
    """Thompson sampling vs a uniform split, ``runs`` seeded repetitions each."""
    arms = [f"v{i}" for i in range(len(ctrs))]
    out = {"ctrs": [float(c) for c in ctrs], "impressions": impressions, "runs": runs,
           "batch": batch}
    curves = {}
    for name, make in (("thompson", lambda s: ThompsonSampling(arms, floor=floor, seed=s)),
                       ("uniform", lambda s: FixedSplit(arms))):
        results = [simulate(make(seed + r), ctrs, impressions=impressions, batch=batch,
                            seed=seed + 1000 + r) for r in range(runs)]
        share = np.array([res.share_on_best_at(impressions) for res in results])
        ratio = np.array([res.clicks[-1] / res.oracle_clicks[-1] for res in results])
        out[name] = {"share_on_best_at_end": {"median": float(np.median(share)),
                                              "min": float(share.min()), "max": float(share.max()),
                                              "runs_at_least_80pct": float(np.mean(share >= 0.8))},
                     "clicks_vs_oracle": {"median": float(np.median(ratio)),
                                          "min": float(ratio.min()), "max": float(ratio.max())},
                     "final_regret_median": float(np.median([r.regret[-1] for r in results]))}
        curves[name] = (results[0].impressions,
                        np.median(np.array([r.regret for r in results]), axis=0),
                        np.median(np.array([r.best_share for r in results]), axis=0))
    out["curves"] = curves
    return out
