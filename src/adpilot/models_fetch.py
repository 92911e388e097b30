"""``adpilot models fetch``: build the default models from the public data sets, the explicit
way to get what the stages otherwise build on first use (or replace with a stated fallback).

Each part fetches the data sets it needs (:func:`adpilot.datasets_fetch.locate`: data folder,
cache, or a sha256-checked download) and calls the part's own builder, which does nothing when
its model is already in the model cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[str, int, int], None]  # (task, done, total)
Log = Callable[[str], None]

PARTS: dict[str, tuple[str, ...]] = {  # part -> data sets it trains on
    "sentiment": ("womens_clothing", "online_shopping_zh"),
    "complaint": ("womens_clothing", "online_shopping_zh"),
    "fluency": ("womens_clothing", "upworthy", "online_shopping_zh"),
    "attractiveness": ("upworthy",),
}


def _sentiment(progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.profiling.sentiment import ensure_default_models

    return [str(p) for p in ensure_default_models(progress=progress).values()]


def _complaint(progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.generation.tone import _cache_file, build_complaint_model

    out = []
    for i, lang in enumerate(("en", "zh")):
        build_complaint_model(lang)
        if progress:
            progress("complaint models", i + 1, 2)
        out.append(str(_cache_file(lang)))
    return out


def _fluency(progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.scoring.fluency import build_reference_lm, reference_dir

    out = []
    for i, lang in enumerate(("en", "zh")):
        build_reference_lm(lang)
        if progress:
            progress("fluency references", i + 1, 2)
        out.append(str(reference_dir(lang)))
    return out


def _attractiveness(progress: Progress | None, log: Log | None) -> list[str]:
    from adpilot.scoring.attractiveness import build_default_model

    return [str(build_default_model(log=log, progress=progress))]


BUILDERS: dict[str, Callable[[Progress | None, Log | None], list[str]]] = {
    "sentiment": _sentiment, "complaint": _complaint, "fluency": _fluency,
    "attractiveness": _attractiveness,
}


def fetch_models(parts: list[str] | None = None, *, progress: Progress | None = None,
                 download_progress: Progress | None = None,
                 log: Log | None = None) -> dict[str, dict]:
    """Build each part (default: all of :data:`PARTS`); per part ``ok``, the model paths and
    seconds, or the error. One part's failure does not stop the others."""
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
                locate(name, progress=download_progress)
            if log:
                log(f"building the {part} model(s)")
            paths = BUILDERS[part](progress, log)
        except AdpilotError as exc:
            out[part] = {"ok": False, "error": str(exc)}
            continue
        out[part] = {"ok": True, "models": [str(Path(p)) for p in paths],
                     "seconds": round(time.perf_counter() - started, 1)}
    return out
