"""The delivery contract: a :class:`Message` goes to a :class:`Channel`, which answers a :class:`Receipt`.

Channels are registered by name like the LLM backends (``smtp``, ``webhook``, ``file``) and built
with :func:`get_channel` from options the caller read from its settings: nothing here reads the
environment. A message's id is deterministic in (campaign, user, step), so the send ledger can
tell a rerun from a new message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adpilot.errors import DeliveryError as DeliveryError  # re-exported: defined in adpilot.errors
from adpilot.registry import Registry

ChannelKind = Literal["email", "sms", "push"]
ReceiptStatus = Literal["sent", "failed", "unknown"]


def message_id(campaign: str, user_id: str, step: str | int = 0) -> str:
    """The deterministic id of the message of ``campaign`` to ``user_id`` at ``step``: 32 hex digits."""
    raw = "\x1f".join((str(campaign), str(user_id), str(step))).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:32]


class Message(BaseModel):
    """One rendered message to one recipient on one channel.

    ``approved`` says the variant passed the approval gate; the sender skips it otherwise, so the
    default is the safe one. ``timezone`` is the recipient's IANA zone (quiet hours); None means
    the sender's default zone.
    """

    model_config = ConfigDict(frozen=True)

    campaign: str = Field(min_length=1)
    variant: str = ""
    user_id: str = Field(min_length=1)
    step: str = "0"
    channel: ChannelKind
    to: str | None = None
    subject: str = ""
    text: str
    html: str | None = None
    lang: str = "en"
    links: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    timezone: str | None = None
    approved: bool = False
    message_id: str = ""

    @field_validator("step", mode="before")
    @classmethod
    def _step_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("to")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\r\n\x00"):
            raise ValueError(f"address {value!r} contains a line break or NUL")
        return value.strip() if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as "
                             "'Asia/Shanghai' or 'Europe/Berlin'") from None
        return value

    @model_validator(mode="after")
    def _derive_id(self) -> Message:
        expected = message_id(self.campaign, self.user_id, self.step)
        if not self.message_id:
            object.__setattr__(self, "message_id", expected)
        elif self.message_id != expected:
            raise ValueError(f"message_id {self.message_id!r} is not the id of (campaign "
                             f"{self.campaign!r}, user {self.user_id!r}, step {self.step!r}): {expected}")
        return self


class Receipt(BaseModel):
    """What a channel says about one delivery attempt.

    ``transient`` marks a failure worth retrying (SMTP 4xx, HTTP 429/5xx, a dropped connection
    before the message was handed over). ``suppress`` names a suppression the failure implies
    (``bounced`` for an SMTP 5xx refusal of the recipient).
    """

    message_id: str
    status: ReceiptStatus
    provider_id: str | None = None
    reason: str | None = None
    transient: bool = False
    suppress: str | None = None


@runtime_checkable
class Channel(Protocol):
    """A provider that delivers messages. ``idempotent`` is True when a resend of the same message id
    cannot reach the recipient twice (the provider deduplicates by an idempotency key)."""

    name: str
    idempotent: bool

    def deliver(self, message: Message) -> Receipt:
        """Hand ``message`` to the provider; never raise for a provider's refusal (return a receipt)."""
        ...

    def close(self) -> None:
        """Release connections and flush files."""
        ...


# --- signed tokens (unsubscribe and tracking links) ----------------------------------------------

def sign_token(message_id: str, secret: str) -> str:
    """``message_id`` and an HMAC of it, for links only the sender can mint."""
    mac = hmac.new(secret.encode("utf-8"), message_id.encode("ascii"), hashlib.sha256).digest()
    return f"{message_id}.{base64.urlsafe_b64encode(mac[:16]).decode('ascii').rstrip('=')}"


def verify_token(token: str, secret: str) -> str | None:
    """The message id in ``token`` when its signature is right, else None."""
    mid, _, _sig = token.partition(".")
    if not mid or not hmac.compare_digest(sign_token(mid, secret), token):
        return None
    return mid


# --- registry --------------------------------------------------------------------------------

ChannelFactory = Callable[..., Channel]


def _load_builtin() -> None:
    # importing the modules runs their @register_channel; httpx is imported lazily
    from adpilot.delivery.channels import file, smtp, webhook  # noqa: F401


_CHANNELS: Registry[ChannelFactory] = Registry("delivery channel", load=_load_builtin)
register_channel = _CHANNELS.register      # class decorator: available to get_channel by name
unregister_channel = _CHANNELS.unregister
available_channels = _CHANNELS.names


def get_channel(name: str, **options: Any) -> Channel:
    """Build the channel registered as ``name`` with its constructor ``options``."""
    return _CHANNELS.build(name, **options)
