"""Column schemas of the canonical tables: what each column holds and which values are usable.

Validation (:mod:`adpilot.data.validation`) reads these declarations; nothing about a record kind
is hard-coded elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adpilot.data import columns as C

Kind = Literal["str", "text", "int", "float", "datetime", "choice", "language"]
Check = Literal["email", "phone", "timezone"]


@dataclass(frozen=True)
class FieldSpec:
    """One canonical column.

    ``required`` columns must be present in the file (mapped) *and* non-empty in a row;
    ``min``/``max`` bound numbers; ``choices`` lists allowed values of a ``choice`` column;
    ``check`` names a format a text value must have (``email``, ``phone`` (E.164, normalised),
    ``timezone`` (an IANA zone name); see :data:`adpilot.data.validation.CHECKS`).
    """

    name: str
    kind: Kind = "str"
    required: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    integer: bool = False
    max_chars: int | None = None
    check: Check | None = None


@dataclass(frozen=True)
class RecordSchema:
    """The canonical table of one record kind."""

    name: str
    id_field: str
    fields: tuple[FieldSpec, ...]
    # Prefix of ids derived from the row content when the file has no id column.
    id_prefix: str
    # Columns (besides id) that identify a row's content, used to derive a stable id.
    identity: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


# A text longer than this is not a review or a description (a dump, a broken export): quarantined.
MAX_TEXT_CHARS = 20_000
# the store's column width for short text (ids, names, regions): a longer value is quarantined,
# not truncated, and never fails a whole batch on PostgreSQL
MAX_STR_CHARS = 512

REVIEWS = RecordSchema(
    name="reviews",
    id_field=C.ID,
    id_prefix="r",
    fields=(
        FieldSpec(C.ID),
        FieldSpec(C.USER_ID),
        FieldSpec(C.PRODUCT_ID),
        FieldSpec(C.TITLE, "text"),
        FieldSpec(C.TEXT, "text", required=True, max_chars=MAX_TEXT_CHARS),
        FieldSpec(C.RATING, "float", min=1, max=5),
        FieldSpec(C.POLARITY, "int", min=0, max=1, integer=True),
        FieldSpec(C.CREATED_AT, "datetime"),
        FieldSpec(C.LANGUAGE, "language"),
    ),
    identity=(C.USER_ID, C.PRODUCT_ID, C.TITLE, C.TEXT, C.RATING, C.CREATED_AT),
)

CUSTOMERS = RecordSchema(
    name="customers",
    id_field=C.ID,
    id_prefix="c",
    fields=(
        FieldSpec(C.ID, required=True),
        FieldSpec(C.AGE, "int", min=0, max=120, integer=True),
        FieldSpec(C.GENDER),
        FieldSpec(C.REGION),
        # contact details for delivery (optional): a bad value quarantines the row
        FieldSpec(C.EMAIL, check="email"),
        FieldSpec(C.PHONE, check="phone"),
        FieldSpec(C.TIMEZONE, check="timezone"),
    ),
)

PRODUCTS = RecordSchema(
    name="products",
    id_field=C.ID,
    id_prefix="p",
    fields=(
        FieldSpec(C.ID, required=True),
        FieldSpec(C.TITLE, "text"),
        FieldSpec(C.CATEGORY),
        FieldSpec(C.PRICE, "float", min=0),
        FieldSpec(C.CURRENCY),
        FieldSpec(C.DESCRIPTION, "text", max_chars=MAX_TEXT_CHARS),
        FieldSpec(C.LANGUAGE, "language"),
    ),
)

TRANSACTIONS = RecordSchema(
    name="transactions",
    id_field=C.ID,
    id_prefix="t",
    fields=(
        FieldSpec(C.ID),
        FieldSpec(C.INVOICE),
        FieldSpec(C.USER_ID),
        FieldSpec(C.PRODUCT_ID, required=True),
        FieldSpec(C.QUANTITY, "float", required=True),
        FieldSpec(C.UNIT_PRICE, "float", min=0),
        FieldSpec(C.TIME, "datetime", required=True),
    ),
    identity=(C.INVOICE, C.USER_ID, C.PRODUCT_ID, C.QUANTITY, C.UNIT_PRICE, C.TIME),
)

EVENTS = RecordSchema(
    name="events",
    id_field=C.EVENT_ID,
    id_prefix="e",
    fields=(
        FieldSpec(C.EVENT_ID, required=True),
        FieldSpec(C.CAMPAIGN, required=True),
        FieldSpec(C.VARIANT, required=True),
        FieldSpec(C.USER_ID, required=True),
        FieldSpec(C.CHANNEL),
        FieldSpec(C.EVENT_TYPE, "choice", required=True,
                  choices=("impression", "click", "conversion", "unsubscribe")),
        FieldSpec(C.VALUE, "float"),
        FieldSpec(C.TIME, "datetime", required=True),
    ),
)

# What a customer agreed to, per channel; the kept rows also go to the delivery consent ledger
# (adpilot.delivery.ledger), whose latest record per user and channel decides. Append-only:
# ids derive from the content, so ingesting the same file again adds nothing.
CONSENTS = RecordSchema(
    name="consents",
    id_field=C.ID,
    id_prefix="k",
    fields=(
        FieldSpec(C.ID),
        FieldSpec(C.USER_ID, required=True),
        FieldSpec(C.CHANNEL, "choice", required=True, choices=("email", "sms", "push")),
        FieldSpec(C.GRANTED, "choice", required=True,
                  choices=("true", "false", "yes", "no", "1", "0")),
        FieldSpec(C.AT, "datetime", required=True),
        FieldSpec(C.SOURCE),
    ),
    identity=(C.USER_ID, C.CHANNEL, C.GRANTED, C.AT, C.SOURCE),
)
GRANTED_TRUE = ("true", "yes", "1")  # values of consents.granted that grant

SCHEMAS: dict[str, RecordSchema] = {
    s.name: s for s in (CUSTOMERS, PRODUCTS, REVIEWS, TRANSACTIONS, EVENTS, CONSENTS)
}


def get_schema(kind: str) -> RecordSchema:
    """The schema of a record kind (``reviews``, ``customers``, …)."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        from adpilot.errors import ConfigError

        raise ConfigError(
            f"unknown record kind {kind!r}; expected one of {', '.join(SCHEMAS)}"
        ) from None
