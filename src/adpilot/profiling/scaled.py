"""The profiling stage on an executor: sentiment, aspects and embeddings run as batch stages
(in-process or on Ray), their outputs are Parquet part files, and profiles are aggregated from
them — with pandas for tables that fit in memory (:func:`profile_tables_with`, same result as
:func:`~adpilot.profiling.build.profile_tables`) or with DuckDB straight from Parquet for data
that does not (:func:`profile_parquet`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.backends.executor import Executor, Stage, read_parquet_parts
from adpilot.backends.executor.stages import (
    AspectStage,
    EmbeddingStage,
    SentimentStage,
    embedding_columns,
)
from adpilot.data import columns as C
from adpilot.profiling.aspects import aspect_labels
from adpilot.profiling.build import (
    POLARITY_MODELS,
    ProfileRun,
    sentiment_fallback,
    sentiment_unavailable_errors,
)
from adpilot.profiling.profiles import build_profiles
from adpilot.profiling.segments import SegmentModel

FIT_SAMPLE = 50_000  # LSA is fitted on at most this many texts (all of them when fewer)


def resolve_sentiment(mode: str = "auto", progress: Callable[[str, int, int], None] | None = None,
                      ) -> tuple[str, str, str | None]:
    """(label, stage mode, models folder) for ``auto`` | ``model`` | ``rating``; models are
    trained on the driver first when missing, so workers only load them."""
    if mode == "rating":
        return "rating", "rating", None
    try:
        from adpilot.profiling.sentiment import default_model_dir, ensure_default_models

        ensure_default_models(POLARITY_MODELS, progress=progress)
    except sentiment_unavailable_errors() as exc:
        if mode == "model":
            raise
        return sentiment_fallback(exc), "rating", None
    from adpilot.profiling.sentiment import source_label

    return (source_label(POLARITY_MODELS), "model",
            str(default_model_dir(*POLARITY_MODELS[0]).parent))


def resolve_embedder(name: str = "auto") -> str:
    if name != "auto":
        return name
    try:
        import sentence_transformers  # noqa: F401

        return "minilm"
    except ImportError:
        return "lsa"


def fitted_embedder(name: str, texts: list[str]):
    """What the embedding stage gets: LSA fitted here on ``texts`` (shipped to the workers as an
    object), any other embedder by name (built in each worker)."""
    if name != "lsa":
        return name
    from adpilot.profiling.embeddings import LsaEmbedder

    return LsaEmbedder().fit(texts)


def _fit_texts(texts: pd.Series, n: int, seed: int) -> list[str]:
    values = [str(t) for t in texts]
    if len(values) <= n:
        return values
    pick = np.sort(np.random.default_rng(seed).choice(len(values), n, replace=False))
    return [values[i] for i in pick]


def _aspect_order(aspects: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Aspects in the order :func:`extract_aspects` gives on the whole table (language, then
    aspect, then review position): part files come back in any order."""
    if aspects.empty:
        return pd.DataFrame(columns=["review_id", "aspect", "score", "mentions", "evidence"])
    pos = pd.Series(np.arange(len(reviews)), index=reviews[C.ID].to_numpy())
    lang = pd.Series(reviews[C.LANGUAGE].map({"en": 0, "zh": 1}).to_numpy(),
                     index=reviews[C.ID].to_numpy())
    rank = {a: i for i, a in enumerate(aspect_labels("en"))}
    keys = aspects["review_id"]
    return (aspects.assign(_l=lang.reindex(keys).to_numpy(), _a=aspects["aspect"].map(rank),
                           _p=pos.reindex(keys).to_numpy())
            .sort_values(["_l", "_a", "_p"], kind="stable").drop(columns=["_l", "_a", "_p"])
            .reset_index(drop=True))


@dataclass
class StageOutputs:
    """Where the review stages wrote their Parquet parts."""

    sentiment: Path
    aspects: Path
    embeddings: Path | None
    embedding_dim: int
    timings: dict[str, float] = field(default_factory=dict)


