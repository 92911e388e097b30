"""A plan before the copy (issue 18): which facts, what angle, which call to action.

With ``CopyGenerator(plan=True)`` each variant is written in two turns of one conversation:

1. the usual prompt, whose last line asks for a small plan instead of the copy, answered as
   grammar-constrained JSON (:func:`plan_schema`): ``facts`` chosen from the record's own
   facts (an ``enum`` of its attribute values, or of the clauses of its description, so the
   plan cannot name a fact the record lacks), ``angle`` (a short phrase) and ``cta``;
2. the copy, asked for "from this plan" in the reply shape the channel always uses.

The second turn repeats the first as its prefix, so a local server reuses its KV cache and
only the plan and the short second ask are new prompt tokens. The plan's tokens and seconds
count towards the variant's. The guardrails check the copy exactly as without a plan (the
plan is a hint, never a licence: its facts come from the record anyway). A model that gives no
valid plan leaves the prompt as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adpilot.backends.llm.base import (
    Completion,
    GenerationParams,
    Message,
    StructuredOutputError,
    Usage,
    structured,
)
from adpilot.data.records import Product
from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.prompts import Prompt, selling_points

ANGLE_CHARS = {"en": 70, "zh": 24}  # one short phrase
CTA_CHARS = {"en": 30, "zh": 12}
FACT_CHARS = 60  # a free-text fact, when the record has none to choose from
MAX_CLAUSES = 8

PLAN_ASK = {
    "en": "Do not write the copy yet: first plan it. Choose the facts to state (from the list "
          "below), the angle (a short phrase on what the product gives the customer, never who "
          "the customer is) and the call to action.\nFacts to choose from: {choices}\nJSON: {shape}",
    "zh": "先不要写文案，先定计划：选出要写的卖点（从下面的列表里选）、角度（一个短语，写商品带给顾客"
          "什么，不写顾客是谁）和行动号召。\n可选卖点：{choices}\nJSON：{shape}",
}
WRITE_ASK = {
    "en": "Now write the copy from this plan: name the product, state {facts}; angle: {angle}; "
          "end with \"{cta}\". Use only the product facts above.\n{shape}",
    "zh": "按这个计划写文案：写出商品名和这些卖点：{facts}，角度：{angle}，结尾写“{cta}”。"
          "只用上面的商品信息。\n{shape}",
}
PLAN_SHAPE = {"en": '{"facts": [<facts from the list>], "angle": "<short phrase>", '
                    '"cta": "<call to action>"}',
              "zh": '{"facts": [<列表里的卖点>], "angle": "<短语>", "cta": "<行动号召>"}'}


class Plan(BaseModel):
    """The model's plan for one variant."""

    model_config = ConfigDict(extra="ignore")
    facts: list[str] = Field(min_length=1)
    angle: str = Field(min_length=1)
    cta: str = Field(min_length=1)


@dataclass
class PlanOutcome:
    """What the plan turn produced: the plan (None when the model gave no valid one), the
    messages to write the copy with, and what the plan cost."""

    plan: Plan | None
    messages: list[Message]
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.model_dump() if self.plan else None,
                "tokens": self.usage.as_dict(), "seconds": round(self.seconds, 3),
                "attempts": self.attempts}


def record_facts(product: Product, lang: str) -> list[str]:
    """The facts a plan may choose from: the record's attribute values (its type aside), or,
    for a record without attributes, the clauses of its description (``100% European linen in
    a relaxed fit``, ``side pockets`` …)."""
    values = product.fact_values()
    if values or not product.description:
        return values
    splitter = r"[。；;，,！!？?]|\.(?:\s|$)" if lang == "zh" else r"[.;,!?](?:\s|$)|\s+with\s+|\s+and\s+"
    clauses = [c.strip(" .。") for c in re.split(splitter, product.description)]
    return list(dict.fromkeys(c for c in clauses if len(c) >= 3))[:MAX_CLAUSES]


