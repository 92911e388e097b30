"""A campaign plan from profiles: for every user, the product to show, the channel and the copy.

Used by ``adpilot run``: products are picked from the user's own top categories (the best-rated
one they have not reviewed yet), copy is written per segment × product by the LLM and then
personalised per user with grounded slots (see :mod:`adpilot.generation.personalize`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.data.records import Product
from adpilot.generation.audience import Audience
from adpilot.generation.generator import CopyGenerator
from adpilot.generation.guardrails import join_violations
from adpilot.generation.personalize import Mode, Personaliser, UserTarget, top_aspect

PLAN_COLUMNS = [C.USER_ID, C.SEGMENT, C.PRODUCT_ID, C.CHANNEL, "lang", C.TEXT, "passed",
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
    most-reviewed product in their language. Index: user_id. Joins, not a loop over users."""
    stats = reviews.groupby(C.PRODUCT_ID)[C.RATING].agg(["mean", "size"])
    cat = products.set_index(C.ID).join(stats).sort_values(["mean", "size"], ascending=False)
    cat = cat.assign(rank=np.arange(len(cat)))
    has_lang = C.LANGUAGE in cat
    fallback = ({lang: g.sort_values("size", ascending=False).index[0]
                 for lang, g in cat.groupby(C.LANGUAGE)} if has_lang else {})
    any_product = cat.index[0]
    users = pd.DataFrame({
        C.USER_ID: profiles[C.USER_ID].to_numpy(),
        "lang": (profiles[C.LANGUAGE] if C.LANGUAGE in profiles
                 else pd.Series(None, index=profiles.index, dtype=object)).to_numpy(),
        C.CATEGORY: (profiles["top_categories"] if "top_categories" in profiles
                     else pd.Series("", index=profiles.index)).fillna("").astype(str)
        .str.split(",").to_numpy()})
    wanted = users.explode(C.CATEGORY)
    wanted[C.CATEGORY] = wanted[C.CATEGORY].str.strip()
    wanted = wanted[wanted[C.CATEGORY] != ""]
    offer = cat.reset_index(names=C.PRODUCT_ID)[[C.PRODUCT_ID, C.CATEGORY, "rank"]
                                                + ([C.LANGUAGE] if has_lang else [])]
    cand = wanted.merge(offer, on=C.CATEGORY)
    # copy is written in the user's language, so only offer products described in it
    if has_lang:
        cand = cand[cand["lang"].isna() | cand[C.LANGUAGE].isna() | (cand[C.LANGUAGE] == cand["lang"])]
    seen = reviews[[C.USER_ID, C.PRODUCT_ID]].drop_duplicates().assign(_seen=True)
    cand = cand.merge(seen, on=[C.USER_ID, C.PRODUCT_ID], how="left")
    best = (cand[cand["_seen"].isna()].sort_values("rank")
            .drop_duplicates(C.USER_ID).set_index(C.USER_ID)[C.PRODUCT_ID])
    default = users["lang"].map(fallback).fillna(any_product)
    picks = best.reindex(users[C.USER_ID]).fillna(pd.Series(default.to_numpy(),
                                                            index=users[C.USER_ID].to_numpy()))
    return pd.Series(picks.to_numpy(), index=users[C.USER_ID].to_numpy(), name=C.PRODUCT_ID)


def _bound_pairs(profiles: pd.DataFrame, picks: pd.Series, max_variants: int) -> pd.Series:
    lang = profiles.get(C.LANGUAGE, pd.Series("en", index=profiles.index)).where(
        lambda x: x.isin(["en", "zh"]), "en")
    pairs = pd.DataFrame({"user": profiles[C.USER_ID].to_numpy(), "lang": lang.to_numpy(),
                          C.SEGMENT: profiles[C.SEGMENT].to_numpy()})
    pairs["product"] = picks.reindex(pairs["user"]).to_numpy()
    counts = pairs.groupby(["lang", C.SEGMENT, "product"]).size().rename("n").reset_index()
    ranked = counts.sort_values(["n", "product"], ascending=[False, True])
    best = ranked.drop_duplicates(["lang", C.SEGMENT])  # every segment keeps its top pair
    extra = ranked.drop(best.index).groupby("lang").head(max_variants)
    top = pd.concat([best, extra]).sort_values("n", ascending=False).groupby("lang").head(
        max(max_variants, best.groupby("lang").size().max()))
    keep = set(zip(top["lang"], top[C.SEGMENT], top["product"], strict=True))
    best = best.rename(columns={"product": "best"})[["lang", C.SEGMENT, "best"]]
    kept = pd.MultiIndex.from_frame(pairs[["lang", C.SEGMENT, "product"]]).isin(list(keep))
    pairs = pairs.merge(best, on=["lang", C.SEGMENT], how="left")
    out = np.where(kept, pairs["product"], pairs["best"].fillna(pairs["product"]))
    return pd.Series(out, index=pairs["user"].to_numpy(), name=C.PRODUCT_ID)


def segment_audiences(segments: pd.DataFrame, profiles: pd.DataFrame, reviews: pd.DataFrame,
                      lang: str, per_segment: int = 0) -> dict[str, Audience]:
    """Each segment's description plus ``per_segment`` real review snippets of its members in
    ``lang``. None by default: they are about other products (a shampoo review put 头皮 into a
    charger's copy) and cost prompt time; the segment's aspects already steer the angle."""
    texts = reviews[reviews.get(C.LANGUAGE, lang) == lang] if C.LANGUAGE in reviews else reviews
    members = profiles.set_index(C.USER_ID)[C.SEGMENT]
    texts = texts.assign(**{C.SEGMENT: members.reindex(texts[C.USER_ID]).to_numpy()})
    out = {}
    for row in segments.itertuples(index=False):
        desc = getattr(row, "description_zh" if lang == "zh" else "description", "") or ""
        snippets = texts[texts[C.SEGMENT] == row.segment][C.TEXT].head(per_segment).tolist()
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
    profiles = profiles.assign(lang=profiles.get(C.LANGUAGE, "en").where(
        profiles.get(C.LANGUAGE, "en").isin(["en", "zh"]), "en"))
    for lang, group in profiles.groupby("lang"):
        audiences = segment_audiences(segments, profiles, reviews, lang)
        targets = [UserTarget(str(r[C.USER_ID]), str(r[C.SEGMENT]), str(picks[r[C.USER_ID]]),
                              top_aspect(r.to_dict())) for _, r in group.iterrows()]
        segment_of = {t.user_id: t.segment for t in targets}
        for channel in channels:
            run = personaliser.run(targets, catalogue, audiences, channel, lang, mode=mode)
            for m in run.messages:
                d = m.as_dict()
                rows.append({C.USER_ID: m.user_id, C.SEGMENT: segment_of[m.user_id],
                             C.PRODUCT_ID: m.product_id, C.CHANNEL: channel, "lang": lang,
                             C.TEXT: d["text"], "passed": m.passed,
                             "violations": join_violations(m.violations), "personalised": m.personalised,
                             "mode": m.mode})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)
