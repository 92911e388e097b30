"""JSON Lines and JSON array files read record by record, so that one bad record is quarantined
and every other one is kept.

A record is quarantined (never the file) when its line is not JSON, is not an object, holds
bytes that are not valid UTF-8, or holds a lone surrogate: a JSON escape such as ``"\\ud800"``
that is not half of a pair. No database can store a lone surrogate as text (UTF-8 cannot
encode it), and pandas' JSON parser drops a lone high surrogate silently (``"x\\ud800"`` becomes
``"x"``) and fails the whole file on a lone low one, so files holding one are read here with
:mod:`json`, which keeps it, and the record is quarantined with the file, line, column and
value (escaped) in its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import InputError

_VALUE_CHARS = 200
# a surrogate escape that is not half of a pair (a high one not followed by a low one, a low
# one not preceded by a high one); a file without one is read by pandas in one pass
LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACE = re.compile(r"\s*")


def escaped(value: str) -> str:
    """``value`` with lone surrogates and NUL written as escapes (``\\ud800``, ``\\x00``)."""
    if _SURROGATE.search(value):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _surrogate_field(record: dict) -> tuple[str, str] | None:
    """(column, value), both escaped, of the first field holding a lone surrogate."""
    for key, value in record.items():
        if _has_surrogate(key) or _has_surrogate(value):
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            return escaped(key), escaped(text[:_VALUE_CHARS])
    return None


@dataclass
class Records:
    """Records kept (with their 1-based data row numbers) and quarantine entries."""

    path: Path
    good: list[dict] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)
    columns: dict[str, None] = field(default_factory=dict)  # of quarantined records, in order

    def add(self, row: int, line: int, record: object, source: str,
            suspect: bool = True) -> None:
        """Keep ``record`` (data row ``row``, on ``line``), or quarantine it with the reason.
        ``suspect``: its text holds a lone surrogate escape (only then is it searched)."""
        if not isinstance(record, dict):
            self.reject(row, line, source, "JSON record is not an object")
            return
        bad = _surrogate_field(record) if suspect else None
        if bad is None:
            self.good.append(record)
            self.rows.append(row)
            return
        column, value = bad
        self.columns.update(dict.fromkeys(k for k in record if not _SURROGATE.search(k)))
        self.entries.append({
            C.Q_ROW: row, "line": line, C.Q_COLUMN: column, C.Q_VALUE: value,
            C.Q_REASON: f"{self.path.name} line {line}, column {column}: an unpaired surrogate "
                        f"({value}) cannot be stored as text"})

    def reject(self, row: int, line: int, source: str, reason: str) -> None:
        self.entries.append({C.Q_ROW: row, "line": line, C.Q_COLUMN: None,
                             C.Q_VALUE: escaped(source[:_VALUE_CHARS].rstrip("\n")),
                             C.Q_REASON: reason})

    def frame(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The kept records; with none kept, the columns of the quarantined ones (so that a
        file whose every record is quarantined is still a table of those columns)."""
        frame = pd.DataFrame(self.good) if self.good else pd.DataFrame(columns=list(self.columns))
        return frame, np.asarray(self.rows, dtype=np.int64)


def read_lines(path: Path, lines: list[str | bytes]) -> Records:
    """JSON Lines, one record per non-blank line; a ``bytes`` line did not decode as UTF-8."""
    out, row = Records(path), 0
    for lineno, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            if not line.strip():
                continue
            row += 1
            out.reject(row, lineno, line.decode("utf-8", "backslashreplace"),
                       f"{path.name} line {lineno}: bytes that are not valid UTF-8")
            continue
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            out.reject(row, lineno, line, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        out.add(row, lineno, record, line, bool(LONE_SURROGATE_ESCAPE.search(line)))
    return out


def is_array(text: str) -> bool:
    """Whether ``text`` holds a JSON array (its first non-blank character is ``[``)."""
    return text[_SPACE.match(text).end():][:1] == "["


def read_array(path: Path, text: str) -> Records:
    """A JSON array of records. A record that is not an object or holds a lone surrogate is
    quarantined; an array that does not parse is an error (its records cannot be told apart
    after the break)."""
    decoder, out = json.JSONDecoder(), Records(path)

    def skip(at: int) -> int:
        return _SPACE.match(text, at).end()

    def broken(what: str, at: int) -> InputError:
        where = text.count("\n", 0, at) + 1
        return InputError(f"broken JSON array at line {where}: {what}", path=str(path))

    pos, row, line, counted = skip(skip(0) + 1), 0, 1, 0
    while not (row == 0 and text.startswith("]", pos)):  # an empty array has no records
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise broken(exc.msg, exc.pos) from None
        row += 1
        line, counted = line + text.count("\n", counted, pos), pos
        out.add(row, line, record, text[pos:end],
                bool(LONE_SURROGATE_ESCAPE.search(text, pos, end)))
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif text.startswith("]", pos):
            break
        else:
            raise broken("expected ',' or ']' after a record", pos)
    if text[pos + 1:].strip():
        raise broken("data after the end of the array", pos + 1)
    return out
