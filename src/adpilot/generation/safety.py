"""Input-side safety: personal data is masked and instruction-like spans are cut out of review
text before it reaches a prompt. What was removed is kept, so the output can be checked for it.

Review text is data, never instructions: besides this cleaning, the prompt quotes each snippet
inside ``<review>`` tags and tells the model to treat it as customer opinion only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CJK = r"\u4e00-\u9fff"

# kind -> pattern; order matters (e-mails before phones: both contain digits)
PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "phone": re.compile(r"(?<![0-9A-Za-z.+])(?:\+?\d{1,3}[\s-]?)?(?:1[3-9]\d{9}|\(?\d{2,4}\)?[\s.-]?\d{3,4}"
                        r"[\s.-]?\d{3,4})(?![0-9A-Za-z])"),
    "address": re.compile(
        r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|"
        rf"Drive|Dr|Court|Ct|Way)\b\.?|[{_CJK}]{{2,8}}(?:省|市)[{_CJK}]{{0,8}}(?:区|县)"
        rf"(?:[{_CJK}0-9]{{0,12}}(?:路|街|道)\d+号)?|[{_CJK}]{{2,8}}(?:路|街|道)\d+号(?:\d+室)?"),
    "name": re.compile(
        r"(?:\b(?:[Mm]y name is|[Ii] am|[Ii]'m|[Cc]all me|[Ss]igned|[Rr]egards,|[Tt]hanks,)\s+)"
        r"([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)"
        rf"|(?:我叫|我的名字是|联系人[:：]?|收件人[:：]?|姓名[:：]?)\s*([{_CJK}]{{2,3}})"),
}
MASKS = {"email": "[email]", "phone": "[phone]", "address": "[address]", "name": "[name]"}

INSTRUCTION_PATTERNS: list[re.Pattern[str]] = [
    re.compile(r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,60}?\b(?:instructions?|prompts?|"
               r"rules|directions|above|previous|system)\b[^.!?\n]*", re.I),
    re.compile(r"\b(?:you are now|act as|pretend to be|new instructions?|system prompt|"
               r"(?:system|assistant)\s*:)[^.!?\n]*", re.I),
    re.compile(r"\b(?:write|say|output|print|reply|respond|include|add)\b(?: with| only)?\s*[\"'“]?"
               r"[A-Z0-9!$]{2,}(?:\s+[A-Z0-9!$]{2,})+[^.!?\n]*"),  # "write FREE IPHONE"
    re.compile(r"(?:忽略|无视|忘记|忘掉|不要理会)[^。！？\n]{0,30}?(?:指令|指示|提示|要求|规则|设定|"
               r"以上|之前|前面)[^。！？\n]*"),
    re.compile(r"(?:你现在是|扮演|系统提示|新的指令|请输出|请写|请改写|直接写|输出以下)[^。！？\n]*"),
]


@dataclass
class Cleaned:
    """Cleaned text plus what was taken out of it."""

    text: str
    pii: list[str] = field(default_factory=list)        # the personal data values removed
    injected: list[str] = field(default_factory=list)   # the instruction-like spans removed


def mask_pii(text: str) -> Cleaned:
    """Replace e-mails, phone numbers, street addresses and self-introduced names by tags."""
    found: list[str] = []

    def sub(kind: str):
        def repl(m: re.Match[str]) -> str:
            if kind == "name":  # keep the cue ("my name is"), mask the name only
                group = 1 if m.group(1) else 2
                found.append(m.group(group))
                return m.group(0)[: m.start(group) - m.start()] + MASKS[kind]
            found.append(m.group(0))
            return MASKS[kind]
        return repl

    for kind, pattern in PII_PATTERNS.items():
        text = pattern.sub(sub(kind), text)
    return Cleaned(text, pii=found)


def strip_instructions(text: str) -> Cleaned:
    """Cut spans that address the model ("ignore previous instructions …") out of review text."""
    spans: list[str] = []
    for pattern in INSTRUCTION_PATTERNS:
        spans += [m.group(0) for m in pattern.finditer(text)]
        text = pattern.sub(" [removed] ", text)
    return Cleaned(re.sub(r"\s{2,}", " ", text).strip(), injected=spans)


def clean_snippet(text: str, *, max_chars: int = 300) -> Cleaned:
    """Both cleanings, then a length cap; ``<``/``>`` are dropped so a snippet cannot close its tag."""
    stripped = strip_instructions(text)
    masked = mask_pii(stripped.text)
    out = masked.text.replace("<", "(").replace(">", ")")
    if len(out) > max_chars:
        out = out[:max_chars].rstrip() + "…"
    # PII inside a removed span still counts as seen: never let it reach the copy either
    pii = masked.pii + [v for s in stripped.injected for v in mask_pii(s).pii]
    return Cleaned(out, pii=pii, injected=stripped.injected)


def find_pii(text: str) -> list[str]:
    """Personal data found in ``text`` as ``kind: value`` (used on copy and on outgoing prompts)."""
    hits = []
    for kind, pattern in PII_PATTERNS.items():
        if kind == "name":  # a cue + capitalised word in copy is not evidence of a real name
            continue
        hits += [f"{kind}: {m.group(0)}" for m in pattern.finditer(text)]
    return hits


def contains_value(text: str, value: str) -> bool:
    """Whether ``value`` (a name, phone, e-mail seen in the inputs) occurs in ``text``: as a whole
    word for Latin text (a reviewer called "Al" is not in "natural"), as a substring for Chinese."""
    v = value.strip().lower()
    if not v:
        return False
    if v.isascii():
        return re.search(rf"(?<![\w@.-]){re.escape(v)}(?![\w@-])", text.lower()) is not None
    return v in text.lower()
