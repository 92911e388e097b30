"""Checks a marketer applies that the first guardrails missed (issue 18), in the same registry.

- ``audience``: the copy tells the customer how we segmented them (ages, genders, segment
  traits, "you told us …", 「听说你偏爱…」) instead of writing to them;
- ``voice``: first-person reviewer voice ("I love it", 「我很推荐」, 「我是麓织」): a brand speaks
  as "we", never as a customer or a person;
- ``unsupported``: a colour, material, size, value or use claim the product record lacks
  ("full-grain leather" on a serum, 「价格实惠，性价比非常高」, hair on trousers);
- ``mixed_language``: English words in Chinese copy the record does not have (「偏爱穿 knitwear」);
- ``prompt_echo``: our instructions or JSON debris in the copy (「推荐用舒适、日常…等词」, a stray ``}``);
- ``cta``: every channel ends in a call to action.

Filler openers, opt-outs out of place, few-shot borrowing and the repairs that need no model
call are in :mod:`adpilot.generation.copy_tidy`.

Importing :mod:`adpilot.generation` registers them, after the checks of :mod:`.guardrails`.
"""

from __future__ import annotations

import re

from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.guardrails import ENDS_SENTENCE, Fields, GuardContext, guardrail
from adpilot.generation.prompts import cta_for


def _text(fields: Fields, ctx: GuardContext) -> str:
    """The copy without the brand's disclaimer (ours, appended after the model wrote)."""
    text = "\n".join(fields.values())
    disclaimer = ctx.brand.disclaimer_for(ctx.spec.channel, ctx.lang)
    return text.replace(disclaimer, " ") if disclaimer else text


def _in_facts(term: str, facts: str) -> bool:
    t = term.lower()
    if t.isascii():
        return re.search(rf"(?<![a-z]){re.escape(t)}", facts) is not None
    return t in facts


# --- audience descriptors ------------------------------------------------------------------------

READER_NOUNS = r"customers?|shoppers?|buyers?|people|those|readers"  # "those who …" says who they are
AUDIENCE_PATTERNS: dict[str, list[str]] = {
    "en": [r"\baged?\s+\d{2}", r"\bages?\s+\d{2}", r"\b\d{2}\s?(?:-|–|to)\s?\d{2}\s*(?:years?|yrs?)?\b"
           r"(?!\s*(?:hours?|minutes?|mins?|days?|ml|g|cm|mm|w\b|%))",
           r"\b\d{2}\+?\s*(?:years?|yrs?)[- ]old", r"\bin your (?:\d0s|twenties|thirties|forties|fifties|"
           r"sixties)\b", r"\b(?:older|younger|mature|senior)\s+(?:women|men|customers|shoppers|"
           r"buyers|readers|people)\b",
           r"\b(?:ladies|gentlemen|gals|guys|moms|mums|dads|millennials|retirees|seniors)\b",
           r"\b(?:wom[ae]n|men|girls|boys)\b",
           r"\byou told us\b", r"\bwe (?:noticed|know|saw|see) (?:that )?you\b",
           r"\bbased on your (?:reviews?|purchases?|orders?|profile|history)\b",
           rf"\b(?:{READER_NOUNS}) (?:like you|who)\b",
           r"\bas (?:a|one of our) (?:loyal|valued|frequent|returning|regular|lapsed) (?:customers?|"
           r"shoppers?)\b", r"\byou (?:complained|were unhappy|rarely|often buy|usually buy|"
           r"recently (?:bought|ordered|purchased))\b", r"\b(?:high|big|low) spenders?\b",
           r"\blapsed\b", r"\bfrequent buyers?\b", r"\bpositive reviewers?\b"],
    "zh": [r"\d{2}\s?[-~～到至－—]\s?\d{2}\s?岁", r"\d{2}\s?岁", r"年龄", r"中年|老年人|年长",
           r"女士们|男士们|姐妹们|宝妈|女性朋友|男性朋友|女生们|男生们|小姐姐们|美女们|大叔",
           r"女性|男性|女士|男士", r"听说你|你告诉我们|你说过|你在意|你偏爱|你偏好",
           r"你曾经?(?:对|不满|抱怨|买过|评价)", r"你之前(?:买|评价|说|抱怨)",
           r"你最近(?:也)?(?:穿|用|买|读|看)了?(?:这|那)", r"根据你的(?:评价|购买|订单|记录)",
           r"我们注意到你|我们知道你|老顾客|高消费|低消费|久未购买|购买频繁|购买较少|评价积极|评价消极|很少评论|评论多"],
}


