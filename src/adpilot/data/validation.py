"""Vectorised validation of a mapped table against its schema, with a quarantine for rows that
cannot be used. Invariant: ``len(input) == len(kept) + len(quarantine)`` (one entry per row, for
its first problem, in schema order)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.data.language import detect_language
from adpilot.data.readers import quarantine_frame
from adpilot.data.schema import MAX_STR_CHARS, FieldSpec, RecordSchema

_VALUE_CHARS = 200  # values are cut to this length in the quarantine report
# characters no database text column takes (PostgreSQL refuses NUL; UTF-8 cannot encode a lone
# surrogate, which a JSON file can hold as "\ud800"): such a row is quarantined at the door
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE_REASON = "contains a NUL byte or an unpaired surrogate (not storable as text)"


@dataclass
class Validated:
    """Rows that passed (typed, canonical columns + ``attributes``) and rows that did not."""

    kept: pd.DataFrame
    quarantine: pd.DataFrame
    kept_positions: np.ndarray  # position in the input of each kept row


def _printable(value: str) -> str:
    """``value`` with NUL and lone surrogates written as escapes, so the quarantine file can hold it."""
    if _SURROGATE.search(value):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


def _unstorable(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """``col`` with unstorable values blanked, and the mask of those values (NUL or lone surrogate).

    Lone surrogates are rare and cannot enter an Arrow string column at all, so they are looked
    for value by value only when the fast conversion refuses the column."""
    lone = np.zeros(len(col), dtype=bool)
    text = None
    if col.dtype == object:
        try:
            text = col.astype("string")  # converted once: the NUL search below reuses it
        except UnicodeEncodeError:
            lone = col.map(lambda v: isinstance(v, str) and bool(_SURROGATE.search(v))).to_numpy(bool)
            col = col.where(~lone, None)
    if text is None and (col.dtype == object or pd.api.types.is_string_dtype(col)):
        text = col.astype("string")
    if text is not None:
        lone = lone | text.str.contains("\x00", regex=False, na=False).to_numpy(bool)
    return col, lone


def _as_text(col: pd.Series) -> pd.Series:
    """Column as stripped strings with <NA> for missing (works for typed Parquet columns too)."""
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        s = col.astype("string")
    else:
        s = col.astype("string")  # numbers, bools, timestamps: their text form
    return s.str.strip()


def parse_datetimes(text: pd.Series) -> pd.Series:
    """Parse date/time strings to naive UTC timestamps (naive inputs are taken as UTC).

    ISO 8601 is parsed in one vectorised pass; the remaining distinct values go through the
    flexible parser once each.
    """
    utc = "datetime64[us, UTC]"
    out = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601").astype(utc)
    rest = (out.isna() & text.notna() & (text != "")).to_numpy()
    if rest.any():
        uniq = text[rest].unique()
        parsed = pd.Series(pd.to_datetime(pd.Series(uniq), errors="coerce", utc=True,
                                          format="mixed").astype(utc).to_numpy(), index=uniq)
        fallback = pd.to_datetime(text.map(parsed.to_dict()), utc=True).astype(utc)
        out = out.where(~rest, fallback)
    return out.dt.tz_localize(None)


class _Problems:
    """First problem per row: which column, which value, why."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.column = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)
        self.value = np.full(n, None, dtype=object)

    def flag(self, mask: np.ndarray, column: str, values: pd.Series, reason: str | pd.Series) -> None:
        new = np.asarray(mask, dtype=bool) & ~self.bad
        if not new.any():
            return
        self.bad |= new
        self.column[new] = column
        self.value[new] = values.to_numpy(dtype=object, na_value=None)[new]
        self.reason[new] = reason if isinstance(reason, str) else reason.to_numpy(dtype=object)[new]


# Loose on purpose: one @, no spaces, a dot in the domain. Deliverability is the provider's job.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


@cache
def _zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones()) | {"UTC"}


