"""Ingest a file: read → map columns → validate → quarantine → store.

``read == kept + quarantined`` holds for every call; the quarantine file lists each unusable row
with its row (or line) number, column, value and reason.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from adpilot.data import columns as C
from adpilot.data.csv_safe import write_csv
from adpilot.data.mapping import ColumnMapping
from adpilot.data.readers import RawTable, read_table
from adpilot.data.schema import get_schema
from adpilot.data.validation import Validated, validate
from adpilot.errors import AdpilotError


@dataclass
class IngestResult:
    """What one ingest did. ``read == kept + quarantined``."""

    kind: str
    source: str
    read: int
    kept: int
    quarantined: int
    encoding: str | None
    quarantine_file: str | None
    inserted: int | None = None
    seconds: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)
    frame: pd.DataFrame | None = field(default=None, repr=False)
    quarantine: pd.DataFrame | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """JSON-ready summary (without the data)."""
        return {
            "kind": self.kind, "source": self.source, "read": self.read, "kept": self.kept,
            "quarantined": self.quarantined, "encoding": self.encoding,
            "quarantine_file": self.quarantine_file, "inserted": self.inserted,
            "columns": self.columns, "seconds": round(self.seconds, 3),
            "reasons": (self.quarantine[C.Q_REASON].str.replace(r"\(first seen.*", "", regex=True)
                        .str.strip().value_counts().to_dict()
                        if self.quarantine is not None and len(self.quarantine) else {}),
        }


def validate_raw(raw: RawTable, kind: str, mapping: ColumnMapping | None = None,
                 ) -> tuple[Validated, dict[str, str]]:
    """Map and validate a table already read; parse errors join the quarantine."""
    schema = get_schema(kind)
    mapping = mapping or ColumnMapping()
    resolved = mapping.resolve(schema, list(raw.frame.columns), path=str(raw.path))
    mapped = pd.DataFrame({canon: raw.frame[src] for canon, src in resolved.items()})
    extra = raw.frame.drop(columns=list(resolved.values()))
    result = validate(mapped, schema, extra=extra, row_numbers=raw.row_numbers)
    if len(raw.parse_errors):
        result.quarantine = pd.concat([raw.parse_errors, result.quarantine], ignore_index=True)
    return result, resolved


def default_quarantine_path(kind: str, source: Path, folder: Path) -> Path:
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
    return folder / f"{kind}-{source.stem}-{digest}.csv"


def write_quarantine(quarantine: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(quarantine, path)


def _store_consents(store, kept: pd.DataFrame) -> int:
    """Consents are append-only facts: store the rows not stored yet and give exactly those to
    the delivery consent ledger (so a re-ingest adds nothing to either)."""
    from adpilot.data.schema import GRANTED_TRUE
    from adpilot.delivery.ledger import Ledger

    new_ids = set(store.insert_new("consents", kept))
    new = kept[kept[C.ID].isin(new_ids)]
    Ledger(store).record_consents(
        {"user_id": r[C.USER_ID], "channel": r[C.CHANNEL], "granted": r[C.GRANTED] in GRANTED_TRUE,
         "at": r[C.AT].to_pydatetime(), "source": None if pd.isna(r[C.SOURCE]) else r[C.SOURCE]}
        for r in new.reindex(columns=[C.USER_ID, C.CHANNEL, C.GRANTED, C.AT, C.SOURCE])
        .to_dict("records"))
    return len(new)


# kinds stored other than by upsert: kind -> (store, kept rows) -> rows newly inserted
_STORE_AS: dict[str, Callable[..., int]] = {"consents": _store_consents}


def ingest_file(kind: str, path: str | Path, *, mapping: ColumnMapping | None = None,
                encoding: str = "auto", fmt: str | None = None, store=None,
                quarantine_path: str | Path | None = None,
                quarantine_dir: str | Path | None = None,
                source_name: str | None = None) -> IngestResult:
    """Read, validate and (if ``store`` is given) store one file of ``kind`` records.

    Quarantined rows are always in the result's ``quarantine``; they are also written to
    ``quarantine_path``, or to a file named after the source in ``quarantine_dir`` (a shell
    passes ``Settings.quarantine_dir``), and to no file when neither is given.
    ``source_name`` is what the summary and the store's ingest log call the file (default: its
    path; an upload passes the client's file name, not the temporary folder's)."""
    started = time.perf_counter()
    path = Path(path)
    mapping = mapping or ColumnMapping()
    raw = read_table(path, fmt=fmt, encoding=mapping.encoding or encoding,
                     delimiter=mapping.delimiter)
    validated, resolved = validate_raw(raw, kind, mapping)
    q_file: Path | None = None
    if len(validated.quarantine) and (quarantine_path or quarantine_dir):
        q_file = (Path(quarantine_path) if quarantine_path
                  else default_quarantine_path(kind, path, Path(quarantine_dir)))
        write_quarantine(validated.quarantine, q_file)
    inserted = None
    if store is not None:
        write = _STORE_AS.get(kind)
        inserted = write(store, validated.kept) if write else store.upsert(kind, validated.kept)
    result = IngestResult(
        kind=kind, source=source_name or str(path), read=raw.read, kept=len(validated.kept),
        quarantined=len(validated.quarantine), encoding=raw.encoding,
        quarantine_file=str(q_file) if q_file else None, inserted=inserted,
        seconds=time.perf_counter() - started, columns=resolved,
        frame=validated.kept, quarantine=validated.quarantine)
    if result.read != result.kept + result.quarantined:  # a bug, never bad input
        raise AdpilotError(f"{path}: read {result.read} != kept {result.kept} + "
                           f"quarantined {result.quarantined}")
    if store is not None:
        store.log_ingest(kind=kind, source=result.source, read=result.read, kept=result.kept,
                         quarantined=result.quarantined, inserted=inserted or 0,
                         details={"encoding": raw.encoding, "quarantine_file": result.quarantine_file})
    return result


def public_run(run: dict) -> dict:
    """An ingest run as shown to API clients and dashboard users: no server paths, file names
    only (the quarantine file's name is its id for ``/v1/quarantine/{id}``). Runs logged by
    the CLI hold the absolute path the user typed."""
    out = {**run, "source": Path(str(run.get("source") or "")).name}
    details = run.get("details")
    if isinstance(details, dict) and details.get("quarantine_file"):
        out["details"] = {**details, "quarantine_file": Path(details["quarantine_file"]).name}
    return out
