"""Per-text language detection (``zh`` / ``en`` / ``und``), vectorised over a Series."""

from __future__ import annotations

import numpy as np
import pandas as pd

_CJK = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_LATIN = r"[A-Za-z]"


def detect_language(texts: pd.Series) -> pd.Series:
    """Label each text ``zh`` or ``en`` (``und`` when it has no letters at all).

    A Chinese character carries about as much as a short English word (~4 letters), so a text
    is Chinese when it has at least as many CJK characters as Latin "words": "iPhone很好用" is
    zh, "I love the 麓织 brand products" is en.
    """
    s = texts.fillna("").astype(str)
    cjk = s.str.count(_CJK).to_numpy()
    latin = s.str.count(_LATIN).to_numpy()
    out = np.where(cjk > 0, np.where(cjk * 4 >= latin, "zh", "en"), np.where(latin > 0, "en", "und"))
    return pd.Series(out, index=texts.index, dtype="str")


def detect_one(text: str) -> str:
    """Language of one text (see :func:`detect_language`)."""
    return str(detect_language(pd.Series([text])).iloc[0])
