"""The ``webhook`` channel: SMS and push through a provider's HTTP API.

Each message is one JSON POST to ``url``. ``X-Adpilot-Signature: sha256=<hex>`` is the HMAC-SHA256
of the exact body under the shared secret (the gateway recomputes it), and ``Idempotency-Key`` is
the message id, so a gateway that deduplicates by it never delivers a resend twice: this channel
is ``idempotent`` and the sender may resend what was in flight when a run died. 2xx is sent;
429 and 5xx (and a transport error) are transient; any other status is a permanent failure.
A Twilio-like or 阿里云短信-like gateway is put behind it by a small adapter service.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from adpilot.delivery.base import DeliveryError, Message, Receipt, register_channel
from adpilot.delivery.links import Tracker
from adpilot.errors import MissingDependencyError

SIGNATURE_HEADER = "X-Adpilot-Signature"


def signature(body: bytes, secret: str) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant time): for gateways and tests."""
    return bool(header) and hmac.compare_digest(signature(body, secret), header or "")


def payload(message: Message) -> bytes:
    """The JSON body posted for ``message``."""
    doc: dict[str, Any] = {
        "message_id": message.message_id, "campaign": message.campaign, "variant": message.variant,
        "user_id": message.user_id, "channel": message.channel, "to": message.to,
        "subject": message.subject, "text": message.text, "lang": message.lang, "links": message.links,
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


@register_channel("webhook")
class WebhookChannel:
    """POSTs messages to ``url`` signed with ``secret``. With a ``tracker`` (built from
    ADPILOT_PUBLIC_URL and ADPILOT_LINK_SECRET) the text's links are tracked and an SMS ends
    with its opt-out instruction."""

    name = "webhook"
    idempotent = True

    def __init__(self, url: str, *, secret: str, timeout: float = 15.0,
                 headers: dict[str, str] | None = None, tracker: Tracker | None = None) -> None:
        if not url.startswith(("https://", "http://")):
            raise DeliveryError(f"webhook URL {url!r} is not an http(s) URL (ADPILOT_WEBHOOK_URL)")
        if not secret:
            raise DeliveryError("a webhook secret is required to sign requests (ADPILOT_WEBHOOK_SECRET)")
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("the webhook channel needs httpx: "
                                         "pip install 'adpilot[delivery]'") from None
        self.url = url
        self.tracker = tracker
        self._secret = secret
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout, headers=headers or {})

    def __repr__(self) -> str:  # never the secret
        return f"WebhookChannel({self.url})"

    def deliver(self, message: Message) -> Receipt:
        mid = message.message_id
        if self.tracker is not None:
            message = self.tracker.tracked(message)
        body = payload(message)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   SIGNATURE_HEADER: signature(body, self._secret), "Idempotency-Key": mid}
        try:
            resp = self._client.post(self.url, content=body, headers=headers)
        except self._httpx.TransportError as exc:
            # resending is safe whatever happened: the gateway deduplicates by Idempotency-Key
            return Receipt(message_id=mid, status="failed", transient=True,
                           reason=f"HTTP transport: {type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            provider_id = None
            try:
                doc = resp.json()
                if isinstance(doc, dict) and doc.get("id") is not None:
                    provider_id = str(doc["id"])
            except ValueError:
                pass
            return Receipt(message_id=mid, status="sent", provider_id=provider_id)
        reason = f"HTTP {resp.status_code}: {resp.text[:200]}"
        transient = resp.status_code == 429 or resp.status_code >= 500
        return Receipt(message_id=mid, status="failed", reason=reason, transient=transient)

    def close(self) -> None:
        self._client.close()
