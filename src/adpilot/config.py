"""Settings read from the environment (``ADPILOT_*``) when asked for, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where adpilot keeps its state. Every field can be set by an ``ADPILOT_<NAME>`` variable."""

    model_config = SettingsConfigDict(env_prefix="ADPILOT_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".adpilot",
                       description="Folder for the default database, caches, quarantine files.")
    db: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in home.")
    cache_dir: Path | None = Field(default=None, description="Model cache; default: home/cache.")
    data_dir: Path | None = Field(
        default=None, description="Offline folder of the public data sets, laid out like "
                                  "shared/data; looked at before the download cache.")
    datasets_mirror: str | None = Field(
        default=None, description="Base URL serving the data set files laid out like "
                                  "shared/data (an internal mirror), instead of their sources.")
    offline: bool = Field(default=False, description="Never download data sets; stages without "
                                                     "their data run their stated fallback.")
    sentiment_precision: Literal["fp32", "bf16", "auto"] = Field(
        default="fp32", description="Arithmetic of the default sentiment models: fp32 (exact), "
                                    "bf16 (about 2x faster on CPUs with AVX512-BF16/AMX) or auto.")
    # delivery (adpilot.delivery): read here, passed to the channels' constructors
    smtp_url: SecretStr | None = Field(
        default=None, description="SMTP server for the smtp channel: smtp://[user:pass@]host[:port]"
                                  "[?starttls=1] or smtps://…")
    smtp_from: str | None = Field(default=None,
                                  description="Sender of e-mails: 'Brand <news@brand.example>'.")
    webhook_url: str | None = Field(default=None, description="SMS/push gateway URL for the webhook channel.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret of the HMAC-SHA256 X-Adpilot-Signature header.")
    public_url: str | None = Field(
        default=None, description="Public base URL of adpilot serve, for unsubscribe and tracked links.")
    link_secret: SecretStr | None = Field(
        default=None, description="Signs unsubscribe and tracked-link tokens.")
    postal_address: str | None = Field(
        default=None, description="The sender's postal address for the e-mail footer (anti-spam law).")
    outbox_dir: Path | None = Field(
        default=None, description="Folder of the file channel's outbox; default: home/outbox.")
    dkim_domain: str | None = Field(default=None, description="Domain e-mails are DKIM-signed as "
                                    "(with dkim_selector and dkim_key_file; unset: not signed).")
    dkim_selector: str | None = Field(default=None, description="DKIM selector: the public key is "
                                      "published at <selector>._domainkey.<domain>.")
    dkim_key_file: Path | None = Field(default=None, description="PEM RSA private key that signs.")
    holdout_share: float = Field(default=0.0, ge=0, lt=1, description="Share of customers in the "
                                 "global control group that never receives marketing.")
    campaign_holdout_share: float = Field(default=0.0, ge=0, lt=1,
                                          description="A further share held out of each campaign.")
    # what a message costs (the provider's price, in the shop's currency): the ROI's cost side
    price_email: float = Field(default=0.001, ge=0, description="Price of one e-mail sent.")
    price_sms: float = Field(default=0.05, ge=0, description="Price of one SMS sent.")
    price_push: float = Field(default=0.0002, ge=0, description="Price of one push notification.")
    price_llm_1k_tokens: float = Field(
        default=0.0, ge=0, description="Price of 1,000 LLM tokens (0: a local model).")
    llm_parallel: int = Field(
        default=1, ge=1, description="Copy requests the in-process llama.cpp model decodes "
                                     "together (one slot each). 4 wrote a batch of bare requests "
                                     "2.7x faster than 1 on 2 cores (benchmarks/llm_parallel.py), "
                                     "but made the demo's copy step slower (210 s vs 137 s), so "
                                     "1 stays the default until that is understood.")

    @field_validator("data_dir", "datasets_mirror", "smtp_from", "webhook_url", "public_url",
                     "postal_address", "outbox_dir", "dkim_domain", "dkim_selector",
                     "dkim_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'adpilot.db'}"

    @property
    def models_dir(self) -> Path:
        return (self.cache_dir or self.home / "cache") / "models"

    @property
    def llm_cache_dir(self) -> Path:
        """The LLM reply cache (:class:`adpilot.generation.cache.PromptCache`)."""
        return (self.cache_dir or self.home / "cache") / "llm"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    return Settings()
