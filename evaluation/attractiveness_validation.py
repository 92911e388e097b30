"""Model selection for the attractiveness model on a validation slice of the TRAINING period.

The Upworthy evaluation trains on tests that started before week 201430; this script never
looks at those later tests. It splits the training period once more: tests before week 201424
fit, tests from 201424 to 201429 (the last ~15% of training pairs) validate. It fits the linear
Bradley-Terry part and fine-tunes the MiniLM scorer for up to ``--epochs`` epochs, and picks the
number of epochs and the blend weight s = (1 − β)·s_lin + β·s_ft by validation accuracy.

Two studies, run in this order (the second builds on the first's choice of epochs):

- ``--study epochs`` (default): one fine-tuning run (seed 0) over a ``--epochs``-epoch schedule,
  scored after every epoch; picks the number of epochs and the blend weight. Writes a fresh
  results file (a seed study in it is dropped: it was made for the old choice of epochs).
- ``--study seeds``: fine-tunes the scorer with the chosen number of epochs (its own schedule,
  exactly as AttractivenessModel does) once per seed 0 … ``--seeds``−1 and scores, per K, the
  raw mean of the first K seeds' scores (each is a Bradley-Terry log-odds score from the same
  loss, so their mean keeps that unit), also with each seed's weights averaged over its last two
  epochs' checkpoints; picks K, that option and the blend weight. Adds ``seed_study`` to the
  results file and replaces ``chosen`` (the epoch study's is kept as ``epoch_study_chosen``).

The chosen values are the defaults of AttractivenessModel used by attractiveness_eval.py.

Usage: python evaluation/attractiveness_validation.py [--study epochs] [--epochs 3]
       python evaluation/attractiveness_validation.py --study seeds [--seeds 3]
       → evaluation/results/attractiveness_validation.json
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
from adpilot.scoring.attractiveness import AttractivenessModel, time_split
from adpilot.scoring.pairs import arms_from_upworthy, make_pairs
from adpilot.scoring.siamese import SiameseScorer

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download

RESULTS = Path(__file__).parent / "results"
VAL_WEEK = 201424
BETAS = [round(b, 1) for b in np.linspace(0, 1, 11)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", choices=["epochs", "seeds"], default="epochs")
    ap.add_argument("--epochs", type=int, default=3, help="epoch study: schedule length")
    ap.add_argument("--seeds", type=int, default=3, help="seed study: seeds 0 … N-1")
    ap.add_argument("--limit", type=int, default=0, help="smoke test: first N pairs of each")
    args = ap.parse_args()
    pairs = make_pairs(arms_from_upworthy(load_dataset("upworthy", SOURCES).tables["upworthy"]))
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
    if args.study == "seeds":
        seed_study(args, fit, val, lin, accuracy, texts)
        return
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


def seed_study(args, fit, val, lin: np.ndarray, accuracy, texts: list[str]) -> None:
    path = RESULTS / "attractiveness_validation.json"
    previous = None if args.limit else json.loads(path.read_text())
    if previous is not None:
        assert (previous["fit_pairs"], previous["val_pairs"]) == (len(fit), len(val))
    epochs = (AttractivenessModel().finetune_epochs if previous is None else
              previous.get("epoch_study_chosen", previous["chosen"])["finetune_epochs"])
    runs = []  # per seed: scores after each epoch, and with the last two epochs' weights averaged
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        run: dict = {"seed": seed, "per_epoch": {}}
        snapshot: dict = {}

        def on_epoch(epoch: int, scorer: SiameseScorer, run=run, snapshot=snapshot) -> None:
            run["per_epoch"][epoch] = scorer.score(texts)
            state = scorer._net.state_dict()
            if epoch == epochs - 1:
                snapshot.update({k: v.detach().clone() for k, v in state.items()})
            if epoch == epochs and snapshot:
                final = {k: v.detach().clone() for k, v in state.items()}
                scorer._net.load_state_dict(
                    {k: (v + snapshot[k]) / 2 if v.is_floating_point() else v
                     for k, v in final.items()})
                run["ckpt_avg"] = scorer.score(texts)
                scorer._net.load_state_dict(final)

        AttractivenessModel(finetune_epochs=epochs, seed=seed)._siamese().fit(
            fit, log=print, on_epoch=on_epoch)
        run["seconds"] = round(time.perf_counter() - t0, 1)
        runs.append(run)
        print(json.dumps({"seed": seed, "seconds": run["seconds"],
                          **{f"epoch_{e}": accuracy(s) for e, s in run["per_epoch"].items()},
                          "ckpt_avg": accuracy(run["ckpt_avg"]) if "ckpt_avg" in run else None}),
              flush=True)
    variants = {"last": [r["per_epoch"][epochs] for r in runs]}
    if all("ckpt_avg" in r for r in runs):
        variants["last_two_epochs_averaged"] = [r["ckpt_avg"] for r in runs]
    rows = []
    for variant, scores in variants.items():
        for k in range(1, args.seeds + 1):
            ft = np.mean(scores[:k], axis=0)  # raw mean of the first k seeds' scores
            rows.append({"finetune_seeds": k, "checkpoints": variant,
                         "finetuned_alone": accuracy(ft),
                         "blend": {str(b): accuracy((1 - b) * lin + b * ft) for b in BETAS}})
            print(json.dumps(rows[-1]), flush=True)
    # ties: fewer seeds (cheaper), then the plain last checkpoint, then the smaller weight
    best = max(((r["finetune_seeds"], r["checkpoints"], float(b), a) for r in rows
                for b, a in r["blend"].items()),
               key=lambda t: (t[3], -t[0], t[1] == "last", -t[2]))
    study = {"finetune_epochs": epochs, "seeds": list(range(args.seeds)),
             "averaging": "raw mean of the first K seeds' scores (seeds 0 … K-1)",
             "linear_alone": accuracy(lin),
             "per_seed": [{"seed": r["seed"], "seconds": r["seconds"],
                           "finetuned_alone_per_epoch": {str(e): accuracy(s) for e, s
                                                         in r["per_epoch"].items()},
                           "finetuned_alone_last_two_epochs_averaged":
                               accuracy(r["ckpt_avg"]) if "ckpt_avg" in r else None}
                          for r in runs],
             "ensembles": rows}
    chosen = {"finetune_epochs": epochs, "finetune_seeds": best[0], "checkpoints": best[1],
              "finetune_weight": best[2], "val_accuracy": best[3], "by": "seed_study"}
    if previous is None:
        print(json.dumps({"seed_study": study, "chosen": chosen}, indent=2))
        return
    result = {**previous, "seed_study": study, "chosen": chosen,
              "epoch_study_chosen": previous.get("epoch_study_chosen", previous["chosen"])}
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(chosen))


if __name__ == "__main__":
    main()
