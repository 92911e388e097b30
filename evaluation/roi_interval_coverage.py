"""Does the incremental-ROI interval cover the true lift as often as it says? A simulation study
of :func:`adpilot.optimization.roi.incremental_revenue`.

Each simulated campaign has ``--treated`` customers who got the message and ``--control`` held
out; a customer buys with probability ``p_treated`` / ``p_control`` and spends a log-normal
amount (mean known in closed form), so the true incremental revenue is
``(p_treated - p_control) * mean_spend * treated``. The study draws ``--runs`` campaigns (seed 0),
computes each 95% interval with the library (bootstrap below 50,000 customers, normal
approximation above) and counts how often it holds the truth.

Usage: python evaluation/roi_interval_coverage.py [--runs 400] [--treated 10000] [--control 1000]
Writes evaluation/results/roi_interval_coverage.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adpilot.optimization.roi import incremental_revenue

OUT = Path(__file__).parent / "results" / "roi_interval_coverage.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--treated", type=int, default=10_000)
    ap.add_argument("--control", type=int, default=1_000)
    ap.add_argument("--p-treated", type=float, default=0.06)
    ap.add_argument("--p-control", type=float, default=0.04)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    mu, sigma = 3.5, 0.8  # log-normal spend: mean exp(mu + sigma^2 / 2) ≈ 45.6
    mean_spend = float(np.exp(mu + sigma**2 / 2))
    truth = (args.p_treated - args.p_control) * mean_spend * args.treated
    rng = np.random.default_rng(0)
    covered, widths, methods = 0, [], set()
    started = time.perf_counter()
    for run in range(args.runs):
        def revenue(n: int, p: float) -> np.ndarray:
            return (rng.random(n) < p) * rng.lognormal(mu, sigma, n)
        est, low, high, method = incremental_revenue(
            revenue(args.treated, args.p_treated), revenue(args.control, args.p_control),
            n_boot=args.n_boot, seed=run)
        covered += int(low <= truth <= high)
        widths.append(high - low)
        methods.add(method)
    result = {"runs": args.runs, "treated": args.treated, "control": args.control,
              "p_treated": args.p_treated, "p_control": args.p_control, "n_boot": args.n_boot,
              "seed": 0, "true_lift": round(truth, 1), "coverage": covered / args.runs,
              "median_interval_width": round(float(np.median(widths)), 1),
              "methods": sorted(methods), "seconds": round(time.perf_counter() - started, 1)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
