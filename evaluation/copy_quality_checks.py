"""The checks of the copy-quality evaluation (issue 18), the same for every version's text.

The product's own guardrails (:mod:`adpilot.generation.copy_checks`) are applied, and beside
them this evaluation's own, simpler reading of the same rules, so that a text does not pass only
because the guardrail it is graded by is the one it was tuned against: the copy names the
product, states at least two facts of the record outside the product's name (a description
clause, an attribute value, the price), asks for something, restates none of the segment's
traits and is not written as a review.
"""

from __future__ import annotations

import json
import re

import numpy as np
from copy_quality_records import ADGEN, SEGMENT

EN_STOP = {"with", "and", "the", "for", "from", "into", "your", "our", "this", "that", "are",
           "has", "have", "its", "use", "after", "customers", "countries", "country"}
# the segment's traits (SEGMENT) as a reader would spot them restated: its ages and figures,
# its words for the customer; "fit" alone is the angle (allowed), "unhappy with fit" a trait
TRAITS = {
    "en": re.compile(r"\b(?:older|elderly|aged?|mature|seniors?|47|38|412|260|unhappy|"
                     r"dissatisfied|disappointed|complain\w*|frustrat\w*|spenders?|"
                     r"high[- ]spending|big[- ]spend\w*)\b", re.I),
    "zh": re.compile(r"年龄|\d+\s?岁|岁(?!月)|年长|偏大|中老年|不满意?|抱怨|吐槽|高消费|消费高|"
                     r"47|38|412|260"),
}
REVIEW = {  # a customer's voice: I / my, stars, "would buy again", 亲测, 我 (not 我们)
    "en": re.compile(r"(?<![\w'])I(?:'m|’m|'ve|’ve|'d|’d|'ll|’ll)?(?![\w'’])|\b[Mm]y\b|"
                     r"\b(?:[Ff]ive|5|[Ff]our|4) stars?\b|\bwould (?:buy|order) again\b"),
    "zh": re.compile(r"(?<!自)我(?!们)|亲测|回购|好评|本人"),
}


def _zh_words(text: str) -> list[str]:
    import jieba

    return [w for w in jieba.lcut(text) if w.strip()]


def rouge_bleu(hyp: str, refs: list[str]) -> tuple[float, float]:
    """ROUGE-L F and BLEU-4 (x100) of one text against its human texts, as ChatGLM scores."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_chinese import Rouge

    h = _zh_words(hyp)
    if not h:
        return 0.0, 0.0
    rl = max(Rouge().get_scores(" ".join(h), " ".join(_zh_words(r)))[0]["rouge-l"]["f"]
             for r in refs)
    bleu = sentence_bleu([list(r) for r in refs], list(hyp),
                         smoothing_function=SmoothingFunction().method3)
    return 100 * rl, 100 * bleu


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9%][a-z0-9%-]{2,}", text.lower()) if w not in EN_STOP]


def _content(text: str) -> list[str]:
    """A fact's content words, or when it has none its numbers ("71 customers in 3 countries":
    customers and countries are stop words, 71 and 3 too short for words)."""
    return _words(text) or re.findall(r"(?<![\d.])\d+(?:\.\d+)?%?(?!\d)", text)


def en_facts(product: dict) -> list[tuple[str, list[str], bool]]:
    """The record's facts beyond its name, each as (label, content words, whether any one of
    the words is enough): the description's clauses, every attribute value, and the price."""
    out = []
    for c in re.split(r"[.;,]|\bwith\b|\band\b", product.get("description") or ""):
        if _content(c):
            out.append((c.strip(), _content(c), False))
    for k, v in (product.get("attributes") or {}).items():
        for part in (v if isinstance(v, list) else str(v).split(",")):
            if _content(str(part)):
                out.append((f"{k}: {str(part).strip()}", _content(str(part)), False))
    if product.get("price") is not None:  # 12.5 or 12.50
        p = product["price"]
        out.append((f"price {p:g}", [f"{p:g}", f"{p:.2f}"], True))
    return out


def _hit(w: str, low: str) -> bool:
    """A word prefix-matched ("pockets" finds "pocket"; a short one whole); a number standing
    alone (89 is not 1899, 2.1 is not 2.15, 3 is not in 3.75)."""
    if re.fullmatch(r"[\d.%]+", w):
        return re.search(rf"(?<![\d.]){re.escape(w)}(?!\.?\d)", low) is not None
    if len(w) <= 4:  # red is not redefine, tin not tint
        return re.search(rf"(?<![a-z]){re.escape(w)}(?:s|es)?(?![a-z])", low) is not None
    return re.search(rf"(?<![a-z]){re.escape(w[:len(w) - 2])}", low) is not None


