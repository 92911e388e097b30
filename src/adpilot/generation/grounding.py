"""Copy completed with the record's own facts instead of another model call (issue 18).

A small model often leaves out the price, or states one fact where the ``grounded`` guardrail
(:func:`~adpilot.generation.copy_checks.check_grounded`) wants two. Re-asking costs a whole
reply; what an editor does instead is add the missing fact, worded as the record words it:
the price as "Yours for 0.83 GBP." / 「售价199元。」, then, if still short, an attribute as
"Material: silk." / 「材质：牛仔布。」 or a sentence of the description, placed before the
closing call to action. Nothing is added that the record does not state.
"""

from __future__ import annotations

import re

from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.copy_checks import (
    MIN_FACTS,
    has_cta,
    name_of,
    price_of,
    price_stated,
    record_facts,
    stated_facts,
)
from adpilot.generation.guardrails import ENDS_SENTENCE, Fields

_SKIP_KEYS = {"name", "category", "名称", "品类", "类型", "price", "价格", "type"}
_SENTENCE = re.compile(r"(?<=[。！？])\s*|(?<=[.!?])\s+")  # "2.10" is no sentence end
PRICE_LINE = {"en": "Yours for {price}.", "zh": "售价{price}。"}


def _price(price: str, lang: str) -> str:
    """'2.1 GBP' as copy writes it ('2.10 GBP'); 'CNY' as 元 in Chinese."""
    def two(m: re.Match[str]) -> str:
        return m.group(0) if "." not in m.group(0) else f"{float(m.group(0)):.2f}"

    out = re.sub(r"\d+\.\d+", two, price)
    if lang == "zh":
        out = re.sub(r"\s*(?:CNY|RMB)$", "元", out, flags=re.I)
    return out


def candidate_sentences(facts: str, lang: str) -> list[str]:
    """Sentences that each state one record fact beyond name and price, in the record's
    order: each attribute as ``Key: value.`` (「材质：牛仔布。」), then each clause of the
    description as a sentence of its own ("Relaxed fit.")."""
    zh = lang == "zh"
    stop = "。" if zh else "."
    attrs, desc = [], []
    for line in facts.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not value or key.lower() in _SKIP_KEYS:
            continue
        if key.lower() in ("description", "描述"):
            desc += [f"{c[:1].upper()}{c[1:]}{stop}" for c in record_facts(f"d: {value}")]
        else:
            attrs.append(f"{key[:1].upper()}{key[1:]}{'：' if zh else ': '}{value}{stop}")
    return attrs + desc


def _insert(body: str, sentence: str, lang: str) -> str:
    """``sentence`` before the closing call to action (when the body ends with one), else at
    the end."""
    sep = "" if lang == "zh" else " "
    parts = [p for p in _SENTENCE.split(body.strip()) if p.strip()]
    if not ENDS_SENTENCE.search(body.strip()):
        body = body.strip().rstrip("，,；;、：: ") + ("。" if lang == "zh" else ".")
        parts = [p for p in _SENTENCE.split(body) if p.strip()]
    if len(parts) > 1 and has_cta(parts[-1], lang):
        return sep.join([*parts[:-1], sentence, parts[-1]])
    return sep.join([*parts, sentence])


def with_facts(fields: Fields, spec: ChannelSpec, brand: BrandKit, facts: str) -> Fields:
    """The copy completed with the record's facts it left out: its price when it has one and
    the copy does not state it, then record facts until :data:`MIN_FACTS` are stated (or none
    is left), each as one short sentence in the main field before its call to action and the
    disclaimer. Only copy that names the product or states a record fact itself is completed
    (copy about nothing in particular, or that an edit emptied, goes back to the model): a
    small model that writes a fine sentence about the product but forgets its price and colour
    is completed, not re-asked (measured: re-asks mostly came back with no facts either); a
    completion that would break the field's length limit is not made."""
    main, lang = spec.main_field, spec.lang
    disclaimer = brand.disclaimer_for(spec.channel, lang)
    body = fields.get(main, "").strip()
    if not body:
        return fields
    tail = ""
    if disclaimer and body.endswith(disclaimer):
        body, tail = body[: -len(disclaimer)].rstrip(), disclaimer

    def text() -> str:
        rest = [v for k, v in fields.items() if k != main]
        return "\n".join([*rest, body])

    name = name_of(facts).strip().lower()
    if not stated_facts(facts, text()) and (not name or name not in text().lower()):
        return fields  # a top-up, never the copy itself: copy about nothing in particular is re-asked
    limit = spec.limits[main][1] - (len(tail) + 1 if tail else 0)
    price = price_of(facts)
    if price and not price_stated(price, text().lower().replace(name or "\0", " ")):
        new = _insert(body, PRICE_LINE[lang].format(price=_price(price, lang)), lang)
        body = new if len(new) <= limit else body
    for sentence in candidate_sentences(facts, lang):
        before = len(stated_facts(facts, text()))
        if before >= MIN_FACTS:
            break
        new = _insert(body, sentence, lang)
        old, body = body, new
        if len(new) > limit or len(stated_facts(facts, text())) <= before:
            body = old  # too long, or it states nothing new
    sep = "" if lang == "zh" else " "
    return {**fields, main: body + (f"{sep}{tail}" if tail else "")}
