"""Per-user profiles: demographics, purchases, review sentiment, aspect preferences, interests,
RFM, an embedding and a short readable summary (English and Chinese).

Everything is built with vectorised pandas group-bys — no per-row Python — so a million review
rows take seconds (see ``benchmarks/profile_build.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.profiling.aspects import aspect_labels
from adpilot.profiling.constants import NEGATIVE_REVIEW, OPINION
from adpilot.profiling.rfm import compute_rfm

ASPECTS = list(aspect_labels("en"))
TOP_CATEGORIES = 8  # category-share columns kept for segmentation


@dataclass
class Profiles:
    """Profiles (one row per user) and the matching embedding matrix (same row order)."""

    table: pd.DataFrame
    embeddings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.table)


def _top_labels(counts: pd.DataFrame, key: str, label: str, value: str, k: int) -> pd.Series:
    """For long (key, label, value) rows, the top-k labels per key joined by ', '."""
    top = (counts.sort_values([key, value, label], ascending=[True, False, True])
           .groupby(key, sort=False).head(k))
    return top.groupby(key, sort=True)[label].agg(", ".join)


def review_stats(reviews: pd.DataFrame, sentiment: pd.Series | None) -> pd.DataFrame:
    """Per-user review statistics. ``sentiment`` is per-review polarity in [-1, 1].

    Sums and counts are ``np.bincount`` over factorised user codes: one pass, no Python loop.
    """
    r = reviews.dropna(subset=[C.USER_ID])
    s = (sentiment.reindex(r.index) if sentiment is not None
         else ((r[C.RATING] - 3) / 2))  # no model: the rating itself says how they felt
    codes, users = pd.factorize(r[C.USER_ID], sort=True)
    k = len(users)
    rating = r[C.RATING].to_numpy(dtype=float, na_value=np.nan)
    senti = s.to_numpy(dtype=float, na_value=np.nan)
    n = np.bincount(codes, minlength=k)
    has_rating = ~np.isnan(rating)
    n_rated = np.bincount(codes, weights=has_rating, minlength=k)
    rating_sum = np.bincount(codes, weights=np.where(has_rating, rating, 0), minlength=k)
    has_senti = ~np.isnan(senti)
    n_senti = np.bincount(codes, weights=has_senti, minlength=k)
    senti_sum = np.bincount(codes, weights=np.where(has_senti, senti, 0), minlength=k)
    neg = np.bincount(codes, weights=has_senti & (np.nan_to_num(senti) < NEGATIVE_REVIEW),
                      minlength=k)
    lang_codes, langs = pd.factorize(r[C.LANGUAGE].fillna("und"))
    lang_counts = np.bincount(codes * len(langs) + lang_codes,
                              minlength=k * len(langs)).reshape(k, len(langs))
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "n_reviews": n,
            "mean_rating": rating_sum / n_rated,
            "sentiment_mean": senti_sum / n_senti,
            "negative_share": neg / n_senti,
            C.LANGUAGE: np.asarray(langs, dtype=object)[lang_counts.argmax(axis=1)],
        }, index=pd.Index(users, name=C.USER_ID))


def aspect_stats(aspects: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Per-user mean opinion per aspect (``aspect_fit`` …) and mention counts."""
    if aspects.empty:
        return pd.DataFrame(columns=[f"aspect_{a}" for a in ASPECTS])
    users = reviews.set_index(C.ID)[C.USER_ID]
    a = aspects.assign(user_id=users.reindex(aspects["review_id"]).to_numpy()).dropna(
        subset=[C.USER_ID])
    mean = a.pivot_table(index=C.USER_ID, columns="aspect", values="score", aggfunc="mean")
    count = a.pivot_table(index=C.USER_ID, columns="aspect", values="score", aggfunc="size")
    mean = mean.reindex(columns=ASPECTS).add_prefix("aspect_")
    count = count.reindex(columns=ASPECTS).fillna(0).astype(int).add_prefix("mentions_")
    return mean.join(count)


