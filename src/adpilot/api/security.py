"""Request dependencies: the app state, API-key authentication with scopes (throttled against
guessing), and the rate limit of expensive routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from adpilot.api.jobs import JobRunner
from adpilot.api.keys import KeyInfo, KeyVerifier, scope_allows
from adpilot.api.settings import ApiSettings
from adpilot.api.throttle import AuthThrottle, RateLimiter
from adpilot.store.sql import Store
from adpilot.usecases.campaigns import CampaignService
from adpilot.usecases.copy_service import CopyService
from adpilot.usecases.data_overview import DataService
from adpilot.usecases.reports import CampaignReports


@dataclass
class AppState:
    """Everything a request handler may use; built once per app by ``create_app``."""

    settings: ApiSettings
    store: Store
    keys: KeyVerifier
    campaigns: CampaignService
    data: DataService
    copy: CopyService
    jobs: JobRunner
    throttle: AuthThrottle
    costly: RateLimiter
    reports: CampaignReports


def client_of(request: Request) -> str:
    """The client's address as the server saw it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so that it is the real client's)."""
    return request.client.host if request.client else "-"


def key_account(presented: str) -> tuple[str, str]:
    """The account an API key names: its id part (``adp_<id>_…``), bounded in length."""
    return ("key", presented.removeprefix("adp_").partition("_")[0][:32])


def too_many(seconds: int, what: str) -> HTTPException:
    return HTTPException(429, f"{what}: try again in {seconds} s",
                         headers={"Retry-After": str(seconds)})


async def get_state(request: Request) -> AppState:  # async: no thread hop per request
    return request.app.state.adpilot


State = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer adp_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: adp_…`")


def require(scope: str):
    """Dependency: a valid API key whose scope covers ``scope`` (401 without, 403 if too weak)."""

    # async: keys are cached (``key_cache_seconds``), so most checks never touch the
    # database, and a sync dependency would cost every request a thread hop
    async def check(request: Request, state: State,
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
              header: Annotated[str | None, Depends(_header)]) -> KeyInfo:
        presented = bearer.credentials if bearer else header
        if not presented:
            raise HTTPException(401, "an API key is required (Authorization: Bearer <key>)",
                                headers={"WWW-Authenticate": "Bearer"})
        client, account = client_of(request), key_account(presented)
        wait = state.throttle.retry_after(client, account)
        if wait:  # checked before the key, so a locked client learns nothing, right key or not
            raise too_many(wait, "too many invalid API keys")
        key = state.keys.verify(presented)
        if key is None:
            state.throttle.failed(client, account)
            raise HTTPException(401, "invalid or revoked API key",
                                headers={"WWW-Authenticate": "Bearer"})
        if not scope_allows(key.scope, scope):
            raise HTTPException(403, f"this key has scope {key.scope!r}; this endpoint needs "
                                     f"{scope!r}")
        request.state.key = key
        return key

    check.required_scope = scope  # read by the test that walks every route
    return check


Read = Depends(require("read"))
Write = Depends(require("write"))
Admin = Depends(require("admin"))


async def costly(request: Request, state: State) -> None:
    """Dependency for routes that aggregate whole tables: a token bucket per client (429 with
    ``Retry-After`` when empty). List it after the key check, so refused requests cost nothing."""
    wait = state.costly.take(client_of(request))
    if wait:
        raise too_many(wait, "too many report requests from this client")


Costly = Depends(costly)
