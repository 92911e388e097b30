"""Sentiment inference: a naive one-review-at-a-time loop vs adpilot's batched path.

Same 2,000 held-out women's clothing reviews (the first 2,000 of the seed-42 test side), same
trained default rating model (``adpilot sentiment train-defaults``; trained here if missing),
in one process:

- naive: for each review, tokenise it and call the model (autograd on, default threads, the
  TF-IDF half called per review too when the model gives it a weight; the same class offsets),
  as a straightforward loop would;
- batched: ``SentimentModel.predict_proba`` — length-sorted batches of 64, dynamic padding,
  ``torch.inference_mode``, the last layer run for the [CLS] position only, the TF-IDF half (when
  weighted) vectorised over all reviews in a thread beside the transformer;
- batched_bf16: the same with ``precision="bf16"`` (the transformer runs in bfloat16, which
  CPUs with AVX512-BF16/AMX compute natively);
- batched_int8: the same after ``SentimentModel.quantize()`` (int8 dynamic quantisation of the
  transformer's linear layers).

Threads: ``--threads N`` for both sides; by default both use torch's default (all cores, at most
8), which is what a user gets.

Reviews/s: median of --reps repetitions, min and max shown; each repetition runs every path once,
in turn, and the ratio to the naive loop is also given per repetition (median, min, max), which a
shared machine's changing speed cannot bias. Accuracy against the true ratings.

``--model DIR`` measures another saved rating model instead of the default (e.g. one trained with
``adpilot sentiment train``), written to ``--out`` (a file name under benchmarks/results/).

Usage: python benchmarks/sentiment_throughput.py [--reps 5] [--n 2000] [--threads N]
                                                 [--model DIR --out NAME.json]
Writes benchmarks/results/sentiment_throughput.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from adpilot.artifacts import ModelStore
from adpilot.config import get_settings
from adpilot.datasets_fetch import DataSources
from adpilot.profiling.sentiment import (
    SentimentModel,
    default_model_dir,
    default_split,
    ensure_default_models,
    set_threads,
)

RESULTS = Path(__file__).parent / "results"


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def naive_predict(model: SentimentModel, texts: list[str]) -> np.ndarray:
    """Tokenise and call the model one review at a time."""
    import torch

    net, tok = model.transformer_, model.tokenizer_
    out = []
    for text in texts:
        enc = tok(text, truncation=True, max_length=model.max_length, return_tensors="pt")
        p_tr = torch.softmax(net(**enc).logits, -1).detach().numpy()
        # the TF-IDF half per review too, when the shipped model gives it a weight
        p_tfidf = model._proba_tfidf([text]) if model.weight_ > 0 else p_tr
        out.append(model._mix(p_tr, p_tfidf)[0])
    return model.classes_[np.array(out).argmax(1)]


def timed_rounds(runs: dict, texts: list[str], reps: int) -> tuple[dict, dict]:
    """Each repetition runs every path once, in turn, so that a slower or faster spell of a
    shared machine falls on all of them alike; returns rates per path and the last predictions."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    preds: dict[str, np.ndarray] = {}
    for rep in range(reps):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            preds[name] = fn(texts)
            rates[name].append(len(texts) / (time.perf_counter() - t0))
            print(f"rep {rep + 1}/{reps} {name}: {rates[name][-1]:.1f} reviews/s", flush=True)
    return rates, preds


def stats(values: list[float], digits: int = 1) -> dict:
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits),
            "all": [round(v, digits) for v in values]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", type=Path, default=None,
                    help="a saved rating model folder (default: the default rating/en model)")
    ap.add_argument("--out", default="sentiment_throughput.json")
    args = ap.parse_args()

    models = ModelStore.from_settings(get_settings())
    sources = DataSources.from_settings(get_settings())
    if args.model is None:
        ensure_default_models([("rating", "en")], store=models, sources=sources,
                              num_threads=args.threads)
    folder = args.model or default_model_dir("rating", "en", models)
    model = SentimentModel.load(folder, task="rating", device="cpu")
    model.num_threads = args.threads
    set_threads(args.threads)
    _, (texts, labels) = default_split("rating", "en", sources)
    texts, labels = texts[:args.n], np.asarray(labels[:args.n])
    quantized = copy.deepcopy(model).quantize()
    bf16 = SentimentModel.load(folder, task="rating", device="cpu", precision="bf16")
    bf16.num_threads = args.threads

    naive_predict(model, texts[:20])  # warm-up: first calls allocate
    for warm in (model, bf16, quantized):
        warm.predict(texts[:64])
    runs = {"naive": lambda t: naive_predict(model, t), "batched": model.predict,
            "batched_bf16": bf16.predict, "batched_int8": quantized.predict}
    rates, preds = timed_rounds(runs, texts, args.reps)
    result = {name: {"reviews_per_s": stats(rates[name]),
                     "accuracy": round(float((preds[name] == labels).mean()), 4)}
              for name in runs}
    base = result["naive"]
    batched = [name for name in runs if name != "naive"]
    for name in batched:
        r = result[name]
        r["ratio_median"] = round(r["reviews_per_s"]["median"] / base["reviews_per_s"]["median"], 2)
        # the same repetition's paths ran back to back: their ratio is the drift-free figure
        per_rep = [a / b for a, b in zip(rates[name], rates["naive"], strict=True)]
        r["ratio_per_repetition"] = stats(per_rep, 2)
        r["accuracy_delta_points"] = round(100 * (r["accuracy"] - base["accuracy"]), 2)
    payload = {"n_reviews": len(texts), "reps": args.reps,
               "model": str(args.model) if args.model else "default rating/en",
               "config": {k: getattr(model, k) for k in ("tfidf_char_ngrams", "class_weight")},
               "tfidf_weight": model.weight_,
               "threads": args.threads or torch_threads(),
               "python": platform.python_version(), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(payload, indent=2))
    print(json.dumps({k: payload[k] for k in batched}, indent=2))


if __name__ == "__main__":
    main()
