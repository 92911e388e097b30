"""Dashboard pages. Handlers only gather data through the use cases (on the API's application
state) and render templates."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from adpilot.api.security import AppState, client_of, key_account
from adpilot.api.services import jsonable, records
from adpilot.dashboard.auth import (
    LOGIN_CSRF,
    CsrfError,
    LoginRequired,
    ScopeError,
    Session,
    Sessions,
)
from adpilot.dashboard.i18n import LANGS, translate
from adpilot.errors import AdpilotError, NotFoundError, NotReadyError
from adpilot.report import campaign_charts as charts
from adpilot.report import charts as report_charts

HERE = Path(__file__).parent
CHANNELS = ("email", "sms", "push", "social", "search_ad")


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get("lang")
    return asked if asked in LANGS else "en"


def mount(app: FastAPI, state: AppState) -> None:
    """Add the dashboard's pages, static files and error pages to ``app``."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    sessions = Sessions(state)
    router = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, session: Session | None, status: int = 200,
               **context) -> HTMLResponse:
        lang = _lang(request)
        context.update(lang=lang, t=lambda key: translate(key, lang), session=session,
                       path=request.url.path, json=json)
        response = templates.TemplateResponse(request, name, context, status_code=status)
        if request.query_params.get("lang") in LANGS:  # remember the switch
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    async def form_for(request: Request, session: Session):
        form = await request.form()
        sessions.check_csrf(session, form.get("csrf"))
        return form

    # --- errors ------------------------------------------------------------------------------
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError) -> Response:
        return HTMLResponse("invalid or missing CSRF token: reload the page and try again",
                            status_code=403)

    @app.exception_handler(ScopeError)
    async def _scope(request: Request, exc: ScopeError) -> Response:
        return render(request, "message.html", sessions.current(request), status=403,
                      title=translate("forbidden", _lang(request)), message="")

    def busy(request: Request, session: Session, wait: int) -> HTMLResponse:
        """429 for a client over the rate of expensive pages (the API's token bucket)."""
        lang = _lang(request)
        response = render(request, "message.html", session, status=429,
                          title=translate("too_many", lang).format(seconds=wait), message="")
        response.headers["Retry-After"] = str(wait)
        return response

    def page_error(request: Request, session: Session, exc: AdpilotError) -> HTMLResponse:
        status = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(
            exc, NotReadyError) else 400
        return render(request, "message.html", session, status=status,
                      title=translate("not_found" if status == 404 else "not_ready",
                                      _lang(request)), message=str(exc))

    def show(request: Request, template: str, context: Callable[[], dict]) -> HTMLResponse:
        """``template`` with what ``context()`` returns (read after the session is checked), or
        the error page for the adpilot error it raises (unknown: 404, not built yet: 409)."""
        session = sessions.require(request)
        try:
            values = context()
        except AdpilotError as exc:
            return page_error(request, session, exc)
        return render(request, template, session, **values)

    # --- login ---------------------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, next: str = "/", error: str | None = None) -> HTMLResponse:
        return login_form(request, next, error=error)

    def login_form(request: Request, next: str, *, error: str | None = None, locked: int = 0,
                   status: int = 200) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", None, status=status,
                          next=next if next.startswith("/") else "/", error=error, csrf=token,
                          locked=locked,
                          configured=bool(state.settings.admin_user and state.settings.admin_password))
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", max_age=3600)
        if locked:
            response.headers["Retry-After"] = str(locked)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        cookie = request.cookies.get(LOGIN_CSRF)
        if not cookie or not secrets.compare_digest(cookie, str(form.get("csrf", ""))):
            raise CsrfError
        nxt = str(form.get("next") or "/")
        nxt = nxt if nxt.startswith("/") and not nxt.startswith("//") else "/"
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        key = str(form.get("api_key", "")).strip()
        # throttled per client and per account (user name, or the key's id) before any check
        client, account = client_of(request), key_account(key) if key else ("user", user[:128])
        wait = state.throttle.retry_after(client, account)
        if wait:
            return login_form(request, nxt, locked=wait, status=429)
        response = RedirectResponse(nxt, status_code=303)
        if key:
            info = await run_in_threadpool(state.keys.verify, key)
            if info is not None:
                state.throttle.succeeded(account)
                await run_in_threadpool(sessions.login, response, info.name or f"key {info.id}",
                                        info.scope, info.id)
                return response
        elif sessions.password_ok(user, password):
            state.throttle.succeeded(account)
            await run_in_threadpool(sessions.login, response, user, "admin")
            return response
        state.throttle.failed(client, account)
        return RedirectResponse(f"/login?error=1&next={quote(nxt)}", status_code=303)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = await run_in_threadpool(sessions.require, request)
        await form_for(request, session)
        response = RedirectResponse("/login", status_code=303)
        await run_in_threadpool(sessions.logout, request, response)  # ends it on the server
        return response

    # --- pages ---------------------------------------------------------------------------------
    @router.get("/")
    def overview(request: Request) -> HTMLResponse:
        session = sessions.require(request)
        if wait := state.costly.take(client_of(request)):  # reads whole tables for its charts
            return busy(request, session, wait)
        seen = state.data.overview(runs=10, newest_first=True)
        counts = seen["counts"]
        figures = []
        if counts["reviews"]:
            figures.append(charts.locked(report_charts.rating_chart, state.store.read("reviews")))
        if counts["transactions"]:
            figures.append(charts.locked(report_charts.revenue_chart,
                                         state.store.read("transactions")))
        dead = state.campaigns.inbox.dead_letters(10)  # (how many, the newest)
        return render(request, "overview.html", session, counts=counts, derived=seen["derived"],
                      runs=seen["ingest_runs"], figures=figures, jobs=state.jobs.list(5), dead=dead)

    @router.post("/profiling")
    async def start_profiling(request: Request) -> Response:
        session = sessions.require(request, "write")
        form = await form_for(request, session)
        from adpilot.profiling.build import profile_store

        embedder = str(form.get("embedder") or "auto")
        sentiment = str(form.get("sentiment") or "auto")
        def run(progress) -> dict:
            model_store = None
            if sentiment != "rating":  # the explicit training step: models the store lacks
                from adpilot.artifacts import ModelStore
                from adpilot.datasets_fetch import DataSources
                from adpilot.models_fetch import ensure_sentiment_models
                from adpilot.profiling.polarity import state_unbuilt

                model_store = ModelStore.from_settings(state.settings)
                state_unbuilt(ensure_sentiment_models(
                    model_store, sources=DataSources.from_settings(state.settings)), sentiment)
            return profile_store(state.store, embedder=embedder, sentiment=sentiment,
                                 model_store=model_store,
                                 precision=state.settings.sentiment_precision).summary()

        job = state.jobs.submit("profile", run, {"embedder": embedder, "sentiment": sentiment})
        return RedirectResponse(f"/jobs/{job}", status_code=303)

    def the_job(job_id: str) -> dict:
        job = state.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"unknown job {job_id!r}")
        return {"job": job}

    @router.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: str) -> HTMLResponse:
        return show(request, "job.html", lambda: the_job(job_id))

    @router.get("/segments")
    def segments(request: Request) -> HTMLResponse:
        def context() -> dict:
            table = state.data.table("segments")
            return {"segments": records(table),
                    "figure": charts.locked(report_charts.segment_chart, table)}
        return show(request, "segments.html", context)

    @router.get("/segments/{segment_id}")
    def segment(request: Request, segment_id: str) -> HTMLResponse:
        def context() -> dict:
            seg, members = state.data.members(segment_id)
            return {"seg": seg, "total": len(members), "members": records(members.head(200))}
        return show(request, "segment.html", context)

    @router.get("/users/{user_id}")
    def user(request: Request, user_id: str) -> HTMLResponse:
        return show(request, "user.html", lambda: {"profile": state.data.profile(user_id)})

    # --- copy studio ---------------------------------------------------------------------------
    def studio_context() -> dict:
        products = state.store.read("products")
        segs = (records(state.data.table("segments")) if state.store.has_table("segments") else [])
        camps = records(state.campaigns.list())
        return {"products": records(products), "segments": segs, "campaigns": camps,
                "channels": CHANNELS}

    @router.get("/studio")
    def studio(request: Request, segment: str | None = None) -> HTMLResponse:
        session = sessions.require(request)
        return render(request, "studio.html", session, chosen_segment=segment, **studio_context())

    @router.post("/studio")
    async def studio_generate(request: Request) -> Response:
        session = sessions.require(request, "write")
        form = await form_for(request, session)
        from adpilot.datasets_fetch import DataSources
        from adpilot.usecases.studio import GenerateRequest, generate_copy

        body = GenerateRequest(product_id=str(form.get("product_id")),
                               segment=str(form.get("segment") or "") or None,
                               channel=str(form.get("channel") or "email"),
                               lang=str(form.get("copy_lang") or "en"),
                               n=int(form.get("n") or 3))
        sources = DataSources.from_settings(state.settings)
        job = state.jobs.submit(
            "generate", lambda progress: generate_copy(state.data, state.copy, body, progress,
                                                       sources=sources),
            body.model_dump())
        return RedirectResponse(f"/studio/jobs/{job}", status_code=303)

    @router.get("/studio/jobs/{job_id}")
    def studio_job(request: Request, job_id: str) -> HTMLResponse:
        return show(request, "studio_job.html", lambda: {**the_job(job_id), **studio_context()})

    @router.post("/studio/approve")
    async def approve(request: Request) -> Response:
        session = sessions.require(request, "write")
        form = await form_for(request, session)
        channel = str(form.get("channel") or "") or None
        chosen = []
        for i in range(int(form.get("count") or 0)):
            if form.get(f"include_{i}"):
                fields = {k.split(":", 2)[2]: str(v) for k, v in form.multi_items()
                          if k.startswith(f"field:{i}:")}
                chosen.append((str(form.get(f"name_{i}") or f"V{i + 1}").strip(), fields))
        if not chosen:
            return RedirectResponse(request.headers.get("referer", "/studio"), status_code=303)
        existing = str(form.get("campaign_id") or "")

        def save() -> str:
            if existing:
                for name, fields in chosen:
                    # chosen in the studio by a writer: that is the approval
                    state.campaigns.add_variant(existing, name, channel=channel, copy=fields,
                                                approved=True)
                return existing
            return state.campaigns.create(str(form.get("campaign_name") or "studio campaign"),
                                          [n for n, _ in chosen], channel=channel,
                                          copies=dict(chosen), approved=True)
        try:
            cid = await run_in_threadpool(save)
        except AdpilotError as exc:
            return render(request, "message.html", session, status=400,
                          title=translate("error", _lang(request)), message=str(exc))
        return RedirectResponse(f"/campaigns/{cid}", status_code=303)

    # --- campaigns and ROI ---------------------------------------------------------------------
    @router.get("/campaigns")
    def campaigns(request: Request) -> HTMLResponse:
        session = sessions.require(request)
        return render(request, "campaigns.html", session, items=records(state.campaigns.list()))

    @router.get("/campaigns/{campaign_id}")
    def campaign(request: Request, campaign_id: str) -> HTMLResponse:
        def context() -> dict:
            report = state.campaigns.report(campaign_id)
            camp = state.campaigns.exists(campaign_id)
            variants = records(state.campaigns.variants(campaign_id))
            for v in variants:
                v["fields"] = json.loads(v.get("copy") or "{}")
            events = state.campaigns.events(campaign_id)
            figures = [f for f in (charts.allocation_chart(report),
                                   charts.rates_chart(events, camp["goal"])) if f]
            return {"report": report, "camp": jsonable(camp), "variants": variants,
                    "figures": figures}
        return show(request, "campaign.html", context)

    @router.post("/campaigns/{campaign_id}/status")
    async def campaign_status(request: Request, campaign_id: str) -> Response:
        session = sessions.require(request, "write")
        form = await form_for(request, session)
        await run_in_threadpool(state.campaigns.set_status, campaign_id,
                                "paused" if form.get("action") == "pause" else "active")
        return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)

    @router.get("/roi")
    def roi(request: Request) -> HTMLResponse:
        session = sessions.require(request)
        if wait := state.costly.take(client_of(request)):
            return busy(request, session, wait)
        from adpilot.optimization.roi import Prices
        from adpilot.usecases.roi import roi_report

        report = roi_report(state.store, state.campaigns.list(),
                            Prices.from_settings(state.settings))
        figure = charts.locked(report_charts.roi_chart, report.table, zh=_lang(request) == "zh")
        return render(request, "roi.html", session, items=records(report.table), cpm=report.cpm,
                      prices=report.prices, figure=figure)

    from adpilot.dashboard.send_page import add_send_pages

    add_send_pages(router, state, sessions, render, form_for, page_error, busy)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
