"""English rating (1-5): what the MiniLM backbone can reach on 2 CPU cores, and why the bar of
0.70 accuracy / 0.55 macro-F1 is still open.

Compares, on the seed-42 split of ``sentiment_eval.py`` (models trained on the 80 % side):

- ``default``: the shipped default's fine-tuned transformer (plain cross-entropy);
- ``sqrt``: the same recipe with the loss weighted per class (``class_weight="sqrt"``: rare
  ratings count more), trained here once into ``<models_dir>/study-rating-en-sqrt`` (about 19 min
  on 2 quiet cores; checkpointed, so an interrupted run resumes);
- ``ensemble a``: the two transformers' probabilities averaged, the variant with weight a;
- ``soup``: one transformer whose weights are the mean of the two (same start, same batch order:
  one model's cost at inference).

Each family is scored as the shipped model is built: transformer alone, and with the default's
TF-IDF half mixed in at the weight and class offsets chosen on the 10 % validation slice of the
training side (``SentimentModel._choose_weight``). The pick is made on validation only; the test
columns are the honest result of each row.

Usage: python evaluation/sentiment_rating_study.py
Writes evaluation/results/sentiment_rating_study.json and .md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from adpilot.artifacts import ModelStore
from adpilot.config import get_settings
from adpilot.datasets_fetch import DataSources
from adpilot.profiling.sentiment import (
    DEFAULT_MODELS,
    SentimentModel,
    classification_metrics,
    default_model_dir,
    default_split,
    ensure_default_models,
    task_labels,
)

RESULTS = Path(__file__).parent / "results"
BARS = {"accuracy": 0.70, "macro_f1": 0.55}


def variant(texts: list[str], labels: np.ndarray) -> SentimentModel:
    """The default recipe with a class-weighted loss, trained once and cached."""
    folder = get_settings().models_dir / "study-rating-en-sqrt"
    if not (folder / "meta.json").is_file():
        params = {**DEFAULT_MODELS[("rating", "en")]["params"], "class_weight": "sqrt"}
        model = SentimentModel("rating", "en", **params,
                               checkpoint_dir=str(folder.with_name(folder.name + ".partial")))
        model.fit(texts, labels)
        model.save(folder)
    return SentimentModel.load(folder, task="rating", lang="en", device="cpu")


def soup(a: SentimentModel, b: SentimentModel, share_b: float) -> SentimentModel:
    """``a`` with transformer weights (1 − share_b)·a + share_b·b (float tensors only)."""
    import copy

    out = copy.copy(a)
    out.transformer_ = copy.deepcopy(a.transformer_)
    sa, sb = a.transformer_.state_dict(), b.transformer_.state_dict()
    out.transformer_.load_state_dict({k: (1 - share_b) * v + share_b * sb[k]
                                      if v.is_floating_point() else v for k, v in sa.items()})
    return out


def main() -> None:
    models = ModelStore.from_settings(get_settings())
    sources = DataSources.from_settings(get_settings())
    ensure_default_models([("rating", "en")], store=models, sources=sources)
    (train_texts, train_labels), (test_texts, test_labels) = default_split("rating", "en", sources)
    base = SentimentModel.load(default_model_dir("rating", "en", models), task="rating", device="cpu")
    other = variant(train_texts, train_labels)
    # the validation slice exactly as SentimentModel.fit draws it
    y, _ = task_labels(train_labels, "rating")
    _, va = train_test_split(np.arange(len(train_texts)), test_size=base.val_fraction,
                             random_state=base.seed, stratify=y)
    sets = {"val": ([train_texts[i] for i in va], y[va]),
            "test": (test_texts, task_labels(test_labels, "rating")[0])}
    soup_model = soup(base, other, 0.5)
    probs = {name: {s: m._proba_transformer(t) for s, (t, _) in sets.items()}
             for name, m in [("default", base), ("sqrt", other), ("soup 0.5", soup_model)]}
    for a in (0.3, 0.5, 0.7):
        probs[f"ensemble {a}"] = {s: (1 - a) * probs["default"][s] + a * probs["sqrt"][s]
                                  for s in sets}
    lexical = {s: base._proba_tfidf(t) for s, (t, _) in sets.items()}

    def metrics(p: np.ndarray, split: str, bias: np.ndarray | None = None) -> dict:
        logp = np.log(np.clip(p, 1e-12, None)) + (0 if bias is None else bias)
        return classification_metrics(sets[split][1], base.classes_[logp.argmax(1)])

    rows = []
    for name, p in probs.items():
        rows.append({"model": name, "tfidf_weight": 0.0, "class_bias": None,
                     "val": metrics(p["val"], "val"), "test": metrics(p["test"], "test")})
        w, bias = base._choose_weight(p["val"], lexical["val"], sets["val"][1])
        mixed = {s: (1 - w) * p[s] + w * lexical[s] for s in sets}
        rows.append({"model": name, "tfidf_weight": w, "class_bias": bias.round(2).tolist(),
                     "val": metrics(mixed["val"], "val", bias),
                     "test": metrics(mixed["test"], "test", bias)})
    # chosen by the validation objective the shipped model uses (accuracy + macro-F1)
    pick = max(rows, key=lambda r: r["val"]["accuracy"] + r["val"]["macro_f1"])
    payload = {"split": "womens_clothing rating, stratified 80/20, seed 42; validation = the 10 % "
               "slice of the training side that SentimentModel.fit holds out",
               "n_val": len(va), "n_test": len(test_texts), "bars": BARS, "rows": rows,
               "chosen_on_validation": pick,
               "bars_met_by_chosen": all(pick["test"][k] >= v for k, v in BARS.items()),
               "variant_fit_seconds": other.fit_seconds_}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sentiment_rating_study.json").write_text(json.dumps(payload, indent=2))
    lines = ["# English rating: class-weighted loss, ensembles and weight averaging", "",
             f"Split: {payload['split']} ({len(va):,} validation, {len(test_texts):,} test "
             f"reviews). Variant fit: {other.fit_seconds_:.0f} s.", "",
             "| model | TF-IDF weight | class offsets | val acc | val macro-F1 | test acc | "
             "test macro-F1 |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['tfidf_weight']:.2f} | {r['class_bias'] or '-'} | "
                     f"{r['val']['accuracy']:.3f} | {r['val']['macro_f1']:.3f} | "
                     f"{r['test']['accuracy']:.3f} | {r['test']['macro_f1']:.3f} |")
    lines += ["", f"Chosen on validation: {pick['model']} (TF-IDF weight "
              f"{pick['tfidf_weight']:.2f}) → test {pick['test']['accuracy']:.3f} / "
              f"{pick['test']['macro_f1']:.3f}; bars {BARS['accuracy']} / {BARS['macro_f1']}: "
              f"{'met' if payload['bars_met_by_chosen'] else 'not met'}.", ""]
    (RESULTS / "sentiment_rating_study.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
