"""Prompt rendering from the template files in ``generation/prompts/`` (Jinja2 + YAML).

The system prompt depends only on brand and language, so local backends reuse its KV cache
across requests; everything variable goes into the user message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from adpilot.backends.llm.base import Message
from adpilot.data.records import Product
from adpilot.deps import require
from adpilot.generation.audience import (
    Audience,
    audience_angle,
    audience_descriptors,
    product_facts,
)
from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.fewshot import Shot
from adpilot.generation.safety import clean_snippet, mask_pii

MAX_REVIEWS = 1  # snippets per prompt: the aspects already say what they care about; a small
# model copies snippets (and their "I"), and every prompt token costs time on a CPU
# a small model copies long snippets into the copy; Chinese packs more per character
SNIPPET_CHARS = {"en": 120, "zh": 50}


@lru_cache(maxsize=1)
def _env():
    jinja2 = require("jinja2", feature="prompt templates")
    root = resources.files("adpilot") / "generation" / "prompts"
    return jinja2.Environment(loader=jinja2.FunctionLoader(
        lambda name: (root / name).read_text(encoding="utf-8")),
        autoescape=False, keep_trailing_newline=False, undefined=jinja2.StrictUndefined)


@lru_cache(maxsize=4)
def prompt_config(name: str = "channels.yaml") -> dict:
    text = (resources.files("adpilot") / "generation" / "prompts" / name).read_text("utf-8")
    return yaml.safe_load(text)


def render(template: str, **values) -> str:
    return _env().get_template(template).render(**values).strip()


@dataclass
class Prompt:
    """Messages for the model plus what cleaning removed (the guardrails check the copy for it)."""

    messages: list[Message]
    sensitive: list[str] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)
    facts: str = ""
    reviews: list[str] = field(default_factory=list)  # the cleaned snippets the model saw
    audience: list[str] = field(default_factory=list)  # segment traits the copy must not restate


def budget(spec: ChannelSpec, brand: BrandKit, name: str) -> int:
    """Characters the model may use in field ``name`` (the disclaimer takes its share)."""
    hi = spec.limits[name][1]
    disclaimer = brand.disclaimer_for(spec.channel, spec.lang)
    return hi - (len(disclaimer) + 1 if disclaimer and name == spec.main_field else 0)


def target(spec: ChannelSpec, brand: BrandKit, name: str) -> int:
    """Characters field ``name`` is written to (channels.yaml ``target``, within :func:`budget`):
    the grammar caps it there, so copy is short, ends its sentences and costs fewer tokens."""
    want = prompt_config()[spec.channel][spec.lang].get("target", {}).get(name)
    return min(budget(spec, brand, name), want or budget(spec, brand, name))


def cta_for(spec: ChannelSpec) -> str:
    """The channel's default call to action in its language."""
    return prompt_config()[spec.channel][spec.lang]["cta"]


def build_prompt(product: Product, audience: Audience, spec: ChannelSpec, brand: BrandKit, *,
                 variant: int = 0, examples: list[str] | None = None,
                 shots: list[Shot] | None = None) -> Prompt:
    """System + user message for one variant; review snippets are cleaned and quoted as data;
    ``examples`` are our own winning copy for this channel and language; ``shots`` are copy
    written for similar products, with their facts (retrieved few-shot, :mod:`.fewshot`), put
    in as earlier turns (:func:`shot_turns`)."""
    lang = spec.lang
    cfg = prompt_config()
    sensitive = [audience.name] if audience.name else []
    injected: list[str] = []
    reviews = []
    for raw in audience.reviews[:3]:  # all cleaned (what they hid is checked for), few shown
        c = clean_snippet(raw, max_chars=SNIPPET_CHARS[lang])
        sensitive += c.pii
        injected += c.injected
        if re.sub(r"\[removed\]|[\W_]", "", c.text) and len(reviews) < MAX_REVIEWS:
            reviews.append(c.text)
    # the aspects the product has a fact about (free text can carry PII too)
    described = mask_pii(audience_angle(audience, lang, product))
    sensitive += described.pii
    facts = product_facts(product, lang)
    unit = "characters" if lang == "en" else "字"
    # ask for ~80% of the target: small models overshoot the length they are given
    shape = json.dumps({f: f"<{desc}, ≤ {int(target(spec, brand, f) * 0.8)} {unit}>"
                        for f, desc in cfg[spec.channel][lang]["fields"].items()},
                       ensure_ascii=False)
    brand_name = brand.name.get(lang) or next(iter(brand.name.values()), "")
    sep = "、" if lang == "zh" else ", "
    angles = cfg["angles"][lang]
    system = render(f"system_{lang}.j2", brand=brand_name)
    # the brand's do-words are left out on purpose: a small model pastes them into every text;
    # the voice line carries the tone
    user = render(f"user_{lang}.j2", what=cfg[spec.channel][lang]["what"], brand=brand_name,
                  voice=brand.voice.get(lang, ""), dont_words=sep.join(brand.banned(lang)),
                  emoji=cfg["emoji"][lang][brand.emoji], facts=facts, audience=described.text,
                  reviews=reviews, angle=angles[variant % len(angles)], shape=shape,
                  examples=examples or [], cta=cta_for(spec),
                  points=sep.join(selling_points(product, spec, brand)),
                  name=product.title or "", numbered=numbered_facts(product, lang),
                  price=price_text(product, lang))
    return Prompt([Message("system", system), *shot_turns(shots or [], spec, cfg, brand_name),
                   Message("user", user)],
                  sensitive=[s for s in sensitive if s], injected=injected,
                  facts=facts + "\n" + brand_name, reviews=reviews,
                  audience=audience_descriptors(audience))


