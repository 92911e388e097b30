"""The model's fields as copy, before any check runs: whitespace tidied, a stray brace
dropped, copy that ran into the length cap (grammar-limited backends stop it there) closed at
its last sentence or clause, a clause the model repeats in a loop kept once, and the brand's
disclaimer appended once to the main field."""

from __future__ import annotations

import re

from pydantic import BaseModel

from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.guardrails import ENDS_SENTENCE
from adpilot.generation.prompts import target

_DEBRIS = re.compile(r"\s*[{}]+\s*$")  # a stray brace the model left at the end of a field
_SENTENCE_END = re.compile(r"[.!?…。！？](?=\s|$)")
# words a phrase cannot end on ("…Perfect Linen for Any", "…: A Natural Choice for")
_TAIL_WORDS = r"for|and|or|the|a|an|with|to|of|in|on|at|your|our|its|their|any|every|each|by|from"
_HALF_TAIL = re.compile(r"\s*(?::|\s[-–—|])\s*\S+$")  # "…Silk Fan - Perfect", "…: Perfect"
_DANGLING = re.compile(rf"[\s,;:–-]+(?:(?:{_TAIL_WORDS})\b[\s,;:–-]*)*$", re.I)


def close_cut(text: str, cap: int, lo: int, *, phrase: bool = False, facts: str = "") -> str:
    """Copy that ran into the length cap (grammar-limited backends stop it there) ends at its
    last complete sentence; a short ``phrase`` field (title, headline) loses its dangling last
    words instead, and its last word unless that is a whole word of the record's ``facts``
    (a subject that fills the cap exactly with "…: White Skull" is complete, not cut).
    Anything else is left for the guardrails to reject."""
    if len(text) < cap - 1 or ENDS_SENTENCE.search(text):
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= lo:
        return text[: ends[-1]].rstrip()
    if not phrase:  # close at the last clause boundary: "…for your mom, featuring a" → "…for your mom."
        cut = max(text.rfind(c) for c in ",;:，；：、")
        stop = "。" if re.search(r"[\u4e00-\u9fff]", text) else "."
        return text[:cut].rstrip() + stop if cut >= lo else text
    if re.search(r"[\u4e00-\u9fff]", text):  # no spaces in Chinese: close at the last 、，
        cut = max(text.rfind(c) for c in "，,；;：、 ")
        if cut < lo:  # or after a closing bracket: 「【洗发水】体验油性和混合性」 → 「【洗发水】」
            cut = max(text.rfind(c) + 1 for c in "】」》）")
        return text[:cut].rstrip() if cut >= lo else text
    head, _, last = text.rpartition(" ")
    whole = bool(re.search(r"\w", last)) and bool(  # "&" of the brand's name is no word
        re.search(rf"(?<!\w){re.escape(last)}(?!\w)", facts, re.I))
    trimmed = _DANGLING.sub("", text if whole or not head else head)
    if not whole:  # one word left after a colon or dash is half a thought: "…Bottle: White"
        trimmed = _HALF_TAIL.sub("", trimmed)
    return trimmed if len(trimmed) >= lo else text


_PHRASE_TAIL = re.compile(rf"(?:[\s,;:–—-]+(?:{_TAIL_WORDS})\b)+[\s,;:–—\-，、；：]*$"
                          r"|[\s,;:–—\-，、；：]+$", re.I)


def _raw_fields(value: BaseModel, spec: ChannelSpec) -> dict[str, str]:
    """Whitespace tidied; a phrase field (subject, title, headline) loses a dangling tail
    ("…: A Natural Choice for", 「温暖呵护 -」) wherever the model stopped."""
    raw = {f: " ".join(str(getattr(value, f)).split()) if spec.single_line(f)
           else str(getattr(value, f)).strip() for f in spec.fields}
    return {f: _phrase_end(v) if f != spec.main_field else v for f, v in raw.items()}


