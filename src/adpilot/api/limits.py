"""Pure ASGI middleware: the request-size limit (refuses by Content-Length up front and counts
streamed, chunked bodies too, so a client cannot get round it by omitting the header), and the
browser hardening headers on every response."""

from __future__ import annotations

import json

from adpilot.api.errors import error_body
from adpilot.errors import BodyTooLarge


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send) -> None:
        body = json.dumps(error_body(413, f"request body larger than {self.max_bytes} bytes",
                                     code="too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)


# The dashboard has no scripts at all and only same-origin resources. Styles may be inline:
# the charts are matplotlib SVGs with <style> elements and style attributes (no nonce can
# cover attributes); with scripts blocked and templates autoescaped, that is the small risk.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
# FastAPI's /docs and /redoc pages (only when ADPILOT_API_DOCS=true) start Swagger UI and
# ReDoc with an inline script and load them from a CDN; they show no data, only the schema.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
            "worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy, X-Frame-Options: DENY, X-Content-Type-Options: nosniff
    and Referrer-Policy: same-origin (same-origin, not no-referrer: the studio sends the
    browser back to the page it came from) to every HTTP response; HSTS when served over
    HTTPS (``cookie_secure``)."""

    def __init__(self, app, hsts: bool = False) -> None:
        self.app = app
        common = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", b"same-origin")]
        if hsts:
            common.append((b"strict-transport-security", b"max-age=31536000"))
        self._headers = [(b"content-security-policy", CSP.encode()), *common]
        self._docs = [(b"content-security-policy", DOCS_CSP.encode()), *common]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = self._docs if path.startswith(DOCS_PATHS) else self._headers

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(n, v) for n, v in extra if n not in present]]
            await send(message)

        await self.app(scope, receive, with_headers)
