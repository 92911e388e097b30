"""DuckDB over Parquet: the connection (memory cap, spill folder), Parquet sources, the
per-user aggregation query and segment statistics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adpilot.deps import require
from adpilot.profiling.constants import NEGATIVE_REVIEW
from adpilot.profiling.profiles import ASPECTS


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


def parquet_source(path: str | Path) -> str:
    """A read_parquet() source for a file or a folder of part files."""
    p = Path(path)
    glob = str((p / "*.parquet") if p.is_dir() else p).replace("'", "''")
    return f"read_parquet('{glob}')"



def parquet_glob(path: str | Path) -> str:
    p = Path(path)
    return "'" + str((p / "*.parquet") if p.is_dir() else p).replace("'", "''") + "'"



def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"



def join_polarity(con, reviews: str | Path, sentiment: str | Path, out: str | Path) -> Path:
    """Reviews with their ``polarity`` column (from the sentiment stage's parts), as Parquet."""
    con.execute(f"COPY (SELECT r.*, s.polarity FROM {parquet_source(reviews)} r "
                f"JOIN {parquet_source(sentiment)} s ON r.id = s.id) TO '{out}' (FORMAT parquet)")
    return Path(out)


def sample_texts(con, reviews: str | Path, n: int, seed: int = 0) -> list[str]:
    """All texts in file order when there are at most ``n``, else a seeded reservoir sample."""
    total = con.execute(f"SELECT count(*) FROM {parquet_source(reviews)}").fetchone()[0]
    if total <= n:
        q = (f"SELECT text FROM read_parquet({parquet_glob(reviews)}, filename=true, "
             f"file_row_number=true) ORDER BY filename, file_row_number")
    else:
        q = (f"SELECT text FROM {parquet_source(reviews)} "
             f"USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)})")
    old = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")  # a repeatable sample needs one thread
    try:
        rows = con.execute(q).fetchall()
    finally:
        con.execute(f"SET threads = {old}")
    return [str(r[0]) for r in rows]



def review_languages(con, reviews: str | Path) -> list[str]:
    """The review languages of reviews with a user (missing: ``und``), in the order first
    seen (part file, then row): the tie-break order of the per-user language."""
    rows = con.execute(f"SELECT coalesce(language, 'und') AS lang, "
                       f"min((filename, file_row_number)) AS first "
                       f"FROM read_parquet({parquet_glob(reviews)}, filename=true, "
                       f"file_row_number=true) WHERE user_id IS NOT NULL "
                       f"GROUP BY 1 ORDER BY 2").fetchall()
    return [str(r[0]) for r in rows]



def profile_sql(*, reviews: str | Path, aspects: str | Path | None = None,
                embeddings: str | Path | None = None, embedding_dim: int = 0,
                customers: str | Path | None = None,
                customer_columns: list[str] | None = None,
                languages: list[str] | None = None, bounded: tuple[bool, bool] = (False, False),
                partitioned: bool = False) -> str:
    """The aggregation query: one row per user seen in reviews or customers, by user id.

    One hash aggregate keyed by user: reviews, aspect rows and embedding rows (each joined to
    its review's user) and customer rows are stacked (``UNION ALL BY NAME``, a ``kind`` column
    says which) and reduced per user in a single ``GROUP BY``, so there is no chain of joins
    whose build sides must all be in memory at once; DuckDB spills that aggregate, the two
    review-level joins and the final sort to its temp folder beyond ``memory_limit``.
    ``languages``: :func:`review_languages` (the per-user language is the most frequent one,
    ties to the language seen first). ``bounded``: (lower, upper) — restrict to users with
    ``user_id >= $lo`` / ``user_id < $hi`` (named parameters), one bucket of users.
    ``partitioned``: the inputs are one partition written by :func:`partition_inputs` — aspect
    (and embedding) rows already carry their review's ``user_id``, customer rows their original
    file position as ``_cu_row``.
    """
    rng = "".join([" AND {col} >= $lo" if bounded[0] else "",
                   " AND {col} < $hi" if bounded[1] else ""])
    where = "user_id IS NOT NULL" + rng.format(col="user_id")
    rv = f"(SELECT id, user_id FROM {parquet_source(reviews)} WHERE {where})"
    langs = list(languages or [])
    parts = [f"SELECT user_id, 1 AS kind, rating, polarity, coalesce(language, 'und') AS lang "
             f"FROM {parquet_source(reviews)} WHERE {where}"]
    aggs = []
    demo = [c for c in ("age", "gender", "region") if c in (customer_columns or [])]
    if customers is not None:
        if partitioned:
            sel = ", ".join(["id AS user_id", "4 AS kind", "_cu_row AS cu_row", *demo])
            parts.append(f"SELECT {sel} FROM {parquet_source(customers)}")
        else:
            sel = ", ".join(["id AS user_id", "4 AS kind",
                             "(filename, file_row_number) AS cu_row", *demo])
            parts.append(f"SELECT {sel} FROM read_parquet({parquet_glob(customers)}, "
                         f"filename=true, file_row_number=true) "
                         f"WHERE id IS NOT NULL{rng.format(col='id')}")
        # the first row of a customer id, as drop_duplicates keeps it
        aggs += [f"arg_min_null({c}, cu_row) FILTER (WHERE kind = 4) AS {c}" for c in demo]
    aggs += ["count(*) FILTER (WHERE kind = 1) AS n_reviews", "avg(rating) AS mean_rating",
             "avg(polarity) AS sentiment_mean",
             f"avg(CASE WHEN polarity IS NULL THEN NULL WHEN polarity < {NEGATIVE_REVIEW} THEN 1.0 "
             f"ELSE 0.0 END) AS negative_share"]
    aggs += [f"count(*) FILTER (WHERE lang = {sql_literal(g)}) AS lang_{i}" for i, g in enumerate(langs)]
    outer = ["user_id", *demo, "n_reviews", "mean_rating", "sentiment_mean", "negative_share"]
    if langs:
        counts = "[" + ", ".join(f"lang_{i}" for i in range(len(langs))) + "]"
        names = "[" + ", ".join(sql_literal(g) for g in langs) + "]"
        outer.append(f"CASE WHEN n_reviews > 0 THEN {names}[list_position({counts}, "
                     f"list_max({counts}))] END AS language")
    else:
        outer.append("CAST(NULL AS VARCHAR) AS language")
    if aspects is not None:
        parts.append(f"SELECT user_id, 2 AS kind, aspect, score FROM {parquet_source(aspects)}"
                     if partitioned else
                     f"SELECT r.user_id, 2 AS kind, a.aspect, a.score FROM {parquet_source(aspects)} a "
                     f"JOIN {rv} r ON a.review_id = r.id")
        aggs.append("count(*) FILTER (WHERE kind = 2) AS n_aspect_rows")
        for a in ASPECTS:
            aggs.append(f"avg(score) FILTER (WHERE aspect = '{a}') AS aspect_{a}")
            aggs.append(f"count(*) FILTER (WHERE aspect = '{a}') AS mentions_{a}")
        outer += [f"aspect_{a}" for a in ASPECTS]
        # users without any aspect row have no mention counts (as in the pandas join)
        outer += [f"CASE WHEN n_aspect_rows > 0 THEN mentions_{a} END AS mentions_{a}"
                  for a in ASPECTS]
    if embeddings is not None and embedding_dim:
        cols = [f"e{i}" for i in range(embedding_dim)]
        parts.append(f"SELECT user_id, 3 AS kind, {', '.join(cols)} FROM {parquet_source(embeddings)}"
                     if partitioned else
                     f"SELECT r.user_id, 3 AS kind, {', '.join('e.' + c for c in cols)} "
                     f"FROM {parquet_source(embeddings)} e JOIN {rv} r ON e.id = r.id")
        aggs += [f"sum({c}) AS {c}" for c in cols]
        norm = "sqrt(" + " + ".join(f"coalesce({c}, 0) * coalesce({c}, 0)" for c in cols) + ")"
        outer += [f"CAST(coalesce(CASE WHEN {norm} = 0 THEN 0 ELSE {c} / {norm} END, 0) "
                  f"AS FLOAT) AS {c}" for c in cols]
    stacked = " UNION ALL BY NAME ".join(f"({q})" for q in parts)
    return (f"WITH src AS ({stacked}), agg AS (SELECT user_id, {', '.join(aggs)} FROM src "
            f"GROUP BY user_id) SELECT {', '.join(outer)} FROM agg ORDER BY user_id")



def segment_stats(con, profiles: str | Path, features: list[str]) -> pd.DataFrame:
    """Per segment: size, share and the mean of each feature, next to the overall mean."""
    means = ", ".join(f"avg({c}) AS {c}" for c in features)
    per = con.execute(f"SELECT segment, count(*) AS size, count(*) / sum(count(*)) OVER () AS share"
                      f"{', ' + means if means else ''} FROM {parquet_source(profiles)} GROUP BY segment "
                      f"ORDER BY CAST(substr(segment, 2) AS INTEGER)").df()
    overall = con.execute(f"SELECT 'all' AS segment, count(*) AS size, 1.0 AS share"
                          f"{', ' + means if means else ''} FROM {parquet_source(profiles)}").df()
    return pd.concat([per, overall], ignore_index=True)
