"""Copy for a whole catalogue: the single-brief path (:func:`adpilot.usecases.studio.write_copy`:
the same prompts, guardrails, scorecard and best-of-N) run once per product record, one JSON
line per product in the output.

- **Records**: JSON Lines or CSV/TSV, read one at a time. A record needs an ``id``; ``title``,
  ``category``, ``price``, ``currency``, ``description``, ``language`` and ``attributes`` (key →
  value or list; in CSV a JSON object) are the product's fields, and any other key or column
  becomes an attribute. A bad record (a line that is not JSON, no id, a price that is not a
  number, an id already seen) is reported with its file and line and skipped; it never stops the
  others. 商品目录：每条记录一行输出，坏记录报告文件和行号后跳过。
- **Resumable**: each product's line is written in one piece and synced to disk before the next
  is counted, so a rerun after a kill skips the products already in the output and never writes
  a product twice; a half-written last line (the kill landed mid-write) is cut off first.
  Products whose generation failed (the model never produced valid JSON, the server was down)
  are not written, so the rerun tries them again.
- **Summary**: ``read = written + skipped`` (``written`` counts the catalogue's products in the
  output, including those from earlier runs).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adpilot.data import columns as C
from adpilot.errors import InputError, LLMError
from adpilot.generation.batch import bounded_map

try:  # one writer per output file (POSIX); elsewhere the caller must not run two at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

Progress = Callable[[str, int, int], None]
PRODUCT_FIELDS = ("id", "title", "category", "price", "currency", "description", "language",
                  "attributes")
_JSONL = {".jsonl", ".ndjson", ".json"}
_DELIMITED = {".csv": None, ".txt": None, ".tsv": "\t", ".tab": "\t"}


@dataclass(frozen=True)
class CatalogueRecord:
    """One record of a catalogue file: its (first) line and the product, or why it has none."""

    line: int
    product: Any = None  # adpilot.data.records.Product
    reason: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A record that was not written: where it is and why."""

    path: str
    line: int
    reason: str
    product_id: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class CatalogueSummary:
    """What one run over a catalogue did. ``read == written + len(skipped)``."""

    path: str
    out: str
    read: int = 0
    written: int = 0  # the catalogue's products in the output, this run's and earlier ones
    done_before: int = 0  # of those, already there when the run started
    passed: int = 0  # products of this run with a variant that passed every guardrail
    completion_tokens: int = 0
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)
    truncated: bool = False  # a half-written last line was cut off before resuming

    @property
    def new(self) -> int:
        """Products written by this run."""
        return self.written - self.done_before

    def as_dict(self) -> dict[str, Any]:
        """The counts, each skipped record as ``{path, line, reason, product_id}``."""
        return {"path": self.path, "out": self.out, "read": self.read, "written": self.written,
                "done_before": self.done_before, "new": self.new, "passed": self.passed,
                "skipped": len(self.skipped), "completion_tokens": self.completion_tokens,
                "seconds": round(self.seconds, 3), "truncated_last_line": self.truncated,
                "skipped_records": [s.__dict__ for s in self.skipped]}


# --- reading records ---------------------------------------------------------------------------

def to_product(data: dict[str, Any]):
    """A :class:`~adpilot.data.records.Product` from one record (keys that are not product
    fields become attributes); raises :class:`ValueError` saying what is wrong."""
    from adpilot.data.records import Product

    raw_id = data.get("id")
    if raw_id is None or not str(raw_id).strip():
        raise ValueError("no product id (the record needs an 'id')")
    attrs = data.get("attributes") or {}
    if isinstance(attrs, str):
        try:
            attrs = json.loads(attrs)
        except json.JSONDecodeError as exc:
            raise ValueError(f"'attributes' is not a JSON object ({exc.msg})") from None
    if not isinstance(attrs, dict):
        raise ValueError("'attributes' must be an object (key → value or list)")
    extra = {k: v for k, v in data.items()
             if k not in PRODUCT_FIELDS and v not in (None, "") and str(k).strip()}
    fields = {k: data[k] for k in PRODUCT_FIELDS if data.get(k) not in (None, "")}
    fields.update(id=str(raw_id).strip(), attributes={**extra, **attrs})
    try:
        return Product.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "record"
        raise ValueError(f"{where}: {err['msg']}") from None


def _parsed(line: int, data: Any) -> CatalogueRecord:
    if not isinstance(data, dict):
        return CatalogueRecord(line, reason="the line is not a JSON object")
    try:
        return CatalogueRecord(line, to_product(data))
    except ValueError as exc:
        return CatalogueRecord(line, reason=str(exc))


def read_catalogue(path: str | Path) -> Iterator[CatalogueRecord]:
    """The records of a JSON Lines or CSV/TSV catalogue, one at a time, each with its line
    number (blank lines skipped); encoding detected (UTF-8, BOM, GBK/GB18030)."""
    from adpilot.data.encoding import detect_encoding

    p = Path(path)
    if not p.is_file():
        raise InputError("catalogue file not found", path=str(p))
    suffix = p.suffix.lower()
    if suffix not in _JSONL and suffix not in _DELIMITED:
        raise InputError("a catalogue is a .jsonl or .csv/.tsv file", path=str(p))
    enc = detect_encoding(p)
    with open(p, encoding=enc, newline="") as fh:
        if suffix in _JSONL:
            for lineno, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield CatalogueRecord(lineno, reason=f"not valid JSON: {exc.msg} at column "
                                                         f"{exc.colno}")
                    continue
                yield _parsed(lineno, data)
            return
        header = fh.readline()
        delim = _DELIMITED[suffix] or max(",;\t|", key=header.count)
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter=delim)
        start = 2
        for row in reader:
            if None in row:  # more fields than the header
                yield CatalogueRecord(start, reason=f"the row has more fields than the header "
                                                    f"({len(reader.fieldnames or [])})")
            elif any(v is not None and v.strip() for v in row.values()):
                yield _parsed(start, {(k or "").strip(): (v.strip() if v else v)
                                      for k, v in row.items()})
            start = reader.line_num + 1