def plan_schema(choices: list[str], n_min: int, lang: str) -> dict[str, Any]:
    """JSON schema of the plan: facts from ``choices`` (at least ``n_min``; free short strings
    when there are no choices), a short angle and call to action."""
    if choices:
        facts: dict[str, Any] = {"type": "array", "items": {"type": "string", "enum": choices},
                                 "minItems": n_min, "maxItems": len(choices)}
    else:
        facts = {"type": "array", "items": {"type": "string", "minLength": 2,
                                            "maxLength": FACT_CHARS}, "minItems": 1, "maxItems": 3}
    return {"type": "object", "title": "CopyPlan", "required": ["facts", "angle", "cta"],
            "properties": {"facts": facts,
                           "angle": {"type": "string", "minLength": 2, "maxLength": ANGLE_CHARS[lang]},
                           "cta": {"type": "string", "minLength": 2, "maxLength": CTA_CHARS[lang]}}}


def _split_user(content: str) -> tuple[str, str]:
    """The user message without its last line (``JSON: {shape}``), and that line."""
    head, _, last = content.rstrip().rpartition("\n")
    return (head, last) if last.startswith("JSON") else (content.rstrip(), "")


def plan_messages(prompt: Prompt, choices: list[str], lang: str) -> tuple[list[Message], str]:
    """The plan turn's messages (the prompt, its last line replaced by the plan ask) and the
    reply-shape line the copy turn will need."""
    *before, user = prompt.messages
    head, shape = _split_user(user.content)
    sep = "、" if lang == "zh" else "; "
    ask = PLAN_ASK[lang].format(choices=sep.join(choices) or "-", shape=PLAN_SHAPE[lang])
    return [*before, Message("user", f"{head}\n{ask}")], shape


def write_messages(convo: list[Message], reply: str, plan: Plan, shape: str,
                   lang: str) -> list[Message]:
    """The copy turn: the plan turn, the model's plan as its reply, and the ask to write."""
    sep = "、" if lang == "zh" else ", "
    ask = WRITE_ASK[lang].format(facts=sep.join(plan.facts), angle=plan.angle.strip(" .。"),
                                 cta=plan.cta.strip(), shape=shape)
    return [*convo, Message("assistant", reply), Message("user", ask)]


def make_plan(call: Callable[[list[Message], GenerationParams], Completion], prompt: Prompt,
              product: Product, spec: ChannelSpec, brand: BrandKit, *, temperature: float = 0.7,
              seed: int = 0, max_attempts: int = 2) -> PlanOutcome:
    """Ask for the plan of one variant and return the messages that write the copy from it.

    ``call(messages, params)`` is the generator's own model call (cache, masking checks).
    At least as many facts are asked for as the unplanned prompt asks the copy to state
    (:func:`~adpilot.generation.prompts.selling_points`), so planning never narrows coverage.
    """
    lang = spec.lang
    choices = record_facts(product, lang)
    n_min = min(len(choices), len(selling_points(product, spec, brand))) or 1
    schema = plan_schema(choices, n_min, lang)
    convo, shape = plan_messages(prompt, choices, lang)
    chars = sum(len(c) + 4 for c in choices) if choices else 3 * FACT_CHARS
    per_token = 3.0 if lang == "en" else 1.0
    params = GenerationParams(
        max_tokens=int((chars + ANGLE_CHARS[lang] + CTA_CHARS[lang]) / per_token) + 40,
        temperature=temperature, seed=seed, json_schema=schema)

    def check(plan: Plan) -> list[str]:
        """A backend without grammars may still name a fact the record lacks."""
        strange = [f for f in plan.facts if choices and f not in choices]
        return [f"facts not in the list: {', '.join(strange)}"] if strange else []

    try:
        result = structured(lambda c: call(c, params), convo, Plan, max_attempts=max_attempts,
                            check=check)
    except StructuredOutputError as exc:
        return PlanOutcome(None, list(prompt.messages), exc.usage, 0.0, len(exc.attempts))
    plan = result.value
    if check(plan):  # still wrong after the re-asks: write without a plan
        return PlanOutcome(None, list(prompt.messages), result.usage, result.seconds,
                           len(result.attempts))
    plan.facts = list(dict.fromkeys(f.strip() for f in plan.facts if f.strip()))
    reply = result.attempts[-1].text
    # the accepted reply must be the last assistant turn; re-asks are not kept in the copy turn
    try:
        json.loads(reply)
    except ValueError:
        reply = plan.model_dump_json()
    return PlanOutcome(plan, write_messages(convo, reply, plan, shape, lang), result.usage,
                       result.seconds, len(result.attempts))