def interest_stats(transactions: pd.DataFrame | None, reviews: pd.DataFrame,
                   products: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
    """Category interests from purchases (and reviewed products): shares of the top
    categories (``cat_<name>``), the user's top-3 categories, recent products."""
    events = [reviews[[C.USER_ID, C.PRODUCT_ID]].assign(w=1.0)]
    if transactions is not None and len(transactions):
        events.append(transactions[[C.USER_ID, C.PRODUCT_ID]].assign(w=1.0))
    touch = pd.concat(events, ignore_index=True).dropna(subset=[C.USER_ID, C.PRODUCT_ID])
    if products is None or products.empty or C.CATEGORY not in products:
        return pd.DataFrame(index=pd.Index([], name=C.USER_ID)), []
    cats = products.drop_duplicates(C.ID).set_index(C.ID)[C.CATEGORY]
    touch[C.CATEGORY] = cats.reindex(touch[C.PRODUCT_ID]).to_numpy()
    touch = touch.dropna(subset=[C.CATEGORY])
    counts = touch.groupby([C.USER_ID, C.CATEGORY], sort=True)["w"].sum().rename("n").reset_index()
    totals = counts.groupby(C.USER_ID)["n"].transform("sum")
    counts["share"] = counts["n"] / totals
    top_overall = counts.groupby(C.CATEGORY)["n"].sum().nlargest(TOP_CATEGORIES).index.tolist()
    shares = counts[counts[C.CATEGORY].isin(top_overall)].pivot_table(
        index=C.USER_ID, columns=C.CATEGORY, values="share", aggfunc="sum").reindex(
        columns=top_overall).fillna(0.0)
    shares.columns = [f"cat_{c}" for c in shares.columns]
    out = shares.join(_top_labels(counts, C.USER_ID, C.CATEGORY, "n", 3).rename("top_categories"),
                      how="outer")
    return out, top_overall


def purchase_stats(transactions: pd.DataFrame | None) -> pd.DataFrame:
    """RFM plus the last products bought (most recent first)."""
    if transactions is None or transactions.empty:
        return pd.DataFrame(index=pd.Index([], name=C.USER_ID))
    rfm = compute_rfm(transactions).set_index(C.USER_ID)
    tx = transactions.dropna(subset=[C.USER_ID]).sort_values(C.TIME, ascending=False)
    recent = (tx.drop_duplicates([C.USER_ID, C.PRODUCT_ID]).groupby(C.USER_ID).head(5)
              .groupby(C.USER_ID)[C.PRODUCT_ID].agg(", ".join).rename("recent_products"))
    return rfm.join(recent)


def profile_summaries(p: pd.DataFrame, lang: str) -> pd.Series:
    """Short readable summary per profile, assembled column-wise with Arrow string kernels
    (no per-row Python): each piece is null where it does not apply, and the join skips nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    labels = aspect_labels(lang)
    n = len(p)

    def num(col: str, fmt: str = "int") -> pa.Array:
        values = p[col] if col in p else pd.Series(np.nan, index=p.index)
        values = pd.to_numeric(values, errors="coerce")
        if fmt == "int":
            return pa.array(values.round().astype("Int64"), type=pa.int64()).cast(pa.string())
        return pa.array(values.round(1), type=pa.float64()).cast(pa.string())

    def text(col: str) -> pa.Array:
        if col not in p:
            return pa.nulls(n, pa.string())
        return pa.array(p[col].astype("string").replace("", pd.NA), type=pa.string())

    def when(mask: np.ndarray, arr: pa.Array) -> pa.Array:
        return pc.if_else(pa.array(mask, type=pa.bool_()), arr, pa.nulls(n, pa.string()))

    def cat(*xs) -> pa.Array:
        arrays = [x if isinstance(x, pa.Array) else pa.array([x] * n, pa.string()) for x in xs]
        return pc.binary_join_element_wise(*arrays, "")  # null if any part is null

    names = [a for a in labels if f"aspect_{a}" in p]
    best = worst = pa.nulls(n, pa.string())
    if names:
        scores = p[[f"aspect_{a}" for a in names]].to_numpy(dtype=float, na_value=np.nan)
        hi, lo = np.nan_to_num(scores, nan=-np.inf), np.nan_to_num(scores, nan=np.inf)
        label_arr = np.array([labels[a] for a in names], dtype=object)
        best = when(hi.max(axis=1) > OPINION, pa.array(label_arr[hi.argmax(axis=1)], pa.string()))
        worst = when(lo.min(axis=1) < -OPINION, pa.array(label_arr[lo.argmin(axis=1)], pa.string()))
    age, orders, days = num(C.AGE), num("frequency"), num("recency_days")
    rating, cats = num("mean_rating", "float"), text("top_categories")
    if lang == "en":
        pieces = [cat("age ", age),
                  cat(orders, " orders, last ", days, " days ago (", text("rfm_segment"), ")"),
                  cat("buys ", cats), cat("avg rating ", rating),
                  cat("happy with ", best), cat("unhappy with ", worst)]
        sep = " · "
    else:
        pieces = [cat(age, "岁"),
                  cat(orders, "笔订单，最近一次在", days, "天前（", text("rfm_segment_zh"), "）"),
                  cat("常买", cats), cat("平均评分", rating),
                  cat("满意", best), cat("不满意", worst)]
        sep = "；"
    # pyarrow 26 drops a row whose pieces are all null under null_handling="skip" (the result
    # is shorter than the input): a last, always-empty piece keeps every row; its separator is
    # stripped again.
    joined = pc.binary_join_element_wise(*pieces, pa.array([""] * n, pa.string()), sep,
                                         null_handling="skip")
    joined = pc.replace_substring_regex(joined, pattern=re.escape(sep) + "$", replacement="")
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=p.index, dtype="string")


def build_profiles(reviews: pd.DataFrame, *, customers: pd.DataFrame | None = None,
                   transactions: pd.DataFrame | None = None,
                   products: pd.DataFrame | None = None,
                   sentiment: pd.Series | None = None, aspects: pd.DataFrame | None = None,
                   review_embeddings: np.ndarray | None = None) -> Profiles:
    """Build one profile per user seen in customers, reviews or transactions.

    ``sentiment`` (per review, aligned with ``reviews``' index, in [-1, 1]) comes from the
    sentiment model; ``aspects`` from :func:`~adpilot.profiling.aspects.extract_aspects`;
    ``review_embeddings`` (one row per review) are averaged into a user embedding.
    """
    reviews = reviews.reset_index(drop=True) if sentiment is None else reviews
    parts = [review_stats(reviews, sentiment)]
    if aspects is not None:
        parts.append(aspect_stats(aspects, reviews))
    interests, _ = interest_stats(transactions, reviews, products)
    parts.append(interests)
    parts.append(purchase_stats(transactions))
    if customers is not None and len(customers):
        demo = customers.drop_duplicates(C.ID).set_index(C.ID)
        demo.index.name = C.USER_ID
        parts.insert(0, demo[[c for c in (C.AGE, C.GENDER, C.REGION) if c in demo]])
    table = parts[0]
    for extra in parts[1:]:
        table = table.join(extra, how="outer")
    table.index.name = C.USER_ID
    table = table.sort_index()
    table["n_reviews"] = table.get("n_reviews", pd.Series(0, index=table.index)).fillna(0).astype(
        int)
    table["summary"] = profile_summaries(table, "en")
    table["summary_zh"] = profile_summaries(table, "zh")
    embeddings = None
    if review_embeddings is not None:
        embeddings = user_embeddings(reviews, review_embeddings, table.index)
    return Profiles(table.reset_index(), embeddings)


def user_embeddings(reviews: pd.DataFrame, review_embeddings: np.ndarray,
                    users: pd.Index) -> np.ndarray:
    """Mean of each user's review embeddings (zeros for users without reviews), normalised."""
    codes = pd.Categorical(reviews[C.USER_ID], categories=users).codes
    keep = codes >= 0
    sums = np.zeros((len(users), review_embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, codes[keep], review_embeddings[keep])
    return unit_rows(sums)


def unit_rows(sums: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero), as float32."""
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms == 0, 1, norms)).astype(np.float32)


def query_profiles(profiles: pd.DataFrame, *, age: tuple[int, int] | None = None,
                   gender: str | None = None, region: str | None = None,
                   unhappy_with: str | None = None, happy_with: str | None = None,
                   bought: str | None = None, segment: str | None = None,
                   rfm_segment: str | None = None, language: str | None = None) -> pd.DataFrame:
    """Profiles matching every given filter, e.g. ``age=(25, 34), unhappy_with="fit",
    bought="dresses"``. Aspect filters use the per-user aspect opinion (below ``-OPINION`` /
    above ``OPINION``, 0.2)."""
    mask = pd.Series(True, index=profiles.index)
    if age is not None and C.AGE in profiles:
        mask &= profiles[C.AGE].between(*age)
    if gender is not None and C.GENDER in profiles:
        mask &= profiles[C.GENDER].str.lower() == gender.lower()
    if region is not None and C.REGION in profiles:
        mask &= profiles[C.REGION].str.lower() == region.lower()
    if unhappy_with is not None:
        mask &= profiles.get(f"aspect_{unhappy_with}", pd.Series(np.nan, index=mask.index)) < -OPINION
    if happy_with is not None:
        mask &= profiles.get(f"aspect_{happy_with}", pd.Series(np.nan, index=mask.index)) > OPINION
    if bought is not None:
        needle = bought.lower()
        mask &= (profiles.get("top_categories", pd.Series("", index=mask.index)).fillna("")
                 .str.lower().str.contains(needle, regex=False))
    if segment is not None and C.SEGMENT in profiles:
        mask &= profiles[C.SEGMENT] == segment
    if rfm_segment is not None and "rfm_segment" in profiles:
        mask &= profiles["rfm_segment"].str.lower() == rfm_segment.lower()
    if language is not None and C.LANGUAGE in profiles:
        mask &= profiles[C.LANGUAGE] == language
    return profiles[mask.fillna(False)]
