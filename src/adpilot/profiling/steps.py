"""The review steps of profiling as batch stages (sentiment, aspects, embeddings), and running
them on an executor with their outputs as Parquet part files.

Each step is a class built once per worker (models load in ``__init__``) and then called on
batches. Each is batch-invariant (a row's output depends on that row only), so the local and
the Ray executor give the same rows as the in-process run. Models are passed by *location*
(``models_dir``: the same path on every node, e.g. a shared volume or a cache populated before
the run) or as fitted objects (LSA), which Ray ships to the actors through its object store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adpilot.backends.executor import Executor, Stage
from adpilot.data import columns as C
from adpilot.devices import limit_threads
from adpilot.profiling.aspects import aspect_labels, extract_aspects
from adpilot.profiling.constants import ASPECT_COLUMNS, POLARITY, POLARITY_LANGS, embedding_columns
from adpilot.profiling.polarity import SentimentChoice, model_polarity, rating_polarity


class SentimentStage:
    """Per-review polarity in [-1, 1]: ``model`` (the polarity models for English and Chinese
    under ``models_dir``, 2·P(positive) − 1) or ``rating`` ((r − 3) / 2).

    In: ``id``, ``text``, ``language`` (and ``rating``). Out: ``id``, ``polarity``.
    """

    def __init__(self, mode: str = "model", models_dir: str | None = None,
                 num_threads: int | None = 1, device: str = "cpu") -> None:
        self.mode = mode
        self.models: dict[str, Any] = {}
        if mode == "model":
            from adpilot.profiling.sentiment import SentimentModel, default_dir_in

            limit_threads(num_threads)
            for lang in POLARITY_LANGS:
                model = SentimentModel.load(default_dir_in(models_dir, "polarity", lang),
                                            task="polarity", lang=lang, device=device)
                model.num_threads = num_threads
                self.models[lang] = model

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.reset_index(drop=True)
        polarity = (rating_polarity(batch) if self.mode == "rating"
                    else model_polarity(self.models, batch))
        return pd.DataFrame({"id": batch[C.ID], POLARITY: polarity})


class AspectStage:
    """Aspect opinions per review (:func:`~adpilot.profiling.aspects.extract_aspects`).

    In: ``id``, ``text``, ``language``, ``polarity``. Out: one row per (review, aspect).
    """

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.reset_index(drop=True)
        out = extract_aspects(batch, overall=batch[POLARITY])
        return out.astype({"review_id": str, "aspect": str, "score": float, "mentions": "int64",
                           "evidence": str})


class EmbeddingStage:
    """Text embeddings as columns ``e0..e{d-1}`` (float32) beside ``id``.

    ``embedder``: a fitted embedder object (LSA fitted on the driver, shipped to the workers),
    or a registered name (``minilm``) built in each worker.
    """

    def __init__(self, embedder: object | str = "minilm", num_threads: int | None = 1) -> None:
        limit_threads(num_threads)
        if isinstance(embedder, str):
            from adpilot.profiling.embeddings import get_embedder

            embedder = get_embedder(embedder)
        self.embedder = embedder

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        vecs = np.asarray(self.embedder.encode(batch[C.TEXT].tolist()), dtype=np.float32)
        out = pd.DataFrame(vecs, columns=embedding_columns(vecs.shape[1]))
        out.insert(0, C.ID, batch[C.ID].to_numpy())
        return out


def resolve_embedder(name: str = "auto") -> str:
    """``auto`` → ``minilm`` when sentence-transformers is installed, else ``lsa``."""
    if name != "auto":
        return name
    try:
        import sentence_transformers  # noqa: F401

        return "minilm"
    except ImportError:
        return "lsa"


def fitted_embedder(name: str, texts: list[str]) -> object | str:
    """What the embedding stage gets: LSA fitted here on ``texts`` (shipped to the workers as an
    object), any other embedder by name (built in each worker)."""
    if name != "lsa":
        return name
    from adpilot.profiling.embeddings import LsaEmbedder

    return LsaEmbedder().fit(texts)


def fit_sample(texts: pd.Series, n: int, seed: int) -> list[str]:
    """All texts when there are at most ``n``, else a seeded sample of ``n`` (in row order)."""
    values = [str(t) for t in texts]
    if len(values) <= n:
        return values
    pick = np.sort(np.random.default_rng(seed).choice(len(values), n, replace=False))
    return [values[i] for i in pick]


def aspect_order(aspects: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Aspects in the order :func:`extract_aspects` gives on the whole table (language, then
    aspect, then review position): part files come back in any order."""
    if aspects.empty:
        return pd.DataFrame(columns=ASPECT_COLUMNS)
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


def run_review_stages(executor: Executor, reviews: pd.DataFrame | str | Path, work: Path, *,
                      sentiment: SentimentChoice, embedder: str | None,
                      fit_texts: list[str] | None, with_polarity: Callable[[Path], Any],
                      batch_size: int = 512) -> StageOutputs:
    """Sentiment → aspects (needs polarity) → embeddings on ``executor``, each written as
    Parquet parts under ``work``.

    ``reviews`` is a DataFrame or a Parquet path; ``with_polarity(sentiment_dir)`` returns the
    reviews joined with their polarity (in memory or as Parquet); ``fit_texts``: what LSA is
    fitted on (``embedder="lsa"``); ``embedder=None``: no embeddings.
    """
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args)
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    kwargs = {"mode": sentiment.mode, "models_dir": sentiment.models_dir}
    sent = timed("sentiment", executor.to_parquet,
                 Stage("sentiment", SentimentStage, kwargs, batch_size=batch_size), reviews,
                 work / "sentiment")
    aspects = timed("aspects", executor.to_parquet,
                    Stage("aspects", AspectStage, batch_size=batch_size), with_polarity(sent),
                    work / "aspects")
    emb_dir, dim = None, 0
    if embedder is not None:
        fitted = timed("embedding fit", fitted_embedder, embedder, fit_texts or [])
        emb_dir = timed("embeddings", executor.to_parquet,
                        Stage("embeddings", EmbeddingStage, {"embedder": fitted},
                              batch_size=batch_size), reviews, work / "embeddings")
        import pyarrow.parquet as pq

        first = next(iter(sorted(emb_dir.glob("*.parquet"))), None)
        dim = 0 if first is None else len(pq.read_schema(first).names) - 1
    return StageOutputs(sent, aspects, emb_dir, dim, timings)
