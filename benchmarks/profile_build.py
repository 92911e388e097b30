"""Profile building: adpilot's vectorised path vs the original design's ``iterrows`` loop.

Data: real review rows from ../shared/data (women's clothing, Amazon fashion + beauty,
online_shopping_10_cats_zh), resampled with replacement (seed 0) to N rows and spread over
N/5 users, with the customers' real ages resampled too. Per-review polarity is the rating's
((r-3)/2, or the 0/1 label for Chinese) for both paths, so both aggregate the same inputs.

- ratio: both paths on the same 100,000 rows, median of --reps repetitions (min/max shown);
- scale: adpilot alone on 1,000,000 rows, time and peak memory (each size in a fresh process).

Usage: python benchmarks/profile_build.py [--reps 5] [--rows 100000] [--big 1000000]
Writes benchmarks/results/profile_build.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.config import get_settings
from adpilot.datasets_fetch import DataSources

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download

RESULTS = Path(__file__).parent / "results"


def review_pool() -> pd.DataFrame:
    """The real review rows that :func:`make_rows` resamples (row i is pool position i)."""
    from adpilot.datasets import load_dataset

    parts = []
    for name in ("womens_clothing", "amazon_fashion", "amazon_beauty", "online_shopping_zh"):
        r = load_dataset(name, SOURCES).tables["reviews"]
        pol = r["polarity"] if "polarity" in r and r["polarity"].notna().any() else None
        r = r.assign(rating=r["rating"] if pol is None else pol.astype(float) * 4 + 1)
        parts.append(r.reindex(columns=["id", "product_id", "text", "rating", "language"]))
    return pd.concat(parts, ignore_index=True)


def make_rows(n: int, seed: int = 0, *, pool_index: bool = False
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """N resampled review rows over N/5 users, and those users' customers table. With
    ``pool_index``, the reviews carry the ``pool_index`` of their source row in
    :func:`review_pool` (so per-review outputs computed once on the pool can be resampled)."""
    from adpilot.datasets import load_dataset

    pool = review_pool()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pool), n)
    rows = pool.iloc[pick].reset_index(drop=True)
    if pool_index:
        rows["pool_index"] = pick
    n_users = max(1, n // 5)
    rows["user_id"] = pd.Series(rng.integers(0, n_users, n)).map("u{:07d}".format)
    rows["id"] = pd.RangeIndex(n).map("r{:08d}".format)
    rows["product_id"] = rows["product_id"].fillna("none")
    ages = load_dataset("womens_clothing", SOURCES).tables["customers"]["age"].dropna().to_numpy()
    customers = pd.DataFrame({"id": [f"u{i:07d}" for i in range(n_users)],
                              "age": rng.choice(ages, n_users),
                              "gender": rng.choice(["F", "M"], n_users)})
    return rows, customers


def naive_profiles(reviews: pd.DataFrame, customers: pd.DataFrame) -> dict:
    """The original design's loop: iterrows, a dict per user, lists appended row by row."""
    demo = customers.set_index("id")
    user_profiles: dict = {}
    for _, row in reviews.iterrows():
        user_id = row["user_id"]
        sentiment_score = (row["rating"] - 3) / 2
        if user_id not in user_profiles:
            user_profiles[user_id] = {
                "demographics": {"age": demo.loc[user_id, "age"],
                                 "gender": demo.loc[user_id, "gender"]},
                "purchase_history": [], "sentiment_scores": [], "ratings": [],
            }
        user_profiles[user_id]["purchase_history"].append(row["product_id"])
        user_profiles[user_id]["sentiment_scores"].append(sentiment_score)
        user_profiles[user_id]["ratings"].append(row["rating"])
    for p in user_profiles.values():  # the statistics adpilot's profile has
        s = p["sentiment_scores"]
        p["n_reviews"] = len(s)
        p["sentiment_mean"] = sum(s) / len(s)
        p["negative_share"] = sum(v < -0.2 for v in s) / len(s)
        p["mean_rating"] = sum(p["ratings"]) / len(p["ratings"])
    return user_profiles


def ours(reviews: pd.DataFrame, customers: pd.DataFrame):
    from adpilot.profiling.profiles import build_profiles

    polarity = (reviews["rating"] - 3) / 2
    return build_profiles(reviews, customers=customers, sentiment=polarity)


def timed(fn, *args) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def child(mode: str, n: int, reps: int) -> None:
    """Run one configuration in this (fresh) process and print JSON with times and peak RSS."""
    reviews, customers = make_rows(n)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = naive_profiles if mode == "naive" else ours
    times = []
    for _ in range(reps):
        secs, out = timed(fn, reviews, customers)
        times.append(secs)
    if mode == "ours":  # same numbers as the naive loop, checked on one user
        table = out.table.set_index("user_id")
        uid = reviews["user_id"].iloc[0]
        mine = reviews[reviews["user_id"] == uid]
        assert abs(table.loc[uid, "sentiment_mean"] - ((mine["rating"] - 3) / 2).mean()) < 1e-9
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "rows": n, "times": times, "peak_rss_mb": peak / 1024,
                      "data_rss_mb": base_rss / 1024}))


def run_child(mode: str, n: int, reps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--rows", str(n),
                          "--reps", str(reps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stats(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.rows, args.reps)
        return
    naive = run_child("naive", args.rows, args.reps)
    mine = run_child("ours", args.rows, args.reps)
    big = run_child("ours", args.big, max(1, args.reps // 2))
    ratios = [n / o for n, o in zip(sorted(naive["times"]), sorted(mine["times"]), strict=True)]
    result = {
        "data": "real reviews (womens_clothing, amazon_fashion, amazon_beauty, online_shopping_zh)"
                " resampled with replacement, seed 0, N/5 users",
        "rows": args.rows, "reps": args.reps,
        "naive_seconds": stats(naive["times"]), "ours_seconds": stats(mine["times"]),
        "speedup_median": statistics.median(naive["times"]) / statistics.median(mine["times"]),
        "speedup_min_max": [min(ratios), max(ratios)],
        "naive_rows_per_s": args.rows / statistics.median(naive["times"]),
        "ours_rows_per_s": args.rows / statistics.median(mine["times"]),
        "big": {"rows": args.big, "seconds": stats(big["times"]),
                "rows_per_s": args.big / statistics.median(big["times"]),
                "peak_rss_mb": round(big["peak_rss_mb"]),
                "input_rss_mb": round(big["data_rss_mb"])},
        "peak_rss_mb_at_rows": {"naive": round(naive["peak_rss_mb"]),
                                "ours": round(mine["peak_rss_mb"])},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_build.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
