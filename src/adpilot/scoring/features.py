"""Hand-made headline features that marketers and the Upworthy literature point to (length,
questions, numbers, direct address, curiosity words), in English and Chinese."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["chars", "words", "question", "exclaim", "number", "starts_number", "you",
            "this", "quote", "colon", "caps", "first_person", "wh_word", "watch", "negation",
            "long"]


def headline_features(texts: list[str] | pd.Series) -> np.ndarray:
    s = pd.Series(list(texts), dtype="string").fillna("")
    low = s.str.lower()
    words = s.str.split().str.len().fillna(0)
    # Chinese has no spaces: count characters as words there
    cjk = s.str.count(r"[\u4e00-\u9fff]")
    words = np.where(cjk > words, cjk / 2, words)
    f = pd.DataFrame({
        "chars": s.str.len(), "words": words,
        "question": s.str.contains(r"[?？]").astype(int),
        "exclaim": s.str.contains(r"[!！]").astype(int),
        "number": s.str.contains(r"\d").astype(int),
        "starts_number": s.str.match(r"^\d").astype(int),
        "you": low.str.count(r"\byou(?:r|'re)?\b") + s.str.count("你|您"),
        "this": low.str.count(r"\bthis\b") + s.str.count("这"),
        "quote": s.str.count("['\"“”‘’「」]"),
        "colon": s.str.contains(r"[:：]").astype(int),
        "caps": s.str.count(r"\b[A-Z]{2,}\b"),
        "first_person": low.str.count(r"\b(?:i|we|my|our)\b") + s.str.count("我"),
        "wh_word": low.str.contains(r"\b(?:what|why|how|when|who)\b").astype(int)
        + s.str.contains("什么|为什么|怎么|如何").astype(int),
        "watch": low.str.contains(r"\b(?:watch|video|see)\b").astype(int)
        + s.str.contains("看").astype(int),
        "negation": low.str.count(r"\b(?:not|no|never|don't|can't|won't)\b") + s.str.count("不|没"),
    })
    f["long"] = (f["words"] > 14).astype(int)
    return f[FEATURES].to_numpy(dtype=float)
