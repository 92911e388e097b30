"""Thompson sampling vs a uniform A/B split in a simulator calibrated from real data, and
off-policy estimators checked against known truth.

1. Bandits: arms' CTRs from the Upworthy test with the median best/median CTR spread (arms
   with the same headline aggregated, ≥ 1,000 impressions each); 20,000 impressions in batches
   of 100; 20 seeded runs per policy. Also over 200 randomly drawn Upworthy tests (seed 0).
2. OPE: simulated logs (5 actions, a known non-uniform logging policy, Bernoulli rewards with
   known means), 200 repetitions of 5,000 rows: how often each estimator's 95% interval covers
   the true value of a different (target) policy. Plus Hillstrom: IPW of "everyone gets the
   Mens e-mail" against the observed rate of that arm.

Usage: python evaluation/bandit_simulation.py → evaluation/results/bandits.{json,md},
bandit_regret.svg
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.config import get_settings
from adpilot.datasets import load_dataset
from adpilot.datasets_fetch import DataSources
from adpilot.optimization.ope import dr, ipw, snipw
from adpilot.optimization.simulator import compare_policies, median_spread_test, upworthy_tests

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download

RESULTS = Path(__file__).parent / "results"


def regret_chart(curves: dict) -> str:
    import matplotlib.pyplot as plt

    from adpilot.report.charts import PALETTE, _axes
    from adpilot.report.html import figure_svg

    fig, ax = _axes("Cumulative regret (median of 20 runs)", size=(5.6, 3.2))
    for i, (name, (x, regret, _)) in enumerate(curves.items()):
        ax.plot(x, regret, label=name, color=PALETTE[i])
    ax.set_xlabel("impressions")
    ax.set_ylabel("clicks lost vs oracle")
    ax.legend(frameon=False)
    del plt
    return figure_svg(fig)


def ope_coverage(reps: int = 200, n: int = 5000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    k = 5
    means = np.array([0.02, 0.035, 0.05, 0.04, 0.03])
    logging = np.array([0.4, 0.25, 0.15, 0.1, 0.1])
    target = np.array([0.05, 0.1, 0.6, 0.2, 0.05])
    truth = float(target @ means)
    hits = {"ipw": 0, "snipw": 0, "dr": 0}
    errors = {name: [] for name in hits}
    for _ in range(reps):
        a = rng.choice(k, size=n, p=logging)
        r = (rng.random(n) < means[a]).astype(float)
        mu, pi = logging[a], target[a]
        rhat = pd.Series(r).groupby(a).mean().reindex(range(k)).fillna(r.mean()).to_numpy()
        ests = {"ipw": ipw(r, pi, mu), "snipw": snipw(r, pi, mu),
                "dr": dr(r, pi, mu, rhat[a], np.full(n, target @ rhat))}
        for name, e in ests.items():
            hits[name] += e.ci_low <= truth <= e.ci_high
            errors[name].append(e.value - truth)
    return {"truth": truth, "reps": reps, "rows": n,
            "coverage": {k_: v / reps for k_, v in hits.items()},
            "rmse": {k_: float(np.sqrt(np.mean(np.square(v)))) for k_, v in errors.items()}}


def main() -> None:
    tests = upworthy_tests(load_dataset("upworthy", SOURCES).tables["upworthy"])
    ctrs = median_spread_test(tests)
    out = {"median_spread_test": {}, "floor": {}}
    main_run = compare_policies(ctrs, runs=20, floor=0.05)
    curves = main_run.pop("curves")
    out["median_spread_test"] = main_run
    for floor in (0.02,):
        r = compare_policies(ctrs, runs=20, floor=floor)
        r.pop("curves")
        out["floor"][str(floor)] = r["thompson"]
    rng = np.random.default_rng(0)
    ids = rng.choice(tests["clickability_test_id"].unique(), 200, replace=False)
    shares, ratios, uni = [], [], []
    for i, tid in enumerate(ids):
        c = tests.loc[tests["clickability_test_id"] == tid, "ctr"].to_numpy()
        r = compare_policies(c, runs=1, seed=i)
        shares.append(r["thompson"]["share_on_best_at_end"]["median"])
        ratios.append(r["thompson"]["clicks_vs_oracle"]["median"])
        uni.append(r["uniform"]["clicks_vs_oracle"]["median"])
    out["200_tests"] = {"share_on_best_median": float(np.median(shares)),
                        "share_on_best_at_least_80pct": float(np.mean(np.array(shares) >= 0.8)),
                        "thompson_clicks_vs_oracle_median": float(np.median(ratios)),
                        "uniform_clicks_vs_oracle_median": float(np.median(uni))}
    out["ope_simulated"] = ope_coverage()
    h = load_dataset("hillstrom", SOURCES).tables["hillstrom"]
    mens = (h["segment"] == "Mens E-Mail").to_numpy().astype(float)
    e = ipw(h["visit"].to_numpy(float), mens, np.full(len(h), 1 / 3))
    observed = float(h.loc[mens == 1, "visit"].mean())
    out["ope_hillstrom"] = {"ipw_everyone_mens": e.as_dict(), "observed_mens_rate": observed,
                            "inside_interval": e.ci_low <= observed <= e.ci_high}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bandit_regret.svg").write_text(regret_chart(curves), encoding="utf-8")
    (RESULTS / "bandits.json").write_text(json.dumps(out, indent=2))
    m = out["median_spread_test"]
    ts, un = m["thompson"], m["uniform"]
    lines = [
        "# Bandit allocation and off-policy evaluation", "",
        f"Median-spread Upworthy test, CTRs {', '.join(f'{c:.2%}' for c in m['ctrs'])}; "
        f"{m['impressions']:,} impressions in batches of {m['batch']}; {m['runs']} runs.", "",
        "| policy | share on best, last 1,000 impressions (median [min, max]) | runs ≥ 80% | "
        "clicks / oracle (median [min, max]) | final regret (median) |",
        "|---|---|---|---|---|"]
    for name, r in (("Thompson (floor 5%)", ts), ("Thompson (floor 2%)", out["floor"]["0.02"]),
                    ("uniform A/B", un)):
        s, c = r["share_on_best_at_end"], r["clicks_vs_oracle"]
        lines.append(f"| {name} | {s['median']:.1%} [{s['min']:.1%}, {s['max']:.1%}] | "
                     f"{s['runs_at_least_80pct']:.0%} | {c['median']:.1%} [{c['min']:.1%}, "
                     f"{c['max']:.1%}] | {r['final_regret_median']:.1f} |")
    t200 = out["200_tests"]
    o = out["ope_simulated"]
    lines += ["", f"Over 200 random Upworthy tests (1 run each): Thompson share on best "
              f"{t200['share_on_best_median']:.1%} (median; ≥ 80% in "
              f"{t200['share_on_best_at_least_80pct']:.0%} of tests), clicks / oracle "
              f"{t200['thompson_clicks_vs_oracle_median']:.1%} vs uniform "
              f"{t200['uniform_clicks_vs_oracle_median']:.1%}.", "",
              f"OPE on simulated logs (truth {o['truth']:.4f}, {o['reps']} × {o['rows']:,} rows): "
              + ", ".join(f"{k} coverage {v:.1%} (RMSE {o['rmse'][k]:.4f})"
                          for k, v in o["coverage"].items()) + ".", "",
              f"Hillstrom: IPW value of 'everyone gets the Mens e-mail' "
              f"{e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}]; observed rate of that arm "
              f"{observed:.4f} (inside: {out['ope_hillstrom']['inside_interval']})."]
    (RESULTS / "bandits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
