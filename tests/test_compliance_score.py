"""Copy handed in for scoring is checked by the content guardrails (``adpilot score`` and
``POST /v1/score`` used to score it with none: the import they tried did not exist)."""

from adpilot.generation.compliance import scorecard_guardrails

PRODUCT = {"id": "P1", "title": "Linen Wrap Dress", "category": "dresses", "price": 59.0,
           "attributes": {"colour": "sage green", "material": "linen"}}


def violations(copy: str, product=PRODUCT) -> list[str]:
    (check,) = scorecard_guardrails(product)
    return check(copy)


def test_a_grounded_copy_passes_in_both_languages():
    assert violations("The Linen Wrap Dress in sage green linen, now 59. Shop the dress today.") == []
    assert violations("亚麻裹身连衣裙，鼠尾草绿，亚麻面料，59 元，立即选购。") == []


def test_banned_claims_fail_in_both_languages():
    assert any(v.startswith("banned_claims") for v in violations(
        "The best dress in the world, guaranteed. Linen Wrap Dress, shop now."))
    assert any(v.startswith("banned_claims") for v in violations("全网最低价的亚麻裹身连衣裙，立即购买。"))


def test_a_price_the_record_lacks_fails_only_with_a_product():
    copy = "Linen Wrap Dress in sage green linen, now only $19.99. Shop today."
    assert any(v.startswith(("facts", "unsupported")) for v in violations(copy))
    assert not any(v.startswith(("facts", "unsupported")) for v in violations(copy, None))


def test_the_scorecard_scores_a_violating_copy_zero_compliance():
    from adpilot.scoring.scorecard import Scorecard

    card = Scorecard(guardrails=scorecard_guardrails(PRODUCT)).score(
        ["The best dress in the world, guaranteed.",
         "The Linen Wrap Dress in sage green linen. Shop the dress today."], product=PRODUCT)
    assert list(card["compliance"]) == [0.0, 1.0]
