"""Health, background jobs, API keys (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from adpilot.api.keys import list_keys
from adpilot.api.security import Admin, Read, State
from adpilot.errors import NotFoundError

router = APIRouter()


@router.get("/health", tags=["system"])
def health(state: State) -> dict:
    """Liveness and database reachability; the only endpoint without a key."""
    try:
        state.store.count("events")
        db = "ok"
    except Exception:  # report, do not leak: the details are for the server log
        db = "unreachable"
    return {"status": "ok" if db == "ok" else "degraded", "database": db}


@router.get("/v1/jobs", tags=["jobs"], dependencies=[Read])
def jobs(state: State, limit: int = Query(50, ge=1, le=500)) -> dict:
    """Recent background jobs, newest first."""
    return {"items": state.jobs.list(limit)}


@router.get("/v1/jobs/{job_id}", tags=["jobs"], dependencies=[Read])
def job(job_id: str, state: State) -> dict:
    """One job: status (queued, running, succeeded, failed), progress 0-1, result or error."""
    found = state.jobs.get(job_id)
    if found is None:
        raise NotFoundError(f"unknown job {job_id!r}")
    return found


@router.get("/v1/keys", tags=["system"], dependencies=[Admin])
def keys(state: State) -> dict:
    """API keys (ids, names, scopes, dates; never the secrets)."""
    return {"items": list_keys(state.store)}
