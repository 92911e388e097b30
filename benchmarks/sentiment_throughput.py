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

Reviews/s: median of --reps repetitions, min and max shown; accuracy against the true ratings.

Usage: python benchmarks/sentiment_throughput.py [--reps 5] [--n 2000] [--threads N]
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


def timed(fn, texts: list[str], reps: int) -> tuple[list[float], np.ndarray]:
    rates, pred = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        pred = fn(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    return rates, pred


def stats(rates: list[float]) -> dict:
    return {"median": round(statistics.median(rates), 1), "min": round(min(rates), 1),
            "max": round(max(rates), 1), "all": [round(r, 1) for r in rates]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    ensure_default_models([("rating", "en")], num_threads=args.threads)
    model = SentimentModel.load(default_model_dir("rating", "en"), device="cpu")
    model.num_threads = args.threads
    set_threads(args.threads)
    _, (texts, labels) = default_split("rating", "en")
    texts, labels = texts[:args.n], np.asarray(labels[:args.n])
    quantized = copy.deepcopy(model).quantize()
    bf16 = SentimentModel.load(default_model_dir("rating", "en"), device="cpu", precision="bf16")
    bf16.num_threads = args.threads

    naive_predict(model, texts[:20])  # warm-up: first calls allocate
    for warm in (model, bf16, quantized):
        warm.predict(texts[:64])
    runs = {"naive": lambda t: naive_predict(model, t), "batched": model.predict,
            "batched_bf16": bf16.predict, "batched_int8": quantized.predict}
    result = {}
    for name, fn in runs.items():
        rates, pred = timed(fn, texts, args.reps)
        result[name] = {"reviews_per_s": stats(rates),
                        "accuracy": round(float((pred == labels).mean()), 4)}
        print(name, result[name], flush=True)
    base = result["naive"]
    batched = [name for name in runs if name != "naive"]
    for name in batched:
        r = result[name]
        r["ratio_median"] = round(r["reviews_per_s"]["median"] / base["reviews_per_s"]["median"], 2)
        r["accuracy_delta_points"] = round(100 * (r["accuracy"] - base["accuracy"]), 2)
    payload = {"n_reviews": len(texts), "reps": args.reps, "model": "default rating/en",
               "threads": args.threads or torch_threads(),
               "python": platform.python_version(), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sentiment_throughput.json").write_text(json.dumps(payload, indent=2))
    print(json.dumps({k: payload[k] for k in batched}, indent=2))


if __name__ == "__main__":
    main()
