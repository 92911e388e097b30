"""Real servers on 127.0.0.1 for the delivery tests: an SMTP server (aiosmtpd) that records what it
receives and can answer chosen recipients with 4xx/5xx, and an SMS gateway (a small ASGI app under
uvicorn) that checks the HMAC signature and deduplicates by Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from adpilot.delivery.channels.webhook import SIGNATURE_HEADER, verify_signature


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class RecordingHandler:
    """aiosmtpd handler: records every accepted message; ``scripted[address]`` is a list of SMTP
    answers to RCPT for that address, used up one per attempt (then 250)."""

    received: list[Received] = field(default_factory=list)
    scripted: dict[str, list[str]] = field(default_factory=dict)
    rcpt_attempts: Counter = field(default_factory=Counter)
    drop_in_data: set[str] = field(default_factory=set)  # take the message, then hang up unanswered
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            self.rcpt_attempts[address] += 1
            answers = self.scripted.get(address)
            if answers:
                return answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content)))
            drop = bool(self.drop_in_data & set(envelope.rcpt_tos))
        if drop:  # the server has the message but the client never hears so
            server.transport.abort()
        return "250 2.0.0 Message accepted for delivery"

    def by_recipient(self) -> Counter:
        with self.lock:
            return Counter(r for m in self.received for r in m.rcpt_tos)


class SMTPServer:
    """An aiosmtpd server on 127.0.0.1 in a thread, for a ``with`` block."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@dataclass
class Gateway:
    """State of the SMS gateway: deliveries by idempotency key, requests seen, scripted statuses."""

    secret: str
    delivered: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, bool]] = field(default_factory=list)  # (idempotency key, signature ok)
    scripted: dict[str, list[int]] = field(default_factory=dict)  # key → statuses to answer first

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "")
        ok = verify_signature(body, headers.get(SIGNATURE_HEADER.lower()), self.secret)
        self.requests.append((key, ok))
        if not ok:
            status, doc = 401, {"error": "bad signature"}
        elif self.scripted.get(key):
            status, doc = self.scripted[key].pop(0), {"error": "scripted"}
        else:
            self.delivered.setdefault(key, json.loads(body))  # the same key twice: one SMS
            status, doc = 200, {"id": f"sms-{key[:8]}"}
        out = json.dumps(doc).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})


class GatewayServer:
    """:class:`Gateway` under uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, secret: str) -> None:
        import uvicorn

        self.gateway = Gateway(secret)
        self.port = free_port()
        config = uvicorn.Config(self.gateway, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def __enter__(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 60  # a loaded machine: follow it, generously
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
