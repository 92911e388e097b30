"""Tracked links, the open pixel and the unsubscribe link: signed tokens that close the loop.

A token is ``<payload>.<mac>``: the payload is the compact JSON of :class:`LinkClaims` (message
id, campaign, variant, user, channel, language, what the link does and, for a click, the target
URL) in URL-safe base64; the mac is HMAC-SHA256 of the payload under ``ADPILOT_LINK_SECRET``
(cut to 96 bits, plenty against forgery of a URL one can only try online). The server needs no
lookup to act on a token and redirects only to the URL that was signed, so ``/t/c/…`` is never
an open redirect. :class:`Tracker` rewrites a message's links into such URLs of
``adpilot serve`` (``{public_url}/t/c/…``, ``/t/o/…``, ``/u/…``).

An SMS pays per 70 (Chinese) or 160 characters, so its click links carry a short token: the
message id as 16 bytes, the language and the URL, with a 72-bit mac; the server reads the
campaign, variant and user of that message from the send ledger (:attr:`LinkClaims.short`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html as html_lib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from adpilot.delivery.base import Message

LinkKind = Literal["click", "open", "unsubscribe"]
_CODE = {"click": "c", "open": "o", "unsubscribe": "u"}
_KIND = {v: k for k, v in _CODE.items()}
_PATH = {"click": "t/c", "open": "t/o", "unsubscribe": "u"}
_MAC_BYTES = 12
_SHORT_MAC_BYTES = 9
_SHORT = b"s"  # first byte of a short token's payload (a full one is JSON: "[")
_MAX_TOKEN = 4096  # longer is not a token of ours: refused before any decoding

# a URL in plain text ends at white space, quotes or angle brackets; trailing punctuation
# (English and Chinese) belongs to the sentence, not the URL
_TEXT_URL = re.compile(r"https?://[^\s<>\"'，。！？；、）】》]+")
_TRAILING = ".,;:!?)]}'\""
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)

SMS_STOP = {"en": "Reply STOP to opt out", "zh": "回复TD退订"}


def lang_of(value: str | None) -> str:
    """``zh`` for any Chinese tag (zh, zh-CN, zh-Hant…), else ``en``."""
    return "zh" if (value or "").lower().startswith("zh") else "en"


@dataclass(frozen=True)
class LinkClaims:
    """What a token says: which message, for whom, and what following it means."""

    kind: LinkKind
    message_id: str
    campaign: str
    variant: str
    user_id: str
    channel: str
    lang: str = "en"
    url: str | None = None  # the target of a click
    short: bool = False  # campaign, variant and user are to be read from the send ledger

    @classmethod
    def of(cls, message: Message, kind: LinkKind, url: str | None = None) -> LinkClaims:
        return cls(kind=kind, message_id=message.message_id, campaign=message.campaign,
                   variant=message.variant, user_id=message.user_id, channel=message.channel,
                   lang=lang_of(message.lang), url=url)

    @property
    def event_id(self) -> str:
        """The feedback event's id: one per message and kind, so a second click or open of
        the same message is the same event (the inbox stores an event id once)."""
        digest = hashlib.sha256(f"{self.kind}\x1f{self.message_id}".encode()).hexdigest()[:32]
        return f"t{_CODE[self.kind]}-{digest}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: str, secret: str, size: int = _MAC_BYTES) -> str:
    mac = hmac.new(secret.encode("utf-8"), b"adpilot-link\x1f" + payload.encode("ascii"),
                   hashlib.sha256).digest()
    return _b64(mac[:size])


def sign_short(claims: LinkClaims, secret: str) -> str:
    """A short token for ``claims`` (an SMS's click): kind, message id, language and URL only."""
    if not secret:
        raise ValueError("a link secret is required (ADPILOT_LINK_SECRET)")
    raw = (_SHORT + _CODE[claims.kind].encode() + bytes.fromhex(claims.message_id)
           + claims.lang[:1].encode() + (claims.url or "").encode("utf-8"))
    payload = _b64(raw)
    return f"{payload}.{_mac(payload, secret, _SHORT_MAC_BYTES)}"


def _short_claims(raw: bytes) -> LinkClaims | None:
    if len(raw) < 20 or raw[1:2] != b"c":  # only clicks have short tokens
        return None
    try:
        url = raw[19:].decode("utf-8") or None
    except UnicodeDecodeError:
        return None
    return LinkClaims(_KIND[chr(raw[1])], raw[2:18].hex(), "", "", "", "sms",
                      "zh" if raw[18:19] == b"z" else "en", url=url, short=True)


def sign(claims: LinkClaims, secret: str) -> str:
    """The URL-safe token for ``claims`` under ``secret``."""
    if not secret:
        raise ValueError("a link secret is required (ADPILOT_LINK_SECRET)")
    fields = [_CODE[claims.kind], claims.message_id, claims.campaign, claims.variant,
              claims.user_id, claims.channel, claims.lang]
    if claims.url is not None:
        fields.append(claims.url)
    payload = _b64(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_mac(payload, secret)}"


def verify(token: str, secret: str | None, kind: LinkKind | None = None) -> LinkClaims | None:
    """The claims of ``token`` when its mac is right (and it is a ``kind`` link), else None:
    a tampered, truncated or foreign token gives nothing away, whichever part is wrong."""
    if not secret or not token or len(token) > _MAX_TOKEN:
        return None
    payload, dot, mac = token.partition(".")
    if not dot or not payload.isascii() or not mac.isascii():
        return None
    try:
        raw = _unb64(payload)
    except (ValueError, binascii.Error):
        return None
    short = raw[:1] == _SHORT
    if not hmac.compare_digest(_mac(payload, secret, _SHORT_MAC_BYTES if short else _MAC_BYTES),
                               mac):
        return None
    if short:
        claims = _short_claims(raw)
    else:
        try:
            fields = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(fields, list) or len(fields) not in (7, 8) or fields[0] not in _KIND \
                or not all(isinstance(f, str) for f in fields):
            return None
        claims = LinkClaims(_KIND[fields[0]], *fields[1:7],
                            url=fields[7] if len(fields) == 8 else None)
    if claims is None:
        return None
    if kind is not None and claims.kind != kind:
        return None
    if claims.kind == "click" and not (claims.url or "").startswith(("https://", "http://")):
        return None
    return claims


class Tracker:
    """Builds the tracked URLs of ``adpilot serve`` at ``public_url`` for one message's links."""

    def __init__(self, public_url: str, secret: str) -> None:
        if not public_url.startswith(("https://", "http://")):
            raise ValueError(f"public URL {public_url!r} is not an http(s) URL (ADPILOT_PUBLIC_URL)")
        self.base = public_url.rstrip("/")
        self._secret = secret

    def __repr__(self) -> str:  # never the secret
        return f"Tracker({self.base})"

    def url(self, message: Message, kind: LinkKind, target: str | None = None, *,
            short: bool = False) -> str:
        claims = LinkClaims.of(message, kind, target)
        token = sign_short(claims, self._secret) if short else sign(claims, self._secret)
        return f"{self.base}/{_PATH[kind]}/{token}"

    def unsubscribe_url(self, message: Message) -> str:
        return self.url(message, "unsubscribe")

    def pixel(self, message: Message) -> str:
        """The open pixel for the end of an e-mail's HTML."""
        src = html_lib.escape(self.url(message, "open"))
        return f'<img src="{src}" width="1" height="1" alt="" style="border:0">'

    def tracked_links(self, text: str) -> Iterator[re.Match]:
        """The tracked click links of this tracker in ``text`` (tokens are URL-safe base64
        and one dot, so a full stop after a link is not part of it)."""
        return re.finditer(re.escape(self.base) + r"/t/c/[\w-]+\.[\w-]+", text, re.ASCII)

    def _ours(self, url: str) -> bool:
        return url.startswith(self.base + "/")

    def rewrite_text(self, message: Message, text: str, *, short: bool = False) -> str:
        """Every http(s) URL in plain ``text`` replaced by its tracked link (``short``: with
        short tokens)."""
        def repl(m: re.Match) -> str:
            url = m.group()
            tail = ""
            while url and url[-1] in _TRAILING:
                url, tail = url[:-1], url[-1] + tail
            if not url or self._ours(url):
                return m.group()
            return self.url(message, "click", url, short=short) + tail
        return _TEXT_URL.sub(repl, text)

    def rewrite_html(self, message: Message, page: str) -> str:
        """Every ``href`` to an http(s) URL in ``page`` replaced by its tracked link."""
        def repl(m: re.Match) -> str:
            url = html_lib.unescape(m.group(3))
            if self._ours(url):
                return m.group()
            tracked = html_lib.escape(self.url(message, "click", url))
            return f"{m.group(1)}{m.group(2)}{tracked}{m.group(2)}"
        return _HREF.sub(repl, page)

    def sms_text(self, message: Message) -> str:
        """An SMS's text with its links tracked and the opt-out instruction of its language
        (a reply, handled by :mod:`adpilot.delivery.replies`; shorter than a second link)."""
        stop = SMS_STOP[lang_of(message.lang)]
        body = self.rewrite_text(message, message.text, short=True)
        return body if stop in body else f"{body}\n{stop}"

    def tracked(self, message: Message) -> Message:
        """An SMS or push ``message`` as it goes out: its text's links tracked (an SMS also
        with its opt-out instruction). E-mails are tracked when rendered (:mod:`.mime`)."""
        if message.channel == "sms":
            return message.model_copy(update={"text": self.sms_text(message)})
        if message.channel == "push":
            return message.model_copy(update={"text": self.rewrite_text(message, message.text)})
        return message
