"""Numbers and names the profiling stage shares between its steps, the pandas profiles and the
DuckDB aggregation, so each is said once."""

from __future__ import annotations

# A review whose polarity (in [-1, 1]) is below this counts as negative (``negative_share``).
NEGATIVE_REVIEW = -0.2
# A per-user aspect opinion above +OPINION reads "happy with", below -OPINION "unhappy with"
# (summaries, ``query_profiles``).
OPINION = 0.2

# The default polarity models: one per review language; other languages go to English.
POLARITY_LANGS = ("en", "zh")
POLARITY_MODELS = [("polarity", lang) for lang in POLARITY_LANGS]

# LSA embeddings run on an executor are fitted on at most this many texts (all when fewer).
FIT_SAMPLE = 50_000

# Output columns of the review steps.
POLARITY = "polarity"
ASPECT_COLUMNS = ["review_id", "aspect", "score", "mentions", "evidence"]


def embedding_columns(dim: int) -> list[str]:
    """The columns of a ``dim``-wide review embedding in step outputs: ``e0`` … ``e{dim-1}``."""
    return [f"e{i}" for i in range(dim)]