def run_review_stages(executor: Executor, reviews, work: Path, *, sentiment_mode: str,
                      models_dir: str | None, embedder: str | None, fit_texts: list[str] | None,
                      batch_size: int = 512, with_polarity: Callable | None = None
                      ) -> StageOutputs:
    """Sentiment → aspects (needs polarity) → embeddings, each written as Parquet parts.

    ``reviews`` is a DataFrame or a Parquet path; ``with_polarity(sentiment_dir)`` returns the
    reviews joined with their polarity (in memory or as Parquet).
    """
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    sentiment = timed("sentiment", executor.to_parquet,
                      Stage("sentiment", SentimentStage, {"mode": sentiment_mode,
                                                          "models_dir": models_dir},
                            batch_size=batch_size), reviews, work / "sentiment")
    scored = with_polarity(sentiment)
    aspects = timed("aspects", executor.to_parquet, Stage("aspects", AspectStage,
                                                          batch_size=batch_size),
                    scored, work / "aspects")
    emb_dir, dim = None, 0
    if embedder is not None:
        t = time.perf_counter()
        fitted = fitted_embedder(embedder, fit_texts or [])
        timings["embedding fit"] = round(time.perf_counter() - t, 3)
        emb_dir = timed("embeddings", executor.to_parquet,
                        Stage("embeddings", EmbeddingStage, {"embedder": fitted},
                              batch_size=batch_size), reviews, work / "embeddings")
        import pyarrow.parquet as pq

        first = next(iter(sorted(emb_dir.glob("*.parquet"))), None)
        dim = 0 if first is None else len(pq.read_schema(first).names) - 1
    return StageOutputs(sentiment, aspects, emb_dir, dim, timings)


