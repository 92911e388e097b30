"""Aspects, RFM, profiles and segments on real and sample data (no models needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adpilot.data import ingest_file
from adpilot.datasets import load_dataset
from adpilot.pipeline import sample_dir
from adpilot.profiling.aspects import extract_aspects
from adpilot.profiling.build import profile_tables
from adpilot.profiling.polarity import rating_polarity
from adpilot.profiling.profiles import build_profiles, query_profiles
from adpilot.profiling.rfm import compute_rfm
from adpilot.profiling.segments import SegmentModel


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    q = tmp_path_factory.mktemp("q")
    return {k: ingest_file(k, sample_dir() / f"{k}.csv", quarantine_dir=q).frame
            for k in ("customers", "products", "reviews", "transactions")}


def _reviews(texts, langs, ratings=None):
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts,
                         "language": langs, "rating": ratings or [3] * len(texts)})


def test_aspects_english_with_negation_and_contrast():
    got = extract_aspects(_reviews(
        ["Soft fabric, but it runs small. Not worth the price.", "Love the colour!"],
        ["en", "en"]))
    scores = got.set_index(["review_id", "aspect"])["score"]
    assert scores[("r0", "fit")] < 0 and scores[("r0", "quality")] > 0
    assert scores[("r0", "price")] < 0  # "not worth" is negated praise
    assert scores[("r1", "style")] > 0
    assert ("r1", "fit") not in scores.index


def test_aspects_chinese():
    got = extract_aspects(_reviews(["面料很舒服，但是尺码偏小，物流太慢了。", "价格不便宜，做工一般"],
                                   ["zh", "zh"]))
    scores = got.set_index(["review_id", "aspect"])["score"]
    assert scores[("r0", "comfort")] > 0 and scores[("r0", "fit")] < 0
    assert scores[("r0", "delivery")] < 0 and scores[("r1", "quality")] < 0


def test_aspect_without_opinion_word_takes_overall_polarity():
    got = extract_aspects(_reviews(["The shipping took a week."], ["en"]),
                          overall=pd.Series([-0.8]))
    assert got["score"].tolist() == [-0.8]


def test_aspects_on_real_reviews_agree_with_ratings(shared_data, data_sources):
    reviews = load_dataset("womens_clothing", data_sources).tables["reviews"].head(3000)
    got = extract_aspects(reviews)
    fit = got[got["aspect"] == "fit"].merge(reviews[["id", "rating"]], left_on="review_id",
                                             right_on="id")
    assert len(fit) > 500
    # reviews that praise the fit are rated higher than those that complain about it
    assert fit[fit["score"] > 0]["rating"].mean() > fit[fit["score"] < 0]["rating"].mean() + 0.5


def test_rfm_on_online_retail(shared_data, data_sources):
    tx = load_dataset("online_retail", data_sources).tables["transactions"]
    rfm = compute_rfm(tx)
    assert len(rfm) == 4372 and rfm["frequency"].min() >= 1
    assert set(rfm["r_score"].unique()) == {1, 2, 3, 4, 5}
    champions = rfm[rfm["rfm_segment"] == "Champions"]
    assert champions["recency_days"].median() < rfm["recency_days"].median()
    one = tx[tx["user_id"] == "12347"]
    assert rfm.set_index("user_id").loc["12347", "frequency"] == one["invoice"].nunique()


def test_profiles_from_sample(sample):
    aspects = extract_aspects(sample["reviews"])
    p = build_profiles(sample["reviews"], customers=sample["customers"],
                       transactions=sample["transactions"], products=sample["products"],
                       aspects=aspects, sentiment=rating_polarity(sample["reviews"]))
    t = p.table.set_index("user_id")
    assert len(t) == 40 and t["summary"].notna().all() and t["summary_zh"].notna().all()
    mine = sample["reviews"][sample["reviews"]["user_id"] == "C002"]
    assert t.loc["C002", "n_reviews"] == len(mine)
    assert t.loc["C002", "mean_rating"] == pytest.approx(mine["rating"].mean())
    assert t.loc["C002", "summary"].startswith(f"age {int(t.loc['C002', 'age'])}")
    assert "岁" in t.loc["C002", "summary_zh"]
    hits = query_profiles(p.table, unhappy_with="fit")
    assert len(hits) > 0 and (hits["aspect_fit"] < -0.2).all()
    both = query_profiles(p.table, age=(20, 40), bought="dresses")
    assert both["age"].between(20, 40).all()
    assert both["top_categories"].str.contains("dresses").all()


def test_segments_are_stable_and_described(sample):
    run1 = profile_tables(sample["reviews"], customers=sample["customers"],
                          transactions=sample["transactions"], products=sample["products"],
                          sentiment=("rating", rating_polarity), embedder="lsa", seed=3)
    run2 = profile_tables(sample["reviews"], customers=sample["customers"],
                          transactions=sample["transactions"], products=sample["products"],
                          sentiment=("rating", rating_polarity), embedder="lsa", seed=3)
    assert run1.profiles.table["segment"].tolist() == run2.profiles.table["segment"].tolist()
    seg = run1.segments
    assert seg["size"].sum() == 40 and seg["size"].is_monotonic_decreasing
    assert seg["description"].str.len().gt(10).all() and seg["description_zh"].str.len().gt(5).all()
    assert run1.profiles.embeddings.shape[0] == 40


def test_segment_count_follows_the_data():
    rng = np.random.default_rng(0)
    centers = np.array([[20, 1, 10], [50, 8, 300], [35, 3, 90]])
    rows = np.vstack([c + rng.normal(0, [2, 0.5, 5], size=(60, 3)) for c in centers])
    profiles = pd.DataFrame(rows, columns=["age", "frequency", "recency_days"])
    model = SegmentModel(seed=0)
    labels = model.fit_predict(profiles)
    assert model.k_ == 3 and labels.nunique() == 3
    desc = model.describe()
    assert desc["description"].str.contains("older|younger|frequent|few orders|lapsed|recent").all()
