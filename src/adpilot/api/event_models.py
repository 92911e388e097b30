"""The request body of ``POST /v1/events``, checked at the door.

Each event's fields have their type and the length of the store column they go to (or of the
campaign/variant they must match); ids and names are JSON strings — an object, a list, a
boolean or a number is refused (``1`` and ``1.0`` would be two different ids once written as
text). Fields may be missing or null: such an event is quarantined with a reason when the
batch is processed, like one naming an unknown campaign, so a batch is refused (422, naming the
event and field) only for what no processing could make sense of. Other fields are kept with
the event as its attributes.

The body is validated from its bytes by pydantic-core in one pass (no ``json.loads`` first):
faster than the loose ``list[dict]`` model it replaces. Strings no database can store — a NUL
byte, a lone surrogate such as ``"\\ud800"`` — are refused too, anywhere in the body.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, ValidationError
from typing_extensions import TypedDict

from adpilot.errors import EventsRefused


def _text(max_length: int) -> Any:
    return Annotated[str, StringConstraints(max_length=max_length)]


class EventIn(TypedDict, total=False, extra_items=Any):
    """One feedback event (see ``docs`` of ``POST /v1/events``)."""

    event_id: _text(512) | None
    campaign: _text(64) | None  # campaigns.id
    variant: _text(128) | None  # campaign_variants.variant
    user_id: _text(512) | None
    type: _text(32) | None  # impression | click | conversion (others are quarantined)
    time: _text(64) | None  # ISO 8601
    channel: _text(32) | None
    value: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None


class EventsIn(BaseModel):
    events: list[EventIn] = Field(
        description="Feedback events: event_id, campaign, variant, user_id, type "
                    "(impression|click|conversion), time (ISO 8601), optional channel and value; "
                    "other fields are kept as the event's attributes.")


def events_schema() -> dict:
    """The body's JSON schema with the event's definition inlined, for the OpenAPI document
    (the route reads its body itself, so FastAPI does not list the model on its own)."""
    schema = EventsIn.model_json_schema()
    defs = schema.pop("$defs", {})
    schema["properties"]["events"]["items"] = defs.get("EventIn", {})
    return schema


# A NUL escape, a surrogate escape that is not half of a pair (a pair is matched whole, 12
# bytes), or a surrogate encoded as UTF-8 bytes: only then is the body checked exactly. Each
# pattern starts with a literal, which ``re`` scans for fast (one alternation costs 15x more).
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
                     rb"|[dD][c-fC-F])")
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def _suspect(body: bytes) -> bool:
    if _RAW_SURROGATE.search(body):
        return True
    return any(len(m.group()) != 12 for m in _ESCAPE.finditer(body))
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _find_unstorable(value: Any, loc: list) -> tuple[list, str] | None:
    if isinstance(value, str):
        m = _UNSTORABLE.search(value)
        if m:
            ch = m.group()
            what = "a NUL byte" if ch == "\x00" else f"a lone surrogate (U+{ord(ch):04X})"
            return loc, f"holds {what}, which cannot be stored"
    elif isinstance(value, dict):
        for k, v in value.items():
            if _UNSTORABLE.search(k):
                return loc + [k.encode("utf-8", "backslashreplace").decode()], \
                    "this field name holds a character that cannot be stored"
            found = _find_unstorable(v, loc + [k])
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_unstorable(v, loc + [i])
            if found:
                return found
    return None


def parse_events(body: bytes) -> list[dict]:
    """The events of a request body, or :class:`EventsRefused` naming the first problem."""
    suspect = _suspect(body)
    try:
        events = EventsIn.model_validate_json(body).events
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if suspect and any(e["type"] == "json_invalid" for e in errors):
            suspect_events = _loose(body)  # Python's parser takes lone surrogates: find them
            if suspect_events is not None:
                found = _find_unstorable(suspect_events, ["body"])
                if found:
                    raise EventsRefused(*found) from None
        details = [{"loc": ["body", *e["loc"]], "message": e["msg"]} for e in errors[:50]]
        first = details[0]
        raise EventsRefused(first["loc"], first["message"], details) from None
    if suspect:
        found = _find_unstorable(events, ["body", "events"])
        if found:
            raise EventsRefused(*found)
    return events


def _loose(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
