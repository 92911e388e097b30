"""Readers for CSV, TSV, JSON Lines (or a JSON array) and Parquet files into all-string (or
typed) DataFrames.

Parsing problems that affect single rows (a line with too many fields, a JSON line that does
not parse) become quarantine entries; problems that make the whole file unusable raise
:class:`~adpilot.errors.InputError` naming the file and what is wrong.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.data import json_records
from adpilot.data.encoding import detect_encoding, normalise_encoding
from adpilot.errors import InputError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}
_SAMPLE_BYTES = 4 << 20  # what encoding detection looks at
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
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
    # 1-based data row number of each row of ``frame`` (None: position + 1), so that rows
    # after a quarantined record keep their number in the file
    row_numbers: np.ndarray | None = None

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
    if fmt == "jsonl":
        return _read_json(path, None if encoding == "auto" else normalise_encoding(encoding))
    enc = _detect_delimited(path) if encoding == "auto" else normalise_encoding(encoding)
    sep = delimiter or ("\t" if fmt == "tsv" else _sniff_delimiter(path, enc))
    return _read_delimited(path, enc, sep, fmt)


def _detect_delimited(path: Path) -> str:
    """The encoding of a CSV/TSV file; a UTF-8 file with a few damaged lines is a clear error
    naming them (not a wrong guess that garbles every line)."""
    try:
        enc = detect_encoding(path)
    except InputError:
        with open(path, "rb") as fh:
            bad = utf8_bad_lines(fh.read(_SAMPLE_BYTES))
        if bad:
            raise _damaged_utf8(path, bad) from None
        raise
    if not enc.startswith("utf"):
        with open(path, "rb") as fh:
            bad = utf8_bad_lines(fh.read(_SAMPLE_BYTES))
        if bad:
            raise _damaged_utf8(path, bad)
    return enc


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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in .gz, .bz2, .xz or .zip."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise InputError(f"the zip archive holds {len(names)} files, expected one",
                                     path=str(path))
                return zf.read(names[0])
        opener = _OPENERS.get(suffix)
        if opener is None:
            return path.read_bytes()
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise InputError(f"cannot be read: {exc}", path=str(path)) from None


def utf8_bad_lines(data: bytes, *, evidence: bool = True) -> list[int] | None:
    """Line numbers of the lines that are not valid UTF-8, when the others hold UTF-8 text
    beyond ASCII (evidence that the file is UTF-8 with a few damaged lines, unless
    ``evidence`` is False); else None."""
    bad, multibyte = [], False
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
        else:
            multibyte = True
    return bad if bad and (multibyte or not evidence) else None


def _damaged_utf8(path: Path, bad: list[int]) -> InputError:
    shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    return InputError(
        f"is UTF-8 except for bytes that are not valid UTF-8 on line(s) {shown}; fix or remove "
        "those lines, or pass --encoding if the file is in another encoding", path=str(path))


def _decoded(line: bytes, enc: str) -> str | bytes:
    """The line as text, or its bytes when they do not decode (quarantined as such)."""
    try:
        return line.decode(enc)
    except UnicodeDecodeError:
        return line


def _read_json(path: Path, enc: str | None) -> RawTable:
    """JSON Lines, or a JSON array of records (see :mod:`adpilot.data.json_records`).
    ``enc`` None: detect it; a UTF-8 file with a few damaged lines quarantines those lines."""
    data = _read_bytes(path)
    damaged = None
    if enc is None:
        try:
            enc = detect_encoding(path) if not _OPENERS.get(path.suffix.lower()) else "utf-8"
        except InputError:
            enc = "utf-8"
        if not enc.startswith("utf"):  # JSON is UTF-8 (RFC 8259): only GB18030 is believed
            damaged = utf8_bad_lines(data, evidence=enc == "gb18030")
            enc = "utf-8" if damaged else enc
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        damaged = damaged or (utf8_bad_lines(data) if enc.startswith("utf-8") else None)
        if not damaged:
            raise _decode_error(path, enc, exc) from None
        text = None
    if text is not None and json_records.is_array(text):
        records = json_records.read_array(path, text)
    elif text is not None and not json_records.LONE_SURROGATE_ESCAPE.search(text):
        try:
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
        except ValueError:  # some line is not JSON: read line by line to keep the good ones
            frame = None
        if frame is not None and len(frame):
            return RawTable(path, "jsonl", enc, frame)
        records = json_records.read_lines(path, text.split("\n"))
    else:  # lone surrogates (pandas would drop or fail on them), or damaged UTF-8 lines
        lines = (text.split("\n") if text is not None
                 else [_decoded(raw, enc) for raw in data.split(b"\n")])
        if lines and isinstance(lines[0], str):
            lines[0] = lines[0].removeprefix("\ufeff")
        records = json_records.read_lines(path, lines)
    frame, rows = records.frame()
    if len(frame) == 0 and not records.entries:
        raise InputError("has no JSON records", path=str(path))
    return RawTable(path, "jsonl", enc, frame, quarantine_frame(records.entries), rows)


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"cannot be read as Parquet: {exc}", path=str(path)) from None
    if len(frame) == 0:
        raise InputError("has no rows", path=str(path))
    frame = frame.reset_index(drop=True)
    return RawTable(path, "parquet", None, frame)
