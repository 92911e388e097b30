"""Ingest, profiling jobs, profiles and segments."""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from adpilot.api.security import Admin, Costly, Read, State, Write
from adpilot.api.services import records
from adpilot.data.schema import SCHEMAS
from adpilot.errors import AdpilotError, ConfigError, InputError, NotFoundError

router = APIRouter(prefix="/v1", tags=["data"])
Kind = Literal["customers", "products", "reviews", "transactions", "events", "consents"]


def _check_kind(kind: str) -> None:
    if kind not in SCHEMAS:
        raise NotFoundError(f"unknown record kind {kind!r}; use one of {', '.join(SCHEMAS)}")


def upload_name(filename: str | None) -> str:
    """The last part of an upload's file name, or an :class:`InputError` saying why it is not a
    usable one ("..", empty, NUL or other control characters). Long names are shortened, keeping
    the suffix, which picks the format."""
    raw = filename if filename is not None else "upload.csv"
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", "..") or any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise InputError(f"the upload's file name {raw!r} is not a file name: send the file as "
                         "e.g. reviews.csv (the suffix picks the format: .csv, .tsv, .jsonl, "
                         ".parquet)")
    if len(name.encode()) > 200:  # file systems allow 255 bytes
        suffix = Path(name).suffix[:16]
        name = name.encode()[:180].decode(errors="ignore") + suffix
    return name


def public_summary(summary: dict, request: Request, source: str) -> dict:
    """An ingest summary without server paths: the source as the client named it, the
    quarantine file as an id with the URL that serves it."""
    out = {**summary, "source": source}
    if summary.get("quarantine_file"):
        qid = Path(summary["quarantine_file"]).name
        out["quarantine_file"] = qid
        out["quarantine_url"] = str(request.url_for("quarantine_file", name=qid))
    return out


@router.post("/ingest/{kind}", dependencies=[Write])
def ingest_upload(kind: Kind, state: State, request: Request,
                  file: Annotated[UploadFile, File()],
                  encoding: Annotated[str, Form()] = "auto") -> dict:
    """Upload a file (CSV/TSV/JSONL/Parquet) of ``kind`` records; returns the ingest summary."""
    from adpilot.data.ingest import ingest_file

    name = upload_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="adpilot-upload-") as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        try:
            result = ingest_file(kind, path, encoding=encoding, store=state.store,
                                 quarantine_dir=state.settings.quarantine_dir, source_name=name)
        except AdpilotError as exc:  # the message names the file as the client sent it
            exc.args = (str(exc).replace(str(path), name).replace(tmp, "upload"),)
            raise
    return public_summary(result.summary(), request, name)


_QUARANTINE_NAME = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,250}\.csv")  # one file name


@router.get("/quarantine/{name}", dependencies=[Read], name="quarantine_file",
            response_class=FileResponse)
def quarantine_file(name: str, state: State) -> FileResponse:
    """A quarantine report (CSV, formula-escaped) by the id an ingest summary gave."""
    folder = Path(state.settings.quarantine_dir).resolve()
    path = (folder / name).resolve() if _QUARANTINE_NAME.fullmatch(name) else None
    if path is None or path.parent != folder or not path.is_file():
        raise NotFoundError(f"no quarantine file {name!r}")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=name)


class ServerPath(BaseModel):
    path: str = Field(description="A file on the server, under one of ADPILOT_INGEST_ROOTS.")
    encoding: str = "auto"


@router.post("/ingest/{kind}/path", dependencies=[Admin])
def ingest_path(kind: Kind, body: ServerPath, state: State, request: Request) -> dict:
    """Ingest a file already on the server (admin; only under the configured ingest roots)."""
    from adpilot.data.ingest import ingest_file

    roots = [Path(r).resolve() for r in state.settings.ingest_roots]
    if not roots:
        raise ConfigError("server-side paths are disabled: set ADPILOT_INGEST_ROOTS, or upload "
                          "the file")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in body.path):
        raise InputError(f"the path {body.path!r} holds a NUL or another control character; "
                         "expected a file path under an ingest root")
    try:
        path = Path(body.path).resolve()
        root = next((r for r in roots if path.is_relative_to(r)), None)
        if root is None:
            raise ConfigError(f"{body.path} is not under an allowed ingest root")
        if not path.is_file():
            raise InputError("file not found", path=body.path)
    except OSError as exc:  # a name too long, a loop of links …
        raise InputError(f"cannot use this path: {exc.strerror}", path=body.path) from None
    source = str(path.relative_to(root))
    result = ingest_file(kind, path, encoding=body.encoding, store=state.store,
                         quarantine_dir=state.settings.quarantine_dir)
    return public_summary(result.summary(), request, source)


@router.get("/overview", dependencies=[Read, Costly])  # rate-limited: counts every table
def overview(state: State) -> dict:
    """Record counts per table and the latest ingest runs."""
    return state.data.overview(runs=20)


class ProfilingJob(BaseModel):
    embedder: str = Field("auto", description="auto | minilm | lsa …")
    k: int | None = Field(None, ge=2, le=50, description="Number of segments (default: chosen).")
    seed: int = 0
    sentiment: str = Field("auto", description="auto: the sentiment models (built first where "
                                               "missing); rating: star ratings only")


@router.post("/profiling/jobs", status_code=202, tags=["jobs"], dependencies=[Write])
def start_profiling(body: ProfilingJob, state: State, request: Request) -> dict:
    """Profile the whole store in the background; poll ``/v1/jobs/{id}``."""
    from adpilot.profiling.build import profile_store

    def run(progress) -> dict:
        model_store = None
        if body.sentiment != "rating":  # the explicit training step: models the store lacks
            from adpilot.artifacts import ModelStore
            from adpilot.datasets_fetch import DataSources
            from adpilot.models_fetch import ensure_sentiment_models
            from adpilot.profiling.polarity import state_unbuilt

            progress(0.02, "building the sentiment models where missing")
            model_store = ModelStore.from_settings(state.settings)
            state_unbuilt(ensure_sentiment_models(
                model_store, sources=DataSources.from_settings(state.settings)), body.sentiment)
        progress(0.05, "reading the store and profiling")
        result = profile_store(state.store, embedder=body.embedder, k=body.k, seed=body.seed,
                               sentiment=body.sentiment, model_store=model_store,
                               precision=state.settings.sentiment_precision)
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
    limit = min(limit, state.settings.max_page_size)
    return _page(state.data.profiles(**filters.kwargs()), limit, offset)


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
    seg, members = state.data.members(segment_id)
    return {**seg, "members": _page(members, min(limit, state.settings.max_page_size), offset)}