def _check_email(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    return text, text.map(lambda v: bool(_EMAIL.fullmatch(v)), na_action="ignore")


def _check_phone(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    # separators people type (+1 (202) 555-0143) are dropped; a leading 00 is the same as +
    norm = text.str.replace(_PHONE_SEPARATORS, "", regex=True).str.replace(r"^00", "+", regex=True)
    return norm, norm.map(lambda v: bool(_E164.fullmatch(v)), na_action="ignore")


def _check_timezone(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    zones = _zones()
    return text, text.map(lambda v: v in zones, na_action="ignore")


# check name → (normalise and test the non-empty values, what was expected)
CHECKS = {
    "email": (_check_email, "an e-mail address like name@example.com"),
    "phone": (_check_phone, "an E.164 phone number: +, country code, number, e.g. +12025550143"),
    "timezone": (_check_timezone, "an IANA time zone name like Asia/Shanghai or Europe/London"),
}


def _number_range_text(spec: FieldSpec) -> str:
    lo = "" if spec.min is None else f"{spec.min:g}"
    hi = "" if spec.max is None else f"{spec.max:g}"
    if lo and hi:
        return f"between {lo} and {hi}"
    return f"at least {lo}" if lo else f"at most {hi}"


def _check_field(spec: FieldSpec, raw: pd.Series, problems: _Problems) -> pd.Series:
    """Validate and convert one column; returns the typed column."""
    given = raw
    raw, unstorable = _unstorable(raw)
    problems.flag(unstorable, spec.name, given, f"{spec.name} {_UNSTORABLE_REASON}")
    text = _as_text(raw)
    empty = (text.isna() | (text == "")).to_numpy()
    if spec.required:
        problems.flag(empty, spec.name, text, f"empty {spec.name}")
    if spec.kind in ("int", "float"):
        num = pd.to_numeric(text, errors="coerce")
        nan = num.isna().to_numpy()
        problems.flag(~empty & nan, spec.name, text, f"{spec.name} is not a number")
        vals = num.to_numpy(dtype=float, na_value=np.nan)
        out_of_range = np.zeros(len(vals), dtype=bool)
        if spec.min is not None:
            out_of_range |= vals < spec.min
        if spec.max is not None:
            out_of_range |= vals > spec.max
        problems.flag(out_of_range, spec.name, text,
                      f"{spec.name} is outside its scale (expected {_number_range_text(spec)})")
        if spec.integer:
            problems.flag(~nan & (np.mod(vals, 1) != 0), spec.name, text,
                          f"{spec.name} is not a whole number")
            return num.round().astype("Int64")
        return num.astype("Float64")
    if spec.kind == "datetime":
        parsed = parse_datetimes(text)
        problems.flag(~empty & parsed.isna().to_numpy(), spec.name, text,
                      f"{spec.name} is not a date/time this reader understands")
        return parsed
    if spec.kind == "choice":
        canonical = {c.lower(): c for c in spec.choices}  # case-insensitive, canonical case out
        matched = text.str.lower().map(canonical)
        problems.flag(~empty & matched.isna().to_numpy(), spec.name, text,
                      f"{spec.name} must be one of {', '.join(spec.choices)}")
        return matched.astype("string")
    max_chars = spec.max_chars or (MAX_STR_CHARS if spec.kind == "str" else None)
    if max_chars is not None:
        lengths = text.str.len().fillna(0).to_numpy()
        too_long = lengths > max_chars
        if too_long.any():
            reasons = pd.Series(None, index=text.index, dtype=object)
            reasons[too_long] = [
                f"{spec.name} has {n:,} characters; at most {max_chars:,} are accepted"
                for n in lengths[too_long]]
            problems.flag(too_long, spec.name, text, reasons)
    if spec.check is not None:
        test, expected = CHECKS[spec.check]
        text, ok = test(text)
        bad = ~empty & ~ok.fillna(False).astype(bool).to_numpy()
        problems.flag(bad, spec.name, raw.astype("string").str.strip(),
                      f"{spec.name} is not valid (expected {expected})")
    return text.where(~pd.Series(empty, index=text.index), None)


def _stable_ids(frame: pd.DataFrame, schema: RecordSchema) -> pd.Series:
    """Ids derived from row content, identical across re-ingests of the same data.

    Identical rows get distinct ids by their order of occurrence, so real repeated rows (the
    same short review by two customers) are kept and a re-ingest still maps onto them.
    """
    cols = [c for c in schema.identity if c in frame.columns] or list(frame.columns)
    key = pd.util.hash_pandas_object(frame[cols].astype("string"), index=False)
    occurrence = key.groupby(key.to_numpy()).cumcount()
    return (schema.id_prefix + key.map("{:016x}".format) + "-" + occurrence.astype(str)).astype(
        "string")


def validate(mapped: pd.DataFrame, schema: RecordSchema, *,
             extra: pd.DataFrame | None = None, row_numbers: np.ndarray | None = None,
             groups: np.ndarray | None = None) -> Validated:
    """Validate ``mapped`` (canonical column names) against ``schema``.

    ``extra`` holds the unmapped source columns, kept as a JSON ``attributes`` column so nothing
    in the source is lost. ``row_numbers`` are the 1-based data row numbers reported in the
    quarantine (default: position + 1). ``groups`` (one label per row) limits the search for
    duplicate ids to each group, e.g. each of several event batches validated in one call.
    """
    n = len(mapped)
    mapped = mapped.reset_index(drop=True)
    rows = np.arange(1, n + 1) if row_numbers is None else np.asarray(row_numbers)
    problems = _Problems(n)
    typed = pd.DataFrame(index=mapped.index)
    for spec in schema.fields:
        if spec.name in mapped.columns and spec.kind != "language":
            typed[spec.name] = _check_field(spec, mapped[spec.name], problems)

    if C.LANGUAGE in schema.names:
        given = (_as_text(mapped[C.LANGUAGE]).str.lower()
                 if C.LANGUAGE in mapped.columns else pd.Series(pd.NA, index=mapped.index))
        given = given.where(given.isin(["en", "zh", "und"]))
        basis = typed[C.TEXT] if C.TEXT in typed else typed.get(C.TITLE, typed.get(C.DESCRIPTION))
        if basis is not None:
            if C.TITLE in typed and C.TEXT in typed:
                basis = typed[C.TITLE].fillna("") + " " + typed[C.TEXT].fillna("")
            typed[C.LANGUAGE] = given.fillna(detect_language(basis))
        else:
            typed[C.LANGUAGE] = given

    id_col = schema.id_field
    if id_col in typed.columns:
        ids = typed[id_col]
        missing = ids.isna().to_numpy()
        if missing.any():  # optional id column with gaps: derive those ids
            ids = ids.where(~pd.Series(missing), _stable_ids(typed, schema))
        live = pd.Series(~problems.bad)
        key = ids.where(live)
        if groups is not None:  # the same id in two groups is no duplicate here
            key = pd.Series(np.asarray(groups).astype(str), dtype="string") + "\x1f" + key
        first_row = pd.Series(rows).groupby(key.to_numpy()).transform("min")
        dup = live & key.duplicated(keep="first") & ids.notna()
        if dup.any():
            reasons = "duplicate id (first seen in data row " + first_row.astype("Int64").astype(
                "string") + ")"
            problems.flag(dup.to_numpy(), id_col, ids, reasons)
        typed[id_col] = ids
    else:
        typed[id_col] = _stable_ids(typed, schema)

    if extra is not None and len(extra.columns) and len(extra):  # no rows: no attributes
        extra = extra.reset_index(drop=True)
        for name in extra.columns:  # kept as attributes: they must be storable too
            given = extra[name]
            extra[name], unstorable = _unstorable(given)
            problems.flag(unstorable, str(name), given, f"{name} {_UNSTORABLE_REASON}")
        typed[C.ATTRIBUTES] = extra.to_json(
            orient="records", lines=True, force_ascii=False, date_format="iso").splitlines()
    else:
        typed[C.ATTRIBUTES] = "{}"

    bad = problems.bad
    quarantine = quarantine_frame([])
    if bad.any():
        values = pd.Series(problems.value[bad], dtype=object).map(
            lambda v: None if v is None else _printable(str(v)[:_VALUE_CHARS]))
        quarantine = quarantine_frame([]).reindex(range(int(bad.sum())))
        quarantine[C.Q_ROW] = pd.array(rows[bad], dtype="Int64")
        quarantine[C.Q_COLUMN] = problems.column[bad]
        quarantine[C.Q_VALUE] = values.to_numpy()
        quarantine[C.Q_REASON] = problems.reason[bad]
    ordered = [id_col] + [c for c in schema.names if c in typed.columns and c != id_col]
    kept = typed.loc[~bad, ordered + [C.ATTRIBUTES]].reset_index(drop=True)
    return Validated(kept, quarantine, np.flatnonzero(~bad))
