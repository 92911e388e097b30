"""Model selection for the attractiveness model on a validation slice of the TRAINING period.

The Upworthy evaluation trains on tests that started before week 201430; this script never
looks at those later tests. It splits the training period once more: tests before week 201424
fit, tests from 201424 to 201429 (the last ~15% of training pairs) validate. It fits the linear
Bradley-Terry part and fine-tunes the MiniLM scorer for up to ``--epochs`` epochs, and picks the
number of epochs and the blend weight s = (1 − β)·s_lin + β·s_ft by validation accuracy.
The chosen values are the defaults of AttractivenessModel used by attractiveness_eval.py.

Usage: python evaluation/attractiveness_validation.py [--epochs 3]
       → evaluation/results/attractiveness_validation.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adpilot.datasets import load_dataset
from adpilot.scoring.attractiveness import AttractivenessModel, time_split
from adpilot.scoring.pairs import arms_from_upworthy, make_pairs
from adpilot.scoring.siamese import SiameseScorer

RESULTS = Path(__file__).parent / "results"
VAL_WEEK = 201424
BETAS = [round(b, 1) for b in np.linspace(0, 1, 11)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="smoke test: first N pairs of each")
    args = ap.parse_args()
    pairs = make_pairs(arms_from_upworthy(load_dataset("upworthy").tables["upworthy"]))
    train, _ = time_split(pairs)  # the test period is not used here
    fit, val = time_split(train, VAL_WEEK)
    if args.limit:
        fit, val = fit.head(args.limit), val.head(args.limit)
    y = val["label"].to_numpy()
    texts = list(dict.fromkeys(val["text_a"].tolist() + val["text_b"].tolist()))
    where = {t: i for i, t in enumerate(texts)}
    ia, ib = val["text_a"].map(where).to_numpy(), val["text_b"].map(where).to_numpy()

    def accuracy(s: np.ndarray) -> float:
        return float(np.mean((s[ia] - s[ib] > 0) == y))

    t0 = time.perf_counter()
    linear = AttractivenessModel(finetune_epochs=0).fit(fit)
    lin = linear.linear_score(texts)
    lin_s = time.perf_counter() - t0
    per_epoch = []

    def on_epoch(epoch: int, scorer: SiameseScorer) -> None:
        ft = scorer.score(texts)
        row = {"epoch": epoch, "seconds": round(time.perf_counter() - t0, 1),
               "finetuned_alone": accuracy(ft),
               "blend": {str(b): accuracy((1 - b) * lin + b * ft) for b in BETAS}}
        per_epoch.append(row)
        print(json.dumps(row), flush=True)

    t0 = time.perf_counter()
    SiameseScorer(epochs=args.epochs).fit(fit, log=print, on_epoch=on_epoch)
    best = max(((r["epoch"], float(b), a) for r in per_epoch for b, a in r["blend"].items()),
               key=lambda t: (t[2], -t[0]))
    result = {"split": f"fit: tests before week {VAL_WEEK}; validate: {VAL_WEEK}-201429 "
                       "(test period from 201430 not used)",
              "fit_pairs": len(fit), "val_pairs": len(val),
              "linear_alone": accuracy(lin), "linear_fit_seconds": round(lin_s, 1),
              "finetune_schedule_epochs": args.epochs, "per_epoch": per_epoch,
              "chosen": {"finetune_epochs": best[0], "finetune_weight": best[1],
                         "val_accuracy": best[2]}}
    if args.limit:
        print(json.dumps(result, indent=2))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "attractiveness_validation.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result["chosen"]))


if __name__ == "__main__":
    main()
