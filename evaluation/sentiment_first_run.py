"""First-run sentiment defaults: how much accuracy the quick default gives up against the full
fine-tune, and what each costs to build on this machine, measured side by side in one run.

Split: the defaults' stratified 80/20 split, seed 42 (``default_split``); every candidate is
fitted on the 80 % side and scored on the 20 % test side (polarity/en: 3,964 reviews, rating/en:
4,529).

Candidates per English task:
- ``tfidf``: the TF-IDF + LR half alone (no torch);
- ``head-N``: :class:`~adpilot.profiling.sentiment.SentimentHeadModel`, an LR head over
  frozen MiniLM sentence embeddings of N training reviews (reproducible subsample), averaged
  with the TF-IDF half fitted on all of them;
- ``full``: the fully fine-tuned default (``adpilot sentiment train-defaults --full``). Its test
  metrics are read from ``evaluation/results/sentiment.json`` (written by
  ``evaluation/sentiment_eval.py`` for the same split), or computed when a full model is in the
  cache and ``--eval-cached-full`` is given. Its build time here is *estimated from a timed
  slice* of its own fit in this run: seconds per optimiser step and per cached text, times the
  steps and texts of the real fit, plus the TF-IDF fit and the validation pass.

The ``head-N`` candidates share a study cache of embeddings (each review is encoded once for
all of them), so their fit times are not build times; what each costs is the number of texts it
encodes (its subsample + the validation slice). The quick default that ships is built cold at
the end, as a first ``adpilot run`` builds it, in an empty model cache, and timed for real.

Usage: python evaluation/sentiment_first_run.py [--sizes 1000,2000,3000] [--threads 2]
       python evaluation/sentiment_first_run.py --render   (the .md again from the .json)
Writes evaluation/results/sentiment_first_run.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from adpilot.artifacts import ModelStore
from adpilot.config import get_settings
from adpilot.datasets_fetch import DataSources
from adpilot.profiling.sentiment import (
    DEFAULT_MODELS,
    QUICK_MODELS,
    SPLIT_SEED,
    TEST_SIZE,
    SentimentHeadModel,
    SentimentModel,
    classification_metrics,
    default_model_dir,
    default_split,
    hash_subsample,
    task_labels,
)

SOURCES = DataSources.from_settings(get_settings())  # data folder, cache or download
RESULTS = Path(__file__).parent / "results"
STUDY_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "sentiment_first_run"
TASKS = [("polarity", "en"), ("rating", "en")]


def kept(texts, labels, task):
    y, keep = task_labels(labels, task)
    return [t for t, k in zip(texts, keep, strict=True) if k], y[keep]


def test_metrics(model: SentimentModel, texts: list[str], y: np.ndarray) -> dict:
    t0 = time.perf_counter()
    pred = model.predict(texts)
    return {**classification_metrics(y, pred), "predict_seconds": round(time.perf_counter() - t0, 1)}


def cold_rate(threads: int | None, texts: list[str]) -> float:
    """Seconds per text of the frozen encoder on these reviews, uncached (measured now)."""
    from adpilot.profiling.embeddings import minilm_path
    from adpilot.profiling.sentiment import MiniLMEncoder

    enc = MiniLMEncoder(minilm_path(), num_threads=threads)
    enc.encode(texts[:16])  # load the model outside the timing
    t0 = time.perf_counter()
    enc.encode(texts)
    return (time.perf_counter() - t0) / len(texts)


def full_slice(task: str, lang: str, texts: list[str], y: np.ndarray, threads: int | None,
               steps: int, n_cache: int) -> dict:
    """Time ``steps`` optimiser steps of the full default's fine-tune (and its frozen-layer cache
    over ``n_cache`` texts), then scale to the real fit's steps and texts."""
    params = dict(DEFAULT_MODELS[(task, lang)]["params"])
    sub = hash_subsample(texts, n_cache)
    stamps: list[float] = []
    model = SentimentModel(task, lang, **params, val_fraction=0, max_steps=steps,
                           num_threads=threads, device="cpu")
    model.fit([texts[i] for i in sub], y[sub], progress=lambda d, t: stamps.append(time.perf_counter()))
    step = statistics.median(np.diff(stamps[1:]))
    first = stamps[1] - stamps[0] - step  # the frozen-layer cache (0 with no frozen layers)
    n_tr = math.floor(len(texts) * (1 - 0.1))  # SentimentModel's 10 % validation slice
    total_steps = math.ceil(math.ceil(n_tr / params.get("batch_size", 32)) * params["epochs"])
    return {"timed_steps": steps, "seconds_per_step": round(step, 3),
            "cache_seconds_per_text": round(max(first, 0) / len(sub), 5),
            "steps": total_steps, "n_train": n_tr, "n_val": len(texts) - n_tr}


