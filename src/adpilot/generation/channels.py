"""Channels, their fields and every length limit in one table.

Limits count characters as Python ``len`` does (a Chinese character is one). Sources: carrier SMS
segments (160 GSM characters; 70 for UCS-2, i.e. any Chinese text), search-ad headline 30 /
description 90 characters (a CJK character takes two display columns there, so 15 / 45 in
Chinese), Weibo 140 characters, common push-notification truncation (~40-char titles).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, create_model

from adpilot.errors import ConfigError

# (channel, language) -> {field: (min chars, max chars)}; the disclaimer counts towards the last
# field, which is where adpilot appends it.
LIMITS: dict[tuple[str, str], dict[str, tuple[int, int]]] = {
    ("social", "en"): {"text": (40, 280)},
    ("social", "zh"): {"text": (20, 140)},
    ("email", "en"): {"subject": (10, 60), "body": (80, 600)},
    ("email", "zh"): {"subject": (5, 30), "body": (40, 300)},
    ("sms", "en"): {"text": (30, 160)},
    ("sms", "zh"): {"text": (10, 70)},
    ("push", "en"): {"title": (5, 40), "body": (20, 120)},
    ("push", "zh"): {"title": (3, 20), "body": (10, 50)},
    ("search_ad", "en"): {"headline": (10, 30), "description": (30, 90)},
    ("search_ad", "zh"): {"headline": (5, 15), "description": (15, 45)},
}
CHANNELS = ("social", "email", "sms", "push", "search_ad")
LANGUAGES = ("en", "zh")
SINGLE_LINE = {"subject", "title", "headline", "text_sms"}  # fields that must not break lines


@dataclass(frozen=True)
class ChannelSpec:
    channel: str
    lang: str
    limits: dict[str, tuple[int, int]]

    @property
    def fields(self) -> list[str]:
        return list(self.limits)

    @property
    def main_field(self) -> str:
        """The field that carries the disclaimer (the last, longest one)."""
        return self.fields[-1]

    def single_line(self, field: str) -> bool:
        return field in SINGLE_LINE or self.channel in ("sms", "push", "search_ad")

    def schema(self) -> type[BaseModel]:
        """Pydantic model of the model's reply: one non-empty string per field. Lengths are the
        guardrails' job (they need the disclaimer and the language), not the parser's."""
        fields = {f: (str, Field(min_length=1)) for f in self.fields}
        return create_model(f"{self.channel.title().replace('_', '')}Copy",
                            __config__=ConfigDict(extra="ignore"), **fields)


def channel_spec(channel: str, lang: str) -> ChannelSpec:
    """The spec of ``channel`` in ``lang``; names both choices when either is unknown."""
    if channel not in CHANNELS:
        raise ConfigError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    if lang not in LANGUAGES:
        raise ConfigError(f"unsupported language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    return ChannelSpec(channel, lang, LIMITS[(channel, lang)])
