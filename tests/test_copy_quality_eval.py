"""The copy-quality evaluation's English checks (issue 18, evaluation/copy_quality_checks.py):
what a UCI description states becomes the record's attributes, and a text passes only when it
names the product, states two facts outside the name, asks for something, restates no trait of
the segment and is not a review."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))

from copy_quality_checks import facts_stated, measure, names_product  # noqa: E402
from copy_quality_records import description_attributes  # noqa: E402

TIN = {"id": "uci-22842", "title": "Biscuit Tin Vintage Red", "price": 6.75, "currency": "GBP",
       "attributes": {"colour": "red", "material": "tin",
                      "ordered by": "120 customers in 12 countries"}}


def _rec(product: dict) -> dict:
    return {"id": product["id"], "lang": "en", "channel": "email", "source": "uci",
            "product": product, "values": [], "references": []}


def _row(text: str) -> dict:
    return {"text": text, "fields": {}, "passed": True, "tokens": 50, "seconds": 1.0}


def test_description_states_only_what_it_says():
    assert description_attributes("SET/6 PINK  BUTTERFLY T-LIGHTS") == {
        "colour": "pink", "pack size": "set of 6"}
    assert description_attributes("BISCUITS SMALL BOWL LIGHT BLUE") == {
        "colour": "light blue", "size": "small"}  # not also "blue"
    assert description_attributes("WHITE HANGING HEART T-LIGHT HOLDER") == {"colour": "white"}
    assert description_attributes("REGENCY CAKESTAND 3 TIER") == {}


def test_facts_are_counted_outside_the_name():
    # the name carries "red" and "tin": naming it states no fact
    assert facts_stated(TIN, "Meet the Biscuit Tin Vintage Red. Shop now.") == []
    said = facts_stated(TIN, "Biscuit Tin Vintage Red: a red tin at £6.75, chosen by 120 "
                             "customers. Shop now.")
    assert said == ["colour: red", "material: tin", "ordered by: 120 customers in 12 countries",
                    "price 6.75"]
    assert facts_stated(TIN, "Redefine your kitchen for 16.75") == []  # red ⊄ redefine
    # a fact of figures only counts by its figures standing alone (3 is not in 3.75)
    cover = {"id": "uci-21466", "title": "Red Flower Crochet Food Cover", "price": 3.75,
             "attributes": {"colour": "red", "ordered by": "71 customers in 3 countries"}}
    assert facts_stated(cover, "Red Flower Crochet Food Cover, 3.75 GBP.") == ["price 3.75"]
    assert facts_stated(cover, "Loved in 3 countries.") == ["ordered by: 71 customers in 3 countries"]
    assert names_product(TIN["title"], "our vintage biscuit tin")
    assert not names_product(TIN["title"], "a lovely gift")


def test_a_text_fails_on_a_trait_a_review_or_no_call_to_action():
    good = "Biscuit Tin Vintage Red in red tin, £6.75. Shop it today."
    assert measure(_rec(TIN), _row(good))["all_checks"]
    for bad in ("Biscuit Tin Vintage Red in red tin, £6.75, made for older shoppers. Shop it today.",
                "Biscuit Tin Vintage Red in red tin, £6.75. I love mine! Shop it today.",
                "Biscuit Tin Vintage Red in red tin, £6.75, a classic for the kitchen."):
        assert not measure(_rec(TIN), _row(bad))["all_checks"], bad
