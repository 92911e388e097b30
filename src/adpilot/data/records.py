"""Canonical records shared by all stages.

Bulk data moves between stages as DataFrames whose columns are described by
:mod:`adpilot.data.schema`; these pydantic models are the same records one at a time (API
payloads, single decisions, tests). ``tests/test_records.py`` checks that both agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["en", "zh", "und"]
EventType = Literal["impression", "click", "conversion", "unsubscribe"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Record):
    id: str
    age: int | None = Field(default=None, ge=0, le=120)
    gender: str | None = None
    region: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164
    timezone: str | None = None  # IANA zone name
    attributes: dict[str, Any] = Field(default_factory=dict)


class Product(_Record):
    id: str
    title: str | None = None
    category: str | None = None
    price: float | None = Field(default=None, ge=0)
    currency: str | None = None
    description: str | None = None
    language: Language | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    def attribute_values(self) -> dict[str, list[str]]:
        """Each attribute's values as strings (a single value as a list of one; empty values
        and attributes dropped): the one reading of ``attributes`` prompts and checks share."""
        out: dict[str, list[str]] = {}
        for key, value in self.attributes.items():
            vals = value if isinstance(value, list | tuple) else [value]
            vals = [str(v).strip() for v in vals if v not in (None, "") and str(v).strip()]
            if vals:
                out[key] = vals
        return out

    def fact_values(self) -> list[str]:
        """The attribute values that are facts for copy to state: the type or category key
        aside, each value once, the product's own title not repeated."""
        values = [v for key, vals in self.attribute_values().items() if key not in TYPE_KEYS
                  for v in vals]
        return [v for v in dict.fromkeys(values) if v != self.title]


TYPE_KEYS = ("类型", "type", "category")  # what the product is, not a fact about it


class Review(_Record):
    id: str
    user_id: str | None = None
    product_id: str | None = None
    title: str | None = None
    text: str = Field(min_length=1)
    rating: float | None = None
    polarity: int | None = Field(default=None, ge=0, le=1)
    created_at: datetime | None = None
    language: Language = "und"
    attributes: dict[str, Any] = Field(default_factory=dict)


class Transaction(_Record):
    id: str
    invoice: str | None = None
    user_id: str | None = None
    product_id: str
    quantity: float
    unit_price: float | None = Field(default=None, ge=0)
    time: datetime
    attributes: dict[str, Any] = Field(default_factory=dict)


class Event(_Record):
    event_id: str
    campaign: str
    variant: str
    user_id: str
    channel: str | None = None
    type: EventType
    value: float | None = None
    time: datetime
    attributes: dict[str, Any] = Field(default_factory=dict)


class Consent(_Record):
    id: str
    user_id: str
    channel: Literal["email", "sms", "push"]
    granted: Literal["true", "false", "yes", "no", "1", "0"]
    at: datetime
    source: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


RECORD_TYPES: dict[str, type[_Record]] = {
    "customers": Customer,
    "products": Product,
    "reviews": Review,
    "transactions": Transaction,
    "events": Event,
    "consents": Consent,
}
