"""The plan step and the winning-headline examples (issue 18).

A plan (facts chosen from the record, angle, call to action) is asked for as constrained JSON
before the copy, in the same conversation; winning Upworthy headlines from the training weeks
reach English subject-line prompts, and copying one fails the guardrails. The model is the one
external part: ``ScriptedLLM`` is a real backend class that replies with given JSON and records
each call; prompts, plan, retrieval and guardrails are the real ones, on the real data files.
The last test runs the real local model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest

from adpilot.backends.llm import Completion, GenerationParams, LLMBackend, Message, Usage
from adpilot.data.records import Product
from adpilot.generation import Audience, CopyGenerator, channel_spec, load_brand
from adpilot.generation.fewshot import adgen_product, adgen_rows, adgen_split
from adpilot.generation.headlines import (
    UPWORTHY_WEEK_SPLIT,
    headline_examples,
    upworthy_library,
    upworthy_winners,
)
from adpilot.generation.plan import plan_schema, record_facts

DRESS = Product(id="P01", title="Linen Wrap Midi Dress", category="dresses", price=89.0,
                currency="USD", description="100% European linen in a relaxed fit with an "
                "adjustable tie waist and side pockets. Midi length; machine wash cold.")
SKIRT = Product(id="s1", category="裙", attributes={"类型": ["裙"], "颜色": ["白色"],
                                                   "材质": ["牛仔布"], "图案": ["刺绣"]})


class ScriptedLLM(LLMBackend):
    """Replies ``reply(messages, params)`` and records every call with its parameters."""

    name = "scripted"

    def __init__(self, reply: Callable[[Sequence[Message], GenerationParams], str]) -> None:
        self.reply, self.calls = reply, []

    @property
    def model_id(self) -> str:
        return "scripted"

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        self.calls.append((list(messages), params))
        return Completion(self.reply(messages, params), Usage(100, 20), 0.01, "scripted")


def is_plan_call(params: GenerationParams) -> bool:
    return params.json_schema is not None and "facts" in params.json_schema["properties"]


def test_plan_facts_are_the_records_own_and_the_schema_allows_no_other():
    assert record_facts(SKIRT, "zh") == ["白色", "牛仔布", "刺绣"]  # the type is not a fact to sell
    assert record_facts(DRESS, "en") == ["100% European linen in a relaxed fit",
                                         "an adjustable tie waist", "side pockets", "Midi length",
                                         "machine wash cold"]
    schema = plan_schema(record_facts(SKIRT, "zh"), 2, "zh")
    facts = schema["properties"]["facts"]
    assert facts["items"]["enum"] == ["白色", "牛仔布", "刺绣"] and facts["minItems"] == 2
    assert schema["properties"]["cta"]["maxLength"] < schema["properties"]["angle"]["maxLength"]
    free = plan_schema([], 1, "en")["properties"]["facts"]  # nothing to choose from: short strings
    assert "enum" not in free["items"] and free["maxItems"] == 3


def test_the_copy_is_written_from_the_plan_in_the_same_conversation():
    plan = {"facts": ["刺绣", "牛仔布", "白色"], "angle": "清爽又有细节", "cta": "快来看看吧！"}
    copy = {"text": "白色牛仔布半身裙，刺绣点缀，清爽又有细节。快来看看吧！"}
    llm = ScriptedLLM(lambda m, p: json.dumps(plan if is_plan_call(p) else copy,
                                              ensure_ascii=False))
    v = CopyGenerator(llm, cache=False, plan=True).generate(SKIRT, Audience(), "social",
                                                            "zh").variants[0]
    (plan_msgs, plan_params), (copy_msgs, copy_params) = llm.calls
    assert is_plan_call(plan_params) and not is_plan_call(copy_params)
    assert "可选卖点：白色、牛仔布、刺绣" in plan_msgs[-1].content
    # the copy turn repeats the plan turn (a server reuses its KV cache), then the plan, then the ask
    assert copy_msgs[:len(plan_msgs)] == plan_msgs
    assert json.loads(copy_msgs[len(plan_msgs)].content) == plan
    assert "刺绣、牛仔布、白色" in copy_msgs[-1].content and '"text"' in copy_msgs[-1].content
    assert v.passed, v.violations
    assert v.usage == Usage(200, 40)  # the plan's tokens are the variant's
    # off by default: one call, no plan
    llm.calls.clear()
    CopyGenerator(llm, cache=False).generate(SKIRT, Audience(), "social", "zh")
    assert len(llm.calls) == 1 and not is_plan_call(llm.calls[0][1])


def test_a_plan_that_names_no_fact_of_the_record_is_not_used_and_guardrails_stay():
    """A backend without grammars can name a fact the record lacks: after the re-ask the plan is
    dropped and the copy is asked for with the ordinary prompt; copy that takes the foreign fact
    anyway still fails the guardrails as it would without a plan."""
    bad = {"facts": ["真丝"], "angle": "高级感", "cta": "快来看看吧！"}
    llm = ScriptedLLM(lambda m, p: json.dumps(bad if is_plan_call(p) else
                                              {"text": "真丝半身裙，白色刺绣。快来看看吧！"},
                                              ensure_ascii=False))
    v = CopyGenerator(llm, cache=False, plan=True, max_attempts=1).generate(
        SKIRT, Audience(), "social", "zh").variants[0]
    plans = [c for c in llm.calls if is_plan_call(c[1])]
    assert len(plans) == 2 and "真丝" in plans[1][0][-1].content  # re-asked with the reason
    copy_msgs = llm.calls[-1][0]
    assert "按这个计划" not in copy_msgs[-1].content and copy_msgs[-1].content.startswith("为")
    assert not v.passed and any(r.check == "unsupported" for r in v.violations)


@pytest.fixture(scope="module")
def upworthy(shared_data):
    path = shared_data / "copy" / "upworthy_headline_tests.csv"
    return path, upworthy_library(path)


def test_headline_library_holds_training_week_winners_only(upworthy):
    import pandas as pd

    path, lib = upworthy
    tests = pd.read_csv(path)
    start = tests.groupby("clickability_test_id")["test_week"].min()
    held_out = {f"upworthy-{t}" for t in start[start >= UPWORTHY_WEEK_SPLIT].index}
    sources = {s.source for s in lib.shots}
    assert len(lib) >= 50 and held_out and not sources & held_out
    winners = upworthy_winners(path)
    for row in winners.head(30).itertuples():  # each the highest-CTR headline of its test
        arms = tests[tests["clickability_test_id"] == row.test_id].groupby("headline")[
            ["clicks", "impressions"]].sum()
        arms = arms[arms["impressions"] >= 1000]
        assert row.ctr == pytest.approx((arms["clicks"] / arms["impressions"]).max())
    assert all(len(s.text) <= 60 for s in lib.shots)


def test_headlines_reach_english_subject_prompts_and_copying_one_fails(upworthy):
    _, lib = upworthy
    spec, brand = channel_spec("email", "en"), load_brand()
    heads = headline_examples(lib, DRESS, spec, brand, 2)
    assert len(heads) == 2 and all(len(h) <= 50 for h in heads)
    assert headline_examples(lib, DRESS, channel_spec("sms", "en"), brand) == []  # no headline
    assert headline_examples(lib, SKIRT, channel_spec("email", "zh"), brand) == []
    subject = {"value": "Linen Wrap Midi Dress, made for summer"}
    llm = ScriptedLLM(lambda m, p: json.dumps({
        "subject": subject["value"], "body": "The Linen Wrap Midi Dress: 100% European linen, "
        "an adjustable tie waist and side pockets. Shop it today."}))
    gen = CopyGenerator(llm, cache=False, headlines=lib, max_attempts=1)
    v = gen.generate(DRESS, Audience(), "email", "en").variants[0]
    assert v.passed, v.violations
    assert all(h in llm.calls[0][0][-1].content for h in heads)
    assert llm.calls[0][0][-1].content.rstrip().splitlines()[-1].startswith("JSON")
    subject["value"] = heads[0]  # the model copies an example: rejected
    v = gen.generate(DRESS, Audience(), "email", "en").variants[0]
    assert not v.passed and any(r.check == "borrowed" for r in v.violations)


# --- the real default model (slow) ------------------------------------------------------------

@pytest.mark.slow
def test_real_plan_with_the_local_qwen_model(local_qwen, shared_data):
    from adpilot.backends.llm.llamacpp import LlamaCppBackend

    path = local_qwen
    rows = adgen_rows(shared_data / "copy" / "adgen_zh.jsonl")
    _, test = adgen_split(len(rows))
    product = adgen_product(rows[test[1]], f"adgen-{test[1]}")
    backend = LlamaCppBackend(path, n_ctx=2048)
    replies: list[tuple[GenerationParams, str]] = []
    complete = backend.complete

    def recorded(messages, params):
        out = complete(messages, params)
        replies.append((params, out.text))
        return out

    backend.complete = recorded
    try:
        v = CopyGenerator(backend, cache=False, plan=True).generate(
            product, Audience(), "social", "zh").variants[0]
    finally:
        backend.close()
    plan = json.loads(next(text for params, text in replies if is_plan_call(params)))
    assert plan["facts"] and set(plan["facts"]) <= set(record_facts(product, "zh"))
    # the 1.5B model's copy may still fail a check after its re-asks (CI: 19 of the 20 characters
    # a zh social text needs); what the plan step promises is that a failure is reported, not hidden
    assert v.text and v.passed == (not v.violations)
    assert v.usage.completion_tokens > len(plan["facts"])  # plan and copy both counted
