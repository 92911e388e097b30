"""The public routes of tracked links: clicks, opens and unsubscribes (no API key: customers
follow them from their messages).

``GET /t/c/{token}`` redirects to the URL the token signs (only that one: never an open
redirect); ``GET /t/o/{token}`` answers a 1×1 GIF; ``GET /u/{token}`` shows a confirmation page
in the message's language and ``POST /u/{token}`` unsubscribes at once (RFC 8058 one-click:
mail clients POST ``List-Unsubscribe=One-Click`` with no cookie, so there is no CSRF token; the
signed token is the proof). Each becomes an event in the events inbox (click; an open counts as
the campaign's ``impression``, and so does a click; an unsubscribe when the event schema
accepts that type), with an id fixed by message and kind, so a repeated click or open is
stored once. A bad token gets the same bilingual 404 page whatever is wrong with it.
Every route is rate-limited per client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from adpilot.api.security import AppState, client_of, too_many
from adpilot.api.throttle import RateLimiter
from adpilot.data import columns as C
from adpilot.data.schema import EVENTS
from adpilot.delivery.ledger import SENDS, Ledger
from adpilot.delivery.links import LinkClaims, LinkKind, verify

router = APIRouter(include_in_schema=False)
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parents[2] / "dashboard" / "templates"))

RATE_PER_MINUTE = 120.0  # per client address: a person clicks a few links, a scanner many
BURST = 60
# a transparent 1×1 GIF
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
         b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
_ACCEPTED = next(f.choices for f in EVENTS.fields if f.name == C.EVENT_TYPE)
# what each kind of link is recorded as in the events inbox (None: not recorded there)
EVENT_TYPE: dict[str, str | None] = {
    "click": "click",
    "open": "impression",  # an opened e-mail was seen: the bandit's and report's impression
    "unsubscribe": "unsubscribe" if "unsubscribe" in _ACCEPTED else None,
}

TEXT = {
    "en": {"confirm": "Unsubscribe", "confirm_line": "Stop receiving {channel} messages from us?",
           "button": "Unsubscribe", "done": "You are unsubscribed",
           "done_line": "You will receive no more {channel} messages from us."},
    "zh": {"confirm": "退订", "confirm_line": "确定不再接收我们的{channel}消息吗？",
           "button": "确认退订", "done": "退订成功", "done_line": "您将不再收到我们的{channel}消息。"},
}
CHANNEL_NAMES = {"en": {"email": "e-mail", "sms": "SMS", "push": "push"},
                 "zh": {"email": "邮件", "sms": "短信", "push": "推送"}}
BAD = ("Link not valid · 链接无效",
       ["This link is not valid or has been changed.", "此链接无效或已被修改。"])


@dataclass
class Tracking:
    """What the routes need besides the app state: the link secret, the rate limiter and
    the suppression list."""

    secret: str | None
    limiter: RateLimiter
    ledger: Ledger


def install(app, state: AppState) -> None:
    """Add the tracking routes to ``app`` (their secret is ADPILOT_LINK_SECRET; unset, every
    token is refused)."""
    secret = state.settings.link_secret.get_secret_value() if state.settings.link_secret else None
    app.state.tracking = Tracking(secret=secret, limiter=RateLimiter(
        rate_per_minute=RATE_PER_MINUTE, burst=BURST), ledger=Ledger(state.store))
    app.include_router(router)


def _claims(request: Request, token: str, kind: LinkKind) -> LinkClaims | None:
    tracking: Tracking = request.app.state.tracking
    wait = tracking.limiter.take(client_of(request))
    if wait:
        raise too_many(wait, "too many requests from this client")
    return verify(token, tracking.secret, kind)


def _page(request: Request, status: int, lang: str, title: str, lines: list[str],
          action: str | None = None, button: str = "") -> HTMLResponse:
    return _TEMPLATES.TemplateResponse(
        request, "tracking.html", {"lang": lang, "title": title, "lines": lines,
                                   "action": action, "button": button},
        status_code=status, headers={**NO_STORE, "X-Robots-Tag": "noindex"})


def _bad(request: Request) -> HTMLResponse:
    return _page(request, 404, "en", BAD[0], BAD[1])


def event_of(claims: LinkClaims, now: datetime | None = None) -> dict | None:
    """The feedback event a followed link stands for (None when its kind is not recorded)."""
    kind = EVENT_TYPE[claims.kind]
    if kind is None:
        return None
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    event = {C.EVENT_ID: claims.event_id, C.CAMPAIGN: claims.campaign, C.VARIANT: claims.variant,
             C.USER_ID: claims.user_id, C.EVENT_TYPE: kind, C.CHANNEL: claims.channel,
             C.TIME: moment.isoformat(timespec="seconds"), "message_id": claims.message_id,
             "signal": claims.kind}
    if claims.url:
        event["url"] = claims.url
    return event


def _from_ledger(tracking: Tracking, claims: LinkClaims) -> LinkClaims | None:
    """A short token's claims completed from the send ledger (None: the message was never sent,
    e.g. a dry run's preview, and there is nothing to attribute the click to)."""
    query = select(SENDS.c.campaign, SENDS.c.variant, SENDS.c.user_id, SENDS.c.channel).where(
        SENDS.c.message_id == claims.message_id)
    with tracking.ledger.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return replace(claims, campaign=row.campaign, variant=row.variant, user_id=row.user_id,
                   channel=row.channel, short=False)


