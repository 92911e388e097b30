"""Readable, safe identifiers from the names people type (any script).

A campaign called ``春季上新 / Spring launch`` gets the id ``春季上新-spring-launch-1a2b3c4d``:
NFKC-normalised, lower-cased, control and bidirectional-override characters dropped, every run
of anything that is not a letter, digit or combining mark turned into one ``-``, at most
``max_len`` characters, then a random suffix that makes it unique. Such an id is one URL path
segment (no ``/``, ``..``, NUL or U+202E), so ``/v1/campaigns/{id}`` always reaches it.
"""

from __future__ import annotations

import unicodedata
import uuid

# Bidirectional embeddings, overrides and isolates: they reorder what a reader sees.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DROPPED = {"Cc", "Cs", "Co", "Cn"}  # control, lone surrogate, private use, unassigned


def _visible(ch: str) -> bool:
    return ch not in _BIDI and unicodedata.category(ch) not in _DROPPED


def display_name(text: str) -> str:
    """``text`` as typed, minus control characters (tabs and line breaks become spaces), lone
    surrogates and bidirectional controls, with surrounding whitespace trimmed."""
    text = "".join(" " if ch in "\t\r\n" else ch for ch in str(text))
    return "".join(ch for ch in text if _visible(ch)).strip()


def slugify(text: str, *, max_len: int = 40, default: str = "campaign") -> str:
    """A lower-case slug of letters and digits (any script) joined by ``-``, at most
    ``max_len`` characters; ``default`` when nothing readable is left."""
    text = unicodedata.normalize("NFKC", display_name(text)).lower()
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch)[0] in "LNM" and _visible(ch):
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    slug = "".join(out)[:max_len].strip("-")
    return slug or default


def unique_id(name: str, *, max_len: int = 40) -> str:
    """``slugify(name)`` plus ``-`` and 8 random hex digits."""
    return f"{slugify(name, max_len=max_len)}-{uuid.uuid4().hex[:8]}"
