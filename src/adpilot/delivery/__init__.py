"""The delivery stage: send the chosen message to each customer on the chosen channel, lawfully and
exactly once (see :mod:`adpilot.delivery.base`, :mod:`adpilot.delivery.ledger`,
:mod:`adpilot.delivery.send`)."""

from adpilot.delivery.base import (
    Channel,
    DeliveryError,
    Message,
    Receipt,
    available_channels,
    get_channel,
    message_id,
    register_channel,
    sign_token,
    unregister_channel,
    verify_token,
)

DEFAULT_CHANNEL = "file"

__all__ = ["DEFAULT_CHANNEL", "Channel", "DeliveryError", "Message", "Receipt", "available_channels",
           "get_channel", "message_id", "register_channel", "sign_token", "unregister_channel",
           "verify_token"]
