"""Every public data set loads through its loader with read = kept + quarantined."""

from __future__ import annotations

import pytest

from adpilot.datasets import DATASETS, load_dataset

EXPECTED = {  # name: (read, quarantined) as stated by ../shared/data/README.md and checked here
    "womens_clothing": (23486, 845),        # 845 rows have no review text
    "amazon_fashion": (3176, 127),          # variant repeats (duplicate ids) + empty texts
    "amazon_beauty": (5269, 1112),
    "online_shopping_zh": (62774, 1),       # one empty review
    "hillstrom": (64000, 0),
    "bank_marketing": (45211, 0),
    "facebook_ads": (1143, 0),
    "upworthy": (17249, 0),
    "online_retail": (541909, 2),           # two negative-price bad-debt adjustments
}


@pytest.mark.parametrize("name", list(DATASETS))
def test_loader_counts(name, shared_data):
    loaded = load_dataset(name, shared_data / DATASETS[name].file)
    read, quarantined = EXPECTED[name]
    assert loaded.read == read
    assert loaded.quarantined == quarantined
    assert loaded.kept + loaded.quarantined == loaded.read


def test_womens_clothing_derived_tables(shared_data):
    loaded = load_dataset("womens_clothing", shared_data / DATASETS["womens_clothing"].file)
    reviews = loaded.tables["reviews"]
    assert set(loaded.quarantine["reason"]) == {"empty text"}
    assert reviews["rating"].between(1, 5).all() and (reviews["language"] == "en").mean() > 0.99
    assert loaded.tables["customers"]["age"].between(18, 99).all()
    assert "Dresses" in set(loaded.tables["products"]["category"])


def test_online_retail_keeps_anonymous_lines_and_ids_users(shared_data):
    loaded = load_dataset("online_retail", shared_data / DATASETS["online_retail"].file)
    tx = loaded.tables["transactions"]
    assert tx["user_id"].isna().sum() == 135078  # lines without CustomerID (2 of them quarantined)
    assert tx["user_id"].dropna().str.fullmatch(r"\d+").all()  # 17850, not 17850.0
    assert len(loaded.tables["customers"]) == 4372


def test_chinese_reviews_are_zh_with_polarity(shared_data):
    loaded = load_dataset("online_shopping_zh",
                          shared_data / DATASETS["online_shopping_zh"].file)
    reviews = loaded.tables["reviews"]
    assert (reviews["language"] == "zh").mean() > 0.99
    assert set(reviews["polarity"].dropna().unique()) == {0, 1}
