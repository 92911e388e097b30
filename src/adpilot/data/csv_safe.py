"""CSV files a person opens in a spreadsheet, safe from formula injection.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets (``=cmd|' /C calc'!A0``, ``=HYPERLINK(…)``). Every
CSV adpilot writes goes through :func:`write_csv`, which follows OWASP's CSV-injection rule:
such a cell gets a leading single quote, so the spreadsheet shows it as text. Only text is
escaped: a real number (``-1.5`` in a float column) stays a number. Header names are escaped
too (a quarantine file keeps the source's extra columns). The full-width forms (＝ ＋ － ＠)
and a leading line feed are escaped as well: some spreadsheet locales treat them alike.

:func:`unescape_cell` undoes it for a program that reads such a file back.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_PATTERN = "^[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_START) + "]"


def escape_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def unescape_cell(value: Any) -> Any:
    """The text :func:`escape_cell` was given (a reader's inverse)."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def _escape_column(col: pd.Series) -> pd.Series:
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if not (pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)):
        return col  # numbers, booleans, datetimes: never formulas
    try:
        risky = col.str.match(_PATTERN, na=False).astype(bool)
    except AttributeError:  # an object column without any text (lists, dicts)
        return col
    if not risky.any():
        return col
    out = col.copy()
    out[risky] = "'" + col[risky].astype(str)
    return out


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and header names are escaped (see module doc)."""
    out = pd.DataFrame({i: _escape_column(frame.iloc[:, i]) for i in range(frame.shape[1])},
                       index=frame.index)
    out.columns = [escape_cell(str(c)) if isinstance(c, str) else c for c in frame.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path | IO[str], **kwargs: Any) -> None:
    """Write ``frame`` as UTF-8 CSV without the index, formula-escaped (see module doc), with
    RFC 4180 line ends (CRLF: a cell holding a lone carriage return is then quoted too, which
    pandas' default "\\n" leaves bare, splitting the row). Other keyword arguments go to
    :meth:`pandas.DataFrame.to_csv`."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("encoding", "utf-8")
    kwargs.setdefault("lineterminator", "\r\n")
    escape_frame(frame).to_csv(path, **kwargs)