@guardrail("audience")
def check_audience(fields: Fields, ctx: GuardContext) -> list[str]:
    """Segment traits choose the angle; the copy never restates them (ages, genders, segment
    names and traits, what we know about the customer). Words the product record itself has
    ("women's dress") are facts, not descriptors."""
    text = _text(fields, ctx)
    low, facts = text.lower(), ctx.facts.lower()
    hits = [m.group(0).strip() for p in AUDIENCE_PATTERNS[ctx.lang] + (
        AUDIENCE_PATTERNS["en"] if ctx.lang == "zh" else [])
        for m in re.finditer(p, low) if not _in_facts(m.group(0).strip(), facts)]
    hits += [t for t in ctx.audience if len(t) >= 2 and _in_text(t, low) and not _in_facts(t, facts)]
    if not hits:
        return []
    return [f"the copy describes the customer ({', '.join(sorted(set(hits)))}): write to them "
            "about the product, never say who they are or what we know about them"]


def _in_text(term: str, low: str) -> bool:
    t = term.lower()
    return (re.search(rf"(?<![a-z]){re.escape(t)}(?![a-z])", low) is not None if t.isascii()
            else t in low)


# --- first-person reviewer voice ------------------------------------------------------------------

FIRST_PERSON: dict[str, re.Pattern[str]] = {
    "en": re.compile(r"(?<![\w'])(?:I|I'm|I’m|I've|I’ve|I'd|I’d|I'll|I’ll)(?![\w'’])"
                     r"|\b(?:[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b"
                     r"|\b(?:[Ff]ive|5) stars?\b|\bwould buy again\b"),
    "zh": re.compile(r"(?<!自)我(?!们)|本人|亲测|回购了|已经买了|用了(?:一|两|几|半)?(?:天|周|个月|年)"),
}


@guardrail("voice")
def check_voice(fields: Fields, ctx: GuardContext) -> list[str]:
    """The brand speaks as "we" to "you": no "I/my" (a reviewer, or a person signing off)."""
    text = _text(fields, ctx)
    hits = sorted({m.group(0) for lang in {ctx.lang, "en"}
                   for m in FIRST_PERSON[lang].finditer(text)})
    if not hits:
        return []
    return [f"the copy speaks as a customer or a person ({', '.join(hits)}): write as the brand "
            "(we/our) to the customer (you), never as a reviewer"]


# --- claims the record does not support ------------------------------------------------------------

# each group is one fact, named in both languages (an English record backs Chinese copy); a hit
# is supported when any member of its group is in the record
COLOURS = [[w] for w in ("navy", "beige", "ivory", "khaki", "olive", "burgundy", "camel",
                         "charcoal", "lilac")] + [
    ["卡其"], ["藏青"], ["酒红"], ["驼色"], ["杏色"], ["咖啡色"]]
# 「X色」 in Chinese copy, backed by X or its English name in the record (single characters
# alone are too common to count: 蓝牙, 网红, 厘米)
ZH_COLOUR = re.compile(r"([红蓝绿黑白灰粉紫黄橙棕米金银])色")
COLOUR_STEMS = {"红": ["red"], "蓝": ["blue"], "绿": ["green"], "黑": ["black"], "白": ["white"],
                "灰": ["grey", "gray"], "粉": ["pink"], "紫": ["purple"], "黄": ["yellow"],
                "橙": ["orange"], "棕": ["brown"], "米": ["beige", "cream"], "金": ["gold"],
                "银": ["silver"]}
COLOURS += [[c + "色", *en] for c, en in COLOUR_STEMS.items()]
MATERIALS = [
    ["leather", "full-grain", "真皮", "皮革", "牛皮", "羊皮"], ["suede", "麂皮"],
    ["silk", "真丝", "桑蚕丝", "丝绸", "蚕丝"], ["linen", "亚麻"], ["cotton", "纯棉", "全棉", "棉"],
    ["wool", "merino", "羊毛", "毛呢"], ["cashmere", "羊绒"], ["denim", "牛仔"],
    ["polyester", "涤纶", "聚酯"], ["nylon", "锦纶", "尼龙"], ["velvet", "丝绒", "天鹅绒"],
    ["satin", "缎面"], ["chiffon", "雪纺"], ["lace", "蕾丝"], ["bamboo", "竹纤维"],
    ["canvas", "帆布"], ["fleece", "摇粒绒"], ["mesh", "网纱", "网眼"], ["viscose", "rayon", "粘纤"],
    ["corduroy", "灯芯绒"], ["tweed"], ["twill", "斜纹"], ["knit", "knitted", "针织"],
    ["羽绒"], ["modal", "莫代尔"], ["aluminium", "aluminum", "铝"], ["steel", "钢"],
    ["ceramic", "陶瓷"], ["polycarbonate"]]