# --- the output file ---------------------------------------------------------------------------

class CopiesFile:
    """The JSON Lines output, opened for resuming: the product ids already in it, and one
    synced line per :meth:`write`. Holds an exclusive lock while open (POSIX)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+b")  # noqa: SIM115 (closed in close())
        if fcntl is not None:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._fh.close()
                raise InputError("another run is writing this output file",
                                 path=str(self.path)) from None
        self.ids, self.truncated = self._scan()

    def _scan(self) -> tuple[set[str], bool]:
        self._fh.seek(0)
        data = self._fh.read()
        keep = len(data) if data.endswith(b"\n") or not data else data.rfind(b"\n") + 1
        ids: set[str] = set()
        for n, raw in enumerate(data[:keep].splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                ids.add(str(json.loads(raw)[C.PRODUCT_ID]))
            except (ValueError, KeyError, TypeError):
                if n == data[:keep].count(b"\n"):  # a last line cut mid-write, then a newline
                    keep -= len(raw) + 1
                else:
                    raise InputError(f"output line {n} is not a product line; not resuming "
                                     "into this file", path=str(self.path)) from None
        truncated = keep < len(data)
        if truncated:
            self._fh.truncate(keep)
            os.fsync(self._fh.fileno())
        return ids, truncated

    def write(self, record: dict[str, Any]) -> None:
        """Append one product's line and sync it; a product already in the file raises."""
        pid = str(record[C.PRODUCT_ID])
        if pid in self.ids:
            raise InputError(f"product {pid} is already in the output", path=str(self.path))
        self._fh.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.ids.add(pid)

    def close(self) -> None:
        """Release the lock and close the file."""
        self._fh.close()

    def __enter__(self) -> CopiesFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the run -----------------------------------------------------------------------------------

def product_line(product, studio_result) -> dict[str, Any]:
    """The output line of one product: ``product_id`` first, then the single-brief result
    (``variants`` with text, fields, scores, violations, passed; ``best``, tokens …)."""
    return {"product_id": product.id, **studio_result.as_dict()}


def generate_catalogue(generator, path: str | Path, audience, channel: str, lang: str, *,
                       out: str | Path, n: int = 1, best_of: int | None = None,
                       concurrency: int = 1, progress: Progress | None = None,
                       sources: Any = None) -> CatalogueSummary:
    """Write copy for every product of the catalogue at ``path`` into ``out`` (JSON Lines),
    skipping products already there. ``generator`` is a
    :class:`~adpilot.generation.CopyGenerator`; ``concurrency`` products are written at once
    (worth it with a server behind the backend). ``progress("products", done, total)``;
    ``sources``: where the copy models' training data are (a
    :class:`~adpilot.datasets_fetch.DataSources`)."""
    from adpilot.generation import channel_spec
    from adpilot.usecases.studio import write_copy

    channel_spec(channel, lang)  # a bad channel fails before the file is touched
    started = time.perf_counter()
    total = sum(1 for _ in read_catalogue(path))
    summary = CatalogueSummary(str(path), str(out), read=total)
    with CopiesFile(out) as copies:
        summary.truncated = copies.truncated
        seen: dict[str, int] = {}
        done = 0

        def tick() -> None:
            if progress:
                progress("products", done, total)

        def skip(rec: CatalogueRecord, reason: str, pid: str | None = None) -> None:
            summary.skipped.append(Skipped(str(path), rec.line, reason, pid))

        def todo() -> Iterator[CatalogueRecord]:
            nonlocal done
            for rec in read_catalogue(path):
                pid = rec.product.id if rec.product is not None else None
                if rec.product is None:
                    skip(rec, rec.reason or "not a product record")
                elif pid in seen:
                    skip(rec, f"product id {pid} repeats line {seen[pid]}", pid)
                else:
                    seen[pid] = rec.line
                    if pid in copies.ids:
                        summary.done_before += 1
                        summary.written += 1
                    else:
                        yield rec
                        continue
                done += 1
                tick()

        tick()
        work = lambda rec: write_copy(generator, rec.product, audience, channel, lang,  # noqa: E731
                                      n=n, best_of=best_of, sources=sources)
        for rec, res in _in_flight(work, todo(), max(1, concurrency)):
            done += 1
            if isinstance(res, LLMError):
                skip(rec, f"generation failed: {type(res).__name__}: {res}", rec.product.id)
            else:
                copies.write(product_line(rec.product, res))
                summary.written += 1
                summary.passed += res.result.best is not None
                summary.completion_tokens += res.result.usage.completion_tokens
            tick()
    summary.seconds = time.perf_counter() - started
    return summary


def _in_flight(fn: Callable[[CatalogueRecord], Any], records: Iterator[CatalogueRecord],
               workers: int) -> Iterator[tuple[CatalogueRecord, Any]]:
    """(record, result or LLMError) as products finish, at most ``workers`` at once and only
    that many read ahead. An LLMError fails that product alone (the model gave no valid reply,
    the server stayed down); any other error stops the run (lines written so far stay)."""
    for rec in records:  # the first product alone: models the checks build lazily (the
        try:                # complaint classifier …) are built once, not by several threads
            yield rec, fn(rec)
        except LLMError as exc:
            yield rec, exc
        if workers > 1:
            break
    if workers == 1:
        return
    yield from bounded_map(fn, records, workers, name="adpilot-catalogue")
