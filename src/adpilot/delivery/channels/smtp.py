"""The ``smtp`` channel: e-mail through any SMTP server, with the stdlib's :mod:`smtplib`.

One connection per thread is opened lazily and reused across messages. The SMTP transaction is
run step by step (MAIL, RCPT, DATA) so a failure is classified by where it happened: a 4xx
answer or a dropped connection before DATA is transient (nothing was handed over; retry), a 5xx
refusal of the recipient is a hard bounce, and a connection lost during DATA is ``unknown`` (the
server may have taken the message, so it is not resent).

URL forms (``ADPILOT_SMTP_URL``): ``smtp://host:port`` (plain), ``smtp://user:pass@host:587?starttls=1``
and ``smtps://user:pass@host:465`` (TLS from the start).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from urllib.parse import parse_qs, unquote, urlsplit

from adpilot.delivery.base import DeliveryError, Message, Receipt, register_channel
from adpilot.delivery.mime import Sender, render_email


def _classify(message_id: str, code: int, reply: bytes | str, stage: str) -> Receipt:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    reason = f"SMTP {code} at {stage}: {text}".strip()
    if 400 <= code < 500:
        return Receipt(message_id=message_id, status="failed", reason=reason, transient=True)
    bounce = "bounced" if stage == "RCPT" and 500 <= code < 600 else None
    return Receipt(message_id=message_id, status="failed", reason=reason, suppress=bounce)


@register_channel("smtp")
class SMTPChannel:
    """E-mail through the SMTP server at ``url``, sent as ``sender``."""

    name = "smtp"
    idempotent = False  # SMTP has no idempotency key: an in-flight message is never resent

    def __init__(self, url: str, *, sender: Sender, timeout: float = 30.0,
                 local_hostname: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise DeliveryError("SMTP URL must look like smtp://[user:pass@]host[:port][?starttls=1] "
                                f"or smtps://…; got scheme {parts.scheme!r} (ADPILOT_SMTP_URL)")
        self.host = parts.hostname
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 25)
        query = parse_qs(parts.query)
        self.starttls = query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
        self.username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self.connections_opened = 0

    def __repr__(self) -> str:  # never the password
        return f"SMTPChannel({self.host}:{self.port}, tls={self.tls}, starttls={self.starttls})"

    def _connect(self) -> smtplib.SMTP:
        if self.tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                  local_hostname=self.local_hostname,
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout,
                                local_hostname=self.local_hostname)
        conn.ehlo()
        if self.starttls:
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
        if self.username:
            conn.login(self.username, self._password or "")
        with self._lock:
            self._all.append(conn)
            self.connections_opened += 1
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def deliver(self, message: Message) -> Receipt:
        mid = message.message_id
        data = render_email(message, self.sender)
        try:
            conn = getattr(self._local, "conn", None) or self._connect()
            self._local.conn = conn
            code, reply = conn.mail(self.sender.address)
            if code != 250:
                conn.rset()
                return _classify(mid, code, reply, "MAIL")
            code, reply = conn.rcpt(message.to or "")
            if code not in (250, 251):
                conn.rset()
                return _classify(mid, code, reply, "RCPT")
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            return Receipt(message_id=mid, status="failed", reason=f"SMTP login refused: {exc.smtp_code}")
        except (smtplib.SMTPException, OSError) as exc:
            # before DATA nothing was handed over: safe to retry on a new connection
            self._drop()
            return Receipt(message_id=mid, status="failed", transient=True,
                           reason=f"SMTP connection: {type(exc).__name__}: {exc}")
        try:
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): nothing handed over
            conn.rset()
            return _classify(mid, exc.smtp_code, exc.smtp_error, "DATA")
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return Receipt(message_id=mid, status="unknown",
                           reason=f"connection lost during DATA: {type(exc).__name__}: {exc}")
        if code != 250:
            return _classify(mid, code, reply, "end of DATA")
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return Receipt(message_id=mid, status="sent", provider_id=text[:200])

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
        self._local = threading.local()
