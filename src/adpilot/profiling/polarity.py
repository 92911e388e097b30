"""Review polarity in [-1, 1]: from the star rating, or from the default sentiment models
(2·P(positive) − 1, English and Chinese reviews each through their own model), and the choice
between them (``auto`` | ``model`` | ``rating``), made once per profiling run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import MissingDependencyError
from adpilot.profiling.constants import POLARITY_MODELS

# A sentiment scorer maps reviews (id, text, language, …) to polarity in [-1, 1] per review.
SentimentScorer = Callable[[pd.DataFrame], pd.Series]
Progress = Callable[[str, int, int], None]  # (what, done, total)


def rating_polarity(reviews: pd.DataFrame) -> pd.Series:
    """Polarity from the star rating ((r - 3) / 2); 0 where there is no rating."""
    return ((reviews[C.RATING].astype(float) - 3) / 2).fillna(0.0)


def model_polarity(models: Mapping[str, Any], reviews: pd.DataFrame) -> np.ndarray:
    """2·P(positive) − 1 per review (in row order) from the polarity model of its language;
    a language without a model goes to the English one."""
    out = np.zeros(len(reviews))
    lang = reviews[C.LANGUAGE].where(reviews[C.LANGUAGE].isin(list(models)), "en")
    for code, model in models.items():
        mask = (lang == code).to_numpy()
        if mask.any():
            texts = reviews.loc[mask, C.TEXT].fillna("").astype(str).tolist()
            proba = model.predict_proba(texts)
            out[mask] = 2 * proba[:, list(model.classes_).index(1)] - 1
    return out


@dataclass(frozen=True)
class SentimentChoice:
    """What scores the reviews of one run.

    ``source``: what the profiles record (``rating``, the models' label, or the stated
    fallback); ``mode``: ``model`` or ``rating``; ``models_dir``: the folder workers load the
    models from; ``models``: the models loaded in this process (``load=True``).
    """

    source: str
    mode: str
    models_dir: str | None = None
    models: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def scorer(self) -> SentimentScorer:
        """The in-process scorer: the rating, or the loaded models."""
        if self.mode == "rating":
            return rating_polarity
        models = self.models
        if models is None:
            raise ValueError("SentimentChoice.scorer() needs the models: resolve_sentiment(load=True)")
        return lambda reviews: pd.Series(model_polarity(models, reviews), index=reviews.index)


def sentiment_fallback(exc: BaseException) -> str:
    """State the star-rating fallback of ``auto`` sentiment (once per process) and return the
    label the profiles record for it."""
    from adpilot import fallbacks

    reason = ("the ml extra is not installed" if isinstance(exc, (ImportError,
                                                                  MissingDependencyError))
              else fallbacks.unavailable_reason(exc))
    fallbacks.note("sentiment", "star ratings ((r - 3) / 2; a review without a rating counts "
                   "as neutral)", reason,
                   "run `adpilot models fetch`, set ADPILOT_DATA_DIR, or train on your own "
                   "labelled reviews with `adpilot sentiment train --data …`")
    return "rating (fallback: no sentiment model)"


def sentiment_unavailable_errors() -> tuple[type[BaseException], ...]:
    """What ``auto`` sentiment falls back on: no ml extra, or no data to train the defaults."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError

    return ImportError, MissingDependencyError, DatasetUnavailableError, ChecksumError


def resolve_sentiment(mode: str = "auto", progress: Progress | None = None, *,
                      load: bool = False) -> SentimentChoice:
    """``rating``: the star rating; ``model``: the default polarity models (trained here first
    when missing: the quick kind, a minute or two); ``auto``: the models when they can be had
    (``ml`` extra, the public data or a trained model in the cache), else the rating, a
    fallback stated once. Training happens here, on the driver, so workers only load.
    ``load``: also load the models into this process (within the same fallback)."""
    if mode == "rating":
        return SentimentChoice("rating", "rating")
    try:
        from adpilot.profiling.sentiment import ensure_default_models, load_default_model

        ensure_default_models(POLARITY_MODELS, progress=progress)
        models = ({lang: load_default_model(task, lang) for task, lang in POLARITY_MODELS}
                  if load else None)
    except sentiment_unavailable_errors() as exc:
        if mode == "model":
            raise
        return SentimentChoice(sentiment_fallback(exc), "rating")
    from adpilot.profiling.sentiment import default_model_dir, source_label

    return SentimentChoice(source_label(POLARITY_MODELS), "model",
                           str(default_model_dir(*POLARITY_MODELS[0]).parent), models)
