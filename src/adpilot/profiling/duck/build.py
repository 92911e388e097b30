"""Profiles built in DuckDB, range by range of users, into one Parquet file: the review and
customer statistics from :func:`~.sql.profile_sql`, the mean embedding summed from streamed
batches, and the English and Chinese summaries added batch by batch."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.profiling.duck.buckets import partition_inputs, user_buckets
from adpilot.profiling.duck.sql import connect, parquet_source, profile_sql, review_languages
from adpilot.profiling.profiles import profile_summaries, unit_rows


def build_profiles_duckdb(con, out: str | Path, *, reviews: str | Path,
                          aspects: str | Path | None = None,
                          embeddings: str | Path | None = None, embedding_dim: int = 0,
                          customers: str | Path | None = None,
                          users_per_bucket: int = 20_000, batch_rows: int = 10_000,
                          work_dir: str | Path | None = None) -> Path:
    """Aggregate per user in DuckDB into ``out`` (one Parquet file, sorted by user id) with
    English and Chinese summaries. ``reviews`` needs ``id``, ``user_id``, ``rating``,
    ``language`` and ``polarity`` (see :func:`join_polarity`).

    The users are split into consecutive id ranges of about ``users_per_bucket`` users
    (:func:`user_buckets`). With more than one range, every input is first written once into
    one partition per range (:func:`partition_inputs`, in a temporary folder under
    ``work_dir`` — default: ``out``'s folder — deleted afterwards), then :func:`profile_sql`
    runs on each partition in id order. Every per-user state (the aggregate, the sort, the
    embedding sums) holds one range's users, so memory is set by ``users_per_bucket`` and
    ``batch_rows``, not by the number of reviews or users; time is a fixed number of passes
    over the inputs (a few user-id scans, the partitioning pass, one read of the partitions).
    Results stream out ``batch_rows`` profiles at a time, summaries added batch by batch.
    """
    cols = ([r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {parquet_source(customers)}").fetchall()]
            if customers is not None else None)
    langs = review_languages(con, reviews)
    buckets = user_buckets(con, reviews, customers, users_per_bucket)
    out = Path(out)
    if len(buckets) == 1:  # one range: aggregate the inputs as they are
        return write_profiles(con, out, [dict(reviews=reviews, aspects=aspects,
                                               embeddings=embeddings, customers=customers)],
                               cols, langs, embedding_dim, batch_rows, partitioned=False)
    with tempfile.TemporaryDirectory(prefix="adpilot-parts-",
                                     dir=work_dir if work_dir is not None else out.parent) as tmp:
        roots = partition_inputs(con, tmp, buckets, reviews=reviews, aspects=aspects,
                                 embeddings=embeddings, embedding_dim=embedding_dim,
                                 customers=customers)
        parts = [{k: (roots[k] / f"part={i}" if k in roots else None)
                  for k in ("reviews", "aspects", "embeddings", "customers")}
                 for i in range(len(buckets))]
        return write_profiles(con, out, parts, cols, langs, embedding_dim, batch_rows,
                               partitioned=True)


def write_profiles(con, out: Path, parts: list[dict], cols, langs, embedding_dim: int,
                    batch_rows: int, *, partitioned: bool) -> Path:
    """One :func:`profile_sql` per part (in order), mean embeddings added, summaries added
    ``batch_rows`` profiles at a time, all written into one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for i, p in enumerate(parts):
            sql = profile_sql(reviews=p["reviews"], aspects=p["aspects"],
                              customers=p["customers"], customer_columns=cols, languages=langs,
                              partitioned=partitioned)
            rel = con.sql(sql)
            frame = (rel.to_arrow_table() if hasattr(rel, "to_arrow_table")
                     else rel.arrow()).to_pandas()  # one range of users
            if p["embeddings"] is not None and embedding_dim:
                emb = bucket_embeddings(con, frame[C.USER_ID], p["reviews"], p["embeddings"],
                                         embedding_dim, batch_rows, partitioned=partitioned)
                frame = pd.concat([frame, pd.DataFrame(emb, columns=[
                    f"e{i}" for i in range(embedding_dim)], index=frame.index)], axis=1)
            for lo_row in range(0, len(frame), batch_rows):
                part = frame.iloc[lo_row:lo_row + batch_rows].copy()
                part["summary"] = profile_summaries(part, "en").astype(object)
                part["summary_zh"] = profile_summaries(part, "zh").astype(object)
                batch = pa.Table.from_pandas(part, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, batch.schema)
                writer.write_table(batch.cast(writer.schema))
            if writer is None and len(frame) == 0 and i == len(parts) - 1:  # no users at all
                frame["summary"] = pd.Series(dtype=object)
                frame["summary_zh"] = pd.Series(dtype=object)
                writer = pq.ParquetWriter(out, pa.Table.from_pandas(
                    frame, preserve_index=False).schema)
    finally:
        if writer is not None:
            writer.close()
    return out


def bucket_embeddings(con, users: pd.Series, reviews, embeddings, dim: int, batch_rows: int,
                       *, partitioned: bool):
    """Mean review embedding of each user in one range (zeros without any), normalised as
    :func:`~adpilot.profiling.profiles.user_embeddings` does, summed from streamed batches: a
    64-wide aggregate state per user would make DuckDB's hash table rows ~1 KB each.
    ``partitioned``: the embedding rows carry ``user_id`` (:func:`partition_inputs`)."""
    if partitioned:
        cols = ", ".join(f"e{i}" for i in range(dim))
        rel = con.sql(f"SELECT user_id, {cols} FROM {parquet_source(embeddings)}")
    else:
        cols = ", ".join(f"e.e{i}" for i in range(dim))
        rel = con.sql(f"SELECT r.user_id, {cols} FROM {parquet_source(embeddings)} e JOIN "
                      f"(SELECT id, user_id FROM {parquet_source(reviews)} WHERE user_id IS NOT NULL) r "
                      f"ON e.id = r.id")
    reader = (rel.to_arrow_reader(batch_rows) if hasattr(rel, "to_arrow_reader")
              else rel.fetch_arrow_reader(batch_rows))  # DuckDB 2 / DuckDB 1
    index = pd.Index(users)
    sums = np.zeros((len(index), dim), dtype=np.float64)
    for rb in reader:
        codes = index.get_indexer(rb.column(0).to_pandas())
        values = np.column_stack([rb.column(i + 1).to_numpy(zero_copy_only=False)
                                  for i in range(dim)]).astype(np.float64)
        np.add.at(sums, codes, values)
    return unit_rows(sums)


def build_profiles_parquet(out: str | Path, *, reviews: str | Path,
                           aspects: str | Path | None = None,
                           embeddings: str | Path | None = None, embedding_dim: int = 0,
                           customers: str | Path | None = None, memory_limit: str = "256MB",
                           threads: int | None = None, temp_dir: str | Path | None = None,
                           users_per_bucket: int = 20_000, batch_rows: int = 10_000) -> Path:
    """Profiles from Parquet inputs to one Parquet file, in bounded memory.

    Opens its own DuckDB connection with ``memory_limit`` (DuckDB spills to ``temp_dir``, a
    fresh temporary folder by default, beyond it), ``threads`` and ``preserve_insertion_order``
    off, and runs :func:`build_profiles_duckdb`. The inputs are only scanned from disk and the
    result is written batch by batch, so the process's memory is set by ``memory_limit`` and
    ``batch_rows``, not by the number of reviews or users (``benchmarks/scale_profile.py
    --mode memory`` measures it). Same columns and values as
    :func:`~adpilot.profiling.profiles.build_profiles` for the review-derived statistics.
    """
    with tempfile.TemporaryDirectory(prefix="adpilot-duckdb-") as tmp:
        con = connect(memory_limit=memory_limit, threads=threads,
                      temp_dir=temp_dir if temp_dir is not None else tmp)
        try:
            return build_profiles_duckdb(con, out, reviews=reviews, aspects=aspects,
                                         embeddings=embeddings, embedding_dim=embedding_dim,
                                         customers=customers,
                                         users_per_bucket=users_per_bucket,
                                         batch_rows=batch_rows,
                                         work_dir=temp_dir if temp_dir is not None else tmp)
        finally:
            con.close()
