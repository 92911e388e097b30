"""Budget allocation backtest on the Facebook ad results (1,143 ads).

Audiences: age band × gender (8). Curves: conversions per ad = a · spend^b (Poisson GLM on
log spend, 0.05 ≤ b ≤ 0.95). Validation: fit on a random half of the ads (seed), allocate the
other half's total spend, judge both allocations with curves fitted on the held-out half;
200 bootstrap resamples of the held-out ads give the intervals. Repeated for seeds 0-4; also
shown for finer audiences (gender × interest), where per-audience curves overfit.

Usage: python evaluation/budget_facebook.py → evaluation/results/budget.{json,md}
"""

from __future__ import annotations

import json
from pathlib import Path

from adpilot.config import get_settings
from adpilot.datasets import load_dataset
from adpilot.datasets_fetch import DataSources
from adpilot.targeting.budget import backtest

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ads = load_dataset("facebook_ads", SOURCES).tables["facebook_ads"]
    out = {}
    lines = ["# Budget allocation backtest (Facebook ads, Total_Conversion)", "",
             "| audiences | seed | budget | optimised conv. [95% CI] | proportional conv. "
             "[95% CI] | gain | gain CI | resamples better |", "|---|---|---|---|---|---|---|---|"]
    for groups in (["age", "gender"], ["gender", "interest"]):
        for seed in range(5):
            r = backtest(ads, group_cols=groups, seed=seed)
            out[f"{'x'.join(groups)}/{seed}"] = r
            o, p, g = r["optimised"], r["proportional"], r["gain"]
            lines.append(
                f"| {' × '.join(groups)} | {seed} | {r['budget']:,.0f} | {o['conversions']:.0f} "
                f"[{o['ci'][0]:.0f}, {o['ci'][1]:.0f}] | {p['conversions']:.0f} "
                f"[{p['ci'][0]:.0f}, {p['ci'][1]:.0f}] | {g['relative']:+.1%} | "
                f"[{g['ci'][0]:+.0f}, {g['ci'][1]:+.0f}] | {g['share_of_resamples_better']:.0%} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "budget.json").write_text(json.dumps(out, indent=2, default=float))
    (RESULTS / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