def facts_stated(product: dict, text: str) -> list[str]:
    """The labels of the record facts the text states outside the product's name: half of a
    fact's content words (one of one or two)."""
    low = text.lower().replace((product.get("title") or "\0").lower(), " ")
    return [label for label, words, any_one in en_facts(product)
            if sum(_hit(w, low) for w in words) >= (1 if any_one else max(1, len(words) // 2))]


def names_product(title: str, text: str) -> bool:
    """Half of the title's content words (at least one) are in the text."""
    low = text.lower()
    words = [w for w in re.findall(r"[a-z]{3,}", title.lower()) if w not in EN_STOP]
    return sum(w in low for w in words) >= max(1, len(words) // 2)


_VOCAB: list[str] = []


def adgen_vocabulary() -> list[str]:
    """Every AdvertiseGen attribute value of two or more characters that states a checkable
    fact (colour, material, pattern, cut, collar, sleeve …; not the type or the style words)."""
    if not _VOCAB:
        rows = [json.loads(line) for line in ADGEN.read_text(encoding="utf-8").splitlines() if line]
        _VOCAB.extend(sorted({v for r in rows for k, v in r["attributes"]
                              if k not in ("类型", "风格") and len(v) >= 2}))
    return _VOCAB


def foreign_values(text: str, values: list[str]) -> list[str]:
    """AdvertiseGen values named in ``text`` that the record lacks (nor a value containing or
    contained in one of its own: 牛仔 ~ 牛仔布): facts of another product."""
    own = [v.lower() for v in values]
    low = text.lower()
    return [v for v in adgen_vocabulary() if v.lower() in low
            and not any(v.lower() in o or o in v.lower() for o in own)]


def measure(rec: dict, row: dict) -> dict:
    """The same checks for every version's text."""
    from adpilot.data.records import Product
    from adpilot.generation import GuardContext, channel_spec, load_brand
    from adpilot.generation.audience import Audience, audience_descriptors, product_facts
    from adpilot.generation.copy_checks import (
        check_audience,
        check_voice,
        has_cta,
        unsupported_claims,
    )

    lang, text = rec["lang"], row["text"]
    kit = load_brand()
    facts = product_facts(Product(**rec["product"]), lang) + "\n" + kit.name[lang]
    ctx = GuardContext(channel_spec(rec["channel"], lang), kit, facts=facts,
                       audience=audience_descriptors(Audience(description=SEGMENT[lang])))
    fields = row["fields"] or {"text": text}
    disclaimer = kit.disclaimer_for(rec["channel"], lang)
    bare = text.replace(disclaimer, " ") if disclaimer else text
    claims = unsupported_claims(bare, facts, lang)
    traits = sorted({m.group(0) for m in TRAITS[lang].finditer(bare)
                     if m.group(0).lower() not in facts.lower()})
    m = {"unsupported_colour_material": bool(claims.get("colour") or claims.get("material")),
         "unsupported_any": bool(claims), "descriptor_leak": bool(check_audience(fields, ctx)),
         "trait_restated": traits, "first_person": bool(check_voice(fields, ctx)),
         "review_voice": sorted({m.group(0) for m in REVIEW[lang].finditer(bare)}),
         "cta": has_cta(bare, lang), "passed": row["passed"], "tokens": row["tokens"],
         "seconds": row["seconds"], "prompt_tokens": row.get("prompt_tokens", 0)}
    if lang == "zh":
        vals = rec["values"]
        m["coverage"] = sum(v.lower() in text.lower() for v in vals) / len(vals) if vals else 1.0
        m["rouge_l"], m["bleu4"] = rouge_bleu(text, rec["references"])
        m["foreign_values"] = foreign_values(text, vals + [rec["product"]["category"] or ""])
    else:
        m["names_product"] = names_product(rec["product"]["title"], bare)
        m["facts"] = facts_stated(rec["product"], bare)
        m["facts_stated"] = len(m["facts"])
        m["coverage"] = m["facts_stated"] / max(1, len(en_facts(rec["product"])))
        m["all_checks"] = bool(m["names_product"] and m["facts_stated"] >= 2 and m["cta"]
                               and not (m["descriptor_leak"] or m["trait_restated"])
                               and not (m["first_person"] or m["review_voice"]))
    return m


def _mean(ms: list[dict], key: str) -> float:
    return float(np.mean([bool(m[key]) if not isinstance(m[key], float) else m[key]
                          for m in ms]))


def summarise(ms: list[dict]) -> dict:
    """Rates over one version's texts in one language."""
    if not ms:
        return {}
    accepted = sum(m["passed"] for m in ms)
    out = {"texts": len(ms), "guardrail_pass_rate": accepted / len(ms),
           "attribute_coverage": float(np.mean([m["coverage"] for m in ms])),
           "unsupported_colour_material_rate": _mean(ms, "unsupported_colour_material"),
           "unsupported_fact_rate": _mean(ms, "unsupported_any"),
           "descriptor_leak_rate": _mean(ms, "descriptor_leak"),
           "trait_restated_rate": _mean(ms, "trait_restated"),
           "first_person_rate": _mean(ms, "first_person"),
           "review_voice_rate": _mean(ms, "review_voice"),
           "cta_rate": _mean(ms, "cta"),
           "tokens_per_accepted_variant": (sum(m["tokens"] for m in ms) / accepted
                                           if accepted else None),
           "seconds_per_variant": float(np.mean([m["seconds"] for m in ms])),
           "prompt_tokens_per_variant": float(np.mean([m["prompt_tokens"] for m in ms]))}
    if "foreign_values" in ms[0]:
        out["unsupported_value_rate"] = _mean(ms, "foreign_values")
    if "rouge_l" in ms[0]:
        out["rouge_l"] = float(np.mean([m["rouge_l"] for m in ms]))
        out["bleu4"] = float(np.mean([m["bleu4"] for m in ms]))
    if "names_product" in ms[0]:
        out["names_product_rate"] = _mean(ms, "names_product")
        out["two_facts_rate"] = float(np.mean([m["facts_stated"] >= 2 for m in ms]))
        out["facts_stated_mean"] = float(np.mean([m["facts_stated"] for m in ms]))
        out["all_checks_rate"] = _mean(ms, "all_checks")
        out["all_checks_failed"] = sum(not m["all_checks"] for m in ms)
        # what could be sent as written: every check, no claim the record lacks, guardrails passed
        out["sendable_rate"] = float(np.mean([m["all_checks"] and not m["unsupported_any"]
                                              and m["passed"] for m in ms]))
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}
