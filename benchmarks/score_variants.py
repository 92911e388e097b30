"""Scoring speed: the full scorecard (fluency, relevance, personalisation, diversity,
readability, tone, compliance, attractiveness) for 1,000 real headlines.

Data: the first 1,000 distinct headlines of ``upworthy_headline_tests.csv`` (English); one
product and one audience. The attractiveness model is the cached one (``adpilot attract
train``) when present. Median of 3 repetitions after a warm-up call that loads the models.

Usage: python benchmarks/score_variants.py [--n 1000]  → benchmarks/results/score_variants.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adpilot.config import get_settings
from adpilot.datasets import load_dataset
from adpilot.datasets_fetch import DataSources
from adpilot.scoring.attractiveness import load_default_model
from adpilot.scoring.scorecard import Scorecard

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download

OUT = Path(__file__).parent / "results" / "score_variants.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from adpilot.artifacts import ModelStore
    from adpilot.models_fetch import ensure_copy_models

    # the guardrails' and scorecard's models
    ensure_copy_models(ModelStore.from_settings(get_settings()), sources=SOURCES)
    tests = next(iter(load_dataset("upworthy", SOURCES).tables.values()))
    col = "headline" if "headline" in tests else [c for c in tests if "headline" in c.lower()][0]
    copies = tests[col].dropna().astype(str).drop_duplicates().head(args.n).tolist()
    store = ModelStore.from_settings(get_settings())
    attract = load_default_model(store=store)
    card = Scorecard(attractiveness=attract, store=store)
    product = {"title": "Linen shirt", "description": "breathable linen shirt, relaxed fit"}
    audience = {"description": "readers who share uplifting stories", "interests": ["news"]}
    card.score(copies[:5], product=product, audience=audience)  # warm-up: loads the models
    seconds = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        out = card.score(copies, product=product, audience=audience)
        seconds.append(time.perf_counter() - t)
    result = {"copies": len(copies), "repeats": args.repeats,
              "attractiveness_model": attract is not None,
              "seconds": {"median": round(float(np.median(seconds)), 2),
                          "min": round(min(seconds), 2), "max": round(max(seconds), 2)},
              "copies_per_s": round(len(copies) / float(np.median(seconds)), 1),
              "columns": [c for c in out.columns if not c.startswith("why_")]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