def build_default_cold(threads: int | None) -> dict:
    """Build the quick defaults in an empty model cache, as a first `adpilot run` does (its two
    polarity models first, then rating/en as `adpilot models fetch` adds), timing each."""
    from adpilot.artifacts import ModelStore
    from adpilot.config import get_settings
    from adpilot.datasets_fetch import DataSources
    from adpilot.profiling.sentiment import ensure_default_models

    out = {}
    sources = DataSources.from_settings(get_settings())
    with tempfile.TemporaryDirectory() as home:
        store = ModelStore(Path(home) / "models")  # an empty model cache
        for key in [("polarity", "en"), ("polarity", "zh"), ("rating", "en")]:
            t0 = time.perf_counter()
            ensure_default_models([key], store=store, sources=sources, num_threads=threads)
            out["/".join(key)] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,2000,3000", help="head-N candidates")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--full-steps", type=int, default=12, help="timed steps of the full fit")
    ap.add_argument("--skip-cold", action="store_true", help="do not build the defaults cold")
    ap.add_argument("--eval-cached-full", action="store_true")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = ap.parse_args()
    if args.render:
        payload = json.loads((RESULTS / "sentiment_first_run.json").read_text())
        (RESULTS / "sentiment_first_run.md").write_text(markdown(payload))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    recorded = json.loads((RESULTS / "sentiment.json").read_text())["models"]
    report: dict = {}
    rate = None
    for task, lang in TASKS:
        key = f"{task}/{lang}"
        (tr_texts, tr_labels), (te_texts, te_labels) = default_split(task, lang, SOURCES)
        tr_k, y_tr = kept(tr_texts, tr_labels, task)
        te_k, y_te = kept(te_texts, te_labels, task)
        if rate is None:
            print("timing the frozen encoder (cold) …", flush=True)
            probe = [te_k[i] for i in hash_subsample(te_k, 256)]
            rate = cold_rate(args.threads, probe)
        quick = QUICK_MODELS[(task, lang)]
        entry: dict = {"n_train": len(tr_k), "n_test": len(te_k), "candidates": {}}
        print(f"{key}: tfidf …", flush=True)
        tfidf = SentimentModel(task, lang, backbone="none", val_fraction=quick["val_fraction"],
                               tfidf_char_ngrams=quick.get("tfidf_char_ngrams", True))
        t0 = time.perf_counter()
        tfidf.fit(tr_k, y_tr)
        fit_s = time.perf_counter() - t0
        entry["candidates"]["tfidf"] = {"build_seconds": round(fit_s, 1),
                                        "test": test_metrics(tfidf, te_k, y_te)}
        for n in sizes:
            print(f"{key}: head-{n} …", flush=True)
            model = SentimentHeadModel(task, lang, **{**quick, "max_head_train": n},
                                       embedding_cache=str(STUDY_CACHE), num_threads=args.threads)
            t0 = time.perf_counter()
            model.fit(tr_k, y_tr)
            warm = time.perf_counter() - t0
            encoded = min(n, model.metrics_["n_train"]) + model.metrics_["n_val"]
            entry["candidates"][f"head-{n}"] = {
                "fit_seconds_in_study": round(warm, 1), "texts_encoded": encoded,
                "tfidf_weight": model.weight_, "test": test_metrics(model, te_k, y_te)}
        print(f"{key}: timing a slice of the full fine-tune …", flush=True)
        sl = full_slice(task, lang, tr_k, y_tr, args.threads, args.full_steps, 256)
        tfidf_full = SentimentModel(task, lang, backbone="none", **{
            k: v for k, v in DEFAULT_MODELS[(task, lang)]["params"].items()
            if k == "tfidf_char_ngrams"})
        t0 = time.perf_counter()
        tfidf_full.fit(tr_k, y_tr)
        tfidf_s = time.perf_counter() - t0
        est = (tfidf_s + sl["cache_seconds_per_text"] * sl["n_train"]
               + sl["seconds_per_step"] * sl["steps"] + rate * sl["n_val"])
        full = {"build_seconds": round(est, 1), "build_seconds_how": "estimated from a timed slice",
                "slice": sl, "recorded_fit_seconds": recorded[key]["fit_seconds"]}
        full_dir = default_model_dir(task, lang, ModelStore.from_settings(get_settings()))
        if args.eval_cached_full and (full_dir / "meta.json").is_file():
            m = SentimentModel.load(full_dir, task=task, lang=lang)
            full["test"], full["test_source"] = test_metrics(m, te_k, y_te), "cached model"
        else:
            rec = recorded[key]["results"]["test"]["shipped"]
            full["test"] = {k: rec[k] for k in ("n", "accuracy", "macro_f1")}
            full["test_source"] = "evaluation/results/sentiment.json (sentiment_eval.py)"
        entry["candidates"]["full"] = full
        report[key] = entry

    cold = None if args.skip_cold else build_default_cold(args.threads)
    payload = {"split": {"test_size": TEST_SIZE, "seed": SPLIT_SEED, "stratified": True},
               "quick_defaults": {f"{t}/{lg}": p for (t, lg), p in QUICK_MODELS.items()},
               "cold_encode_seconds_per_text": round(rate, 5), "cold_build_seconds": cold,
               "machine": {"python": platform.python_version(), "cores": os.cpu_count(),
                           "threads": args.threads, "load_average": os.getloadavg()},
               "tasks": report, "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sentiment_first_run.json").write_text(json.dumps(payload, indent=2, default=str))
    (RESULTS / "sentiment_first_run.md").write_text(markdown(payload))
    print(markdown(payload))


