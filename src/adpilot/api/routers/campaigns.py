"""Campaigns, decisions, feedback events and reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi import Path as FastPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adpilot.api.errors import error_response
from adpilot.api.event_models import EventsIn, EventsRefused, events_schema, parse_events
from adpilot.api.security import Costly, Read, State, Write
from adpilot.api.services import jsonable, records
from adpilot.data import columns as C
from adpilot.optimization.inbox import MAX_BATCH_ID

router = APIRouter(prefix="/v1", tags=["campaigns"])
__all__ = ["EventsIn", "router"]  # EventsIn: the body model, also used by benchmarks/api_load.py


class VariantIn(BaseModel):
    variant: str = Field(min_length=1, max_length=128)
    channel: str | None = None
    copy_: dict[str, Any] | None = Field(None, alias="copy", description="The copy's fields.")


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    variants: list[VariantIn] = Field(min_length=1, max_length=50)
    channel: str | None = None
    policy: Literal["thompson", "fixed"] = "thompson"
    goal: Literal["click", "conversion"] = "click"
    floor: float = Field(0.05, ge=0, le=0.5)
    audience: dict[str, Any] | None = None


@router.post("/campaigns", status_code=201, dependencies=[Write])
def create_campaign(body: CampaignIn, state: State) -> dict:
    """Create a campaign with its variants (their copy is stored with them)."""
    names = [v.variant for v in body.variants]
    if len(set(names)) != len(names):
        return error_response(422, "variant names must be unique")
    cid = state.campaigns.create(
        body.name, names, channel=body.channel, policy=body.policy, goal=body.goal,
        floor=body.floor, audience=body.audience,
        copies={v.variant: v.copy_ or {} for v in body.variants})
    return {"campaign": cid}


@router.get("/campaigns", dependencies=[Read])
def list_campaigns(state: State) -> dict:
    return {"items": records(state.campaigns.list())}


@router.get("/campaigns/{campaign_id}", dependencies=[Read])
def get_campaign(campaign_id: str, state: State) -> dict:
    """The campaign and its variants."""
    camp = state.campaigns.exists(campaign_id)
    return {"campaign": campaign_id, "name": camp["name"], "goal": camp["goal"],
            "status": camp["status"], "created_at": camp[C.CREATED_AT].isoformat(),
            "variants": records(state.campaigns.variants(campaign_id))}


@router.post("/campaigns/{campaign_id}/variants", status_code=201, dependencies=[Write])
def add_variant(campaign_id: str, body: VariantIn, state: State) -> dict:
    """Add a variant to a running campaign (it starts from the prior)."""
    state.campaigns.add_variant(campaign_id, body.variant, channel=body.channel, copy=body.copy_)
    return {"campaign": campaign_id, "variant": body.variant}


@router.post("/campaigns/{campaign_id}/pause", dependencies=[Write])
def pause(campaign_id: str, state: State) -> dict:
    state.campaigns.set_status(campaign_id, "paused")
    return {"campaign": campaign_id, "status": "paused"}


@router.post("/campaigns/{campaign_id}/resume", dependencies=[Write])
def resume(campaign_id: str, state: State) -> dict:
    state.campaigns.set_status(campaign_id, "active")
    return {"campaign": campaign_id, "status": "active"}


@router.get("/campaigns/{campaign_id}/report", dependencies=[Read])
def campaign_report(campaign_id: str, state: State) -> dict:
    """Per-variant rates with intervals, P(best), always-valid tests, SRM, the stopping
    decision and impressions per day."""
    return state.campaigns.report(campaign_id)


class ApproveIn(BaseModel):
    variant: str | None = Field(None, min_length=1, max_length=128)
    all_passed: bool = Field(False, description="Approve every active variant whose copy passed "
                                                "every guardrail.")


@router.post("/campaigns/{campaign_id}/approve", dependencies=[Write])
def approve(campaign_id: str, body: ApproveIn, state: State) -> dict:
    """Approve one variant, or all that passed their guardrails: only approved variants are sent."""
    from adpilot.optimization.campaigns import Campaigns

    approved = Campaigns(state.store).approve(campaign_id, body.variant, all_passed=body.all_passed)
    return {"campaign": campaign_id, "approved": approved}


class SendIn(BaseModel):
    audience: str = Field("all", max_length=200, description="all | segment:ID")
    customer_ids: list[str] | None = Field(None, max_length=1_000_000, description="Instead of "
                                           "``audience``: these customers.")
    channel: Literal["email", "sms", "push"] | None = None
    provider: Literal["file", "smtp", "webhook"] = "file"
    limit: int | None = Field(None, ge=0)
    workers: int = Field(4, ge=1, le=64)
    dry_run: bool = Field(False, description="Answer each message's outcome now; send nothing.")


@router.post("/campaigns/{campaign_id}/send", dependencies=[Write])
async def send_campaign(campaign_id: str, body: SendIn, state: State, request: Request) -> Any:
    """Send the campaign's approved variants to its audience (a background job, 202: poll
    ``/v1/jobs/{id}``), or with ``dry_run`` answer the counts at once (nothing sent or recorded).
    Counts: ``planned`` = ``sent`` (or ``would_send``) + ``skipped`` + ``deferred`` + ``failed`` +
    ``unknown``."""
    from adpilot.delivery.campaign_send import send_campaign as run_send
    from adpilot.delivery.from_settings import channel_from, rules_from

    if body.audience != "all" and not body.audience.startswith("segment:"):
        return error_response(422, "audience must be all or segment:ID (or give customer_ids)")
    state.campaigns.exists(campaign_id)
    audience = body.customer_ids if body.customer_ids is not None else body.audience
    settings = state.settings
    # a provider that is not configured is refused now (400), not in the job
    chan = None if body.dry_run and body.provider == "file" else channel_from(body.provider, settings)

    def go(progress=None) -> dict:
        try:
            return run_send(state.store, campaign_id, chan, audience=audience, kind=body.channel,
                            limit=body.limit, dry_run=body.dry_run, rules=rules_from(settings),
                            workers=body.workers, on_progress=(lambda d, t: progress(
                                d / t if t else 1.0, f"{d:,} of {t:,} sent")) if progress else None
                            ).to_dict()
        finally:
            if chan is not None:
                chan.close()

    if body.dry_run:
        return await run_in_threadpool(go)
    job_id = state.jobs.submit("send", go, {"campaign": campaign_id, **body.model_dump(
        exclude={"customer_ids"})})
    return JSONResponse({"job": job_id, "status_url": str(request.url_for("job", job_id=job_id))},
                        status_code=202)


class DecideIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=128)
    campaign: str = Field(min_length=1, max_length=64)


@router.post("/decide", dependencies=[Write])
async def decide(body: DecideIn, state: State) -> dict:
    """Choose the variant (and channel) for a user; the decision is logged with its propensity."""
    if state.campaigns.is_warm(body.campaign):  # from memory: microseconds, no thread hop
        return state.campaigns.decide(body.user_id, body.campaign).as_dict()
    decision = await run_in_threadpool(state.campaigns.decide, body.user_id, body.campaign)
    return decision.as_dict()


@router.post("/events", dependencies=[Write], status_code=202,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": events_schema()}}}})
async def events(state: State, request: Request, wait: bool = Query(
        False, description="Process the batch before answering and return its counts "
                           "(otherwise it is stored and processed in the background).")) -> Any:
    """Store a batch of feedback events, idempotent by ``event_id``: resending a batch adds
    nothing. By default the batch is written to a durable inbox and processed in the
    background (202, poll ``/v1/events/batches/{batch}``); with ``wait=true`` the answer has
    the counts and each rejected row with its row number and reason.

    A field of the wrong type or too long, or a string with a NUL byte or a lone surrogate,
    refuses the batch (422, naming the event and the field); an event that is well-formed but
    unusable (unknown campaign, ``type`` not one of the three, missing fields) is quarantined
    with its reason and the rest of the batch is kept."""
    body = await request.body()
    try:
        events = parse_events(body)
    except EventsRefused as exc:
        return error_response(422, exc.text(), details=exc.details)
    limit = state.settings.max_events_per_batch
    if len(events) > limit:
        return error_response(422, f"{len(events)} events in one batch; the limit is {limit}",
                              code="batch_too_large")
    if not events:
        return JSONResponse({"read": 0, "kept": 0, "quarantined": 0, "already_stored": 0,
                             "reasons": {}}, status_code=200)
    if wait:
        result = await run_in_threadpool(
            state.campaigns.ingest_events, pd.DataFrame(events, dtype=object))
        return JSONResponse({**result.summary(), "rejected": records(result.quarantine.head(100))},
                            status_code=200)
    # the body validated above is stored as it came: no re-encoding, and no thread-pool hop
    # (a writer thread commits it; the event loop only awaits)
    batch = await state.campaigns.enqueue_events(body, len(events))
    return {"accepted": len(events), "batch": batch, "status": "pending",
            "status_url": f"/v1/events/batches/{batch}"}


BatchId = Annotated[int, FastPath(ge=1, le=MAX_BATCH_ID, description="An event batch's id.")]


@router.get("/events/batches/{batch}", dependencies=[Read])
def event_batch(batch: BatchId, state: State) -> dict:
    """A batch sent without ``wait``: pending, processed with its counts and rejected rows, or
    a dead letter with the reason it could not be processed."""
    return state.campaigns.inbox.get(batch)


@router.get("/events/dead-letters", dependencies=[Read])
def dead_letters(state: State, limit: int = Query(100, ge=1, le=1000)) -> dict:
    """Batches that could not be processed even on their own, newest first, with the reason;
    their events are kept and can be processed again (``POST .../retry``) once fixed."""
    total, items = state.campaigns.inbox.dead_letters(limit)
    return {"total": total, "items": items}


@router.post("/events/dead-letters/{batch}/retry", dependencies=[Write], status_code=202)
def retry_dead_letter(batch: BatchId, state: State) -> dict:
    """Queue a dead-lettered batch to be processed again."""
    state.campaigns.retry_dead_letter(batch)
    return {"batch": batch, "status": "pending", "status_url": f"/v1/events/batches/{batch}"}


@router.get("/reports/roi", tags=["reports"], dependencies=[Read, Costly])
def roi(state: State, cpm: float | None = Query(None, ge=0, description="One cost per 1,000 "
                                                     "impressions for every channel.")) -> dict:
    """ROI per campaign: incremental against its control groups with a 95% interval, or
    attributed (``kind``) where it has none; cost from the settings' prices per message (counted
    by the database). Rate-limited per client."""
    from dataclasses import asdict

    from adpilot.optimization.roi import Prices
    from adpilot.usecases.roi import roi_report

    report = roi_report(state.store, state.campaigns.list(), Prices.from_settings(state.settings),
                        cpm=cpm)
    return {"items": records(report.table), "cpm": report.cpm, "prices": asdict(report.prices)}


@router.get("/reports/campaigns", tags=["reports"], dependencies=[Read, Costly])
def campaign_reports(state: State) -> dict:
    """The report of every campaign (from one aggregate query; each report is reused while
    its campaign's counts stay the same). Rate-limited per client."""
    return {"items": jsonable(state.reports(state.campaigns.list()))}
