"""Checks and repairs for what a small model adds around the copy (issue 18), in the same
guardrail registry:

- ``opener``: filler a marketer cuts ("Just wanted to tell you about…", "Hey there!", 「亲爱的朋友们」);
- ``opt_out``: an SMS opt-out ("Reply STOP") where it means nothing (an e-mail: its opt-out is
  the unsubscribe footer delivery adds);
- ``borrowed``: a fact of a few-shot example that this record lacks (an example's 圆领 on a
  V-neck dress), or an example's words copied verbatim.

:func:`tidy` repairs what needs no model call before the checks run: those openers, product
names in ``<angle brackets>``, stray braces, an SMS opt-out in an e-mail, a doubled call to
action. Importing :mod:`adpilot.generation` registers the checks (after those of copy_checks).
"""

from __future__ import annotations

import re

from adpilot.generation.copy_checks import READER_NOUNS, _in_facts, _in_text, _text, has_cta
from adpilot.generation.guardrails import Fields, GuardContext, guardrail

# --- filler openers, opt-outs out of place, and the repairs that need no model call ------------

# at the start of a field: greetings, "just wanted to tell you about", or both in a row
_GREETING = {
    # (a greeting may carry an unfilled name slot: "Hey there, <name!>! " goes with it)
    "en": r"(?:(?:hey|hi|hello|greetings)(?:\s+there)?(?:,?\s+[a-z' ]{1,20}?)?"
          r"(?:,?\s*(?:<[^<>\n]{1,30}>|\[[^\]\n]{1,30}\]|\{[^}\n]{1,30}\}))?\s*[!,.]+\s*)+",
    "zh": r"(?:(?:亲爱的[^，,！!。\s]{0,8}|嗨|哈喽|你们好|你好|您好|大家好|各位)[，,！!。～~\s]+)+",
}
_INTRO = {
    "en": r"(?:(?:we|i)\s+)?(?:just\s+)?(?:wanted|want)\s+to\s+(?:tell|let)\s+you\s+(?:know\s+)?"
          r"about\s+|(?:(?:we|i)(?:'re|’re|'m|’m|\s+are|\s+am)\s+)?(?:so\s+)?(?:thrilled|excited|"
          r"happy|delighted)\s+to\s+(?:share(?:\s+with\s+you)?|introduce(?:\s+you\s+to)?|announce|"
          r"present|tell\s+you\s+about)(?:\s+that)?\s+",
    "zh": r"(?:我们)?(?:今天)?想(?:告诉|分享给)你[，,：:]?",
}
OPENER: dict[str, re.Pattern[str]] = {
    lang: re.compile(rf"^\s*(?:{_GREETING[lang]}(?:{_INTRO[lang]})?|(?:{_INTRO[lang]}))", re.I)
    for lang in ("en", "zh")}
# the same filler anywhere (what the repair did not reach): a sentence-level check
FILLER: dict[str, re.Pattern[str]] = {
    "en": re.compile(r"\bjust wanted to\b|\bwanted to (?:tell|let) you\b|\b(?:hey|hi) there\b|"
                     r"\bold friends\b", re.I),
    "zh": re.compile(r"亲爱的(?:朋友|顾客|用户|家人)|你们好|大家好"),
}


# "…to tell you about / introduce / share with you" + a noun phrase: an editor writes "Meet …"
# ("Meet the Set of 4 Knick Knack Tins" instead of the fragment "The Set of 4 Knick Knack Tins")
_INTRODUCES = re.compile(r"(?:about|introduce(?:\s+you\s+to)?|present|share\s+with\s+you)\s*$", re.I)
_NOUN_PHRASE = re.compile(r"(?:the|our|a|an|this|these)\s|[A-Z]")


def _after_opener(opener: str, rest: str, lang: str) -> str:
    """What is left of a field once its filler ``opener`` is cut, as a sentence start."""
    if lang != "en":
        return rest
    if _INTRODUCES.search(opener) and _NOUN_PHRASE.match(rest):
        return "Meet " + rest
    return rest[:1].upper() + rest[1:]


@guardrail("opener")
def check_opener(fields: Fields, ctx: GuardContext) -> list[str]:
    """No filler a marketer cuts: greetings and "just wanted to tell you about"."""
    hits = sorted({m.group(0) for m in FILLER[ctx.lang].finditer(_text(fields, ctx))})
    return [f"cut the filler ({', '.join(hits)}): open with the product and what it offers"] \
        if hits else []


SMS_OPT_OUT = re.compile(r"(?:reply|text)\s+stop\b[^.!?\n]*[.!]?|回复?\s?(?:T|TD)\s?退订[。！!]?", re.I)


@guardrail("opt_out")
def check_opt_out(fields: Fields, ctx: GuardContext) -> list[str]:
    """An SMS opt-out only where it is the brand's disclaimer: an e-mail unsubscribes through
    the footer and header delivery adds."""
    if SMS_OPT_OUT.search(_text(fields, ctx)):
        return ["remove the opt-out text ('Reply STOP'): we add the channel's own opt-out"]
    return []


# "perfect for those who prefer a classic look" says who the reader is; "perfect for a classic
# look" says what the product is for (only before a noun phrase, where the cut stays grammatical)
_FOR_THOSE_WHO = re.compile(rf"\bfor (?:{READER_NOUNS}|anyone|everyone|someone) who (?:prefer|love|"
                            r"like|want|enjoy|appreciate|need|value)s? (?=(?:a|an|the)\s)", re.I)
