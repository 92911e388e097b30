"""Copy generation (background jobs, optionally awaited; the work is
:func:`adpilot.usecases.studio.generate_copy`) and scoring."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adpilot.api.errors import error_response
from adpilot.api.security import AppState, Read, State, Write
from adpilot.data import columns as C
from adpilot.errors import ConfigError
from adpilot.usecases.studio import (
    Channel,
    GenerateRequest,
    Lang,
    ensure_copy_models,
    generate_copy,
    scoring_available,
)

router = APIRouter(prefix="/v1", tags=["copy"])


def _job_reply(state: AppState, request: Request, job_id: str, wait: float) -> JSONResponse:
    if wait > 0:
        state.jobs.wait(job_id, wait)
    job = state.jobs.get(job_id)
    payload = {"job": job_id, "status": job["status"], "progress": job["progress"],
               "status_url": str(request.url_for("job", job_id=job_id))}
    if job["status"] == "succeeded":
        return JSONResponse({**payload, "result": job["result"]}, status_code=200)
    if job["status"] == "failed":
        return JSONResponse({**payload, "error": job["error"]}, status_code=200)
    return JSONResponse(payload, status_code=202)


@router.post("/generate", dependencies=[Write],
             responses={202: {"description": "still running: poll status_url"}})
def generate(body: GenerateRequest, state: State, request: Request,
             wait: float = Query(0, ge=0, le=120, description="Seconds to wait for the result "
                                 "before answering 202 with the job to poll.")) -> JSONResponse:
    """Copy variants for a product × audience × channel × language, with guardrail results.

    Runs as a background job (a local model writes ~10 tokens/s); ``wait`` returns the result
    inline when it is ready in time."""
    if not (body.segment or body.user_id or body.audience):
        raise ConfigError("give a segment, a user_id or an audience description")
    state.copy.check()  # 501 now, not in the job, when generation cannot run here
    job_id = state.jobs.submit(
        "generate", lambda progress: generate_copy(state.data, state.copy, body, progress),
        body.model_dump())
    return _job_reply(state, request, job_id, wait)


class AudienceRequest(BaseModel):
    segment: str | None = Field(None, description="Only this segment's members (default: all).")
    channels: list[Channel] = Field(default_factory=lambda: ["email"])
    mode: Literal["auto", "segment", "per_user"] = "segment"
    max_users: int | None = Field(None, ge=1)


@router.post("/generate/audience", status_code=202, tags=["jobs"], dependencies=[Write])
def generate_for_audience(body: AudienceRequest, state: State, request: Request) -> dict:
    """A personalised message for every user (of a segment): per segment × product copy,
    filled per user. Background job; the result holds the first 1,000 messages."""
    from adpilot.api.services import records
    from adpilot.generation.campaign import plan_campaign

    def run(progress) -> dict:
        profiles = state.data.table("profiles")
        if body.segment:
            state.data.segment(body.segment)
            profiles = profiles[profiles[C.SEGMENT].astype(str) == body.segment]
        progress(0.05, f"{len(profiles)} users")
        ensure_copy_models(None, ["en", "zh"], parts=("complaint",))  # the complaint classifiers
        with state.copy.lock:
            plan = plan_campaign(profiles, state.data.table("segments"),
                                 state.store.read("products"), state.store.read("reviews"),
                                 state.copy.generator(), channels=body.channels, mode=body.mode,
                                 max_users=body.max_users)
        return {"messages": int(len(plan)), "passed": int(plan["passed"].sum()),
                "personalised": int(plan["personalised"].sum()), "items": records(plan.head(1000))}

    job_id = state.jobs.submit("generate_audience", run, body.model_dump())
    return {"job": job_id, "status_url": str(request.url_for("job", job_id=job_id))}


class ScoreRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=100)
    product_id: str | None = Field(None, description="Score relevance to this product.")
    segment: str | None = Field(None, description="Score personalisation for this segment.")
    lang: Lang | None = Field(None, description="Language of the texts (default: detected).")


@router.post("/score", dependencies=[Read], responses={501: {"description": "no scoring stage"}})
def score(body: ScoreRequest, state: State) -> JSONResponse:
    """A scorecard per copy: fluency, relevance, personalisation, diversity, readability, tone
    and predicted attractiveness (the A/B-trained model, when it is in the model cache), each
    with a one-line explanation, and an overall score."""
    if not scoring_available():
        return error_response(501, "copy scoring is not available in this installation: the "
                                   "adpilot.scoring stage is not installed", code="not_available")
    from adpilot.api.services import jsonable
    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir, is_saved
    from adpilot.scoring.scorecard import Scorecard

    product = state.data.product(body.product_id) if body.product_id else None
    audience = None
    if body.segment:
        segments = state.data.table("segments")
        match = segments[segments[C.SEGMENT] == body.segment] if len(segments) else segments
        if match.empty:
            raise ConfigError(f"unknown segment {body.segment!r}")
        audience = match.iloc[0].to_dict()
    folder = default_model_dir()
    attract = AttractivenessModel.load(folder) if is_saved(folder) else None
    ensure_copy_models(None, [body.lang] if body.lang else ["en", "zh"], parts=("fluency",))
    from adpilot.generation.compliance import scorecard_guardrails

    record = product if isinstance(product, dict) else _as_dict(product)
    card = Scorecard(attractiveness=attract, guardrails=scorecard_guardrails(record)).score(
        body.texts, product=record,
        audience=audience, lang=body.lang)
    return JSONResponse(jsonable({"copies": card.drop(columns=[C.LANGUAGE]).to_dict("records"),
                                  "set": card.attrs.get("set_diversity"),
                                  "attractiveness_model": folder.name if attract else None}))


def _as_dict(product) -> dict | None:
    if product is None:
        return None
    if hasattr(product, "model_dump"):
        return product.model_dump()
    return dict(product)
