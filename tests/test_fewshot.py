"""Retrieved few-shot examples (issue 18): the AdvertiseGen library leaves the evaluation's test
split out, the nearest examples share the product's attribute values, and they reach the prompt
as examples of writing while the copy is still checked against its own record only.

The model is the one external part: ``RecordingLLM`` is a real backend class that replies with
given copy and records the prompts; retrieval, prompts and guardrails are the real ones, on the
real AdvertiseGen file."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from adpilot.backends.llm import Completion, GenerationParams, LLMBackend, Message, Usage
from adpilot.data.records import Product
from adpilot.errors import ConfigError
from adpilot.generation import Audience, CopyGenerator, GuardContext, channel_spec, check_copy, load_brand
from adpilot.generation.audience import product_facts
from adpilot.generation.fewshot import (
    ShotLibrary,
    adgen_library,
    adgen_product,
    adgen_rows,
    adgen_split,
    facts_line,
)


@pytest.fixture(scope="module")
def adgen(shared_data):
    path = shared_data / "copy" / "adgen_zh.jsonl"
    return adgen_rows(path), adgen_library(path)


def values(product: Product) -> set[str]:
    return {v for k, vs in product.attributes.items() if k != "类型" for v in vs}


def test_the_library_never_holds_a_test_record(adgen):
    rows, lib = adgen
    train, test = adgen_split(len(rows))
    assert sorted(train + test) == list(range(len(rows))) and len(test) == int(0.2 * len(rows))
    assert adgen_split(len(rows)) == (train, test)  # seeded: the evaluation's split
    sources = {s.source for s in lib.shots}
    assert sources and not sources & {f"adgen-{i}" for i in test}
    assert all(len(s.text) <= 120 and not any(c.isascii() and c.isalpha() for c in s.text)
               for s in lib.shots)


def test_nearest_examples_share_the_products_attribute_values(adgen):
    """On 30 test records, the two retrieved examples share far more attribute values with the
    product than examples drawn at random from the same library."""
    rows, lib = adgen
    _, test = adgen_split(len(rows))
    rng = np.random.default_rng(0)
    shot_values = {s.source: values(adgen_product(rows[int(s.source[6:])], s.source))
                   for s in lib.shots}
    near, rand = [], []
    for i in test[:30]:
        product = adgen_product(rows[i], f"adgen-{i}")
        want = values(product)
        near += [len(want & shot_values[s.source]) for s in lib.nearest(product, 2)]
        rand += [len(want & shot_values[lib.shots[j].source])
                 for j in rng.choice(len(lib), 2, replace=False)]
    assert np.mean(near) >= 2 * np.mean(rand) and np.mean(near) >= 1.5


def test_nearest_skips_duplicate_facts_and_the_excluded_source():
    lib = ShotLibrary.from_pairs([("裙；颜色：白色", "白色连衣裙一。"), ("裙；颜色：白色", "白色连衣裙二。"),
                                  ("裤；材质：牛仔布", "牛仔裤。")], "zh")
    got = lib.nearest("裙；颜色：白色", 2)
    assert [s.text for s in got] == ["白色连衣裙一。", "牛仔裤。"]
    with pytest.raises(ConfigError):
        ShotLibrary([], "zh")


class RecordingLLM(LLMBackend):
    name = "recording"

    def __init__(self, reply: str) -> None:
        self.reply, self.calls = reply, []

    @property
    def model_id(self) -> str:
        return "recording"

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        self.calls.append(list(messages))
        return Completion(json.dumps({"text": self.reply}), Usage(100, 30), 0.01, "recording")


def test_examples_reach_the_prompt_and_a_fact_copied_from_one_fails(adgen):
    rows, lib = adgen
    _, test = adgen_split(len(rows))
    product = adgen_product(rows[test[0]], f"adgen-{test[0]}")  # 裤: 简约, 直筒裤, 不规则, 毛边
    shots = lib.nearest(product, 2)
    llm = RecordingLLM("简约直筒裤，不规则毛边裤口，随性又有设计感。快来看看吧！")
    gen = CopyGenerator(llm, cache=False, shots={"zh": lib})
    v = gen.generate(product, Audience(), "social", "zh").variants[0]
    convo = llm.calls[0]  # system, then each example as an answered turn, then the product
    assert [m.role for m in convo] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [json.loads(m.content)["text"] for m in convo[2:5:2]] == [s.text for s in shots]
    assert shots[0].facts in convo[1].content and "简约" in convo[-1].content
    assert v.passed, v.violations
    # a material from an example (牛仔, denim) is not this product's: copy that takes it fails
    ctx = GuardContext(channel_spec("social", "zh"), load_brand(),
                       facts=product_facts(product, "zh"))
    assert any(r.check == "unsupported" for r in check_copy(
        {"text": "简约牛仔直筒裤，不规则毛边。快来看看吧！"}, ctx))
    # no library for English: English prompts are unchanged
    en = RecordingLLM("Linen shirt with a relaxed fit. Shop it now.")
    CopyGenerator(en, cache=False, shots={"zh": lib}).generate(
        Product(id="p", title="Linen shirt", description="linen, relaxed fit"), Audience(),
        "social", "en")
    assert [m.role for m in en.calls[0]] == ["system", "user"]


def test_a_fact_or_words_taken_from_an_example_fail_the_borrowed_check():
    from adpilot.generation.fewshot import Shot, borrowed_facts

    product = Product(id="d", category="连衣裙", attributes={"类型": ["连衣裙"], "裙领型": ["v领"],
                                                        "图案": ["碎花"]})
    facts = product_facts(product, "zh")
    shot = Shot("裙；裙领型：圆领；图案：碎花、刺绣", "经典的圆领，既能修饰脸型小巧，还能凸显出颈部的纤细。")
    assert borrowed_facts([shot], facts) == ["圆领", "刺绣"]
    ctx = GuardContext(channel_spec("social", "zh"), load_brand(), facts=facts,
                       shots=[shot.text], borrowed=borrowed_facts([shot], facts))
    assert any(r.check == "borrowed" and "圆领" in r.reason for r in check_copy(
        {"text": "碎花连衣裙，圆领设计。快来看看吧！"}, ctx))
    assert any("word for word" in r.reason for r in check_copy(
        {"text": "碎花v领连衣裙，既能修饰脸型小巧，还能凸显出颈部的纤细。快来看看吧！"}, ctx))
    assert check_copy({"text": "碎花v领连衣裙，清新又显气质。快来看看吧！"}, ctx) == []


def test_facts_line_is_compact_and_keeps_every_value():
    p = Product(id="x", category="上衣", attributes={"类型": ["上衣"], "颜色": ["白色"],
                                                   "图案": ["刺绣", "刺绣"]})
    assert facts_line(p, "zh") == "上衣；颜色：白色；图案：刺绣"


def test_the_prompt_asks_for_the_records_selling_points_as_room_allows():
    """"Give two facts" capped what the model wrote at two; a record with attributes now gets
    its values listed, as many as the channel has room for (a post: all of these; an SMS: 3)."""
    from adpilot.generation.prompts import build_prompt, selling_points

    product = Product(id="d", category="裙", attributes={
        "类型": ["裙"], "版型": ["宽松"], "颜色": ["白色"], "图案": ["印花", "撞色"], "裙型": ["百褶"],
        "裙长": ["连衣裙"], "裙款式": ["收腰"]})
    kit = load_brand()
    social, sms = channel_spec("social", "zh"), channel_spec("sms", "zh")
    assert selling_points(product, social, kit) == ["宽松", "白色", "印花", "撞色", "百褶", "连衣裙", "收腰"]
    assert selling_points(product, sms, kit) == ["宽松", "白色", "印花"]
    ask = build_prompt(product, Audience(), social, kit).messages[-1].content
    assert "这些卖点（每个都写到）：宽松、白色、印花、撞色、百褶、连衣裙、收腰" in ask
    plain = Product(id="p", title="Linen shirt", description="breathable linen, relaxed fit")
    assert selling_points(plain, channel_spec("email", "en"), kit) == []
    assert "state at least two facts from the list" in build_prompt(
        plain, Audience(), channel_spec("email", "en"), kit).messages[-1].content