_SLOT = re.compile(r"[<{\[]([^<>{}\[\]\n]{2,60})[>}\]]")
PLACEHOLDER_SLOT = re.compile(r"\{[^{}\n]{1,30}\}")
# a value adjective no record backs (copy_checks.VALUE): "a reliable and affordable option",
# "Affordable Hot Water Bottle". As a modifier it goes and the sentence stays; said of the
# product ("it is affordable") it stays for the `unsupported` check and a sentence repair
_VALUE_ADJ = r"(?:affordable|inexpensive|budget-friendly|pocket-friendly)"
_VALUE_LISTED = re.compile(rf"(?:,\s*|\s+and\s+)({_VALUE_ADJ})\b(?!-)", re.I)
# only before a word that can start a noun phrase ("affordable for everyone" is said of the
# product) and not after a degree word ("the most affordable lamp")
_VALUE_MODIFIER = re.compile(
    rf"(?<!most )(?<!more )(?<!very )(?<!so )(?<!quite )(?<!really )(?<!truly )(?<!super )"
    rf"\b(?:(an?)\s+)?({_VALUE_ADJ})(?:\s*,\s*|\s+and\s+|\s+)"
    r"(?!(?:for|to|at|in|on|with|by|from|than|enough|or|but|yet|so|as|too|if|when|and)\b)"
    r"(?=[A-Za-z])", re.I)


def drop_value_adjectives(text: str, facts: str) -> str:
    """``text`` without the value adjectives that modify a noun, unless ``facts`` has them
    (an article before one is made to agree: "an affordable hot …" → "a hot …")."""
    if not re.search(_VALUE_ADJ, text, re.I):
        return text
    text = _VALUE_LISTED.sub(lambda m: m.group(0) if _in_facts(m.group(1), facts) else "", text)
    for m in reversed(list(_VALUE_MODIFIER.finditer(text))):
        if _in_facts(m.group(2), facts):
            continue
        rest = text[m.end():]
        if m.group(1):  # the article agrees with the word that now follows it
            article = "an" if rest[:1].lower() in "aeiou" else "a"
            lead = (article.capitalize() if m.group(1)[0].isupper() else article) + " "
        else:
            lead, rest = "", (rest[:1].upper() + rest[1:]) if m.group(2)[0].isupper() else rest
        text = text[:m.start()] + lead + rest
    return text


def tidy(fields: Fields, ctx: GuardContext) -> Fields:
    """Repairs that need no model call, made before the checks: a filler opener cut (the rest
    capitalised, or introduced with "Meet"), "for those who prefer a …" as "for a …", a value
    adjective the record lacks dropped where it modifies a noun, a
    product name or record phrase in ``<…>``/``{…}``/``[…]`` unwrapped (an unknown slot such as
    ``<name!>`` stays for the placeholder check), stray braces removed, and an SMS opt-out
    dropped from a channel whose disclaimer is not one."""
    facts = ctx.facts.lower()
    disclaimer = ctx.brand.disclaimer_for(ctx.spec.channel, ctx.lang)
    out = {}
    for name, text in fields.items():
        m = OPENER[ctx.lang].match(text)
        rest = text[m.end():] if m else ""
        # not when the "greeting" is the record's own words (a Hello Kitty bag)
        if m and len(rest.strip()) >= 3 and m.group(0).strip(" !,.，！。").lower() not in facts:
            text = _after_opener(m.group(0), rest, ctx.lang)
        if ctx.lang == "en":
            text = drop_value_adjectives(_FOR_THOSE_WHO.sub("for ", text), facts)
        text = _SLOT.sub(lambda m: m.group(1) if m.group(1).strip().lower() in facts
                         else m.group(0), text)
        slots = [m.span() for m in PLACEHOLDER_SLOT.finditer(text)]
        text = "".join(c for i, c in enumerate(text)
                       if c not in "{}" or any(a <= i < b for a, b in slots))
        if not disclaimer or not SMS_OPT_OUT.fullmatch(disclaimer):
            text = SMS_OPT_OUT.sub("", text)
        text = re.sub(r"[ \t]{2,}", " ", text).strip()
        out[name] = _one_cta(text, disclaimer, ctx.lang) if name == ctx.spec.main_field else text
    return out


_SENTENCES = re.compile(r"[^。！？!?.]*[。！？!?.]+\s*|[^。！？!?.]+$")
_SHORT_CTA = {"zh": 12, "en": 30}  # characters: a sentence this short that asks is only a CTA


def _one_cta(text: str, disclaimer: str, lang: str) -> str:
    """「快来试试吧！快来看看吧！」: of two short calls to action in a row at the end, the first
    is kept (the model ends with its own and then the example we gave it)."""
    tail = disclaimer if disclaimer and text.endswith(disclaimer) else ""
    body = text[: len(text) - len(tail)].rstrip() if tail else text
    parts = _SENTENCES.findall(body)
    while (len(parts) >= 3 and all(len(p.strip()) <= _SHORT_CTA[lang] and has_cta(p, lang)
                                   for p in parts[-2:])):
        parts.pop()
    kept = "".join(parts).rstrip()
    if kept == body:
        return text
    return f"{kept}{'' if lang == 'zh' else ' '}{tail}".rstrip() if tail else kept


# --- few-shot examples: how to write, never what to say --------------------------------------------

@guardrail("borrowed")
def check_borrowed(fields: Fields, ctx: GuardContext) -> list[str]:
    """No fact that only a few-shot example has, and no run of an example copied verbatim."""
    from adpilot.generation.guardrails import _quoted

    text = _text(fields, ctx)
    low = text.lower()
    hits = sorted({b for b in ctx.borrowed if _in_text(b, low)})
    out = [f"{', '.join(hits)}: not in this product's record (an example's facts): state only "
           "this product's facts"] if hits else []
    for shot in ctx.shots:
        if run := _quoted(text, shot):
            out.append(f"the copy repeats an example word for word ('{run}…'): write your own")
            break
    return out
