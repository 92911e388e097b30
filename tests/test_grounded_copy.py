"""Grounded copy (issue 18): the prompt lists the record's facts (price first), the ``grounded``
guardrail wants two of them stated, and copy that leaves out the price or a second fact is
completed from the record (:mod:`adpilot.generation.grounding`) instead of re-asked."""

from __future__ import annotations

import pytest

from adpilot.data.records import Product
from adpilot.generation import Audience, GuardContext, channel_spec, check_copy, load_brand
from adpilot.generation.audience import product_facts
from adpilot.generation.copy_checks import stated_facts
from adpilot.generation.grounding import with_facts
from adpilot.generation.prompts import build_prompt, numbered_facts, price_text

FAN = Product(id="F1", title="Assorted Colours Silk Fan", price=2.1, currency="GBP",
              attributes={"material": "silk", "ordered by": "194 customers in 10 countries"})
SKIRT = Product(id="S1", title="牛仔半身裙", price=199, currency="CNY",
                attributes={"类型": "半身裙", "材质": "牛仔布", "颜色": "白色", "图案": "刺绣"})
SEGMENT = "older: older (avg 47 vs 38); unhappy with fit & size (-0.31 vs +0.12)"


def facts_of(product: Product, lang: str) -> str:
    return product_facts(product, lang) + "\n" + load_brand().name[lang]


def ctx(product: Product, channel: str, lang: str) -> GuardContext:
    return GuardContext(channel_spec(channel, lang), load_brand(), facts=facts_of(product, lang))


def grounded_fails(fields: dict[str, str], c: GuardContext) -> bool:
    return any(r.check == "grounded" for r in check_copy(fields, c))


def test_the_prompt_lists_the_facts_price_first_and_asks_for_the_price():
    assert price_text(FAN, "en") == "2.10 GBP" and price_text(SKIRT, "zh") == "199元"
    assert numbered_facts(FAN, "en") == ["price: 2.10 GBP", "material: silk",
                                         "ordered by: 194 customers in 10 countries"]
    user = build_prompt(FAN, Audience(description=SEGMENT), channel_spec("email", "en"),
                        load_brand()).messages[-1].content
    assert "1. price: 2.10 GBP\n2. material: silk\n3. ordered by" in user
    assert "state its price (2.10 GBP) and at least two more facts" in user
    # a fan has no fit fact: the segment's aspect is no angle for it, so no reader line at all
    assert "The reader" not in user and "fit" not in user
    assert "47" not in user and "unhappy" not in user


def test_one_fact_is_not_grounded_two_are_and_the_price_counts():
    c = ctx(FAN, "email", "en")
    one = {"subject": "Our Silk Fan", "body": "A silk fan for warm days. Shop it today."}
    assert len(stated_facts(c.facts, one["body"])) == 1 and grounded_fails(one, c)
    priced = {"subject": "Our Silk Fan", "body": "A silk fan for 2.10 GBP. Shop it today."}
    assert not grounded_fails(priced, c)
    # "customers" alone is no fact; the figure is
    assert not stated_facts(c.facts, "Loved by our customers.")
    assert stated_facts(c.facts, "Ordered by 194 customers.") == ["194 customers in 10 countries"]
    # 21 is not the price 2.1, nor is the name a fact
    assert stated_facts(c.facts, "Assorted Colours Silk Fan, 21 of them.") == []
    # the 10 of "10 countries" is not in a price of 10.50
    assert stated_facts(c.facts, "Assorted Colours Silk Fan, now 10.50 GBP.") == []


def test_missing_price_and_fact_are_completed_before_the_call_to_action():
    spec, kit, facts = channel_spec("email", "en"), load_brand(), facts_of(FAN, "en")
    one = {"subject": "Our new favourite", "body": "Meet the Assorted Colours Silk Fan, "
           "ordered by 194 customers. Shop it today."}
    out = with_facts(one, spec, kit, facts)
    assert out["body"] == ("Meet the Assorted Colours Silk Fan, ordered by 194 customers. "
                           "Yours for 2.10 GBP. Shop it today.")
    assert not check_copy(out, ctx(FAN, "email", "en"))
    unpriced = FAN.model_copy(update={"price": None})
    facts = facts_of(unpriced, "en")
    silk = {"subject": "Our new favourite", "body": "A silk fan for warm days. Shop it today."}
    assert with_facts(silk, spec, kit, facts)["body"] == (
        "A silk fan for warm days. Ordered by: 194 customers in 10 countries. Shop it today.")
    # grounded copy is left as it is; copy that names the product but states none of its
    # facts is completed; copy about nothing in particular is left for a re-ask
    good = {"subject": "Our fan", "body": "A silk fan, 2.10 GBP. Shop it today."}
    assert with_facts(good, spec, kit, facts_of(FAN, "en")) == good
    named = {"subject": "Our fan", "body": "Meet the Assorted Colours Silk Fan. Shop it today."}
    assert with_facts(named, spec, kit, facts_of(FAN, "en"))["body"] == (
        "Meet the Assorted Colours Silk Fan. Yours for 2.10 GBP. Material: silk. Shop it today.")
    vague = {"subject": "Our fan", "body": "Something lovely for warm days. Shop it today."}
    assert with_facts(vague, spec, kit, facts_of(FAN, "en")) == vague
    # no completion that would break the field's length limit
    long = {"subject": "Our fan", "body": "Silk. " + "x" * (spec.limits["body"][1] - 10) + "."}
    assert with_facts(long, spec, kit, facts_of(FAN, "en")) == long


def test_chinese_copy_is_completed_with_the_price_in_yuan():
    spec, kit, facts = channel_spec("social", "zh"), load_brand(), facts_of(SKIRT, "zh")
    out = with_facts({"text": "这条半身裙是白色的。快来看看吧！"}, spec, kit, facts)
    assert out["text"] == "这条半身裙是白色的。售价199元。快来看看吧！"
    assert not grounded_fails(out, ctx(SKIRT, "social", "zh"))
    unpriced = facts_of(SKIRT.model_copy(update={"price": None}), "zh")
    out = with_facts({"text": "这条半身裙是白色的。快来看看吧！"}, spec, kit, unpriced)
    assert out["text"] == "这条半身裙是白色的。材质：牛仔布。快来看看吧！"
    assert with_facts({"text": "好看的裙子。快来看看吧！"}, spec, kit, facts) == {
        "text": "好看的裙子。快来看看吧！"}


@pytest.mark.slow
def test_the_local_model_writes_grounded_copy(local_qwen):
    from adpilot.backends.llm.llamacpp import LlamaCppBackend
    from adpilot.generation import CopyGenerator

    backend = LlamaCppBackend(local_qwen, n_ctx=2048)
    try:
        v = CopyGenerator(backend, cache=False).generate(
            FAN, Audience(description=SEGMENT), "sms", "en").variants[0]
    finally:
        backend.close()
    facts = facts_of(FAN, "en")
    assert v.passed, v.violations
    stated = stated_facts(facts, v.text)
    assert len(stated) >= 2 and "price 2.1 GBP" in stated, (v.text, stated)
    assert v.usage.completion_tokens <= 400
