"""Profile the store: reviews, customers, products and transactions in → per-review sentiment
and aspects, user profiles, segments out (stored, and exported as Parquet/CSV)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.data.csv_safe import write_csv
from adpilot.errors import MissingDependencyError
from adpilot.profiling.aspects import extract_aspects
from adpilot.profiling.embeddings import get_embedder
from adpilot.profiling.profiles import Profiles, build_profiles
from adpilot.profiling.segments import SegmentModel

# A sentiment scorer maps reviews (id, text, language, …) to polarity in [-1, 1] per review.
SentimentScorer = Callable[[pd.DataFrame], pd.Series]


def rating_polarity(reviews: pd.DataFrame) -> pd.Series:
    """Polarity from the star rating ((r - 3) / 2); 0 where there is no rating."""
    return ((reviews[C.RATING].astype(float) - 3) / 2).fillna(0.0)


POLARITY_MODELS = [("polarity", "en"), ("polarity", "zh")]


def model_polarity_scorer(*, train_if_missing: bool = False,
                          progress: Callable[[str, int, int], None] | None = None,
                          ) -> SentimentScorer | None:
    """Polarity in [-1, 1] from the default sentiment models (2·P(positive) − 1), English and
    Chinese reviews each through their own model. ``None`` when the models are not trained
    and ``train_if_missing`` is off."""
    from adpilot.profiling.sentiment import (
        cached_default_dir,
        ensure_default_models,
        load_default_model,
    )

    if train_if_missing:  # the quick kind on first use (a minute or two), unless cached
        ensure_default_models(POLARITY_MODELS, progress=progress)
    elif not all(cached_default_dir(t, lang) for t, lang in POLARITY_MODELS):
        return None
    models = {lang: load_default_model(t, lang) for t, lang in POLARITY_MODELS}

    def score(reviews: pd.DataFrame) -> pd.Series:
        out = pd.Series(0.0, index=reviews.index)
        lang = reviews[C.LANGUAGE].where(reviews[C.LANGUAGE].isin(list(models)), "en")
        for code, model in models.items():
            mask = (lang == code).to_numpy()
            if mask.any():
                texts = reviews.loc[mask, C.TEXT].fillna("").astype(str).tolist()
                proba = model.predict_proba(texts)
                positive = list(model.classes_).index(1)
                out[mask] = 2 * proba[:, positive] - 1
        return out

    return score


def sentiment_fallback(exc: BaseException) -> str:
    """State the star-rating fallback of ``auto`` sentiment (once per process) and return the
    label the profiles record for it."""
    from adpilot import fallbacks

    reason = ("the ml extra is not installed" if isinstance(exc, (ImportError,
                                                                  MissingDependencyError))
              else fallbacks.unavailable_reason(exc))
    fallbacks.note("sentiment", "star ratings ((r - 3) / 2; a review without a rating counts "
                   "as neutral)", reason,
                   "run `adpilot models fetch`, set ADPILOT_DATA_DIR, or train on your own "
                   "labelled reviews with `adpilot sentiment train --data …`")
    return "rating (fallback: no sentiment model)"


def sentiment_unavailable_errors() -> tuple[type[BaseException], ...]:
    """What ``auto`` sentiment falls back on: no ml extra, or no data to train the defaults."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError

    return ImportError, MissingDependencyError, DatasetUnavailableError, ChecksumError


def default_sentiment_scorer(mode: str = "auto",
                             progress: Callable[[str, int, int], None] | None = None,
                             ) -> tuple[str, SentimentScorer]:
    """``model``: the trained models (trained now if missing); ``rating``: the star rating;
    ``auto``: the models when they can be had (``ml`` extra, the public data or a trained
    model in the cache), else the rating, a fallback stated once."""
    if mode == "rating":
        return "rating", rating_polarity
    try:
        scorer = model_polarity_scorer(train_if_missing=True, progress=progress)
    except sentiment_unavailable_errors() as exc:
        if mode == "model":
            raise
        return sentiment_fallback(exc), rating_polarity
    from adpilot.profiling.sentiment import source_label

    return source_label(POLARITY_MODELS), scorer


@dataclass
class ProfileRun:
    profiles: Profiles
    segments: pd.DataFrame
    aspects: pd.DataFrame
    review_sentiment: pd.Series
    sentiment_source: str
    embedder: str
    timings: dict[str, float] = field(default_factory=dict)
    silhouettes: dict[int, float] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"users": len(self.profiles), "segments": self.segments.to_dict("records"),
                "aspect_mentions": int(len(self.aspects)), "sentiment": self.sentiment_source,
                "embedder": self.embedder, "silhouettes": self.silhouettes,
                "timings": self.timings}


def profile_tables(reviews: pd.DataFrame, *, customers: pd.DataFrame | None = None,
                   transactions: pd.DataFrame | None = None,
                   products: pd.DataFrame | None = None,
                   sentiment: tuple[str, SentimentScorer] | str = "auto",
                   embedder: str = "auto", seed: int = 0, k: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> ProfileRun:
    """Run the profiling stage on in-memory canonical tables."""
    timings: dict[str, float] = {}
    reviews = reviews.reset_index(drop=True)

    def timed(name, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    source, scorer = (default_sentiment_scorer(sentiment, progress) if isinstance(sentiment, str)
                      else sentiment)
    polarity = timed("sentiment", scorer, reviews).astype(float)
    aspects = timed("aspects", extract_aspects, reviews, overall=polarity)
    name = embedder
    if embedder == "auto":
        try:
            import sentence_transformers  # noqa: F401

            name = "minilm"
        except ImportError:
            name = "lsa"
    emb = timed("embeddings", get_embedder(name).encode, reviews[C.TEXT]) if len(reviews) else None
    profiles = timed("profiles", build_profiles, reviews, customers=customers,
                     transactions=transactions, products=products, sentiment=polarity,
                     aspects=aspects, review_embeddings=emb)
    model = SegmentModel(k=k, seed=seed)
    profiles.table["segment"] = timed("segments", model.fit_predict, profiles.table,
                                      profiles.embeddings).to_numpy()
    segments = model.describe()
    return ProfileRun(profiles, segments, aspects, polarity, source, name, timings,
                      model.silhouettes_)


def profile_store(store, **kwargs) -> ProfileRun:
    """Profile everything in ``store`` and write ``profiles``, ``segments`` and
    ``review_aspects`` tables back to it."""
    tables = {k: store.read(k) for k in ("reviews", "customers", "transactions", "products")}
    run = profile_tables(tables["reviews"], customers=tables["customers"],
                         transactions=tables["transactions"], products=tables["products"],
                         **kwargs)
    store.write_table("profiles", run.profiles.table)
    store.write_table("segments", run.segments)
    store.write_table("review_aspects", run.aspects)
    return run


def export_profiles(run: ProfileRun, out_dir: str | Path) -> dict[str, str]:
    """Write profiles (Parquet and CSV, embeddings in the Parquet file) and segments (CSV)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = run.profiles.table.copy()
    csv_path, pq_path, seg_path = out / "profiles.csv", out / "profiles.parquet", out / "segments.csv"
    write_csv(table, csv_path)
    if run.profiles.embeddings is not None:
        table["embedding"] = list(np.asarray(run.profiles.embeddings, dtype=np.float32))
    table.to_parquet(pq_path, index=False)
    write_csv(run.segments, seg_path)
    return {"profiles_csv": str(csv_path), "profiles_parquet": str(pq_path),
            "segments_csv": str(seg_path)}
