"""The ``file`` channel, the offline default: an outbox folder instead of a provider.

Each e-mail becomes ``<message_id>.eml`` (the exact bytes the ``smtp`` channel would send); an SMS
or push message becomes ``<message_id>.json``. Every message also gets a row in ``outbox.csv``
whose first columns are ``email``, ``name``, ``attributes`` (JSON), the layout of listmonk's
subscriber import, so an ESP can take the batch as it is; the message's own fields follow. The
CSV goes through :func:`adpilot.data.csv_safe.write_csv` (formula-safe) in blocks of rows.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd

from adpilot.data.csv_safe import write_csv
from adpilot.delivery.base import Message, Receipt, register_channel
from adpilot.delivery.mime import Sender, render_email

CSV_COLUMNS = ["email", "name", "attributes", "message_id", "campaign", "variant", "channel", "phone",
               "subject", "text", "lang", "links"]
_FLUSH_ROWS = 500

# Without a configured sender the .eml files are previews: their unsubscribe links point at a
# local server and are signed with a preview secret.
PREVIEW_SENDER = Sender(from_addr="adpilot preview <outbox@adpilot.invalid>",
                        postal_address="(postal address not configured)",
                        public_url="http://127.0.0.1:8000", link_secret="preview-only")


@register_channel("file")
class FileChannel:
    """Writes messages into ``outbox`` (created if missing)."""

    name = "file"
    idempotent = False  # a rerun would add a second CSV row

    def __init__(self, outbox: str | Path, *, sender: Sender | None = None) -> None:
        self.outbox = Path(outbox)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.sender = sender or PREVIEW_SENDER
        self.csv_path = self.outbox / "outbox.csv"
        self._rows: list[dict] = []
        self._lock = threading.Lock()

    def deliver(self, message: Message) -> Receipt:
        if message.channel == "email":
            data = render_email(message, self.sender)
            target = self.outbox / f"{message.message_id}.eml"
        else:
            message = self.sender.tracker.tracked(message)  # links as the gateway would send them
            data = json.dumps(message.model_dump(mode="json"), ensure_ascii=False, indent=1).encode()
            target = self.outbox / f"{message.message_id}.json"
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # a reader never sees half a file
        attributes = {"campaign": message.campaign, "variant": message.variant, "lang": message.lang}
        row = {"email": message.to if message.channel == "email" else "", "name": message.user_id,
               "attributes": json.dumps(attributes, ensure_ascii=False),
               "message_id": message.message_id, "campaign": message.campaign,
               "variant": message.variant, "channel": message.channel,
               "phone": message.to if message.channel == "sms" else "", "subject": message.subject,
               "text": message.text, "lang": message.lang, "links": " ".join(message.links)}
        with self._lock:
            self._rows.append(row)
            if len(self._rows) >= _FLUSH_ROWS:
                self._flush()
        return Receipt(message_id=message.message_id, status="sent", provider_id=str(target.name))

    def _flush(self) -> None:
        if not self._rows:
            return
        exists = self.csv_path.exists() and self.csv_path.stat().st_size > 0
        with self.csv_path.open("a", encoding="utf-8", newline="") as fh:
            write_csv(pd.DataFrame(self._rows, columns=CSV_COLUMNS), fh, header=not exists)
        self._rows = []

    def close(self) -> None:
        with self._lock:
            self._flush()
