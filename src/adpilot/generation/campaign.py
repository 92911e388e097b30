"""A campaign plan from profiles: for every user, the product to show, the channel and the copy.

Used by ``adpilot run``: products are picked from the user's own top categories (the best-rated
one they have not reviewed yet), copy is written per segment × product by the LLM and then
personalised per user with grounded slots (see :mod:`adpilot.generation.personalize`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from adpilot.data import columns as C
from adpilot.data.records import Product
from adpilot.generation.audience import Audience
from adpilot.generation.generator import CopyGenerator
from adpilot.generation.personalize import Mode, Personaliser, UserTarget, top_aspect

PLAN_COLUMNS = ["user_id", "segment", "product_id", "channel", "lang", "text", "passed",
                "violations", "personalised", "mode"]


def _product(row: pd.Series) -> Product:
    def val(col):
        v = row.get(col)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    lang = val(C.LANGUAGE)
    return Product(id=str(row[C.ID]), title=val(C.TITLE), category=val(C.CATEGORY),
                   price=val(C.PRICE), currency=val(C.CURRENCY), description=val(C.DESCRIPTION),
                   language=lang if lang in ("en", "zh", "und") else None)


def pick_products(profiles: pd.DataFrame, products: pd.DataFrame,
                  reviews: pd.DataFrame) -> pd.Series:
    """Per user: best-rated product of their top categories they have not reviewed; else the
    most-reviewed product in their language. Index: user_id."""
    stats = reviews.groupby(C.PRODUCT_ID)[C.RATING].agg(["mean", "size"])
    cat = products.set_index(C.ID).join(stats).sort_values(["mean", "size"], ascending=False)
    seen = reviews.groupby(C.USER_ID)[C.PRODUCT_ID].agg(set)
    fallback = {lang: g.sort_values("size", ascending=False).index[0]
                for lang, g in cat.groupby(C.LANGUAGE)} if C.LANGUAGE in cat else {}
    any_product = cat.index[0]
    picks = {}
    for row in profiles.itertuples(index=False):
        user = row.user_id
        wanted = [c.strip() for c in str(getattr(row, "top_categories", "") or "").split(",") if c.strip()]
        done = seen.get(user, set())
        lang = getattr(row, "language", None)
        # copy is written in the user's language, so only offer products described in it
        choice = next((pid for pid, p in cat.iterrows()
                       if p[C.CATEGORY] in wanted and pid not in done
                       and (lang is None or pd.isna(p.get(C.LANGUAGE))
                            or p.get(C.LANGUAGE) == lang)), None)
        picks[user] = choice or fallback.get(lang, any_product)
    return pd.Series(picks, name=C.PRODUCT_ID)


def _bound_pairs(profiles: pd.DataFrame, picks: pd.Series, max_variants: int) -> pd.Series:
    lang = profiles.get("language", pd.Series("en", index=profiles.index)).where(
        lambda x: x.isin(["en", "zh"]), "en")
    pairs = pd.DataFrame({"user": profiles[C.USER_ID].to_numpy(), "lang": lang.to_numpy(),
                          "segment": profiles["segment"].to_numpy()})
    pairs["product"] = picks.reindex(pairs["user"]).to_numpy()
    counts = pairs.groupby(["lang", "segment", "product"]).size().rename("n").reset_index()
    ranked = counts.sort_values(["n", "product"], ascending=[False, True])
    best = ranked.drop_duplicates(["lang", "segment"])  # every segment keeps its top pair
    extra = ranked.drop(best.index).groupby("lang").head(max_variants)
    top = pd.concat([best, extra]).sort_values("n", ascending=False).groupby("lang").head(
        max(max_variants, best.groupby("lang").size().max()))
    keep = set(zip(top["lang"], top["segment"], top["product"], strict=True))
    best = best.set_index(["lang", "segment"])["product"]
    out = {}
    for r in pairs.itertuples(index=False):
        ok = (r.lang, r.segment, r.product) in keep
        out[r.user] = r.product if ok else best.get((r.lang, r.segment), r.product)
    return pd.Series(out, name=C.PRODUCT_ID)


def segment_audiences(segments: pd.DataFrame, profiles: pd.DataFrame, reviews: pd.DataFrame,
                      lang: str, per_segment: int = 3) -> dict[str, Audience]:
    """Each segment's description plus a few real review snippets of its members in ``lang``."""
    texts = reviews[reviews.get(C.LANGUAGE, lang) == lang] if C.LANGUAGE in reviews else reviews
    members = profiles.set_index(C.USER_ID)["segment"]
    texts = texts.assign(segment=members.reindex(texts[C.USER_ID]).to_numpy())
    out = {}
    for row in segments.itertuples(index=False):
        desc = getattr(row, "description_zh" if lang == "zh" else "description", "") or ""
        snippets = texts[texts["segment"] == row.segment][C.TEXT].head(per_segment).tolist()
        out[str(row.segment)] = Audience(description=f"{row.name}: {desc}" if desc else str(row.name),
                                         reviews=snippets)
    return out


def plan_campaign(profiles: pd.DataFrame, segments: pd.DataFrame, products: pd.DataFrame,
                  reviews: pd.DataFrame, generator: CopyGenerator, *,
                  channels: Sequence[str] = ("email",), mode: Mode = "segment",
                  max_users: int | None = None,
                  max_variants: int | None = None) -> pd.DataFrame:
    """One row per user × channel with the copy they would get (columns :data:`PLAN_COLUMNS`).

    ``max_variants`` bounds LLM work per language and channel: only the most common
    (segment, product) pairs get their own copy; other users get their segment's most common
    product (an LLM variant costs ~10-60 s on a CPU; filling a user's slots, microseconds).
    """
    profiles = profiles.head(max_users) if max_users else profiles
    picks = pick_products(profiles, products, reviews)
    if max_variants:
        picks = _bound_pairs(profiles, picks, max_variants)
    catalogue = {str(r[C.ID]): _product(r) for _, r in products.iterrows()}
    personaliser = Personaliser(generator)
    rows = []
    profiles = profiles.assign(lang=profiles.get("language", "en").where(
        profiles.get("language", "en").isin(["en", "zh"]), "en"))
    for lang, group in profiles.groupby("lang"):
        audiences = segment_audiences(segments, profiles, reviews, lang)
        targets = [UserTarget(str(r[C.USER_ID]), str(r["segment"]), str(picks[r[C.USER_ID]]),
                              top_aspect(r.to_dict())) for _, r in group.iterrows()]
        segment_of = {t.user_id: t.segment for t in targets}
        for channel in channels:
            run = personaliser.run(targets, catalogue, audiences, channel, lang, mode=mode)
            for m in run.messages:
                d = m.as_dict()
                rows.append({"user_id": m.user_id, "segment": segment_of[m.user_id],
                             "product_id": m.product_id, "channel": channel, "lang": lang,
                             "text": d["text"], "passed": m.passed,
                             "violations": "; ".join(m.violations), "personalised": m.personalised,
                             "mode": m.mode})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)
