"""Profile building and segment statistics in DuckDB over Parquet, in bounded memory.

The per-review outputs of the review steps (polarity, aspect opinions, embeddings) are Parquet
part files; DuckDB aggregates them per user with a fixed ``memory_limit`` (it spills to its temp
folder beyond that), and the result is streamed out in record batches — summaries added batch by
batch — into one Parquet file. Nothing row-sized is ever held in Python, so memory stays flat as
reviews grow (see ``benchmarks/scale_profile.py``).

The columns match :func:`adpilot.profiling.profiles.build_profiles` for the review-derived
statistics (``n_reviews``, ``mean_rating``, ``sentiment_mean``, ``negative_share``,
``language``), aspects (``aspect_*``, ``mentions_*``), demographics and the mean embedding.
Purchase-derived columns (RFM, interests) come from the transactions table and are joined in by
the caller when there is one.

- :mod:`.sql`: connection, sources, the aggregation query, segment statistics;
- :mod:`.buckets`: user-id ranges and the partitioned copy of the inputs;
- :mod:`.build`: the range-by-range build into one Parquet file.
"""

from adpilot.profiling.duck.buckets import partition_inputs, user_buckets
from adpilot.profiling.duck.build import build_profiles_duckdb, build_profiles_parquet
from adpilot.profiling.duck.sql import (
    connect,
    join_polarity,
    profile_sql,
    review_languages,
    sample_texts,
    segment_stats,
)

__all__ = ["build_profiles_duckdb", "build_profiles_parquet", "connect", "join_polarity",
           "partition_inputs", "profile_sql", "review_languages", "sample_texts",
           "segment_stats", "user_buckets"]
