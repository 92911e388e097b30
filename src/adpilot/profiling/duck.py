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

import math
import shutil
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


def review_languages(con, reviews: str | Path) -> list[str]:
    """The review languages of reviews with a user (missing: ``und``), in the order first
    seen (part file, then row): the tie-break order of the per-user language."""
    rows = con.execute(f"SELECT coalesce(language, 'und') AS lang, "
                       f"min((filename, file_row_number)) AS first "
                       f"FROM read_parquet({_glob_arg(reviews)}, filename=true, "
                       f"file_row_number=true) WHERE user_id IS NOT NULL "
                       f"GROUP BY 1 ORDER BY 2").fetchall()
    return [str(r[0]) for r in rows]


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


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
    rv = f"(SELECT id, user_id FROM {_src(reviews)} WHERE {where})"
    langs = list(languages or [])
    parts = [f"SELECT user_id, 1 AS kind, rating, polarity, coalesce(language, 'und') AS lang "
             f"FROM {_src(reviews)} WHERE {where}"]
    aggs = []
    demo = [c for c in ("age", "gender", "region") if c in (customer_columns or [])]
    if customers is not None:
        if partitioned:
            sel = ", ".join(["id AS user_id", "4 AS kind", "_cu_row AS cu_row", *demo])
            parts.append(f"SELECT {sel} FROM {_src(customers)}")
        else:
            sel = ", ".join(["id AS user_id", "4 AS kind",
                             "(filename, file_row_number) AS cu_row", *demo])
            parts.append(f"SELECT {sel} FROM read_parquet({_glob_arg(customers)}, "
                         f"filename=true, file_row_number=true) "
                         f"WHERE id IS NOT NULL{rng.format(col='id')}")
        # the first row of a customer id, as drop_duplicates keeps it
        aggs += [f"arg_min_null({c}, cu_row) FILTER (WHERE kind = 4) AS {c}" for c in demo]
    aggs += ["count(*) FILTER (WHERE kind = 1) AS n_reviews", "avg(rating) AS mean_rating",
             "avg(polarity) AS sentiment_mean",
             f"avg(CASE WHEN polarity IS NULL THEN NULL WHEN polarity < {NEGATIVE} THEN 1.0 "
             f"ELSE 0.0 END) AS negative_share"]
    aggs += [f"count(*) FILTER (WHERE lang = {_lit(g)}) AS lang_{i}" for i, g in enumerate(langs)]
    outer = ["user_id", *demo, "n_reviews", "mean_rating", "sentiment_mean", "negative_share"]
    if langs:
        counts = "[" + ", ".join(f"lang_{i}" for i in range(len(langs))) + "]"
        names = "[" + ", ".join(_lit(g) for g in langs) + "]"
        outer.append(f"CASE WHEN n_reviews > 0 THEN {names}[list_position({counts}, "
                     f"list_max({counts}))] END AS language")
    else:
        outer.append("CAST(NULL AS VARCHAR) AS language")
    if aspects is not None:
        parts.append(f"SELECT user_id, 2 AS kind, aspect, score FROM {_src(aspects)}"
                     if partitioned else
                     f"SELECT r.user_id, 2 AS kind, a.aspect, a.score FROM {_src(aspects)} a "
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
        parts.append(f"SELECT user_id, 3 AS kind, {', '.join(cols)} FROM {_src(embeddings)}"
                     if partitioned else
                     f"SELECT r.user_id, 3 AS kind, {', '.join('e.' + c for c in cols)} "
                     f"FROM {_src(embeddings)} e JOIN {rv} r ON e.id = r.id")
        aggs += [f"sum({c}) AS {c}" for c in cols]
        norm = "sqrt(" + " + ".join(f"coalesce({c}, 0) * coalesce({c}, 0)" for c in cols) + ")"
        outer += [f"CAST(coalesce(CASE WHEN {norm} = 0 THEN 0 ELSE {c} / {norm} END, 0) "
                  f"AS FLOAT) AS {c}" for c in cols]
    stacked = " UNION ALL BY NAME ".join(f"({q})" for q in parts)
    return (f"WITH src AS ({stacked}), agg AS (SELECT user_id, {', '.join(aggs)} FROM src "
            f"GROUP BY user_id) SELECT {', '.join(outer)} FROM agg ORDER BY user_id")


def user_buckets(con, reviews: str | Path, customers: str | Path | None,
                 users_per_bucket: int, seed: int = 0) -> list[tuple]:
    """Consecutive user-id ranges ``(lo, hi)`` (``None``: open end) of about
    ``users_per_bucket`` users each, from a HyperLogLog count of the users and a fixed-size
    reservoir sample of their ids (neither grows with the data)."""
    users = _users_sql(reviews, customers)
    n = con.execute(f"SELECT approx_count_distinct(user_id) FROM ({users})").fetchall()[0][0] or 0
    k = max(1, -(-int(n) // max(1, int(users_per_bucket))))
    if k == 1:
        return [(None, None)]
    sample = sorted({r[0] for r in con.execute(
        f"SELECT user_id FROM ({users}) USING SAMPLE reservoir({min(200 * k, 100_000)} ROWS) "
        f"REPEATABLE ({int(seed)})").fetchall()})
    cuts = sorted({sample[len(sample) * i // k] for i in range(1, k)})
    edges = [None, *cuts, None]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _users_sql(reviews: str | Path, customers: str | Path | None) -> str:
    users = f"SELECT user_id FROM {_src(reviews)} WHERE user_id IS NOT NULL"
    if customers is not None:
        users += f" UNION ALL SELECT id AS user_id FROM {_src(customers)} WHERE id IS NOT NULL"
    return users


def _bucket_expr(col: str, cuts: list, sql_type: str) -> str:
    """The index of the user-id range ``col`` falls in (the number of ``cuts`` ≤ it), as a
    balanced tree of ``CASE`` comparisons: log2(ranges) comparisons per row, not one per range."""
    lits = [f"CAST({_lit(str(c))} AS {sql_type})" for c in cuts]

    def tree(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2
        return (f"CASE WHEN {col} < {lits[mid - 1]} THEN {tree(lo, mid - 1)} "
                f"ELSE {tree(mid, hi)} END")

    return tree(0, len(cuts))


def partition_inputs(con, folder: str | Path, buckets: list[tuple], *, reviews: str | Path,
                     aspects: str | Path | None = None, embeddings: str | Path | None = None,
                     embedding_dim: int = 0, customers: str | Path | None = None,
                     buffer_bytes: int = 8 << 20, max_files: int = 16) -> dict[str, Path]:
    """Write each input once into ``folder/<input>/part=<i>/`` by the user-id range ``i`` of
    ``buckets`` (:func:`user_buckets`), with DuckDB's partitioned ``COPY``: one streaming
    pass per input, so the per-range aggregation afterwards reads only its own range's rows.

    Reviews keep ``user_id, rating, polarity, language``; aspect and embedding rows get their
    review's ``user_id`` here (one join over all reviews, which DuckDB spills beyond its
    memory limit) and drop the review id; customers keep their columns plus ``_cu_row``, their
    original (file, row) position, for the first-row-wins tie-break. Every range gets a folder
    (an empty file where it has no rows). ``buffer_bytes`` sets the rows the writers buffer
    (``partitioned_write_flush_threshold``: DuckDB's default of 524,288 rows of 64 floats
    held ~160 MB; row groups of at most 16,384 rows) and the files are LZ4-compressed
    (temporary, read once). With more than ``max_files`` ranges, each input is written in
    two passes — into ~sqrt(ranges) groups of consecutive ranges, then each group into its
    ranges — so at most ~sqrt(ranges) partition files are open at once (DuckDB's partitioned
    write buffers grow with the number of open partitions). Returns ``{input: root folder}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cuts = [hi for _, hi in buckets[:-1]]
    n = len(buckets)
    sql_type = con.execute(f"DESCRIBE SELECT user_id FROM ({_users_sql(reviews, customers)})"
                           ).fetchall()[0][1]
    part = _bucket_expr("user_id", cuts, sql_type)
    rv = f"(SELECT id, user_id FROM {_src(reviews)} WHERE user_id IS NOT NULL)"
    queries = {"reviews": (f"SELECT user_id, rating, polarity, language, {part} AS part "
                           f"FROM {_src(reviews)} WHERE user_id IS NOT NULL", 48)}
    if aspects is not None:
        queries["aspects"] = (f"SELECT user_id, aspect, score, {part} AS part FROM "
                              f"(SELECT r.user_id, a.aspect, a.score FROM {_src(aspects)} a "
                              f"JOIN {rv} r ON a.review_id = r.id)", 40)
    if embeddings is not None and embedding_dim:
        cols = ", ".join(f"e.e{i}" for i in range(embedding_dim))
        queries["embeddings"] = (f"SELECT *, {part} AS part FROM (SELECT r.user_id, {cols} "
                                 f"FROM {_src(embeddings)} e JOIN {rv} r ON e.id = r.id)",
                                 24 + 4 * embedding_dim)
    if customers is not None:
        queries["customers"] = (
            f"SELECT * EXCLUDE (filename, file_row_number), "
            f"(filename, file_row_number) AS _cu_row, {_bucket_expr('id', cuts, sql_type)} "
            f"AS part FROM read_parquet({_glob_arg(customers)}, filename=true, "
            f"file_row_number=true) WHERE id IS NOT NULL", 64)
    settings = ("partitioned_write_flush_threshold", "partitioned_write_max_open_files")
    old = {k: con.execute(f"SELECT current_setting('{k}')").fetchone()[0] for k in settings}
    per_group = math.isqrt(n - 1) + 1 if n > max_files else n  # ~sqrt(n) files per pass
    roots = {}
    try:
        for name, (q, width) in queries.items():
            rows = max(1, buffer_bytes // width)
            con.execute(f"SET partitioned_write_flush_threshold = {max(2048, rows // 8)}")
            con.execute(f"SET partitioned_write_max_open_files = {max(n, 1)}")
            opts = (f"FORMAT parquet, ROW_GROUP_SIZE "
                    f"{max(2048, min(16_384, 4 * rows // min(n, per_group)))}, COMPRESSION lz4")
            root = folder / name
            if per_group == n:
                con.execute(f"COPY ({q}) TO {_lit(root)} ({opts}, PARTITION_BY (part))")
            else:  # two passes: ~sqrt(n) groups of ranges, then each group into its ranges
                groups = folder / f"{name}-groups"
                con.execute(f"COPY (SELECT *, part // {per_group} AS grp FROM ({q})) TO "
                            f"{_lit(groups)} ({opts}, PARTITION_BY (grp))")
                for sub in sorted(groups.iterdir()):
                    tmp = folder / f"{name}-{sub.name}"
                    con.execute(f"COPY (SELECT * FROM read_parquet({_glob_arg(sub)}, "
                                f"hive_partitioning=false)) TO {_lit(tmp)} "
                                f"({opts}, PARTITION_BY (part))")
                    root.mkdir(exist_ok=True)
                    for d in tmp.iterdir():
                        d.rename(root / d.name)
                    tmp.rmdir()
                    shutil.rmtree(sub)
                groups.rmdir()
            for i in range(n):
                sub = root / f"part={i}"
                if not sub.is_dir():  # a range without rows of this input
                    sub.mkdir(parents=True)
                    con.execute(f"COPY (SELECT * EXCLUDE (part) FROM ({q}) LIMIT 0) TO "
                                f"{_lit(sub / 'empty.parquet')} (FORMAT parquet)")
            roots[name] = root
    finally:
        for k, v in old.items():
            con.execute(f"SET {k} = {int(v)}")
    return roots


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
    import tempfile

    cols = ([r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_src(customers)}").fetchall()]
            if customers is not None else None)
    langs = review_languages(con, reviews)
    buckets = user_buckets(con, reviews, customers, users_per_bucket)
    out = Path(out)
    if len(buckets) == 1:  # one range: aggregate the inputs as they are
        return _write_profiles(con, out, [dict(reviews=reviews, aspects=aspects,
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
        return _write_profiles(con, out, parts, cols, langs, embedding_dim, batch_rows,
                               partitioned=True)


def _write_profiles(con, out: Path, parts: list[dict], cols, langs, embedding_dim: int,
                    batch_rows: int, *, partitioned: bool) -> Path:
    """One :func:`profile_sql` per part (in order), mean embeddings added, summaries added
    ``batch_rows`` profiles at a time, all written into one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adpilot.profiling.profiles import _summaries

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
                emb = _bucket_embeddings(con, frame["user_id"], p["reviews"], p["embeddings"],
                                         embedding_dim, batch_rows, partitioned=partitioned)
                frame = pd.concat([frame, pd.DataFrame(emb, columns=[
                    f"e{i}" for i in range(embedding_dim)], index=frame.index)], axis=1)
            for lo_row in range(0, len(frame), batch_rows):
                part = frame.iloc[lo_row:lo_row + batch_rows].copy()
                part["summary"] = _summaries(part, "en").astype(object)
                part["summary_zh"] = _summaries(part, "zh").astype(object)
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


def _bucket_embeddings(con, users: pd.Series, reviews, embeddings, dim: int, batch_rows: int,
                       *, partitioned: bool):
    """Mean review embedding of each user in one range (zeros without any), normalised as
    :func:`~adpilot.profiling.profiles.user_embeddings` does, summed from streamed batches: a
    64-wide aggregate state per user would make DuckDB's hash table rows ~1 KB each.
    ``partitioned``: the embedding rows carry ``user_id`` (:func:`partition_inputs`)."""
    import numpy as np

    if partitioned:
        cols = ", ".join(f"e{i}" for i in range(dim))
        rel = con.sql(f"SELECT user_id, {cols} FROM {_src(embeddings)}")
    else:
        cols = ", ".join(f"e.e{i}" for i in range(dim))
        rel = con.sql(f"SELECT r.user_id, {cols} FROM {_src(embeddings)} e JOIN "
                      f"(SELECT id, user_id FROM {_src(reviews)} WHERE user_id IS NOT NULL) r "
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
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms == 0, 1, norms)).astype(np.float32)


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
    import tempfile

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


def segment_stats(con, profiles: str | Path, features: list[str]) -> pd.DataFrame:
    """Per segment: size, share and the mean of each feature, next to the overall mean."""
    means = ", ".join(f"avg({c}) AS {c}" for c in features)
    per = con.execute(f"SELECT segment, count(*) AS size, count(*) / sum(count(*)) OVER () AS share"
                      f"{', ' + means if means else ''} FROM {_src(profiles)} GROUP BY segment "
                      f"ORDER BY CAST(substr(segment, 2) AS INTEGER)").df()
    overall = con.execute(f"SELECT 'all' AS segment, count(*) AS size, 1.0 AS share"
                          f"{', ' + means if means else ''} FROM {_src(profiles)}").df()
    return pd.concat([per, overall], ignore_index=True)
