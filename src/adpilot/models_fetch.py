"""``adpilot models fetch``: build the default models from the public data sets, the explicit
way to get what the stages otherwise replace with a stated fallback; :func:`ensure_copy_models`,
the training step ``adpilot run`` and the copy studio take before they write or score copy.

Each part fetches the data sets it needs (:func:`adpilot.datasets_fetch.locate`: data folder,
cache, or a sha256-checked download) and calls the part's own builder, which does nothing when
its model is already in the model cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from adpilot.artifacts import ModelStore

Progress = Callable[[str, int, int], None]  # (task, done, total)
Log = Callable[[str], None]

PARTS: dict[str, tuple[str, ...]] = {  # part -> data sets it trains on
    "sentiment": ("womens_clothing", "online_shopping_zh"),
    "complaint": ("womens_clothing", "online_shopping_zh"),
    "fluency": ("womens_clothing", "upworthy", "online_shopping_zh"),
    "attractiveness": ("upworthy",),
}


Builder = Callable[[ModelStore, Progress | None, Log | None], list[str]]


def _sentiment(store: ModelStore, progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.profiling.sentiment import ensure_default_models

    return [str(p) for p in ensure_default_models(progress=progress, store=store).values()]


def _complaint(store: ModelStore, progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.generation.tone import ensure_complaint_models

    return [str(p) for p in ensure_complaint_models(store, progress=progress).values()]


def _fluency(store: ModelStore, progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.scoring.fluency import ensure_reference_lms

    return [str(p) for p in ensure_reference_lms(store, progress=progress).values()]


def _attractiveness(store: ModelStore, progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.scoring.attractiveness import build_default_model

    return [str(build_default_model(log=log, progress=progress, store=store))]


BUILDERS: dict[str, Builder] = {
    "sentiment": _sentiment, "complaint": _complaint, "fluency": _fluency,
    "attractiveness": _attractiveness,
}
COPY_PARTS = ("complaint", "fluency")  # what copy generation and its scorecard load


def ensure_copy_models(store: ModelStore, langs: Sequence[str] = ("en", "zh"), *,
                       parts: Sequence[str] = COPY_PARTS,
                       progress: Progress | None = None) -> dict[str, str]:
    """The explicit training step before copy is written or scored (``adpilot run``'s copy
    step, the copy studio, ``adpilot score``): build the complaint classifiers and fluency
    references of ``langs`` that ``store`` lacks (seconds each, logged with what and why).
    Where their data cannot be had nothing is built and the stage later runs its stated
    fallback; per part ``ok`` or the reason."""
    from adpilot.datasets_fetch import ChecksumError, DatasetUnavailableError
    from adpilot.generation.tone import ensure_complaint_models
    from adpilot.scoring.fluency import ensure_reference_lms

    builders = {"complaint": ensure_complaint_models, "fluency": ensure_reference_lms}
    out = {}
    for part in parts:
        try:
            builders[part](store, list(langs), progress=progress)
        except (DatasetUnavailableError, ChecksumError) as exc:
            out[part] = f"not built: {exc}"
            continue
        out[part] = "ok"
    return out


def fetch_models(parts: list[str] | None = None, *, progress: Progress | None = None,
                 download_progress: Progress | None = None, log: Log | None = None,
                 store: ModelStore | None = None) -> dict[str, dict]:
    """Build each part (default: all of :data:`PARTS`) into ``store`` (the settings' when
    None); per part ``ok``, the model paths and seconds, or the error. One part's failure does
    not stop the others."""
    from adpilot.datasets_fetch import locate
    from adpilot.errors import AdpilotError, ConfigError

    store = store or ModelStore.from_settings()
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
                locate(name, progress=download_progress)
            if log:
                log(f"building the {part} model(s)")
            paths = BUILDERS[part](store, progress, log)
        except AdpilotError as exc:
            out[part] = {"ok": False, "error": str(exc)}
            continue
        out[part] = {"ok": True, "models": [str(Path(p)) for p in paths],
                     "seconds": round(time.perf_counter() - started, 1)}
    return out
