"""The attractiveness model on real A/B outcomes: Upworthy headline tests.

Arms with the same headline in one test are aggregated; pairs are all within-test pairs of
distinct headlines with different CTR. Time split: tests that started before week 201430
train, the later ones test. Baselines from the same split: length alone, bag-of-words logistic
regression. The trained model is saved to the model cache (used by `adpilot score` and best-of-N).

Usage: python evaluation/attractiveness_eval.py → evaluation/results/attractiveness.{json,md}
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from adpilot.datasets import load_dataset
from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir, time_split
from adpilot.scoring.baselines import bow_baseline, length_baseline
from adpilot.scoring.pairs import arms_from_upworthy, make_pairs

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    pairs = make_pairs(arms_from_upworthy(load_dataset("upworthy").tables["upworthy"]))
    train, test = time_split(pairs)
    t0 = time.perf_counter()
    model = AttractivenessModel().fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = model.evaluate(test)
    eval_s = time.perf_counter() - t0
    strong = test[test["z"] > 1.96]
    result = {
        "split": "train: tests before week 201430; test: from 201430",
        "train_pairs": len(train), "test_pairs": len(test),
        "model": {**ours, "fit_seconds": round(fit_s, 1), "eval_seconds": round(eval_s, 1),
                  "config": model.config()},
        "model_on_significant_pairs": model.evaluate(strong),
        "baselines": {"length": length_baseline(test), "bag_of_words_lr": bow_baseline(train,
                                                                                      test)},
    }
    model.metrics_ = {"pairwise_accuracy": ours["pairwise_accuracy"], "pairs": ours["pairs"]}
    model.save(default_model_dir())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "attractiveness.json").write_text(json.dumps(result, indent=2))
    lines = ["# Attractiveness model on Upworthy (time split at week 201430)", "",
             f"{len(train):,} training pairs, {len(test):,} test pairs (all within-test pairs "
             "of distinct headlines with different CTR).", "",
             "| model | pairwise accuracy |", "|---|---|",
             f"| length alone | {result['baselines']['length']:.3f} |",
             f"| bag-of-words LR | {result['baselines']['bag_of_words_lr']:.3f} |",
             f"| adpilot (MiniLM + features + BoW, evidence-weighted) | "
             f"{ours['pairwise_accuracy']:.3f} |",
             f"| adpilot, pairs whose CTR gap is significant (z > 1.96, n = {len(strong):,}) | "
             f"{result['model_on_significant_pairs']['pairwise_accuracy']:.3f} |"]
    (RESULTS / "attractiveness.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