SIZES = {
    "en": [["true to size"], ["runs small"], ["runs large"], ["one size"], ["fits all"],
           ["plus size", "plus-size"], ["petite"], ["xs"], ["xl"], ["xxl"],
           # fit: "Perfect Fit & Size" on a lunch bag; backed by any fit or size word in the record
           ["perfect fit", "fits perfectly", "fit & size", "fit and size", "fits well", "fit",
            "fits", "fitted", "size", "sizes", "sizing", "length", "waist"]],
    "zh": [["均码"], ["大码"], ["小码"], ["正码"], ["尺码标准"], ["尺码偏小", "偏小"], ["尺码偏大", "偏大"],
           ["尺码合身", "合身", "尺码", "码数", "版型"]],
}
VALUE = {  # value-for-money claims need a price in the record and are still opinion: none allowed
    "en": [["affordable"], ["great value"], ["value for money"], ["budget-friendly"], ["bargain"],
           ["inexpensive"], ["low price"], ["worth every penny"], ["pocket-friendly"]],
    "zh": [["性价比"], ["实惠"], ["划算"], ["物美价廉"], ["价格亲民"], ["平价"], ["超值"], ["白菜价"]],
}
USES = {  # what the product is for: hair on trousers, running in a silk shirt
    "en": [["hair"], ["skin"], ["scalp"], ["feet"], ["battery"], ["laptop"], ["running"],
           ["waterproof"], ["hypoallergenic"], ["organic"], ["vegan"], ["handmade"], ["recycled"],
           ["sustainable", "eco-friendly"]],
    "zh": [["头发", "发质", "秀发", "发丝"], ["皮肤", "肌肤"], ["头皮"], ["续航", "电池"], ["笔记本"],
           ["跑步"], ["防水"], ["有机"], ["手工"], ["环保"], ["抗菌"], ["纯天然", "天然"]],
}
CLAIM_KINDS = {"colour": COLOURS, "material": MATERIALS, "size": SIZES, "value": VALUE, "use": USES}


def unsupported_claims(text: str, facts: str, lang: str) -> dict[str, list[str]]:
    """Per kind, the claims in ``text`` no group member of which is in ``facts``."""
    low, facts = text.lower(), facts.lower()
    out: dict[str, list[str]] = {}
    for kind, table in CLAIM_KINDS.items():
        groups = table if isinstance(table, list) else table[lang] + (
            table["en"] if lang == "zh" else [])
        for group in groups:
            said = [t for t in group if _in_text(t, low)]
            if said and not any(_in_facts(t, facts) for t in group):
                out.setdefault(kind, []).append(said[0])
    for m in ZH_COLOUR.finditer(text):  # 「X色」: X alone in the record backs it (颜色#黑白)
        if m.group(1) in facts and m.group(0) in out.get("colour", []):
            out["colour"].remove(m.group(0))
    return {k: v for k, v in out.items() if v}


@guardrail("unsupported")
def check_unsupported(fields: Fields, ctx: GuardContext) -> list[str]:
    """No colour, material, size, value or use the product record does not state."""
    found = unsupported_claims(_text(fields, ctx), ctx.facts, ctx.lang)
    return [f"{kind} {', '.join(repr(t) for t in terms)} is not in the product record: "
            "state only what the record says" for kind, terms in found.items()]


LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{2,}")
LATIN_OK = {"app", "logo", "diy"}  # loanwords Chinese copy writes in Latin letters


@guardrail("mixed_language")
def check_mixed_language(fields: Fields, ctx: GuardContext) -> list[str]:
    """Chinese copy names things in Chinese: an English word must come from the record
    (iPhone, USB-C) or the brand's name, never a category key such as ``knitwear``."""
    if ctx.lang != "zh":
        return []
    facts = ctx.facts.lower()
    words = sorted({w for w in LATIN_WORD.findall(_text(fields, ctx))
                    if w.lower() not in facts and w.lower() not in LATIN_OK})
    return [f"English words in Chinese copy ({', '.join(words)}): write them in Chinese"] if words else []


