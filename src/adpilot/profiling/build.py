"""The profiling stage, one workflow: reviews, customers, products and transactions in →
per-review sentiment and aspects, user profiles, segments out (stored, and exported as
Parquet/CSV).

    choose sentiment and embedder (once) → review steps → profiles → segments

The review steps (sentiment, aspects, embeddings; :mod:`adpilot.profiling.steps`) run in this
process over the whole table (``executor=None``, the default) or as batch stages on an
executor (``LocalExecutor``, ``RayExecutor``) with their outputs as Parquet parts; the results
are the same either way (``tests/test_executor.py``). Data that does not fit in memory goes
through the same steps with DuckDB doing the aggregation:
:func:`adpilot.profiling.scaled.profile_parquet`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from adpilot.backends.executor import Executor, read_parquet_parts
from adpilot.data import columns as C
from adpilot.data.csv_safe import write_csv
from adpilot.errors import ConfigError
from adpilot.profiling.aspects import extract_aspects
from adpilot.profiling.constants import FIT_SAMPLE, POLARITY, embedding_columns
from adpilot.profiling.embeddings import get_embedder
from adpilot.profiling.polarity import SentimentScorer, resolve_sentiment
from adpilot.profiling.profiles import Profiles, build_profiles
from adpilot.profiling.segments import SegmentModel
from adpilot.profiling.steps import aspect_order, fit_sample, resolve_embedder, run_review_stages

if TYPE_CHECKING:
    from adpilot.artifacts import ModelStore
    from adpilot.store.sql import Store

TABLES = ("reviews", "customers", "transactions", "products")  # what profiling reads


@dataclass
class ProfileRun:
    """What one profiling run made: profiles (with ``segment``), segment descriptions, aspect
    opinions, per-review polarity, where sentiment and embeddings came from, and timings."""

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


@dataclass
class _ReviewOutputs:
    polarity: pd.Series
    aspects: pd.DataFrame
    embeddings: np.ndarray | None


def _timed(timings: dict[str, float], name: str, fn: Callable[..., Any], *args: Any,
           **kwargs: Any) -> Any:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[name] = round(time.perf_counter() - t, 3)
    return out


def _in_process(reviews: pd.DataFrame, scorer: SentimentScorer, embedder: str,
                timings: dict[str, float]) -> _ReviewOutputs:
    """The review steps over the whole table, here."""
    polarity = _timed(timings, "sentiment", scorer, reviews).astype(float)
    aspects = _timed(timings, "aspects", extract_aspects, reviews, overall=polarity)
    emb = (_timed(timings, "embeddings", get_embedder(embedder).encode, reviews[C.TEXT])
           if len(reviews) else None)
    return _ReviewOutputs(polarity, aspects, emb)


def _on_executor(executor: Executor, reviews: pd.DataFrame, sentiment: str,
                 model_store: ModelStore | None, embedder: str, *, seed: int,
                 work_dir: str | Path | None, batch_size: int,
                 timings: dict[str, float]) -> tuple[str, _ReviewOutputs]:
    """The review steps as batch stages on ``executor``, read back in table order."""
    choice = resolve_sentiment(sentiment, store=model_store)
    with tempfile.TemporaryDirectory(prefix="adpilot-stages-") as tmp:
        work = Path(work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        cols = [c for c in (C.ID, C.TEXT, C.LANGUAGE, C.RATING) if c in reviews]
        holder: dict[str, pd.Series] = {}

        def with_polarity(sent_dir: Path) -> pd.DataFrame:
            pol = read_parquet_parts(sent_dir).set_index(C.ID)[POLARITY]
            holder[POLARITY] = pd.Series(pol.reindex(reviews[C.ID]).to_numpy(dtype=float),
                                         index=reviews.index)
            return reviews[[C.ID, C.TEXT, C.LANGUAGE]].assign(polarity=holder[POLARITY])

        fit = fit_sample(reviews[C.TEXT], FIT_SAMPLE, seed) if embedder == "lsa" else None
        out = run_review_stages(executor, reviews[cols], work, sentiment=choice,
                                embedder=embedder, fit_texts=fit, with_polarity=with_polarity,
                                batch_size=batch_size)
        aspects = aspect_order(read_parquet_parts(out.aspects), reviews)
        emb = None
        if out.embeddings is not None:
            frame = read_parquet_parts(out.embeddings).set_index(C.ID)
            emb = frame.reindex(reviews[C.ID])[embedding_columns(out.embedding_dim)].to_numpy(
                dtype=np.float32)
    timings.update(out.timings)
    return choice.source, _ReviewOutputs(holder[POLARITY], aspects, emb)


def profile_tables(reviews: pd.DataFrame, *, customers: pd.DataFrame | None = None,
                   transactions: pd.DataFrame | None = None,
                   products: pd.DataFrame | None = None,
                   sentiment: tuple[str, SentimentScorer] | str = "auto",
                   embedder: str = "auto", seed: int = 0, k: int | None = None,
                   executor: Executor | None = None, work_dir: str | Path | None = None,
                   batch_size: int = 512, model_store: ModelStore | None = None,
                   precision: str = "fp32") -> ProfileRun:
    """Run the profiling stage on in-memory canonical tables.

    ``sentiment``: ``auto`` | ``model`` | ``rating`` (see
    :func:`~adpilot.profiling.polarity.resolve_sentiment`), or ``(label, scorer)`` to score
    reviews with your own function (in process only). ``embedder``: ``auto`` | ``minilm`` |
    ``lsa``. ``k``: the number of segments (default: chosen by silhouette). ``executor``: run
    the review steps there in batches of ``batch_size``, their Parquet parts under
    ``work_dir`` (kept) or a temporary folder. ``model_store``: where the sentiment models
    are loaded from (``precision``: theirs); nothing is trained here: without the models
    ``auto`` states the star-rating fallback and ``model`` raises, both naming
    ``adpilot models fetch sentiment`` (:func:`adpilot.models_fetch.ensure_sentiment_models`
    builds them; the pipeline and ``adpilot profile build`` call it first).
    """
    reviews = reviews.reset_index(drop=True)
    if executor is not None and reviews.empty:  # nothing to run on the executor
        executor, sentiment = None, "rating"
    timings: dict[str, float] = {}
    name = resolve_embedder(embedder)
    if executor is None:
        if isinstance(sentiment, str):
            choice = resolve_sentiment(sentiment, store=model_store, load=True,
                                       precision=precision)
            source, scorer = choice.source, choice.scorer()
        else:
            source, scorer = sentiment
        out = _in_process(reviews, scorer, name, timings)
    elif isinstance(sentiment, str):
        source, out = _on_executor(executor, reviews, sentiment, model_store, name, seed=seed,
                                   work_dir=work_dir, batch_size=batch_size, timings=timings)
    else:
        raise ConfigError("The 'sentiment' parameter of profile_tables must be 'auto', 'model' "
                          "or 'rating' with an executor (a scorer function runs in process "
                          "only). Got a (label, scorer) pair.")
    profiles = _timed(timings, "profiles", build_profiles, reviews, customers=customers,
                      transactions=transactions, products=products, sentiment=out.polarity,
                      aspects=out.aspects, review_embeddings=out.embeddings)
    model = SegmentModel(k=k, seed=seed)
    profiles.table[C.SEGMENT] = _timed(timings, "segments", model.fit_predict, profiles.table,
                                       profiles.embeddings).to_numpy()
    return ProfileRun(profiles, model.describe(), out.aspects, out.polarity, source, name,
                      timings, model.silhouettes_)


def profile_store(store: Store, *, executor: Executor | None = None, **kwargs: Any) -> ProfileRun:
    """Profile everything in ``store`` (see :func:`profile_tables` for ``kwargs``) and write
    ``profiles``, ``segments`` and ``review_aspects`` tables back to it."""
    tables = {kind: store.read(kind) for kind in TABLES}
    run = profile_tables(tables["reviews"], customers=tables["customers"],
                         transactions=tables["transactions"], products=tables["products"],
                         executor=executor, **kwargs)
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
