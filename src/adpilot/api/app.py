"""The application factory: ``create_app(settings)`` builds the API (under /v1) and the
dashboard on one FastAPI app. Settings are read when the app is built, never at import."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial

from adpilot.deps import require as require_module

require_module("fastapi", feature="the HTTP API")

from fastapi import FastAPI  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402

from adpilot.api import errors  # noqa: E402
from adpilot.api.jobs import JobRunner  # noqa: E402
from adpilot.api.keys import KeyVerifier  # noqa: E402
from adpilot.api.limits import BodyLimitMiddleware, SecurityHeadersMiddleware  # noqa: E402
from adpilot.api.routers import campaigns, copy, data, system, tracking  # noqa: E402
from adpilot.api.security import AppState  # noqa: E402
from adpilot.api.services import PROFILING_HINT  # noqa: E402
from adpilot.api.settings import ApiSettings, get_api_settings  # noqa: E402
from adpilot.api.throttle import AuthThrottle, RateLimiter  # noqa: E402
from adpilot.api.throttle_store import StoredFailureCounter  # noqa: E402
from adpilot.artifacts import ModelStore  # noqa: E402
from adpilot.store.sql import Store  # noqa: E402
from adpilot.usecases.campaigns import CampaignService  # noqa: E402
from adpilot.usecases.copy_service import CopyService  # noqa: E402
from adpilot.usecases.data_overview import DataService  # noqa: E402
from adpilot.usecases.reports import CampaignReports  # noqa: E402

log = logging.getLogger("adpilot.api")
FLUSH_SECONDS = 1.0  # buffered decisions reach the decision log at least this often


def default_backend_factory(settings: ApiSettings) -> Callable[[], object]:
    """Build the configured LLM backend on first use (loading a model takes a while)."""

    def build():
        from adpilot.usecases.llm import build_backend

        return build_backend(settings.llm_backend, settings.llm_model, settings.llm_base_url,
                             models_dir=settings.models_dir, parallel=settings.llm_parallel)

    return build


def create_app(settings: ApiSettings | None = None, *, llm_backend: object | None = None,
               dashboard: bool = True) -> FastAPI:
    """Build the app. ``llm_backend`` (an :class:`~adpilot.backends.llm.LLMBackend`) replaces
    the configured one, e.g. a small local model in tests."""
    settings = settings or get_api_settings()
    store = Store(settings.db_url).init()
    factory = (lambda: llm_backend) if llm_backend is not None else default_backend_factory(settings)
    state = AppState(settings=settings, store=store,
                     keys=KeyVerifier(store, ttl=settings.key_cache_seconds),
                     campaigns=CampaignService(store, worker_process=settings.events_worker_process),
                     data=DataService(store, build_hint=PROFILING_HINT),
                     copy=CopyService(factory, cache_dir=settings.llm_cache_dir,
                                      store=ModelStore.from_settings(settings)),
                     jobs=JobRunner(store, workers=settings.job_workers),
                     # failures and lockouts shared by every process on this store
                     throttle=AuthThrottle.from_settings(
                         settings, counter=partial(StoredFailureCounter, store)),
                     costly=RateLimiter(rate_per_minute=settings.report_rate_per_minute,
                                        burst=settings.report_burst),
                     reports=CampaignReports(store))
    stop = threading.Event()

    def flusher() -> None:
        while not stop.wait(FLUSH_SECONDS):
            try:
                state.campaigns.flush()
            except Exception:  # keep flushing; the next tick retries the same buffer
                log.exception("flushing decisions failed")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = threading.Thread(target=flusher, name="adpilot-flush", daemon=True)
        thread.start()
        state.campaigns.start_drainer()  # batches left pending by a previous run are processed
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if settings.gc_freeze:
                gc.unfreeze()  # collectable again once the app is gone (tests build many)
            stop.set()
            state.campaigns.close()  # processes what is still in the event inbox
            state.jobs.shutdown()
            state.copy.close()

    docs = settings.api_docs  # off unless configured (see ApiSettings.api_docs)
    app = FastAPI(title="adpilot", version="1", lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None,
                  description="Profiles, copy, campaigns and feedback over HTTP. Every endpoint "
                              "but /health needs an API key (`adpilot keys create`).")
    app.state.adpilot = state
    errors.install(app)
    for module in (system, data, copy, campaigns):
        app.include_router(module.router)
    tracking.install(app, state)  # public: tracked links, open pixel, one-click unsubscribe
    if dashboard:
        from adpilot.dashboard.routes import mount

        mount(app, state)
    if settings.cors_origins:  # off unless origins are configured
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # outermost, so every answer gets the headers (the body limit's 413 included)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.cookie_secure)
    return app