def _phrase_end(text: str) -> str:
    """A phrase without its dangling words; where that leaves one word after a colon or dash,
    without that half thought too ("Silk Fan - Perfect for Any" → "Silk Fan")."""
    trimmed = _PHRASE_TAIL.sub("", text)
    if trimmed != text and not re.search(r"[，、；：]$", text):  # not where only 「，」 went
        trimmed = _HALF_TAIL.sub("", trimmed)
    return trimmed or text


def closed_fields(value: BaseModel, spec: ChannelSpec, brand: BrandKit,
                  facts: str = "") -> list[str]:
    """Fields :func:`close_cut` changed (reported, so evaluations can count them)."""
    raw = _raw_fields(value, spec)
    return [f for f, v in raw.items() if close_cut(v, target(spec, brand, f), spec.limits[f][0],
                                                   phrase=f != spec.main_field, facts=facts) != v]


def finalize(value: BaseModel, spec: ChannelSpec, brand: BrandKit,
             facts: str = "") -> dict[str, str]:
    """The model's fields, tidied (whitespace; copy cut off at the length cap closed at its last
    sentence or clause, :func:`close_cut` with the record's ``facts``), with the brand's
    disclaimer appended to the main field."""
    fields = {f: dedupe_clauses(close_cut(_DEBRIS.sub("", v), target(spec, brand, f),
                                          spec.limits[f][0], phrase=f != spec.main_field,
                                          facts=facts))
              for f, v in _raw_fields(value, spec).items()}
    disclaimer = brand.disclaimer_for(spec.channel, spec.lang)
    main = spec.main_field
    if disclaimer:  # ours is appended once: drop the model's own copies of it first
        fields[main] = re.sub(rf"(?:\s*{re.escape(disclaimer)}[\s。.!！]*)+$", "",
                              fields[main]).rstrip()
    if disclaimer and not fields[main].endswith(disclaimer):
        sep = "" if spec.lang == "zh" and fields[main][-1:] in "。！？" else " "
        fields[main] = f"{fields[main]}{sep}{disclaimer}"
    return fields


_REPEAT_SPLIT = re.compile(r"(?<=[，,；;、。！？!?])|(?<=\.)(?=\s)")


def dedupe_clauses(text: str) -> str:
    """A clause the model repeats (「版型宽松，版型宽松，版型宽松」, a sampling loop) is kept once,
    and so is a Chinese run of three or more clauses in one sentence on the same word
    (「版型略宽松，版型舒适，版型宽松」 keeps its first: the same loop with other endings)."""
    seen: set[str] = set()
    out = []
    for part in _REPEAT_SPLIT.split(text):
        key = re.sub(r"[\W_]", "", part)
        if key and key in seen:
            continue
        seen.add(key)
        out.append(part)
    return re.sub(r"[，,；;、]+(?=[。！？.!?])", "", "".join(_one_of_each_run(out)))  # no 「宽松，。」


def _one_of_each_run(parts: list[str]) -> list[str]:
    """``parts`` without the 2nd, 3rd … clause of a run of ≥ 3 consecutive clauses of one
    sentence that all contain the same two-character Chinese word."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        words = {parts[i][k:k + 2] for k in range(len(parts[i]) - 1)
                 if re.fullmatch(r"[\u4e00-\u9fff]{2}", parts[i][k:k + 2])}
        j = i + 1  # how far a word of clause i runs through the next clauses of the sentence
        while words and j < len(parts) and not re.search(r"[。！？!?.]\s*$", parts[j - 1]):
            shared = {w for w in words if w in parts[j]}
            if not shared:
                break
            words, j = shared, j + 1
        if j - i >= 3:  # the run's first clause, with the last clause's end (「。」 or 「，」)
            last_end = re.search(r"[，,；;、。！？!?.]?\s*$", parts[j - 1]).group(0)
            first = re.sub(r"[，,；;、]\s*$", "", parts[i])
            out.append(first + last_end)
            i = j
        else:
            out.append(parts[i])
            i += 1
    return out