def price_text(product: Product, lang: str) -> str:
    """The record's price as copy states it ("0.83 GBP", "89 USD", "199元"); '' without one.
    Two decimals unless whole, so "2.10" and not "2.1"."""
    if product.price is None:
        return ""
    p = product.price
    num = f"{p:g}" if float(p).is_integer() else f"{p:.2f}"
    if lang == "zh" and (product.currency or "CNY").upper() in ("CNY", "RMB"):
        return f"{num}元"
    return f"{num} {product.currency}".strip() if product.currency else num


def numbered_facts(product: Product, lang: str) -> list[str]:
    """The record's facts beyond its name, one per line for a numbered list (price first, then
    the description's sentences, then each attribute as ``key: value``): a small model states
    facts it is shown as a short list far more often than facts inside a paragraph."""
    out = [f"{'价格' if lang == 'zh' else 'price'}: {price_text(product, lang)}"] \
        if product.price is not None else []
    if product.description:
        out += [s.strip() for s in re.split(r"(?<=[.!?。！？])\s*", product.description) if s.strip()]
    out += [f"{key}: {', '.join(vals)}" for key, vals in product.attribute_values().items()]
    return out


CHARS_PER_POINT = {"en": 50, "zh": 15}  # room a stated fact takes in copy, roughly


def selling_points(product: Product, spec: ChannelSpec, brand: BrandKit) -> list[str]:
    """The record's attribute values (its type aside) the copy is asked to state, as many as
    the main field has room for (at least two): asking for "two facts" capped what a small
    model wrote at two, where people's ads for these records state nine in ten. Empty for a
    record without attributes (the prompt then asks for two facts of its description)."""
    values = product.fact_values()
    room = target(spec, brand, spec.main_field) // CHARS_PER_POINT[spec.lang]
    return values[: max(2, room)]


SHOT_ASK = {"en": "Write {what} for {brand}.\nProduct facts: {facts}",
            "zh": "为{brand}写{what}。\n商品信息：{facts}"}


def shot_turns(shots: list[Shot], spec: ChannelSpec, cfg: dict, brand: str) -> list[Message]:
    """Few-shot examples as earlier turns of the conversation (facts asked, copy answered in
    the reply's JSON): a small model maps facts to copy better from answered turns than from
    examples pasted into one message. Single-field channels only (an example has one text)."""
    if len(spec.fields) != 1:
        return []
    ask = SHOT_ASK[spec.lang]
    what = cfg[spec.channel][spec.lang]["what"]
    out = []
    for shot in shots:
        out += [Message("user", ask.format(what=what, brand=brand, facts=shot.facts)),
                Message("assistant", json.dumps({spec.main_field: shot.text}, ensure_ascii=False))]
    return out


def reask_message(error: str, spec: ChannelSpec, brand: BrandKit) -> str:
    """The follow-up that feeds a rejection back to the model."""
    disclaimer = brand.disclaimer_for(spec.channel, spec.lang)
    unit = "characters" if spec.lang == "en" else "字"
    sep = ", " if spec.lang == "en" else "，"
    limits = sep.join(f"{f} ≤ {target(spec, brand, f)} {unit}" for f in spec.fields)
    return render(f"reask_{spec.lang}.j2", error=error, disclaimer=disclaimer,
                  main_field=spec.main_field, limits=limits)
