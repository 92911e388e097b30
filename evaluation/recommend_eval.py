"""Recommendations on real purchase/review logs, with a time split.

- UCI Online Retail (541,909 lines; returns removed): train on the first 80% of the time range,
  test on the last 20%, users with purchases in both; only items new to the user count
  (re-purchases excluded), k = 10.
- Amazon 5-core Fashion and All Beauty (reviews as interactions), same split.

Usage: python evaluation/recommend_eval.py → evaluation/results/recommend.{json,md}
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from adpilot.config import get_settings
from adpilot.datasets import load_dataset
from adpilot.datasets_fetch import DataSources
from adpilot.targeting.recommend import evaluate_recommenders

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    out, lines = {}, ["# Recommendations, time split (last 20% of the time range held out), "
                      "k = 10, new items only", "",
                      "| data | users | model | NDCG@10 | P@10 | R@10 | coverage | seconds |",
                      "|---|---|---|---|---|---|---|---|"]
    tx = load_dataset("online_retail", SOURCES).tables["transactions"]
    products = load_dataset("online_retail", SOURCES).tables["products"].set_index("id")["title"]
    runs = {"online_retail": (tx[tx["quantity"] > 0], "user_id", "product_id", "time", products)}
    for name in ("amazon_fashion", "amazon_beauty"):
        r = load_dataset(name, SOURCES).tables["reviews"]
        runs[name] = (r, "user_id", "product_id", "created_at", None)
    for name, (frame, user, item, when, texts) in runs.items():
        t0 = time.perf_counter()
        res = evaluate_recommenders(frame, user_col=user, item_col=item, time_col=when,
                                    split="time", k=10, item_texts=texts)
        res["seconds"] = round(time.perf_counter() - t0, 2)
        out[name] = res
        for model, m in res["models"].items():
            lines.append(f"| {name} | {m['users']} | {model}{' (best)' if model == res['model'] else ''}"
                         f" | {m['ndcg_at_k']:.4f} | {m['precision_at_k']:.4f} | "
                         f"{m['recall_at_k']:.4f} | {m['coverage']:.3f} | {res['seconds']} |")
        pop = res["popularity"]["ndcg_at_k"]
        if pop > 0:
            lines.append(f"| {name} | | best / popularity NDCG@10 | "
                         f"{res['ndcg_at_k'] / pop:.2f}× | | | | |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recommend.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "recommend.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
