"""Copy generation (background jobs, optionally awaited) and scoring. The work is the use
cases': :func:`adpilot.usecases.studio.generate_copy`, and
:func:`~adpilot.usecases.copy_service.audience_copy` and
:func:`~adpilot.usecases.copy_service.score_copy`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adpilot.api.security import AppState, Read, State, Write
from adpilot.datasets_fetch import DataSources
from adpilot.errors import ConfigError
from adpilot.usecases.copy_service import audience_copy, score_copy
from adpilot.usecases.studio import Channel, GenerateRequest, Lang, generate_copy

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
    sources = DataSources.from_settings(state.settings)
    job_id = state.jobs.submit(
        "generate", lambda progress: generate_copy(state.data, state.copy, body, progress,
                                                   sources=sources),
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

    def run(progress) -> dict:
        return audience_copy(state.data, state.copy, segment=body.segment,
                             channels=body.channels, mode=body.mode, max_users=body.max_users,
                             progress=progress, first=1000,
                             sources=DataSources.from_settings(state.settings))

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
    return JSONResponse(score_copy(state.data, body.texts, product_id=body.product_id,
                                   segment=body.segment, lang=body.lang,
                                   sources=DataSources.from_settings(state.settings),
                                   store=state.copy.store))
