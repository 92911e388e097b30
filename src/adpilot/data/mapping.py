"""Column mapping: which source column feeds which canonical column.

A mapping comes from CLI flags (``--text-col "Review Text"``), from a small YAML file::

    columns:
      text: Review Text
      rating: Rating
      product_id: Clothing ID
    encoding: auto      # optional
    delimiter: ","      # optional

or, for columns not named either way, from the source header itself when a source column has
the canonical name (case, spaces and dashes ignored) or a common alias such as ``review_id``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from adpilot.data import columns as C
from adpilot.data.schema import RecordSchema
from adpilot.errors import ConfigError, InputError, MissingColumnError

# Other names the same canonical column commonly has in exports, per record kind.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "reviews": {C.ID: ("review_id", "reviewid"), C.USER_ID: ("customer_id", "reviewer_id"),
                C.TEXT: ("review", "review_text", "content", "body"),
                C.CREATED_AT: ("time", "date", "review_time", "timestamp")},
    "customers": {C.ID: ("customer_id", "user_id", "client_id"),
                  C.EMAIL: ("email_address", "e_mail"), C.PHONE: ("mobile", "phone_number"),
                  C.TIMEZONE: ("time_zone", "tz")},
    "products": {C.ID: ("product_id", "sku", "item_id"), C.TITLE: ("name", "product_name")},
    "transactions": {C.ID: ("transaction_id", "line_id"), C.USER_ID: ("customer_id",),
                     C.INVOICE: ("invoice_no", "order_id"), C.TIME: ("date", "timestamp"),
                     C.UNIT_PRICE: ("price",)},
    "events": {C.USER_ID: ("customer_id",), C.EVENT_TYPE: ("event_type", "event"),
               C.TIME: ("timestamp",)},
    "consents": {C.ID: ("consent_id",), C.USER_ID: ("customer_id",),
                 C.GRANTED: ("consent", "opt_in", "status"),
                 C.AT: ("time", "timestamp", "date", "created_at")},
}


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", str(name).strip().lower())


@dataclass
class ColumnMapping:
    """Canonical column → source column, plus optional read options from a mapping file."""

    columns: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    delimiter: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> ColumnMapping:
        path = Path(path)
        if not path.exists():
            raise InputError("mapping file not found", path=str(path))
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML: {exc}", path=str(path)) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("columns", {}), dict):
            raise InputError("expected a mapping with a 'columns:' section "
                             "(canonical name: source column)", path=str(path))
        cols = {str(k): str(v) for k, v in (doc.get("columns") or {}).items()}
        return cls(cols, doc.get("encoding"), doc.get("delimiter"))

    def merged(self, flags: dict[str, str | None]) -> ColumnMapping:
        """This mapping overridden by the flags that were given (``None`` = not given)."""
        cols = dict(self.columns)
        cols.update({k: v for k, v in flags.items() if v})
        return ColumnMapping(cols, self.encoding, self.delimiter)

    def resolve(self, schema: RecordSchema, source_columns: list[str], *,
                path: str | None = None) -> dict[str, str]:
        """Canonical → source for every canonical column that can be fed; checks the file has
        the explicitly mapped and the required columns."""
        unknown = set(self.columns) - set(schema.names)
        if unknown:
            raise ConfigError(
                f"unknown canonical column(s) for {schema.name}: {', '.join(sorted(unknown))}; "
                f"expected some of {', '.join(schema.names)}")
        found = [str(c) for c in source_columns]
        resolved: dict[str, str] = {}
        for canonical, source in self.columns.items():
            if source not in found:
                raise MissingColumnError(source, found, path=path, role=canonical)
            resolved[canonical] = source
        by_norm = {_norm(c): c for c in found}
        taken = set(resolved.values())
        aliases = ALIASES.get(schema.name, {})
        for spec in schema.fields:
            if spec.name in resolved:
                continue
            for candidate in (spec.name, *aliases.get(spec.name, ())):
                source = by_norm.get(_norm(candidate))
                if source is not None and source not in taken:
                    resolved[spec.name] = source
                    taken.add(source)
                    break
        for spec in schema.fields:
            if spec.required and spec.name not in resolved:
                raise MissingColumnError(spec.name, found, path=path, role=f"required {spec.name}")
        return resolved
