"""Ingest, profiling jobs, profiles and segments."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field

from adpilot.api.security import Admin, Costly, Read, State, Write
from adpilot.api.services import records
from adpilot.data.schema import SCHEMAS
from adpilot.errors import ConfigError, InputError, NotFoundError

router = APIRouter(prefix="/v1", tags=["data"])
Kind = Literal["customers", "products", "reviews", "transactions", "events"]


def _check_kind(kind: str) -> None:
    if kind not in SCHEMAS:
        raise NotFoundError(f"unknown record kind {kind!r}; use one of {', '.join(SCHEMAS)}")


@router.post("/ingest/{kind}", dependencies=[Write])
def ingest_upload(kind: Kind, state: State, file: Annotated[UploadFile, File()],
                  encoding: Annotated[str, Form()] = "auto") -> dict:
    """Upload a file (CSV/TSV/JSONL/Parquet) of ``kind`` records; returns the ingest summary."""
    from adpilot.data.ingest import ingest_file

    name = Path(file.filename or "upload.csv").name
    with tempfile.TemporaryDirectory(prefix="adpilot-upload-") as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        result = ingest_file(kind, path, encoding=encoding, store=state.store,
                             quarantine_dir=state.settings.quarantine_dir)
    summary = result.summary()
    summary["source"] = name
    return summary


class ServerPath(BaseModel):
    path: str = Field(description="A file on the server, under one of ADPILOT_INGEST_ROOTS.")
    encoding: str = "auto"


@router.post("/ingest/{kind}/path", dependencies=[Admin])
def ingest_path(kind: Kind, body: ServerPath, state: State) -> dict:
    """Ingest a file already on the server (admin; only under the configured ingest roots)."""
    from adpilot.data.ingest import ingest_file

    roots = [Path(r).resolve() for r in state.settings.ingest_roots]
    path = Path(body.path).resolve()
    if not roots:
        raise ConfigError("server-side paths are disabled: set ADPILOT_INGEST_ROOTS, or upload "
                          "the file")
    if not any(path.is_relative_to(r) for r in roots):
        raise ConfigError(f"{body.path} is not under an allowed ingest root")
    if not path.is_file():
        raise InputError("file not found", path=body.path)
    return ingest_file(kind, path, encoding=body.encoding, store=state.store,
                       quarantine_dir=state.settings.quarantine_dir).summary()


@router.get("/overview", dependencies=[Read, Costly])  # rate-limited: counts every table
def overview(state: State) -> dict:
    """Record counts per table and the latest ingest runs."""
    runs = state.store.ingest_runs().tail(20) if state.store.has_table("ingest_runs") else None
    return {"counts": state.data.counts(),
            "derived": {t: state.data.row_count(t) for t in ("profiles", "segments")},
            "ingest_runs": records(runs) if runs is not None else []}


class ProfilingJob(BaseModel):
    embedder: str = Field("auto", description="auto | minilm | lsa …")
    k: int | None = Field(None, ge=2, le=50, description="Number of segments (default: chosen).")
    seed: int = 0
    sentiment: str = Field("auto", description="auto: the fine-tuned models (trained on first "
                                               "use); rating: star ratings only")


@router.post("/profiling/jobs", status_code=202, tags=["jobs"], dependencies=[Write])
def start_profiling(body: ProfilingJob, state: State, request: Request) -> dict:
    """Profile the whole store in the background; poll ``/v1/jobs/{id}``."""
    from adpilot.profiling.build import profile_store

    def run(progress) -> dict:
        progress(0.05, "reading the store and profiling")
        result = profile_store(state.store, embedder=body.embedder, k=body.k, seed=body.seed,
                               sentiment=body.sentiment)
        return result.summary()

    job_id = state.jobs.submit("profile", run, body.model_dump())
    return {"job": job_id, "status_url": str(request.url_for("job", job_id=job_id))}


class ProfileFilters(BaseModel):
    age_min: int | None = None
    age_max: int | None = None
    gender: str | None = None
    region: str | None = None
    unhappy_with: str | None = None
    happy_with: str | None = None
    bought: str | None = None
    segment: str | None = None
    rfm_segment: str | None = None
    language: str | None = None

    def kwargs(self) -> dict:
        d = self.model_dump(exclude={"age_min", "age_max"}, exclude_none=True)
        if self.age_min is not None or self.age_max is not None:
            d["age"] = (self.age_min if self.age_min is not None else 0,
                        self.age_max if self.age_max is not None else 200)
        return d


def _page(frame, limit: int, offset: int) -> dict:
    return {"total": int(len(frame)), "limit": limit, "offset": offset,
            "items": records(frame.iloc[offset:offset + limit])}


@router.get("/profiles", dependencies=[Read])
def profiles(state: State, filters: Annotated[ProfileFilters, Query()],
             limit: int = Query(50, ge=1), offset: int = Query(0, ge=0)) -> dict:
    """Profiles matching the filters of ``query_profiles``, a page at a time."""
    from adpilot.profiling.profiles import query_profiles

    limit = min(limit, state.settings.max_page_size)
    found = query_profiles(state.data.table("profiles"), **filters.kwargs())
    return _page(found, limit, offset)


@router.get("/profiles/{user_id}", dependencies=[Read])
def profile(user_id: str, state: State) -> dict:
    return state.data.profile(user_id)


@router.get("/segments", dependencies=[Read])
def segments(state: State) -> dict:
    """Segments with their size, names and readable descriptions (English and Chinese)."""
    return {"items": records(state.data.table("segments"))}


@router.get("/segments/{segment_id}", dependencies=[Read])
def segment(segment_id: str, state: State, limit: int = Query(50, ge=1),
            offset: int = Query(0, ge=0)) -> dict:
    """One segment and a page of its members."""
    from adpilot.profiling.profiles import query_profiles

    seg = state.data.segment(segment_id)
    members = query_profiles(state.data.table("profiles"), segment=str(segment_id))
    return {**seg, "members": _page(members, min(limit, state.settings.max_page_size), offset)}