def profile_tables_with(executor: Executor, reviews: pd.DataFrame, *,
                        customers: pd.DataFrame | None = None,
                        transactions: pd.DataFrame | None = None,
                        products: pd.DataFrame | None = None, sentiment: str = "auto",
                        embedder: str = "auto", seed: int = 0, k: int | None = None,
                        work_dir: str | Path | None = None, batch_size: int = 512,
                        progress: Callable[[str, int, int], None] | None = None) -> ProfileRun:
    """:func:`~adpilot.profiling.build.profile_tables` with the heavy stages on ``executor``."""
    reviews = reviews.reset_index(drop=True)
    if reviews.empty:  # nothing to run on the executor
        from adpilot.profiling.build import profile_tables

        return profile_tables(reviews, customers=customers, transactions=transactions,
                              products=products, sentiment="rating", embedder=embedder,
                              seed=seed, k=k)
    source, mode, models_dir = resolve_sentiment(sentiment, progress)
    name = resolve_embedder(embedder) if len(reviews) else None
    with tempfile.TemporaryDirectory(prefix="adpilot-stages-") as tmp:
        work = Path(work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        cols = [c for c in (C.ID, C.TEXT, C.LANGUAGE, C.RATING) if c in reviews]
        holder: dict = {}

        def with_polarity(sent_dir: Path) -> pd.DataFrame:
            pol = read_parquet_parts(sent_dir).set_index("id")["polarity"]
            holder["polarity"] = pd.Series(pol.reindex(reviews[C.ID]).to_numpy(dtype=float),
                                           index=reviews.index)
            return reviews[[C.ID, C.TEXT, C.LANGUAGE]].assign(polarity=holder["polarity"])

        out = run_review_stages(executor, reviews[cols], work, sentiment_mode=mode,
                                models_dir=models_dir, embedder=name,
                                fit_texts=_fit_texts(reviews[C.TEXT], FIT_SAMPLE, seed)
                                if name == "lsa" else None,
                                batch_size=batch_size, with_polarity=with_polarity)
        polarity = holder["polarity"]
        aspects = _aspect_order(read_parquet_parts(out.aspects), reviews)
        emb = None
        if out.embeddings is not None:
            frame = read_parquet_parts(out.embeddings).set_index("id")
            emb = frame.reindex(reviews[C.ID])[embedding_columns(out.embedding_dim)].to_numpy(
                dtype=np.float32)
    timings = dict(out.timings)
    t = time.perf_counter()
    profiles = build_profiles(reviews, customers=customers, transactions=transactions,
                              products=products, sentiment=polarity, aspects=aspects,
                              review_embeddings=emb)
    timings["profiles"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    model = SegmentModel(k=k, seed=seed)
    profiles.table["segment"] = model.fit_predict(profiles.table, profiles.embeddings).to_numpy()
    timings["segments"] = round(time.perf_counter() - t, 3)
    return ProfileRun(profiles, model.describe(), aspects, polarity, source, name or embedder,
                      timings, model.silhouettes_)


def profile_store_with(store, executor: Executor, **kwargs) -> ProfileRun:
    """:func:`~adpilot.profiling.build.profile_store` with the heavy stages on ``executor``."""
    tables = {k: store.read(k) for k in ("reviews", "customers", "transactions", "products")}
    run = profile_tables_with(executor, tables["reviews"], customers=tables["customers"],
                              transactions=tables["transactions"], products=tables["products"],
                              **kwargs)
    store.write_table("profiles", run.profiles.table)
    store.write_table("segments", run.segments)
    store.write_table("review_aspects", run.aspects)
    return run


def profile_parquet(executor: Executor, reviews: str | Path, out_dir: str | Path, *,
                    customers: str | Path | None = None, sentiment: str = "rating",
                    embedder: str | None = "lsa", seed: int = 0, k: int | None = 6,
                    batch_size: int = 4096, memory_limit: str = "1GB",
                    fit_sample: int = FIT_SAMPLE) -> dict:
    """Profiles for data that does not fit in memory: ``reviews`` (Parquet with ``id``,
    ``user_id``, ``text``, ``language``, ``rating``) → stage outputs and ``profiles.parquet``
    (with ``segment``) and ``segment_stats.parquet`` under ``out_dir``. Returns timings/paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adpilot.profiling import duck

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source, mode, models_dir = resolve_sentiment(sentiment)
    con = duck.connect(memory_limit=memory_limit, temp_dir=out / "duckdb-tmp")
    name = resolve_embedder(embedder) if embedder else None
    fit = duck.sample_texts(con, reviews, fit_sample, seed) if name == "lsa" else None
    joined = out / "reviews_polarity.parquet"
    stages = run_review_stages(
        executor, reviews, out, sentiment_mode=mode, models_dir=models_dir, embedder=name,
        fit_texts=fit, batch_size=batch_size,
        with_polarity=lambda sent: duck.join_polarity(con, reviews, sent, joined))
    timings = dict(stages.timings)
    t = time.perf_counter()
    raw = duck.build_profiles_parquet(out / "profiles_raw.parquet", reviews=joined,
                                      aspects=stages.aspects, embeddings=stages.embeddings,
                                      embedding_dim=stages.embedding_dim, customers=customers,
                                      memory_limit=memory_limit, temp_dir=out / "duckdb-tmp")
    timings["profiles (duckdb)"] = round(time.perf_counter() - t, 3)
    # segments: k-means needs the users' features in memory (users x ~20 numbers + embedding)
    t = time.perf_counter()
    emb_cols = embedding_columns(stages.embedding_dim)
    schema = pq.read_schema(raw).names
    feats = pq.read_table(raw, columns=[c for c in schema if c not in emb_cols
                                        and c not in ("summary", "summary_zh")]).to_pandas()
    emb = pq.read_table(raw, columns=emb_cols).to_pandas().to_numpy(np.float32) if emb_cols else None
    model = SegmentModel(k=k, seed=seed)
    labels = model.fit_predict(feats, emb).to_numpy()
    del feats, emb
    final = out / "profiles.parquet"
    writer, start = None, 0
    for rb in pq.ParquetFile(raw).iter_batches(batch_size=50_000):
        rb = rb.append_column("segment", pa.array(labels[start:start + rb.num_rows]))
        start += rb.num_rows
        writer = writer or pq.ParquetWriter(final, rb.schema)
        writer.write_batch(rb)
    if writer is not None:
        writer.close()
    raw.unlink()
    timings["segments"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    stats = duck.segment_stats(con, final, [f for f in model.features_ if f in schema])
    stats.to_parquet(out / "segment_stats.parquet", index=False)
    timings["segment stats (duckdb)"] = round(time.perf_counter() - t, 3)
    con.close()
    return {"profiles": str(final), "segment_stats": str(out / "segment_stats.parquet"),
            "sentiment": source, "embedder": name, "k": model.k_, "timings": timings,
            "users": int(len(labels))}
