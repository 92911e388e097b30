"""One JSON shape for every error: ``{"error": {"status", "code", "message", "details"?}}``.

An adpilot error answers with the status and code its class declares (``http_status``,
``error_code``: 4xx, or 5xx for a backend that is down) and its message; anything else is a
bug: a generic 500 whose details stay in the server log, never in the response.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adpilot.errors import AdpilotError

log = logging.getLogger("adpilot.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media",
          422: "invalid_request", 429: "too_many_requests", 501: "not_available",
          502: "bad_gateway", 503: "unavailable"}


def error_body(status: int, message: str, *, code: str | None = None,
               details: list | None = None) -> dict:
    body = {"status": status, "code": code or _CODES.get(status, "error"), "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(status: int, message: str, *, code: str | None = None,
                   details: list | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code=code, details=details), status_code=status,
                        headers=headers)


def status_for(exc: AdpilotError) -> tuple[int, str]:
    """The HTTP status and error code of ``exc``: its class's ``http_status`` and ``error_code``
    (see :mod:`adpilot.errors`), so a new error class brings its own answer."""
    return exc.http_status, exc.error_code


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(AdpilotError)
    async def _adpilot(request: Request, exc: AdpilotError) -> JSONResponse:
        status, code = status_for(exc)
        return error_response(status, str(exc), code=code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        from adpilot.api.limits import BodyTooLarge

        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI wraps body-read errors in a 400
            return error_response(413, "request body too large", code="too_large")
        message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
                   for e in exc.errors()[:50]]  # the offending values are not echoed back
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        return error_response(422, f"invalid request: {'.'.join(first['loc'])}: {first['message']}",
                              details=details)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
        return error_response(500, f"internal server error (reference {ref})", code="internal")