# --- grounded in the record ------------------------------------------------------------------------

_NAME_KEYS = {"name", "category", "名称", "品类", "类型", "price", "价格"}
_EN_STOP = {"with", "from", "into", "your", "this", "that", "have", "made", "when", "them",
            "customers", "countries", "country", "ordered"}  # who bought it is no fact stated


def record_facts(facts: str) -> list[str]:
    """The record's facts beyond its name: description clauses and attribute values."""
    out = []
    for line in facts.splitlines():
        key, sep, value = line.partition(":")
        if not sep or key.strip().lower() in _NAME_KEYS:
            continue
        out += [c.strip() for c in re.split(r"[,.;，。；、]|\band\b|\bwith\b", value) if c.strip()]
    return out


def fact_stated(fact: str, low: str, name: str = "") -> bool:
    """Whether the copy (lower-cased) states ``fact`` outside the product's ``name``: one of
    its content words (English), the value itself or half of its character pairs (Chinese)."""
    if name.strip():  # the product's name is not a fact about it
        low = low.replace(name.strip().lower(), " ")
    words = [w for w in re.findall(r"[a-z][a-z0-9-]{3,}", fact.lower()) if w not in _EN_STOP]
    nums = re.findall(r"(?<![\d.])\d+(?:\.\d+)?%?(?![\d])", fact)  # "194 customers", "2%"
    # a number standing alone: the 3 of "3 countries" is not in the price "3.75"
    if any(re.search(rf"(?<![\d.]){re.escape(n)}(?!\.?\d)", low) for n in nums):
        return True
    if any(re.search(rf"(?<![a-z]){re.escape(w[:max(4, len(w) - 2)])}", low) for w in words):
        return True
    fact_low = fact.lower()
    for group in MATERIALS + COLOURS:  # named in the other language: linen ~ 亚麻
        if any(_in_text(t, fact_low) for t in group) and any(_in_text(t, low) for t in group):
            return True
    cjk = "".join(re.findall(r"[\u4e00-\u9fff0-9]", fact))
    if not cjk:
        return False
    if cjk in low:
        return True
    pairs = [cjk[i:i + 2] for i in range(len(cjk) - 1)]
    return len(pairs) >= 3 and sum(p in low for p in pairs) >= len(pairs) / 2


def price_of(facts: str) -> str:
    """The record's price line's value ("0.83 GBP"), '' when the record has none."""
    return next((line.partition(":")[2].strip() for line in facts.splitlines()
                 if line.partition(":")[0].strip().lower() in ("price", "价格")), "")


def price_stated(price: str, low: str) -> bool:
    """Whether the copy states the record's price (its number standing alone: 89 is not 1899;
    2.1 and 2.10 are the same price)."""
    m = re.search(r"\d+(?:\.\d+)?", price)
    if not m:
        return False
    value = float(m.group(0))
    return any(float(n) == value for n in re.findall(r"(?<![\d.])\d+(?:\.\d+)?(?![\d])", low))


def name_of(facts: str) -> str:
    """The record's name line's value."""
    return next((line.partition(":")[2] for line in facts.splitlines()
                 if line.partition(":")[0].strip() in ("name", "名称")), "")


def stated_facts(facts: str, text: str) -> list[str]:
    """The record facts (:func:`record_facts`, and the price) that ``text`` states outside the
    product's name."""
    low, name = text.lower(), name_of(facts)
    out = [f for f in dict.fromkeys(record_facts(facts)) if fact_stated(f, low, name)]
    price = price_of(facts)
    if price and price_stated(price, low.replace(name.strip().lower() or "\0", " ")):
        out.append(f"price {price}")
    return out


MIN_FACTS = 2  # facts of the record beyond its name every copy states (issue 18)


@guardrail("grounded")
def check_grounded(fields: Fields, ctx: GuardContext) -> list[str]:
    """The copy states at least two facts of the record besides its name (its price, what it
    is made of, what it does), or all it has when it has fewer: "exclusive fabric and comfort
    fit" says nothing."""
    facts = list(dict.fromkeys(record_facts(ctx.facts)))
    price = price_of(ctx.facts)
    need = min(MIN_FACTS, len(facts) + bool(price))
    stated = stated_facts(ctx.facts, _text(fields, ctx))
    if len(stated) >= need:
        return []
    ask = ([f"the price ({price})"] if price and not any(s.startswith("price ") for s in stated)
           else []) + [repr(f) for f in facts if f not in stated][:3]
    return [f"the copy states {len(stated)} fact(s) from the product record, {need} needed: "
            f"state {' and '.join(ask[:2]) if ask else 'two of them'}"]


