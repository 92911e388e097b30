"""The dashboard's send page: a campaign's copy per variant and language (approve it there), the
counts of a dry run, and a send started as a background job (the API's job machinery) whose
page shows its progress and counts. A thin shell over :mod:`adpilot.delivery.campaign_send`."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adpilot.api.security import AppState, client_of
from adpilot.api.services import NotFoundError, records
from adpilot.dashboard.auth import Session, Sessions
from adpilot.dashboard.i18n import translate
from adpilot.data import columns as C
from adpilot.delivery.campaign_send import KINDS, default_channel, send_campaign
from adpilot.delivery.from_settings import PROVIDERS, channel_from, rules_from
from adpilot.errors import AdpilotError, ConfigError

Render = Callable[..., HTMLResponse]


def preview(variants: list[dict]) -> list[dict]:
    """Per variant: its language (None: any), subject or title, main text and approval, from the
    stored copy (the fields :mod:`~adpilot.delivery.campaign_send` reads, first present wins)."""
    out = []
    for v in variants:
        copy = json.loads(v.get("copy") or "{}")
        copy = copy if isinstance(copy, dict) else {}
        out.append({"variant": v[C.VARIANT], "channel": v.get("channel"), "status": v["status"],
                    "approved": bool(v["approved"]), "lang": copy.get("lang") or None,
                    "segment": copy.get("segment") or None,
                    "subject": _first(copy, "subject", "title"), "text": _first(copy, "body", "text")})
    return sorted(out, key=lambda v: (str(v["lang"] or ""), v["variant"]))


def _first(copy: dict, *keys: str) -> str:
    return next((str(copy[k]) for k in keys if copy.get(k)), "")


def count_rows(doc: dict, lang: str) -> list[tuple[str, str, int]]:
    """(key, label, messages) rows of a send result: planned, then every bucket it sums to."""
    done = "would_send" if doc.get("dry_run") else "sent"
    rows = [("planned", translate("planned", lang), doc["planned"]),
            (done, translate(done, lang), doc.get(done, 0))]
    for kind in ("skipped", "deferred"):
        for reason, n in doc.get(kind, {}).items():
            label = translate(f"reason_{reason}", lang)
            label = reason if label == f"reason_{reason}" else f"{label} ({reason})"
            rows.append((f"{kind}:{reason}", f"{translate(kind, lang)}: {label}", n))
    rows += [(k, translate(k, lang), doc.get(k, 0)) for k in ("failed", "unknown")]
    return rows


def add_send_pages(router: APIRouter, state: AppState, sessions: Sessions, render: Render,
                   form_for: Callable, page_error: Callable, busy: Callable) -> None:
    """Add ``/campaigns/{id}/send`` (page and form), ``/campaigns/{id}/approve`` and the send
    job's page to ``router``."""

    def audiences() -> list[str]:
        if not state.store.has_table("segments"):
            return ["all"]
        return ["all", *(f"segment:{s}" for s in state.store.read("segments")[C.SEGMENT].astype(str))]

    @router.get("/campaigns/{campaign_id}/send")
    def send_page(request: Request, campaign_id: str, channel: str | None = None,
                  audience: str = "all") -> HTMLResponse:
        session = sessions.require(request)
        try:
            camp = state.campaigns.exists(campaign_id)
            variants = preview(records(state.campaigns.variants(campaign_id)))
            # the service answers variants() as Campaigns does: all default_channel reads
            kind = channel if channel in KINDS else default_channel(state.campaigns, campaign_id)
        except AdpilotError as exc:
            return page_error(request, session, exc)
        if wait := state.costly.take(client_of(request)):  # the dry run reads the audience
            return busy(request, session, wait)
        dry, error = None, None
        try:  # a paused campaign or an unknown segment still shows its copy
            dry = send_campaign(state.store, campaign_id, None, audience=_audience(audience),
                                kind=kind, dry_run=True, rules=rules_from(state.settings)).to_dict()
        except AdpilotError as exc:
            error = str(exc)
        lang = _lang_code(request)
        return render(request, "send.html", session, camp=camp, variants=variants, kind=kind,
                      kinds=KINDS, audience=audience, audiences=audiences(), providers=PROVIDERS,
                      dry=dry, rows=count_rows(dry, lang) if dry else [], error=error)

    @router.post("/campaigns/{campaign_id}/approve")
    async def approve_variant(request: Request, campaign_id: str) -> Response:
        session = sessions.require(request, "write")
        form = await form_for(request, session)
        from adpilot.optimization.campaigns import Campaigns

        try:  # as the API route does: the stored flag is what the sender reads
            await run_in_threadpool(Campaigns(state.store).approve, campaign_id,
                                    str(form.get("variant") or ""))
        except AdpilotError as exc:
            return page_error(request, session, exc)
        return RedirectResponse(f"/campaigns/{campaign_id}/send", status_code=303)

    @router.post("/campaigns/{campaign_id}/send")
    async def start_send(request: Request, campaign_id: str) -> Response:
        session = sessions.require(request, "write")
        form = await form_for(request, session)
        provider = str(form.get("provider") or "file")
        kind = str(form.get("channel") or "") or None
        audience = str(form.get("audience") or "all")
        try:
            state.campaigns.exists(campaign_id)
            _audience(audience)
            if kind is not None and kind not in KINDS:
                raise ConfigError(f"channel must be one of {', '.join(KINDS)}, got {kind!r}")
            # a provider that is not configured is refused now, not in the job
            chan = channel_from(provider, state.settings)
        except AdpilotError as exc:
            return _refused(request, session, render, exc)
        settings = state.settings

        def go(progress) -> dict:
            try:
                return send_campaign(
                    state.store, campaign_id, chan, audience=_audience(audience), kind=kind,
                    rules=rules_from(settings), workers=4,
                    on_progress=lambda d, t: progress(d / t if t else 1.0, f"{d:,} / {t:,}"),
                ).to_dict()
            finally:
                chan.close()

        job = state.jobs.submit("send", go, {"campaign": campaign_id, "audience": audience,
                                             "channel": kind, "provider": provider,
                                             "dry_run": False, "source": "dashboard"})
        return RedirectResponse(f"/campaigns/{campaign_id}/send/jobs/{job}", status_code=303)

    @router.get("/campaigns/{campaign_id}/send/jobs/{job_id}")
    def send_job(request: Request, campaign_id: str, job_id: str) -> HTMLResponse:
        session = sessions.require(request)
        job = state.jobs.get(job_id)
        if job is None or job["kind"] != "send" or (job["params"] or {}).get("campaign") != campaign_id:
            return page_error(request, session, NotFoundError(f"unknown send job {job_id!r}"))
        result = job["result"] if isinstance(job["result"], dict) else None
        return render(request, "send_job.html", session, job=job, campaign_id=campaign_id,
                      rows=count_rows(result, _lang_code(request)) if result else [])


def _lang_code(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get("lang")
    return "zh" if asked == "zh" else "en"


def _audience(audience: str) -> str:
    """Only ``all`` or ``segment:ID`` from a form (never a server path)."""
    if audience != "all" and not audience.startswith("segment:"):
        raise ConfigError(f"audience must be all or segment:ID, got {audience!r}")
    return audience


def _refused(request: Request, session: Session, render: Render, exc: AdpilotError) -> HTMLResponse:
    status = 404 if isinstance(exc, NotFoundError) else 400
    return render(request, "message.html", session, status=status,
                  title=translate("send_refused", _lang_code(request)), message=str(exc))
