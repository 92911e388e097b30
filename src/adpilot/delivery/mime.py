"""Rendering a :class:`~adpilot.delivery.base.Message` as an RFC 5322 e-mail (used by ``smtp`` and ``file``).

Every e-mail is multipart text + HTML, has a unique ``Message-ID``, and carries
``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058, which
Gmail and Yahoo require of bulk senders) and a footer with the sender and its postal address.
Its http(s) links go through ``adpilot serve``'s tracked links and its HTML ends with an open
pixel (:mod:`adpilot.delivery.links`).
"""

from __future__ import annotations

import base64
import html as html_lib
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from adpilot.delivery.base import DeliveryError, Message
from adpilot.delivery.dkim import DkimSigner
from adpilot.delivery.links import Tracker, lang_of

# headers the renderer owns: a message's own headers may not replace them
_RESERVED = {"from", "to", "subject", "message-id", "date", "list-unsubscribe",
             "list-unsubscribe-post", "mime-version", "content-type", "content-transfer-encoding"}

_TOKEN = re.compile(r"[!-9;-~]+")  # a header field name (RFC 5322: printable, no colon)

_FOOTER = {
    "en": ("You receive this e-mail from {sender}, {address}.", "Unsubscribe"),
    "zh": ("此邮件由 {sender} 发送，地址：{address}。", "退订"),
}


@dataclass(frozen=True)
class Sender:
    """Who sends: ``from_addr`` ("Brand <news@brand.example>"), the postal address for the footer,
    the public base URL of ``adpilot serve`` (unsubscribe links) and the secret that signs them;
    ``dkim`` signs every e-mail when set."""

    from_addr: str
    postal_address: str
    public_url: str
    link_secret: str = field(repr=False)
    dkim: DkimSigner | None = None

    def __post_init__(self) -> None:
        name, addr = parseaddr(self.from_addr)
        if "@" not in addr:
            raise DeliveryError(f"sender address {self.from_addr!r} has no e-mail address; expected "
                                "'Brand <news@brand.example>' (ADPILOT_SMTP_FROM)")
        if not self.public_url.startswith(("https://", "http://")):
            raise DeliveryError(f"public URL {self.public_url!r} is not an http(s) URL (ADPILOT_PUBLIC_URL)")
        if not self.postal_address.strip():
            raise DeliveryError("a postal address for the e-mail footer is required (anti-spam law)")
        if not self.link_secret:
            raise DeliveryError("a secret to sign unsubscribe links is required")

    @property
    def address(self) -> str:
        return parseaddr(self.from_addr)[1]

    @property
    def display_name(self) -> str:
        return parseaddr(self.from_addr)[0] or self.address

    @property
    def tracker(self) -> Tracker:
        """Signs this sender's tracked links, open pixels and unsubscribe links."""
        return Tracker(self.public_url, self.link_secret)

    def unsubscribe_url(self, message: Message) -> str:
        """The one-click unsubscribe link of ``message`` (``{public_url}/u/{token}``)."""
        return self.tracker.unsubscribe_url(message)


def _header(value: str) -> str:
    """A header value: no line breaks (header injection), RFC 2047-encoded when not plain ASCII."""
    value = " ".join(value.splitlines())
    if value.isascii() and len(value) <= 900:
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def _part(content_type: str, text: str) -> str:
    encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (f"Content-Type: {content_type}; charset=\"utf-8\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}")


def _linked(text: str, tracker: Tracker) -> str:
    """Plain text (its links already tracked) as HTML: the tracked links as anchors, line
    breaks kept."""
    out, last = [], 0
    for m in tracker.tracked_links(text):
        out.append(html_lib.escape(text[last:m.start()]))
        url = html_lib.escape(m.group())
        out.append(f'<a href="{url}">{url}</a>')
        last = m.end()
    out.append(html_lib.escape(text[last:]))
    return "".join(out).replace("\n", "<br>")


def render_email(message: Message, sender: Sender) -> bytes:
    """The e-mail for ``message`` (which must be an e-mail with an address): RFC 5322 bytes with CRLF,
    multipart/alternative with a text and an HTML part (UTF-8, base64).

    Written directly rather than through :mod:`email.message`, whose generator parses and
    refolds every header and costs milliseconds per e-mail; the tests parse the result back
    with the stdlib parser.
    """
    if message.channel != "email" or not message.to:
        raise DeliveryError(f"message {message.message_id} is not an e-mail with an address")
    tracker = sender.tracker
    unsubscribe = tracker.unsubscribe_url(message)
    line, label = _FOOTER[lang_of(message.lang)]
    footer = line.format(sender=sender.display_name, address=sender.postal_address)
    # links are tracked before the footer is added: the unsubscribe link is not a click
    text = tracker.rewrite_text(message, message.text)
    if message.html is not None:
        body = tracker.rewrite_html(message, message.html)
    else:
        body = "<p>" + _linked(text, tracker) + "</p>"
    name, addr = parseaddr(sender.from_addr)
    domain = addr.partition("@")[2]
    headers = {
        "From": formataddr((name, addr), charset="utf-8") if name else addr,
        "To": _header(message.to),
        "Subject": _header(message.subject),
        "Date": formatdate(localtime=False, usegmt=True),
        # unique per e-mail (a resend is a new e-mail); the ledger id travels in its own header
        "Message-ID": make_msgid(idstring=message.message_id[:12], domain=domain),
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Adpilot-Message-Id": message.message_id,
        "X-Adpilot-Campaign": _header(message.campaign),
    }
    for key, value in message.headers.items():
        if key.lower() in _RESERVED or not _TOKEN.fullmatch(key):
            raise DeliveryError(f"message {message.message_id}: header {key!r} is set by adpilot "
                                "or is not a header name")
        headers[key] = _header(value)
    boundary = f"=_adpilot_{message.message_id[:16]}_{secrets.token_hex(8)}"
    text = f"{text}\n\n--\n{footer}\n{label}: {unsubscribe}\n"
    page = (f"<!doctype html><html lang=\"{html_lib.escape(message.lang)}\"><body>{body}"
            f"<hr><p style=\"font-size:12px;color:#666\">{html_lib.escape(footer)} "
            f"<a href=\"{html_lib.escape(unsubscribe)}\">{label}</a></p>"
            f"{tracker.pixel(message)}</body></html>")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    data = (f"{head}MIME-Version: 1.0\r\n"
            f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\n{_part('text/plain', text)}\r\n"
            f"--{boundary}\r\n{_part('text/html', page)}\r\n"
            f"--{boundary}--\r\n").encode("ascii")
    return sender.dkim.sign(data) if sender.dkim else data
