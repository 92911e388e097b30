"""Replies that withdraw consent: an SMS answered STOP (or 退订 / TD / 取消 …) suppresses the sender.

The keywords are the CTIA opt-out words used by US carriers and the ones Chinese carriers and
SMS providers print in every marketing SMS ("回T退订", "回TD退订"). The whole reply must be the
keyword (after NFKC normalisation, case folding and trimming punctuation), so "stop by our
store" or a question is not an opt-out.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from adpilot.delivery.ledger import Ledger

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
                        "T", "TD", "退订", "退定", "取消", "退", "取消订阅"})
_TRIM = " \t\r\n.,!?;:'\"()[]{}。，！？；：、“”‘’（）【】"


def is_stop_reply(text: str) -> bool:
    """Whether ``text`` (an SMS reply) is an opt-out keyword."""
    word = unicodedata.normalize("NFKC", text).strip(_TRIM).upper().replace(" ", "")
    return word in STOP_WORDS


def record_reply(ledger: Ledger, user_id: str, text: str, now: datetime, *,
                 source: str = "sms reply") -> bool:
    """Suppress ``user_id`` on SMS when ``text`` is an opt-out; True when it was one."""
    if not is_stop_reply(text):
        return False
    ledger.suppress(user_id, "sms", "sms_stop", now, source=f"{source}: {text.strip()[:40]}")
    return True