def markdown(p: dict) -> str:
    load = ", ".join(f"{x:.1f}" for x in p["machine"]["load_average"])
    cold = p.get("cold_build_seconds") or {}
    lines = ["# Sentiment defaults for the first run: quick vs full", "",
             f"Test side of the defaults' stratified 80/20 split (seed {p['split']['seed']}); all "
             "figures from one run of `evaluation/sentiment_first_run.py` on "
             f"{p['machine']['cores']} cores shared with other jobs (load average "
             f"{load} at the end, about 12 at the start).", "",
             "| task | candidate | accuracy | macro-F1 | texts encoded | build (s) |",
             "|---|---|---:|---:|---:|---:|"]
    for key, entry in p["tasks"].items():
        quick_n = p["quick_defaults"][key]["max_head_train"]
        for name, c in entry["candidates"].items():
            build = None if name.startswith("head-") else c.get("build_seconds")
            if name == f"head-{quick_n}" and key in cold:
                name, build = f"**{name} (shipped quick default)**", cold[key]
            note = " (est.)" if c.get("build_seconds_how") else ""
            lines.append(f"| {key} | {name} | {c['test']['accuracy']:.3f} | "
                         f"{c['test']['macro_f1']:.3f} | {c.get('texts_encoded', '')} | "
                         + (f"{build:,.0f}{note}" if build is not None else "") + " |")
    lines += ["", "- `tfidf`: the TF-IDF + LR half alone; `head-N`: LR head over frozen MiniLM "
              "embeddings of N training reviews + the TF-IDF half on all of them "
              "(`SentimentHeadModel`; the candidates shared a cache of embeddings, so only the "
              "shipped one has a build time: built cold at the end, in an empty model cache, as "
              "the first `adpilot run` builds it); `full`: the fine-tuned default "
              "(`adpilot sentiment train-defaults --full`), test metrics from "
              "`evaluation/results/sentiment.json`, build time estimated from a timed slice of "
              "its own fit in this run (seconds per step and per cached text × the real fit's)."]
    for key, entry in p["tasks"].items():
        full = entry["candidates"]["full"]
        quick_n = p["quick_defaults"][key]["max_head_train"]
        q = entry["candidates"].get(f"head-{quick_n}")
        lines.append(f"- {key} full fine-tune: {full['slice']['steps']:,} steps at "
                     f"{full['slice']['seconds_per_step']:.2f} s each in this run "
                     f"(recorded fit on quieter cores: {full['recorded_fit_seconds']:,.0f} s).")
        if q and key in cold:
            lines.append(
                f"  Gain of the full fine-tune over the quick default: accuracy "
                f"{100 * (full['test']['accuracy'] - q['test']['accuracy']):+.1f} points, "
                f"macro-F1 {100 * (full['test']['macro_f1'] - q['test']['macro_f1']):+.1f}; "
                f"the quick build took {cold[key] / full['build_seconds']:.3f}× the full one's "
                f"estimated time in this run, {cold[key] / full['recorded_fit_seconds']:.2f}× "
                "its recorded time on quieter cores.")
    if cold:
        lines += ["", "Cold builds of the defaults (seconds): "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in cold.items())
                  + " (polarity/zh is TF-IDF only); the first `adpilot run` builds the two "
                  "polarity models. Quick settings: "
                  f"`{json.dumps(p['quick_defaults'])}`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
