"""Review polarity in [-1, 1]: from the star rating, or from the default sentiment models
(2·P(positive) − 1, English and Chinese reviews each through their own model), and the choice
between them (``auto`` | ``model`` | ``rating``), made once per profiling run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from adpilot.artifacts import ModelStore
from adpilot.data import columns as C
from adpilot.errors import InputError, MissingDependencyError
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


def sentiment_fallback(exc: BaseException | str) -> str:
    """State the star-rating fallback of ``auto`` sentiment (once per process), with why
    (``exc``: the error, or the reason in words) and the command that builds the models, and
    return the label the profiles record for it."""
    from adpilot import fallbacks
    from adpilot.profiling.sentiment.defaults import FETCH_COMMAND

    if isinstance(exc, str):
        reason = exc
    elif isinstance(exc, (ImportError, MissingDependencyError)):
        reason = "the ml extra is not installed"
    else:
        reason = fallbacks.unavailable_reason(exc)
    fallbacks.note("sentiment", "star ratings ((r - 3) / 2; a review without a rating counts "
                   "as neutral)", reason,
                   f"run `{FETCH_COMMAND}`, or train on your own labelled reviews with "
                   "`adpilot sentiment train --data …`")
    return "rating (fallback: no sentiment model)"


def state_unbuilt(status: str, mode: str) -> None:
    """After the explicit training step: when it could not build the models (``status`` from
    :func:`adpilot.models_fetch.ensure_sentiment_models`, ``not built: <why>``), ``auto``
    states the star-rating fallback with that reason (the data set or extra that was missing)
    and ``model`` raises :class:`~adpilot.errors.InputError` with it."""
    from adpilot.profiling.sentiment.defaults import FETCH_COMMAND

    if status == "ok" or mode == "rating":
        return
    if mode == "model":
        raise InputError(f"--sentiment model: the sentiment models were {status}; build them "
                         f"with `{FETCH_COMMAND}`")
    sentiment_fallback(status.removeprefix("not built: "))


def missing_models(store: ModelStore | None) -> str | None:
    """Why the polarity models cannot be loaded from ``store`` (None: they are all there)."""
    from adpilot.profiling.sentiment.defaults import FETCH_COMMAND, cached_default_dir

    if store is None:
        return f"no model store was given to profiling (build the models with `{FETCH_COMMAND}`)"
    missing = [f"{task}/{lang}" for task, lang in POLARITY_MODELS
               if cached_default_dir(task, lang, store) is None]
    if missing:
        return (f"the sentiment model(s) {', '.join(missing)} are not built in {store.root} "
                f"(profiling only loads them; build them with `{FETCH_COMMAND}`)")
    return None


def resolve_sentiment(mode: str = "auto", *, store: ModelStore | None = None,
                      load: bool = False, precision: str = "fp32") -> SentimentChoice:
    """``rating``: the star rating; ``model``: the default polarity models in ``store``;
    ``auto``: those models when they are there and load, else the rating, a fallback stated
    once with why and the command that builds them. Nothing is trained here: the shells and
    the pipeline build the models first (:func:`adpilot.models_fetch.ensure_sentiment_models`).
    ``model`` without them raises :class:`~adpilot.errors.InputError` naming that command.
    ``load``: also load the models into this process (``precision``: what the shell read)."""
    if mode == "rating":
        return SentimentChoice("rating", "rating")
    why = missing_models(store)
    if why is not None:
        if mode == "model":
            raise InputError(f"--sentiment model: {why}")
        return SentimentChoice(sentiment_fallback(why), "rating")
    assert store is not None
    try:
        from adpilot.profiling.sentiment import load_default_model

        models = ({lang: load_default_model(task, lang, store=store, precision=precision)
                   for task, lang in POLARITY_MODELS} if load else None)
    except (ImportError, MissingDependencyError) as exc:
        if mode == "model":
            raise
        return SentimentChoice(sentiment_fallback(exc), "rating")
    from adpilot.profiling.sentiment import default_model_dir, source_label

    return SentimentChoice(source_label(POLARITY_MODELS, store), "model",
                           str(default_model_dir(*POLARITY_MODELS[0], store).parent), models)
