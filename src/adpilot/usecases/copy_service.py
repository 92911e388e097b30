"""Copy for the store's records, as the API and the dashboard ask for it: the copy service
(one lazily built LLM backend, one generation at a time), a message for every member of an
audience (:func:`audience_copy`) and the scorecard of given texts (:func:`score_copy`). The
studio's single request is :func:`adpilot.usecases.studio.generate_copy`.

``data`` is a :class:`~adpilot.usecases.data_overview.DataService`; errors are typed
(:mod:`adpilot.errors`), so a shell answers each by its class."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adpilot.data import columns as C
from adpilot.errors import ConfigError, MissingDependencyError
from adpilot.jsonable import plain, records
from adpilot.usecases.studio import Progress, ensure_copy_models, scoring_available

BackendFactory = Callable[[], Any]
NO_SCORING = ("copy scoring is not available in this installation: the adpilot.scoring stage "
              "is not installed")


class CopyService:
    """Copy generation with one lazily built LLM backend, used by one job at a time
    (in-process models are not thread-safe and take the whole machine anyway). Replies are
    cached in ``cache_dir`` (``Settings.llm_cache_dir``; None: not cached). ``store`` (the
    shell's :class:`~adpilot.artifacts.ModelStore`) holds the models the checks and the ranking
    load; None: their stated fallbacks."""

    def __init__(self, backend_factory: BackendFactory, cache_dir: Path | None = None, *,
                 store: Any = None) -> None:
        self._factory = backend_factory
        self._cache_dir = cache_dir
        self.store = store
        self._backend = None
        self.lock = threading.Lock()  # held while a generation runs
        self._build_lock = threading.Lock()

    def generator(self, **options: Any):
        """A :class:`~adpilot.generation.CopyGenerator` on the backend (built on first use)."""
        try:
            from adpilot.generation import CopyGenerator
        except ImportError as exc:  # the generation stage is optional in a slim install
            raise MissingDependencyError(f"copy generation is not available: {exc}") from None
        with self._build_lock:
            if self._backend is None:
                try:
                    self._backend = self._factory()
                except ImportError as exc:
                    raise MissingDependencyError(f"the LLM backend cannot be loaded: {exc}") from None
        return CopyGenerator(self._backend,
                             **{"cache": self._cache_dir, "store": self.store, **options})

    def check(self) -> None:
        """Raise :class:`MissingDependencyError` if copy cannot be generated here."""
        self.generator()

    def close(self) -> None:
        """Close the backend, if it was built."""
        if self._backend is not None:
            self._backend.close()


def audience_copy(data, copy: CopyService, *, segment: str | None = None,
                  channels: list[str] | tuple[str, ...] = ("email",), mode: str = "segment",
                  max_users: int | None = None, progress: Progress | None = None,
                  first: int = 1000, sources: Any = None) -> dict:
    """A personalised message for every user (of ``segment``; all users without one): copy per
    segment × product, filled per user (:func:`adpilot.generation.campaign.plan_campaign`).
    Returns the counts of messages, passed and personalised ones, and the ``first`` messages.
    ``sources``: where the complaint models' training data are (a
    :class:`~adpilot.datasets_fetch.DataSources`)."""
    from adpilot.generation.campaign import plan_campaign

    profiles = data.table("profiles")
    if segment:
        data.segment(segment)
        profiles = profiles[profiles[C.SEGMENT].astype(str) == segment]
    if progress:
        progress(0.05, f"{len(profiles)} users")
    ensure_copy_models(copy.store, ["en", "zh"], parts=("complaint",),  # the complaint models
                       sources=sources)
    with copy.lock:
        plan = plan_campaign(profiles, data.table("segments"), data.store.read("products"),
                             data.store.read("reviews"), copy.generator(), channels=list(channels),
                             mode=mode, max_users=max_users)
    return {"messages": int(len(plan)), "passed": int(plan["passed"].sum()),
            "personalised": int(plan["personalised"].sum()), "items": records(plan.head(first))}


def score_copy(data, texts: list[str], *, product_id: str | None = None,
               segment: str | None = None, lang: str | None = None,
               sources: Any = None, store: Any = None) -> dict:
    """A scorecard per text (fluency, relevance to ``product_id``, personalisation for
    ``segment``, diversity, readability, tone, predicted attractiveness where the A/B-trained
    model is in ``store``, a :class:`~adpilot.artifacts.ModelStore`) and of the set,
    JSON-ready. :class:`MissingDependencyError` without the scoring stage;
    :class:`ConfigError` for an unknown segment."""
    if not scoring_available():
        raise MissingDependencyError(NO_SCORING)
    from adpilot.generation.compliance import scorecard_guardrails
    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir, is_saved
    from adpilot.scoring.scorecard import Scorecard

    product = data.product(product_id) if product_id else None
    audience = None
    if segment:
        segments = data.table("segments")
        match = segments[segments[C.SEGMENT] == segment] if len(segments) else segments
        if match.empty:
            raise ConfigError(f"unknown segment {segment!r}")
        audience = match.iloc[0].to_dict()
    folder = default_model_dir(store) if store is not None else None
    attract = AttractivenessModel.load(folder) if folder and is_saved(folder) else None
    if store is not None:
        ensure_copy_models(store, [lang] if lang else ["en", "zh"], parts=("fluency",),
                           sources=sources)
    record = _as_dict(product)
    card = Scorecard(attractiveness=attract, guardrails=scorecard_guardrails(record),
                     store=store).score(texts, product=record, audience=audience, lang=lang)
    return plain({"copies": card.drop(columns=[C.LANGUAGE]).to_dict("records"),
                  "set": card.attrs.get("set_diversity"),
                  "attractiveness_model": folder.name if attract else None})


def _as_dict(product) -> dict | None:
    if product is None:
        return None
    if hasattr(product, "model_dump"):
        return product.model_dump()
    return dict(product)
