"""DuckDB profile building over Parquet gives the pandas profiles (review statistics, aspects,
demographics, mean embedding, summaries) and the segment statistics, on real reviews."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from adpilot.backends.executor import LocalExecutor, Stage
from adpilot.profiling.aspects import extract_aspects
from adpilot.profiling.constants import embedding_columns
from adpilot.profiling.embeddings import LsaEmbedder
from adpilot.profiling.profiles import ASPECTS, build_profiles
from adpilot.profiling.steps import AspectStage, EmbeddingStage

duck = pytest.importorskip("adpilot.profiling.duck")
pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def tables(data_sources):
    """Amazon Fashion reviews (real users) with the real ages of the women's clothing reviewers
    resampled onto the customers (seed 0), and 80 Chinese reviews without a user."""
    from adpilot.datasets import load_dataset

    fashion = load_dataset("amazon_fashion", data_sources).tables
    zh = load_dataset("online_shopping_zh", data_sources).tables["reviews"].sample(80, random_state=0)
    reviews = pd.concat([fashion["reviews"].head(900), zh], ignore_index=True)
    reviews["polarity"] = ((reviews["rating"] - 3) / 2).fillna(0.0)
    ages = load_dataset("womens_clothing", data_sources).tables["customers"]["age"].dropna().to_numpy()
    customers = fashion["customers"].assign(
        age=np.random.default_rng(0).choice(ages, len(fashion["customers"])))
    return reviews[["id", "user_id", "product_id", "text", "rating", "language", "polarity"]], customers


def test_duckdb_profiles_match_pandas(tables, tmp_path):
    reviews, customers = tables
    src, cust = tmp_path / "reviews.parquet", tmp_path / "customers.parquet"
    reviews.to_parquet(src, index=False)
    customers.to_parquet(cust, index=False)
    ex = LocalExecutor()
    aspects_dir = ex.to_parquet(Stage("aspects", AspectStage, batch_size=200), src,
                                tmp_path / "aspects")
    lsa = LsaEmbedder().fit([str(t) for t in reviews["text"]])
    emb_dir = ex.to_parquet(Stage("emb", EmbeddingStage, {"embedder": lsa}, batch_size=300), src,
                            tmp_path / "emb")
    con = duck.connect(memory_limit="256MB", threads=2, temp_dir=tmp_path / "spill")
    out = duck.build_profiles_duckdb(con, tmp_path / "profiles.parquet", reviews=src,
                                     aspects=aspects_dir, embeddings=emb_dir, embedding_dim=64,
                                     customers=cust, batch_rows=100,  # several output batches
                                     users_per_bucket=60)  # and several user-id ranges
    got = pd.read_parquet(out)
    assert len(duck.user_buckets(con, src, cust, 60)) > 3
    # the bounded-memory entry point (own connection, one bucket here) writes the same file
    same = duck.build_profiles_parquet(tmp_path / "p2.parquet", reviews=src, aspects=aspects_dir,
                                       embeddings=emb_dir, embedding_dim=64, customers=cust,
                                       memory_limit="64MB", threads=1)
    pd.testing.assert_frame_equal(pd.read_parquet(same), got, check_exact=False, rtol=1e-6)

    aspects = extract_aspects(reviews, overall=reviews["polarity"])
    ref = build_profiles(reviews, customers=customers, sentiment=reviews["polarity"],
                         aspects=aspects, review_embeddings=lsa.encode(reviews["text"]))
    want = ref.table
    assert got["user_id"].tolist() == want["user_id"].tolist()
    assert len(got) == len(customers)  # customers without a review are profiled too
    cols = (["age", "n_reviews", "mean_rating", "sentiment_mean", "negative_share", "language",
             "summary", "summary_zh"] + [f"aspect_{a}" for a in ASPECTS]
            + [f"mentions_{a}" for a in ASPECTS])
    pd.testing.assert_frame_equal(got[cols], want[cols], check_dtype=False, rtol=1e-12)
    np.testing.assert_allclose(got[embedding_columns(64)].to_numpy(), ref.embeddings,
                               atol=1e-6)
    assert got["aspect_fit"].notna().sum() > 20 and (got["n_reviews"] == 0).any()

    got["segment"] = np.where(got["n_reviews"] > 2, "S1", "S2")
    got.to_parquet(tmp_path / "seg.parquet", index=False)
    stats = duck.segment_stats(con, tmp_path / "seg.parquet", ["age", "sentiment_mean"])
    pand = got.groupby("segment")[["age", "sentiment_mean"]].mean()
    for seg in ("S1", "S2"):
        row = stats.set_index("segment").loc[seg]
        assert row["size"] == (got["segment"] == seg).sum()
        np.testing.assert_allclose(row[["age", "sentiment_mean"]].astype(float),
                                   pand.loc[seg], rtol=1e-12)
    assert stats.set_index("segment").loc["all", "size"] == len(got)
    con.close()


def test_duckdb_sample_is_seeded_and_bounded(tables, tmp_path):
    reviews, _ = tables
    src = tmp_path / "r.parquet"
    reviews.to_parquet(src, index=False)
    con = duck.connect()
    assert duck.sample_texts(con, src, 10_000) == [str(t) for t in reviews["text"]]
    a, b = duck.sample_texts(con, src, 50, seed=1), duck.sample_texts(con, src, 50, seed=1)
    assert a == b and len(a) == 50
    con.close()


def test_duckdb_partitioned_ranges_match_one_range(tmp_path):
    """Many user-id ranges (inputs partitioned once, one aggregation per partition) give the
    one-range result, also for ranges holding only customers (no reviews, aspects or
    embeddings), and leave no partition files behind."""
    rng = np.random.default_rng(0)
    users = [f"u{i:03d}" for i in range(40)]
    reviews = pd.DataFrame({"id": [f"r{i:04d}" for i in range(120)],
                            "user_id": rng.choice(users[:15], 120).tolist(),
                            "rating": rng.integers(1, 6, 120).astype(float),
                            "language": rng.choice(["en", "zh"], 120)})
    reviews.loc[[3, 7], "user_id"] = None  # reviews without a user are left out
    reviews["polarity"] = (reviews["rating"] - 3) / 2
    aspects = pd.DataFrame({"review_id": rng.choice(reviews["id"], 200),
                            "aspect": rng.choice(list(ASPECTS), 200),
                            "score": rng.normal(size=200)})
    emb = pd.DataFrame(rng.normal(size=(120, 4)).astype(np.float32),
                       columns=[f"e{i}" for i in range(4)])
    emb.insert(0, "id", reviews["id"])
    customers = pd.DataFrame({"id": users[::-1] + ["u000"],  # a repeated id: first row wins
                              "age": rng.integers(18, 80, 41).astype(float),
                              "gender": rng.choice(["F", "M"], 41)})
    paths = {}
    for name, frame in [("reviews", reviews), ("aspects", aspects), ("embeddings", emb),
                        ("customers", customers)]:
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    con = duck.connect(memory_limit="128MB", threads=2)
    kw = dict(reviews=paths["reviews"], aspects=paths["aspects"],
              embeddings=paths["embeddings"], embedding_dim=4, customers=paths["customers"])
    assert len(duck.user_buckets(con, paths["reviews"], paths["customers"], 4)) > 5
    many = pd.read_parquet(duck.build_profiles_duckdb(con, tmp_path / "many.parquet",
                                                      users_per_bucket=4, batch_rows=3, **kw))
    one = pd.read_parquet(duck.build_profiles_duckdb(con, tmp_path / "one.parquet", **kw))
    # two-pass partitioning (more ranges than max_files) puts every row in the same range
    buckets = duck.user_buckets(con, paths["reviews"], paths["customers"], 4)
    one_pass = duck.partition_inputs(con, tmp_path / "p1", buckets, **kw)
    two_pass = duck.partition_inputs(con, tmp_path / "p2", buckets, max_files=3, **kw)
    for name, root in one_pass.items():
        for i in range(len(buckets)):
            a, b = (con.sql(f"SELECT * FROM read_parquet('{r / f'part={i}'}/*.parquet', "
                            f"hive_partitioning=false) ORDER BY ALL").df()
                    for r in (root, two_pass[name]))
            pd.testing.assert_frame_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "p2").iterdir()) == sorted(one_pass)
    for d in ("p1", "p2"):
        shutil.rmtree(tmp_path / d)
    con.close()
    assert many["user_id"].tolist() == sorted(users)
    pd.testing.assert_frame_equal(many, one, check_exact=False, rtol=1e-9)
    assert many.loc[many["user_id"] == "u000", "age"].item() == customers["age"].iloc[-2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.parquet" for n in paths] + ["many.parquet", "one.parquet"])
