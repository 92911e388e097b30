"""Channels, sender and rules built from a :class:`~adpilot.config.Settings` object the shell
read (the CLI and the API share this translation; nothing here reads the environment)."""

from __future__ import annotations

from pathlib import Path

from adpilot.config import Settings
from adpilot.delivery.base import Channel, get_channel
from adpilot.delivery.dkim import DkimSigner
from adpilot.delivery.links import Tracker
from adpilot.delivery.mime import Sender
from adpilot.delivery.rules import Rules
from adpilot.errors import ConfigError

PROVIDERS = ("file", "smtp", "webhook")


def sender_from(settings: Settings, *, required: bool) -> Sender | None:
    """The e-mail sender; None (the file channel's preview sender) when not configured and not
    ``required``; a :class:`ConfigError` naming the missing variables otherwise."""
    wanted = {"ADPILOT_SMTP_FROM": settings.smtp_from, "ADPILOT_POSTAL_ADDRESS": settings.postal_address,
              "ADPILOT_PUBLIC_URL": settings.public_url,
              "ADPILOT_LINK_SECRET": settings.link_secret.get_secret_value()
              if settings.link_secret else None}
    missing = [k for k, v in wanted.items() if not v]
    if missing:
        if required:
            raise ConfigError(f"sending e-mail needs {', '.join(missing)} set")
        return None
    return Sender(from_addr=str(settings.smtp_from), postal_address=str(settings.postal_address),
                  public_url=str(settings.public_url), link_secret=str(wanted["ADPILOT_LINK_SECRET"]),
                  dkim=dkim_from(settings))


def dkim_from(settings: Settings) -> DkimSigner | None:
    """The DKIM signer the settings configure: None when none of the three is set, a
    :class:`ConfigError` naming what is missing when only some are."""
    parts = {"ADPILOT_DKIM_DOMAIN": settings.dkim_domain, "ADPILOT_DKIM_SELECTOR": settings.dkim_selector,
             "ADPILOT_DKIM_KEY_FILE": settings.dkim_key_file}
    if not any(parts.values()):
        return None
    missing = [k for k, v in parts.items() if not v]
    if missing:
        raise ConfigError(f"DKIM signing needs {', '.join(missing)} set as well")
    return DkimSigner.from_file(str(settings.dkim_domain), str(settings.dkim_selector),
                                settings.dkim_key_file)


def channel_from(provider: str, settings: Settings, *, outbox: str | Path | None = None) -> Channel:
    """The ``provider`` channel (file | smtp | webhook) configured from ``settings``."""
    if provider == "file":
        folder = Path(outbox) if outbox else (settings.outbox_dir or settings.home / "outbox")
        return get_channel("file", outbox=folder, sender=sender_from(settings, required=False))
    if provider == "smtp":
        if settings.smtp_url is None:
            raise ConfigError("the smtp provider needs ADPILOT_SMTP_URL (smtp://host:port or smtps://…)")
        return get_channel("smtp", url=settings.smtp_url.get_secret_value(),
                           sender=sender_from(settings, required=True))
    if provider == "webhook":
        if not settings.webhook_url or settings.webhook_secret is None:
            raise ConfigError("the webhook provider needs ADPILOT_WEBHOOK_URL and ADPILOT_WEBHOOK_SECRET")
        # SMS/push links are tracked (and an SMS gets its opt-out line) once links can be signed
        tracker = (Tracker(settings.public_url, settings.link_secret.get_secret_value())
                   if settings.public_url and settings.link_secret else None)
        return get_channel("webhook", url=settings.webhook_url,
                           secret=settings.webhook_secret.get_secret_value(), tracker=tracker)
    raise ConfigError(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")


def rules_from(settings: Settings) -> Rules:
    """Send-time rules with the configured control-group shares (caps and quiet hours default)."""
    return Rules(holdout_share=settings.holdout_share,
                 campaign_holdout_share=settings.campaign_holdout_share)
