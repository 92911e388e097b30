"""Text encoding detection for exported files (UTF-8, UTF-8 with BOM, GBK/GB18030, …)."""

from __future__ import annotations

import codecs
from pathlib import Path

from adpilot.errors import InputError

_SAMPLE_BYTES = 4 << 20  # enough to see non-ASCII text in any real export


def _decodes(data: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(data, final=False)  # a multibyte char cut at the sample's end is fine
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: str | Path) -> str:
    """Return the encoding of a text file: ``utf-8-sig``, ``utf-8``, ``gb18030`` or a guess.

    UTF-8 is tried first because valid UTF-8 almost never happens by accident in other
    encodings; Chinese exports from Windows tools are usually GBK, read as its superset GB18030.
    """
    with open(path, "rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(head, "utf-8"):
        return "utf-8"
    if _decodes(head, "gb18030"):
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise InputError("cannot tell the text encoding; pass --encoding", path=str(path))
    return best.encoding


def normalise_encoding(name: str) -> str:
    """Canonical codec name for a user-supplied encoding (GBK is read as GB18030, its superset)."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise InputError(f"unknown encoding {name!r}") from None
    return "gb18030" if canonical in {"gbk", "gb2312"} else canonical
