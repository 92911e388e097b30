"""Readers for CSV, TSV, JSON Lines and Parquet files into all-string (or typed) DataFrames.

Parsing problems that affect single rows (a line with too many fields, a JSON line that does
not parse) become quarantine entries; problems that make the whole file unusable raise
:class:`~adpilot.errors.InputError` naming the file and what is wrong.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from adpilot.data import columns as C
from adpilot.data.encoding import detect_encoding, normalise_encoding
from adpilot.errors import InputError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
_EOF_IN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


@dataclass
class RawTable:
    """A file as read: its rows, the encoding used, and rows that could not be parsed."""

    path: Path
    format: str
    encoding: str | None
    frame: pd.DataFrame
    parse_errors: pd.DataFrame = field(default_factory=lambda: quarantine_frame([]))

    @property
    def read(self) -> int:
        """Every data row in the file, parsed or not."""
        return len(self.frame) + len(self.parse_errors)


def quarantine_frame(entries: list[dict]) -> pd.DataFrame:
    """A quarantine table (row, line, column, value, reason) from a list of entries."""
    cols = [C.Q_ROW, "line", C.Q_COLUMN, C.Q_VALUE, C.Q_REASON]
    return pd.DataFrame(entries, columns=cols).astype(
        {C.Q_ROW: "Int64", "line": "Int64"}
    )


def infer_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in {".gz", ".bz2", ".zip", ".xz"}]
    fmt = _SUFFIX_FORMAT.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise InputError(
            f"cannot tell the file format from the name; expected one of {', '.join(FORMATS)} "
            "(or pass --format)", path=str(path))
    return fmt


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", path=str(path))
    if path.is_dir():
        raise InputError("is a directory, expected a file", path=str(path))
    try:
        with open(path, "rb") as fh:
            first = fh.read(1)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}", path=str(path)) from None
    if not first:
        raise InputError("the file is empty", path=str(path))


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        header = fh.readline()
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_table(path: str | Path, *, fmt: str | None = None, encoding: str = "auto",
               delimiter: str | None = None) -> RawTable:
    """Read a data file. ``fmt`` defaults from the suffix; ``encoding='auto'`` detects it."""
    path = Path(path)
    _check_file(path)
    fmt = fmt or infer_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        return _read_parquet(path)
    enc = detect_encoding(path) if encoding == "auto" else normalise_encoding(encoding)
    if fmt == "jsonl":
        return _read_jsonl(path, enc)
    sep = delimiter or ("\t" if fmt == "tsv" else _sniff_delimiter(path, enc))
    return _read_delimited(path, enc, sep, fmt)


def _decode_error(path: Path, enc: str, exc: UnicodeDecodeError) -> InputError:
    return InputError(
        f"bytes at offset ~{exc.start} are not valid {enc} ({exc.reason}); "
        "pass --encoding (e.g. gb18030, utf-8, latin-1)", path=str(path))


def _read_delimited(path: Path, enc: str, sep: str, fmt: str) -> RawTable:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                path, sep=sep, encoding=enc, dtype=str, keep_default_na=False,
                on_bad_lines="warn", engine="c", quoting=csv.QUOTE_MINIMAL,
            )
        except UnicodeDecodeError as exc:
            raise _decode_error(path, enc, exc) from None
        except pd.errors.EmptyDataError:
            raise InputError("the file has no header and no rows", path=str(path)) from None
        except pd.errors.ParserError as exc:
            msg = str(exc)
            m = _EOF_IN_QUOTE.search(msg)
            if m:
                raise InputError(
                    f"broken quoting: a quoted field opened in data row {int(m.group(1))} is "
                    "never closed, so the rest of the file would be swallowed into one cell",
                    path=str(path)) from None
            raise InputError(f"cannot be parsed as {fmt.upper()}: {msg}", path=str(path)) from None
    entries = []
    for w in caught:
        for line, expected, saw in _BAD_LINE.findall(str(w.message)):
            entries.append({C.Q_ROW: None, "line": int(line), C.Q_COLUMN: None, C.Q_VALUE: None,
                            C.Q_REASON: f"line has {saw} fields, expected {expected} "
                                        "(broken quoting or an unquoted separator)"})
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0 and not entries:
        raise InputError("has a header but no data rows", path=str(path))
    return RawTable(path, fmt, enc, frame, quarantine_frame(entries))


def _read_jsonl(path: Path, enc: str) -> RawTable:
    try:
        frame = pd.read_json(path, lines=True, dtype=False, encoding=enc)
        entries: list[dict] = []
    except UnicodeDecodeError as exc:
        raise _decode_error(path, enc, exc) from None
    except ValueError:
        # Some line is not JSON: parse line by line to keep the good ones and name the bad.
        frame, entries = _read_jsonl_tolerant(path, enc)
    if len(frame) == 0 and not entries:
        raise InputError("has no JSON lines", path=str(path))
    return RawTable(path, "jsonl", enc, frame, quarantine_frame(entries))


def _read_jsonl_tolerant(path: Path, enc: str) -> tuple[pd.DataFrame, list[dict]]:
    good, entries = [], []
    with open(path, encoding=enc) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj, why = None, f"not valid JSON: {exc.msg} at column {exc.colno}"
            else:
                why = None if isinstance(obj, dict) else "JSON line is not an object"
            if why:
                entries.append({C.Q_ROW: None, "line": lineno, C.Q_COLUMN: None,
                                C.Q_VALUE: line[:200].rstrip("\n"), C.Q_REASON: why})
            else:
                good.append(obj)
    return pd.DataFrame(good), entries


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"cannot be read as Parquet: {exc}", path=str(path)) from None
    if len(frame) == 0:
        raise InputError("has no rows", path=str(path))
    frame = frame.reset_index(drop=True)
    return RawTable(path, "parquet", None, frame)
