"""Profiling at scale: the executor entry points of :mod:`adpilot.profiling.build` under their
older names, and :func:`profile_parquet` for data that does not fit in memory — the same review
steps on an executor, then the profiles aggregated by DuckDB straight from Parquet
(:mod:`adpilot.profiling.duck`) in bounded memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adpilot.backends.executor import Executor, LocalExecutor
from adpilot.data import columns as C
from adpilot.profiling.build import ProfileRun, profile_store, profile_tables
from adpilot.profiling.constants import FIT_SAMPLE, embedding_columns
from adpilot.profiling.polarity import resolve_sentiment
from adpilot.profiling.segments import SegmentModel
from adpilot.profiling.steps import resolve_embedder, run_review_stages

if TYPE_CHECKING:
    import pandas as pd

    from adpilot.artifacts import ModelStore
    from adpilot.store.sql import Store


def profile_tables_with(executor: Executor, reviews: pd.DataFrame, **kwargs: Any) -> ProfileRun:
    """:func:`~adpilot.profiling.build.profile_tables` with the review steps on ``executor``."""
    return profile_tables(reviews, executor=executor, **kwargs)


def profile_store_with(store: Store, executor: Executor, **kwargs: Any) -> ProfileRun:
    """:func:`~adpilot.profiling.build.profile_store` with the review steps on ``executor``."""
    return profile_store(store, executor=executor, **kwargs)


def profile_parquet(executor: Executor | None, reviews: str | Path, out_dir: str | Path, *,
                    customers: str | Path | None = None, sentiment: str = "rating",
                    embedder: str | None = "lsa", seed: int = 0, k: int | None = 6,
                    batch_size: int = 4096, memory_limit: str = "1GB",
                    fit_sample: int = FIT_SAMPLE, model_store: ModelStore | None = None) -> dict:
    """Profiles for data that does not fit in memory: ``reviews`` (Parquet with ``id``,
    ``user_id``, ``text``, ``language``, ``rating``) → stage outputs and ``profiles.parquet``
    (with ``segment``) and ``segment_stats.parquet`` under ``out_dir``. Returns timings/paths.
    ``executor``: where the review steps run (``None``: in this process, batch by batch).
    ``model_store``: where ``sentiment="auto"|"model"`` loads the polarity models from."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adpilot.profiling import duck

    executor = executor or LocalExecutor()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    choice = resolve_sentiment(sentiment, store=model_store)
    con = duck.connect(memory_limit=memory_limit, temp_dir=out / "duckdb-tmp")
    name = resolve_embedder(embedder) if embedder else None
    fit = duck.sample_texts(con, reviews, fit_sample, seed) if name == "lsa" else None
    joined = out / "reviews_polarity.parquet"
    stages = run_review_stages(
        executor, reviews, out, sentiment=choice, embedder=name, fit_texts=fit,
        with_polarity=lambda sent: duck.join_polarity(con, reviews, sent, joined),
        batch_size=batch_size)
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
        rb = rb.append_column(C.SEGMENT, pa.array(labels[start:start + rb.num_rows]))
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
            "sentiment": choice.source, "embedder": name, "k": model.k_, "timings": timings,
            "users": int(len(labels))}