# --- our instructions or JSON in the copy ---------------------------------------------------------

ECHO = {
    "en": re.compile(r"words we like|product facts|never use:|reply with|json|\bangle:|audience:|"
                     r"call to action:|\bfacts:|from the list|the reader's|"
                     # the voice line described back: "Warm, confident voice speaks to you"
                     r"plain-spoken|short sentences|speaks to (?:one person|you)|confident voice",
                     re.I),
    "zh": re.compile(r"推荐用词|推荐用|商品信息|目标人群|角度[:：]|语气[:：]|禁用词|JSON|等词|行动号召"),
}
DEBRIS = re.compile(r"[{}]|\"\s*:|\\n|\\\"")


@guardrail("prompt_echo")
def check_prompt_echo(fields: Fields, ctx: GuardContext) -> list[str]:
    """Nothing of the prompt reaches the copy: no instruction text, no JSON debris, and not the
    brand kit's voice words pasted as a list (three or more in one text)."""
    text = _text(fields, ctx)
    out = []
    if ECHO[ctx.lang].search(text) or DEBRIS.search(text):
        out.append("the copy contains instructions or JSON: write only the marketing copy")
    words = [w for w in ctx.brand.do_words.get(ctx.lang, []) if _in_text(w, text.lower())]
    if len(words) >= 3:
        out.append(f"the copy pastes the brand's voice words ({', '.join(words)}): they describe "
                   "the tone, write in your own words")
    return out


# --- call to action --------------------------------------------------------------------------------

CTA: dict[str, re.Pattern[str]] = {
    # an imperative that starts a sentence (or the subject), or a fixed shop phrase: "add a touch
    # of elegance" mid-sentence asks for nothing
    "en": re.compile(r"(?:^|[.!?\n]\s*|[-–:]\s+)[^\w\n]*(?:(?:so|now|just|go|why not)[, ]+)?"
                     r"(?:shop|buy|order|discover|explore|browse|find|get|grab|try|see|view|tap|"
                     r"click|visit|pick|add|meet|book|treat|come|take|make|check|learn|step|"
                     r"slip|give|choose|reach for)\b|\b(?:shop|order|buy) (?:now|today|online)\b"
                     r"|\byours today\b|\bin store\b", re.I),
    "zh": re.compile(r"快来|来看看|去看看|看看|点击|点开|戳|下单|选购|入手|试试|一试|逛逛|带走|收下|抢|立即|"
                     r"马上|现在就|欢迎|速来|加购|购物车|了解|查看|体验一下|来体验|进店|前往|打开|带回家|拥有它"),
}


def has_cta(text: str, lang: str) -> bool:
    """Whether ``text`` asks the reader to do something (shop, tap, 快来看看 …)."""
    return CTA[lang].search(text) is not None


@guardrail("cta")
def check_cta(fields: Fields, ctx: GuardContext) -> list[str]:
    """Every channel asks for something: shop, tap, order, 快来看看 … (the opt-out notice does
    not count)."""
    if has_cta(_text(fields, ctx), ctx.lang):
        return []
    return ["the copy has no call to action: end with what the customer should do (shop, order, tap)"]


def with_cta(fields: Fields, spec: ChannelSpec, brand: BrandKit) -> Fields:
    """The copy with the channel's call to action appended to its main field (before the
    disclaimer) when it has none and there is room: a fixed sentence instead of a re-ask."""
    main = spec.main_field
    disclaimer = brand.disclaimer_for(spec.channel, spec.lang)
    text = "\n".join(fields.values())
    if disclaimer:
        text = text.replace(disclaimer, " ")
    body = fields.get(main, "").rstrip()
    if not body or has_cta(text, spec.lang):
        return fields
    tail = ""
    if disclaimer and body.endswith(disclaimer):
        body, tail = body[: -len(disclaimer)].rstrip(), disclaimer
    zh = spec.lang == "zh"
    if body and not ENDS_SENTENCE.search(body):  # 「版型宽松，」 ends at its comma: no 「，。」
        body = body.rstrip("，,；;、：: ") + ("。" if zh else ".")
    sep = "" if zh else " "
    new = f"{body}{sep}{cta_for(spec)}" + (f"{sep}{tail}" if tail else "")
    if not body or len(new) > spec.limits[main][1]:
        return fields
    return {**fields, main: new}
