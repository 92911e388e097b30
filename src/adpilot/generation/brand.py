"""Brand kit: voice, words to use and avoid, emoji policy and the required disclaimer (YAML)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adpilot.errors import ConfigError, InputError

Lang = Literal["en", "zh"]
EMOJI_LIMITS = {"none": 0, "limited": 2, "any": None}  # policy -> most emoji allowed per copy


class Disclaimer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: list[str] = Field(default_factory=list)
    en: str = ""
    zh: str = ""


class BrandKit(BaseModel):
    """A small brand kit; every text field is per language (``en`` / ``zh``)."""

    model_config = ConfigDict(extra="forbid")
    name: dict[str, str] = Field(default_factory=lambda: {"en": "our shop", "zh": "本店"})
    voice: dict[str, str] = Field(default_factory=dict)
    do_words: dict[str, list[str]] = Field(default_factory=dict)
    dont_words: dict[str, list[str]] = Field(default_factory=dict)
    emoji: Literal["none", "limited", "any"] = "limited"
    disclaimer: Disclaimer = Field(default_factory=Disclaimer)

    def disclaimer_for(self, channel: str, lang: str) -> str:
        """The text that must end the copy of ``channel`` in ``lang`` ('' when none)."""
        return getattr(self.disclaimer, lang, "") if channel in self.disclaimer.channels else ""

    def banned(self, lang: str) -> list[str]:
        return list(self.dont_words.get(lang, []))

    @property
    def max_emoji(self) -> int | None:
        return EMOJI_LIMITS[self.emoji]


def load_brand(path: str | Path | None = None) -> BrandKit:
    """Read a brand kit YAML; without ``path`` the built-in default kit."""
    if path is None:
        text = (resources.files("adpilot") / "resources" / "brand_default.yaml").read_text("utf-8")
        where = "brand_default.yaml"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError("brand kit file not found", path=str(p))
        text, where = p.read_text(encoding="utf-8"), str(p)
    try:
        data = yaml.safe_load(text) or {}
        return BrandKit.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{where}: not a valid brand kit: {exc}") from exc
