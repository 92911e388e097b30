"""``adpilot models fetch``: build the default models from the public data sets, the explicit
way to get what the stages otherwise replace with a stated fallback; :func:`ensure_copy_models`,
the training step ``adpilot run`` and the copy studio take before they write or score copy, and
:func:`ensure_sentiment_models`, the one before profiling.

Each part fetches the data sets it needs (:func:`adpilot.datasets_fetch.locate`: data folder,
cache, or a sha256-checked download) and calls the part's own builder, which does nothing when
its model is already in the model cache. The caller passes the model store and the
:class:`~adpilot.datasets_fetch.DataSources` (a shell builds both from settings).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from adpilot.artifacts import ModelStore
from adpilot.datasets_fetch import DataSources

Progress = Callable[[str, int, int], None]  # (task, done, total)
Log = Callable[[str], None]

PARTS: dict[str, tuple[str, ...]] = {  # part -> data sets it trains on
    "sentiment": ("womens_clothing", "online_shopping_zh"),
    "complaint": ("womens_clothing", "online_shopping_zh"),
    "fluency": ("womens_clothing", "upworthy", "online_shopping_zh"),
    "attractiveness": ("upworthy",),
}


Builder = Callable[[ModelStore, DataSources, Progress | None, Log | None], list[str]]


def _sentiment(store: ModelStore, sources: DataSources, progress: Progress | None,
               log: Log | None) -> list[str]:
    from adpilot.profiling.sentiment import ensure_default_models

    return [str(p) for p in ensure_default_models(progress=progress, store=store,
                                                  sources=sources).values()]


def _complaint(store: ModelStore, sources: DataSources, progress: Progress | None,
               log: Log | None) -> list[str]:
    from adpilot.generation.tone import ensure_complaint_models

    return [str(p) for p in ensure_complaint_models(store, sources=sources,
                                                    progress=progress).values()]


def _fluency(store: ModelStore, sources: DataSources, progress: Progress | None,
             log: Log | None) -> list[str]:
    from adpilot.scoring.fluency import ensure_reference_lms

    return [str(p) for p in ensure_reference_lms(store, sources=sources,
                                                 progress=progress).values()]


def _attractiveness(store: ModelStore, sources: DataSources, progress: Progress | None,
                    log: Log | None) -> list[str]:
    from adpilot.scoring.attractiveness import build_default_model

    return [str(build_default_model(sources=sources, log=log, progress=progress,
                                    store=store))]


BUILDERS: dict[str, Builder] = {
    "sentiment": _sentiment, "complaint": _complaint, "fluency": _fluency,
    "attractiveness": _attractiveness,
}
COPY_PARTS = ("complaint", "fluency")  # what copy generation and its scorecard load


def ensure_copy_models(store: ModelStore, langs: Sequence[str] = ("en", "zh"), *,
                       sources: DataSources, parts: Sequence[str] = COPY_PARTS,
                       progress: Progress | None = None) -> dict[str, str]:
    """The explicit training step before copy is written or scored (``adpilot run``'s copy
    step, the copy studio, ``adpilot score``): build the complaint classifiers and fluency
    references of ``langs`` that ``store`` lacks from the data sets of ``sources`` (seconds
    each, logged with what and why).
    Where their data cannot be had nothing is built and the stage later runs its stated
    fallback; per part ``ok`` or the reason."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError
    from adpilot.generation.tone import ensure_complaint_models
    from adpilot.scoring.fluency import ensure_reference_lms

    builders = {"complaint": ensure_complaint_models, "fluency": ensure_reference_lms}
    out = {}
    for part in parts:
        try:
            builders[part](store, list(langs), sources=sources, progress=progress)
        except (DatasetUnavailableError, ChecksumError) as exc:
            out[part] = f"not built: {exc}"
            continue
        out[part] = "ok"
    return out


def ensure_sentiment_models(store: ModelStore, *, sources: DataSources,
                            progress: Progress | None = None) -> str:
    """The explicit training step before profiling (``adpilot run``'s profile step,
    ``adpilot profile build``, the API's and dashboard's profiling jobs): build the polarity
    models profiling loads (English quick, Chinese TF-IDF + LR; a minute or two on 2 cores)
    that ``store`` lacks, from the data sets of ``sources``. ``ok``, or ``not built: <why>``
    where their data or the ``ml`` extra cannot be had (profiling then states the star-rating
    fallback)."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError
    from adpilot.errors import MissingDependencyError
    from adpilot.profiling.constants import POLARITY_MODELS

    try:
        from adpilot.profiling.sentiment import ensure_default_models

        ensure_default_models(POLARITY_MODELS, store=store, sources=sources, progress=progress)
    except (DatasetUnavailableError, ChecksumError, ImportError, MissingDependencyError) as exc:
        return f"not built: {exc}"
    return "ok"


def fetch_models(parts: list[str] | None = None, *, store: ModelStore, sources: DataSources,
                 progress: Progress | None = None, download_progress: Progress | None = None,
                 log: Log | None = None) -> dict[str, dict]:
    """Build each part (default: all of :data:`PARTS`) into ``store`` from the data sets of
    ``sources``; per part ``ok``, the model paths and seconds, or the error. One part's failure
    does not stop the others."""
    from adpilot.datasets_fetch import locate
    from adpilot.errors import AdpilotError, ConfigError

    chosen = parts or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise ConfigError(f"unknown model part(s) {', '.join(unknown)}; expected any of "
                          f"{', '.join(PARTS)}")
    out: dict[str, dict] = {}
    for part in chosen:
        started = time.perf_counter()
        try:
            for name in PARTS[part]:
                locate(name, sources, progress=download_progress)
            if log:
                log(f"building the {part} model(s)")
            paths = BUILDERS[part](store, sources, progress, log)
        except AdpilotError as exc:
            out[part] = {"ok": False, "error": str(exc)}
            continue
        out[part] = {"ok": True, "models": [str(Path(p)) for p in paths],
                     "seconds": round(time.perf_counter() - started, 1)}
    return out
