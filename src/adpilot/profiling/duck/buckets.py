"""Splitting the users into consecutive id ranges and writing every input once into one
partition per range, so that each range is aggregated alone and memory is set by the size of a
range, not by the data."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from adpilot.profiling.duck.sql import parquet_glob, parquet_source, sql_literal


def user_buckets(con, reviews: str | Path, customers: str | Path | None,
                 users_per_bucket: int, seed: int = 0) -> list[tuple]:
    """Consecutive user-id ranges ``(lo, hi)`` (``None``: open end) of about
    ``users_per_bucket`` users each, from a HyperLogLog count of the users and a fixed-size
    reservoir sample of their ids (neither grows with the data)."""
    users = users_sql(reviews, customers)
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


def users_sql(reviews: str | Path, customers: str | Path | None) -> str:
    users = f"SELECT user_id FROM {parquet_source(reviews)} WHERE user_id IS NOT NULL"
    if customers is not None:
        users += f" UNION ALL SELECT id AS user_id FROM {parquet_source(customers)} WHERE id IS NOT NULL"
    return users


def bucket_expr(col: str, cuts: list, sql_type: str) -> str:
    """The index of the user-id range ``col`` falls in (the number of ``cuts`` ≤ it), as a
    balanced tree of ``CASE`` comparisons: log2(ranges) comparisons per row, not one per range."""
    lits = [f"CAST({sql_literal(str(c))} AS {sql_type})" for c in cuts]

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
    sql_type = con.execute(f"DESCRIBE SELECT user_id FROM ({users_sql(reviews, customers)})"
                           ).fetchall()[0][1]
    part = bucket_expr("user_id", cuts, sql_type)
    rv = f"(SELECT id, user_id FROM {parquet_source(reviews)} WHERE user_id IS NOT NULL)"
    queries = {"reviews": (f"SELECT user_id, rating, polarity, language, {part} AS part "
                           f"FROM {parquet_source(reviews)} WHERE user_id IS NOT NULL", 48)}
    if aspects is not None:
        queries["aspects"] = (f"SELECT user_id, aspect, score, {part} AS part FROM "
                              f"(SELECT r.user_id, a.aspect, a.score FROM {parquet_source(aspects)} a "
                              f"JOIN {rv} r ON a.review_id = r.id)", 40)
    if embeddings is not None and embedding_dim:
        cols = ", ".join(f"e.e{i}" for i in range(embedding_dim))
        queries["embeddings"] = (f"SELECT *, {part} AS part FROM (SELECT r.user_id, {cols} "
                                 f"FROM {parquet_source(embeddings)} e JOIN {rv} r ON e.id = r.id)",
                                 24 + 4 * embedding_dim)
    if customers is not None:
        queries["customers"] = (
            f"SELECT * EXCLUDE (filename, file_row_number), "
            f"(filename, file_row_number) AS _cu_row, {bucket_expr('id', cuts, sql_type)} "
            f"AS part FROM read_parquet({parquet_glob(customers)}, filename=true, "
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
                con.execute(f"COPY ({q}) TO {sql_literal(root)} ({opts}, PARTITION_BY (part))")
            else:  # two passes: ~sqrt(n) groups of ranges, then each group into its ranges
                groups = folder / f"{name}-groups"
                con.execute(f"COPY (SELECT *, part // {per_group} AS grp FROM ({q})) TO "
                            f"{sql_literal(groups)} ({opts}, PARTITION_BY (grp))")
                for sub in sorted(groups.iterdir()):
                    tmp = folder / f"{name}-{sub.name}"
                    con.execute(f"COPY (SELECT * FROM read_parquet({parquet_glob(sub)}, "
                                f"hive_partitioning=false)) TO {sql_literal(tmp)} "
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
                                f"{sql_literal(sub / 'empty.parquet')} (FORMAT parquet)")
            roots[name] = root
    finally:
        for k, v in old.items():
            con.execute(f"SET {k} = {int(v)}")
    return roots
