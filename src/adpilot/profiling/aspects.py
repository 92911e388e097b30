"""Aspect-level opinions (fit, quality, price, comfort, style, delivery) in English and Chinese.

Reviews are split into clauses ("soft fabric, but runs small" → two clauses); a clause that
mentions an aspect carries the opinion of its own words (lexicon counts with negation: "not
soft", "不舒服"). A clause with no opinion word takes the review's overall polarity. Everything
is vectorised over pandas string columns (Arrow-backed), so millions of reviews are fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from adpilot.data import columns as C
from adpilot.profiling.constants import ASPECT_COLUMNS

_CLAUSE_SPLIT = {
    "en": r"[.!?;\n]+|,\s*(?:but|though|although|however)\b|\b(?:but|however|although)\b",
    "zh": r"[。！？；，、,.!?;\n]+|但是|但|不过|就是|可是",
}


@dataclass(frozen=True)
class Lexicon:
    """Compiled patterns of one language."""

    aspects: dict[str, str]  # aspect -> regex of its mentions
    positive: str
    negative: str
    negated_positive: str


@lru_cache(maxsize=1)
def _config() -> dict:
    text = (resources.files("adpilot") / "resources" / "aspects.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def aspect_labels(lang: str = "en") -> dict[str, str]:
    """Readable aspect names, e.g. ``{"fit": "fit & size"}`` or ``{"fit": "尺码合身"}``."""
    return {name: spec["label"][lang] for name, spec in _config()["aspects"].items()}


def _alternation(terms: list[str], lang: str) -> str:
    escaped = sorted((re.escape(t.lower()) for t in terms), key=len, reverse=True)
    body = "|".join(escaped)
    # English: match at word starts ("pill" in "pilled"); Chinese has no word boundaries.
    return rf"\b(?:{body})" if lang == "en" else f"(?:{body})"


@lru_cache(maxsize=2)
def lexicon(lang: str) -> Lexicon:
    cfg = _config()
    op = cfg["opinion"][lang]
    pos = _alternation(op["positive"], lang)
    neg_words = "|".join(re.escape(n) for n in sorted(op["negators"], key=len, reverse=True))
    if lang == "en":
        negated = rf"(?:\b(?:{neg_words})|n't)\s+(?:\w+\s+)?{pos}"
    else:
        negated = rf"(?:{neg_words})(?:太|很|是很|怎么)?{pos}"
    return Lexicon(
        aspects={a: _alternation(spec[lang], lang) for a, spec in cfg["aspects"].items()},
        positive=pos, negative=_alternation(op["negative"], lang), negated_positive=negated)


def _clauses(texts: pd.Series, lang: str) -> pd.Series:
    """One row per clause; the index repeats the review's index."""
    lowered = texts.fillna("").astype("string").str.lower()
    parts = lowered.str.split(_CLAUSE_SPLIT[lang], regex=True).explode()
    parts = parts.astype("string").str.strip()
    return parts[parts.str.len() > 0]


def clause_opinion(clauses: pd.Series, lang: str) -> pd.DataFrame:
    """Positive and negative opinion-word counts per clause (negated positives count negative)."""
    lex = lexicon(lang)
    negated = clauses.str.count(lex.negated_positive).fillna(0).to_numpy()
    pos = clauses.str.count(lex.positive).fillna(0).to_numpy() - negated
    neg = clauses.str.count(lex.negative).fillna(0).to_numpy() + negated
    return pd.DataFrame({"pos": np.clip(pos, 0, None), "neg": neg}, index=clauses.index)


def extract_aspects(reviews: pd.DataFrame, *, overall: pd.Series | None = None) -> pd.DataFrame:
    """Aspect opinions per review.

    ``reviews`` needs ``id``, ``text`` and ``language``; ``overall`` is a per-review polarity in
    [-1, 1] (from the sentiment model, or from the rating) used when a clause mentioning an
    aspect has no opinion word of its own. Returns one row per (review, aspect mentioned):
    ``review_id``, ``aspect``, ``score`` in [-1, 1], ``mentions``, ``evidence`` (a clause).
    """
    if overall is None:
        rating = reviews.get(C.RATING)
        overall = ((rating - 3) / 2).fillna(0) if rating is not None else pd.Series(
            0.0, index=reviews.index)
    overall = pd.Series(np.asarray(overall, dtype=float), index=reviews.index)
    frames = []
    for lang in ("en", "zh"):
        part = reviews[reviews[C.LANGUAGE] == lang]
        if part.empty:
            continue
        clauses = _clauses(part[C.TEXT], lang)
        opinion = clause_opinion(clauses, lang)
        lex = lexicon(lang)
        for aspect, pattern in lex.aspects.items():
            hit = clauses.str.contains(pattern, regex=True).fillna(False).to_numpy()
            if not hit.any():
                continue
            o = opinion[hit]
            own = (o["pos"] - o["neg"]) / (o["pos"] + o["neg"]).where(lambda s: s > 0)
            score = own.fillna(overall.reindex(o.index))
            frames.append(pd.DataFrame({
                "row": o.index, "aspect": aspect, "score": score.to_numpy(),
                "evidence": clauses[hit].to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=ASPECT_COLUMNS)
    long = pd.concat(frames, ignore_index=True)
    out = (long.groupby(["row", "aspect"], sort=False)
           .agg(score=("score", "mean"), mentions=("score", "size"), evidence=("evidence", "first"))
           .reset_index())
    out.insert(0, "review_id", reviews[C.ID].reindex(out["row"]).to_numpy())
    return out.drop(columns="row").assign(score=lambda d: d["score"].clip(-1, 1))
