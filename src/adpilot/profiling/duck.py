"""Profile building and segment statistics in DuckDB over Parquet, in bounded memory.

The per-review outputs of the heavy stages (polarity, aspect opinions, embeddings) are Parquet
part files; DuckDB aggregates them per user with a fixed ``memory_limit`` (it spills to its temp
folder beyond that), and the result is streamed out in record batches — summaries added batch by
batch — into one Parquet file. Nothing row-sized is ever held in Python, so memory stays flat as
reviews grow (see ``benchmarks/scale_profile.py``).

The columns match :func:`adpilot.profiling.profiles.build_profiles` for the review-derived
statistics (``n_reviews``, ``mean_rating``, ``sentiment_mean``, ``negative_share``,
``language``), aspects (``aspect_*``, ``mentions_*``), demographics and the mean embedding.
Purchase-derived columns (RFM, interests) come from the transactions table and are joined in by
the caller when there is one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adpilot.deps import require
from adpilot.profiling.profiles import ASPECTS

NEGATIVE = -0.2  # polarity below this counts as a negative review (as in review_stats)


def connect(*, memory_limit: str = "1GB", threads: int | None = None,
            temp_dir: str | Path | None = None):
    """A DuckDB connection with a memory cap (and a spill folder)."""
    duckdb = require("duckdb", feature="DuckDB profile building")
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_dir:
        con.execute(f"SET temp_directory = '{Path(temp_dir).resolve()}'")
    return con


def _src(path: str | Path) -> str:
    """A read_parquet() source for a file or a folder of part files."""
    p = Path(path)
    glob = str((p / "*.parquet") if p.is_dir() else p).replace("'", "''")
    return f"read_parquet('{glob}')"


def join_polarity(con, reviews: str | Path, sentiment: str | Path, out: str | Path) -> Path:
    """Reviews with their ``polarity`` column (from the sentiment stage's parts), as Parquet."""
    con.execute(f"COPY (SELECT r.*, s.polarity FROM {_src(reviews)} r "
                f"JOIN {_src(sentiment)} s ON r.id = s.id) TO '{out}' (FORMAT parquet)")
    return Path(out)


def sample_texts(con, reviews: str | Path, n: int, seed: int = 0) -> list[str]:
    """All texts in file order when there are at most ``n``, else a seeded reservoir sample."""
    total = con.execute(f"SELECT count(*) FROM {_src(reviews)}").fetchone()[0]
    if total <= n:
        q = (f"SELECT text FROM read_parquet({_glob_arg(reviews)}, filename=true, "
             f"file_row_number=true) ORDER BY filename, file_row_number")
    else:
        q = (f"SELECT text FROM {_src(reviews)} "
             f"USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)})")
    old = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")  # a repeatable sample needs one thread
    try:
        rows = con.execute(q).fetchall()
    finally:
        con.execute(f"SET threads = {old}")
    return [str(r[0]) for r in rows]


def _glob_arg(path: str | Path) -> str:
    p = Path(path)
    return "'" + str((p / "*.parquet") if p.is_dir() else p).replace("'", "''") + "'"


def profile_sql(*, reviews: str | Path, aspects: str | Path | None = None,
                embeddings: str | Path | None = None, embedding_dim: int = 0,
                customers: str | Path | None = None,
                customer_columns: list[str] | None = None) -> str:
    """The aggregation query: one row per user seen in reviews or customers."""
    rv = (f"read_parquet({_glob_arg(reviews)}, filename=true, file_row_number=true)")
    ctes = [f"rv AS (SELECT * FROM {rv} WHERE user_id IS NOT NULL)",
            # language: the most frequent per user; ties go to the language seen first overall
            "lang_first AS (SELECT coalesce(language, 'und') AS lang, "
            "min((filename, file_row_number)) AS first FROM rv GROUP BY 1)",
            "lang_user AS (SELECT user_id, coalesce(language, 'und') AS lang, count(*) AS n "
            "FROM rv GROUP BY 1, 2)",
            "lang_pick AS (SELECT u.user_id, arg_max(u.lang, (u.n, -rank_first)) AS language "
            "FROM lang_user u JOIN (SELECT lang, row_number() OVER (ORDER BY first) AS rank_first "
            "FROM lang_first) f USING (lang) GROUP BY 1)",
            f"rs AS (SELECT user_id, count(*) AS n_reviews, avg(rating) AS mean_rating, "
            f"avg(polarity) AS sentiment_mean, "
            f"avg(CASE WHEN polarity IS NULL THEN NULL WHEN polarity < {NEGATIVE} THEN 1.0 "
            f"ELSE 0.0 END) AS negative_share FROM rv GROUP BY 1)"]
    selects = ["u.user_id"]
    joins = []
    users = ["SELECT user_id FROM rs"]
    if customers is not None:
        ctes.append(f"cu AS (SELECT DISTINCT ON (id) id AS user_id, * EXCLUDE (id) "
                    f"FROM {_src(customers)})")
        users.append("SELECT user_id FROM cu")
        selects += [f"cu.{c}" for c in ("age", "gender", "region")
                    if c in (customer_columns or [])]
        joins.append("LEFT JOIN cu USING (user_id)")
    selects += ["coalesce(rs.n_reviews, 0) AS n_reviews", "rs.mean_rating", "rs.sentiment_mean",
                "rs.negative_share", "lang_pick.language"]
    joins += ["LEFT JOIN rs USING (user_id)", "LEFT JOIN lang_pick USING (user_id)"]
    if aspects is not None:
        aggs = []
        for a in ASPECTS:
            aggs.append(f"avg(score) FILTER (WHERE aspect = '{a}') AS aspect_{a}")
            aggs.append(f"count(*) FILTER (WHERE aspect = '{a}') AS mentions_{a}")
        ctes.append(f"asp AS (SELECT rv.user_id, {', '.join(aggs)} FROM {_src(aspects)} a "
                    f"JOIN rv ON a.review_id = rv.id GROUP BY 1)")
        selects += [f"asp.aspect_{a}" for a in ASPECTS] + [f"asp.mentions_{a}" for a in ASPECTS]
        joins.append("LEFT JOIN asp USING (user_id)")
    if embeddings is not None and embedding_dim:
        cols = [f"e{i}" for i in range(embedding_dim)]
        sums = ", ".join(f"sum(e.{c}) AS {c}" for c in cols)
        ctes.append(f"emb AS (SELECT rv.user_id, {sums} FROM {_src(embeddings)} e "
                    f"JOIN rv ON e.id = rv.id GROUP BY 1)")
        norm = "sqrt(" + " + ".join(f"emb.{c} * emb.{c}" for c in cols) + ")"
        ctes.append(f"embn AS (SELECT user_id, {norm} AS norm, * EXCLUDE (user_id) FROM emb)")
        selects += [f"CAST(coalesce(CASE WHEN embn.norm = 0 THEN 0 ELSE embn.{c} / embn.norm END,"
                    f" 0) AS FLOAT) AS {c}" for c in cols]
        joins.append("LEFT JOIN embn USING (user_id)")
    ctes.append(f"u AS ({' UNION '.join(users)})")
    return (f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM u {' '.join(joins)} "
            f"ORDER BY u.user_id")


def build_profiles_duckdb(con, out: str | Path, *, reviews: str | Path,
                          aspects: str | Path | None = None,
                          embeddings: str | Path | None = None, embedding_dim: int = 0,
                          customers: str | Path | None = None,
                          batch_rows: int = 50_000) -> Path:
    """Aggregate per user in DuckDB and stream the result into ``out`` (one Parquet file) with
    English and Chinese summaries added batch by batch. ``reviews`` needs ``id``, ``user_id``,
    ``rating``, ``language`` and ``polarity`` (see :func:`join_polarity`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adpilot.profiling.profiles import _summaries

    cols = ([r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_src(customers)}").fetchall()]
            if customers is not None else None)
    sql = profile_sql(reviews=reviews, aspects=aspects, embeddings=embeddings,
                      embedding_dim=embedding_dim, customers=customers, customer_columns=cols)
    rel = con.sql(sql)  # a relation streams; a DB-API result would copy every row first
    reader = (rel.to_arrow_reader(batch_rows) if hasattr(rel, "to_arrow_reader")
              else rel.fetch_arrow_reader(batch_rows))  # DuckDB 2 / DuckDB 1
    out = Path(out)
    writer = None
    try:
        for rb in reader:
            frame = rb.to_pandas()
            frame["summary"] = _summaries(frame, "en").astype(object)
            frame["summary_zh"] = _summaries(frame, "zh").astype(object)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    return out


def segment_stats(con, profiles: str | Path, features: list[str]) -> pd.DataFrame:
    """Per segment: size, share and the mean of each feature, next to the overall mean."""
    means = ", ".join(f"avg({c}) AS {c}" for c in features)
    per = con.execute(f"SELECT segment, count(*) AS size, count(*) / sum(count(*)) OVER () AS share"
                      f"{', ' + means if means else ''} FROM {_src(profiles)} GROUP BY segment "
                      f"ORDER BY CAST(substr(segment, 2) AS INTEGER)").df()
    overall = con.execute(f"SELECT 'all' AS segment, count(*) AS size, 1.0 AS share"
                          f"{', ' + means if means else ''} FROM {_src(profiles)}").df()
    return pd.concat([per, overall], ignore_index=True)