async def _record(request: Request, claims: LinkClaims) -> None:
    if claims.short:
        found = await run_in_threadpool(_from_ledger, request.app.state.tracking, claims)
        if found is None:
            return
        claims = found
    seen = [replace(claims, kind="open", url=None)] if claims.kind == "click" else []
    # a click shows the message was seen even when its pixel was blocked: it records the
    # message's impression too (under the open's id, so an open and a click make one)
    events = [e for e in map(event_of, [*seen, claims]) if e is not None]
    if events:
        body = json.dumps({"events": events}, ensure_ascii=False).encode("utf-8")
        await request.app.state.adpilot.campaigns.enqueue_events(body, len(events))


async def _tracked(request: Request, token: str, kind: str, answer) -> Response:
    """Record the click or open a valid token names, then ``answer(claims)``; one 404 else."""
    claims = _claims(request, token, kind)
    if claims is None:
        return _bad(request)
    await _record(request, claims)
    return answer(claims)


@router.get("/t/c/{token}")
async def click(request: Request, token: str) -> Response:
    return await _tracked(request, token, "click", lambda claims: RedirectResponse(
        str(claims.url), status_code=302, headers=NO_STORE))


@router.get("/t/o/{token}")
async def pixel(request: Request, token: str) -> Response:
    return await _tracked(request, token, "open", lambda claims: Response(
        PIXEL, media_type="image/gif", headers=NO_STORE))


def _texts(claims: LinkClaims) -> tuple[dict, str]:
    lang = claims.lang if claims.lang in TEXT else "en"
    return TEXT[lang], CHANNEL_NAMES[lang].get(claims.channel, claims.channel)


@router.get("/u/{token}")
async def unsubscribe_page(request: Request, token: str) -> Response:
    """The confirmation page; following the link alone unsubscribes nobody (link scanners
    fetch every link of a message)."""
    claims = _claims(request, token, "unsubscribe")
    if claims is None:
        return _bad(request)
    text, channel = _texts(claims)
    return _page(request, 200, claims.lang, text["confirm"],
                 [text["confirm_line"].format(channel=channel)],
                 action=f"/u/{token}", button=text["button"])


@router.post("/u/{token}")
async def unsubscribe(request: Request, token: str) -> Response:
    """One-click unsubscribe: the customer goes on the suppression list of the message's
    channel (a second POST changes nothing) and the done page answers."""
    claims = _claims(request, token, "unsubscribe")
    if claims is None:
        return _bad(request)
    ledger: Ledger = request.app.state.tracking.ledger
    await run_in_threadpool(ledger.suppress, claims.user_id, claims.channel, "unsubscribed",
                            datetime.now(UTC), source=f"unsubscribe link, message {claims.message_id}")
    await _record(request, claims)
    text, channel = _texts(claims)
    return _page(request, 200, claims.lang, text["done"], [text["done_line"].format(channel=channel)])
