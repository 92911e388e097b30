"""Automatic repair, what an editor does first: drop the sentences (or, in a list-like
sentence, the items) that fail a sentence-level guardrail and keep the rest."""

from __future__ import annotations

import re

from adpilot.generation.guardrail_base import Fields, GuardContext, check_copy

# guardrails a single sentence can fail on its own, so dropping that sentence fixes the copy
SENTENCE_LEVEL = ("banned_claims", "facts", "quotes", "pii", "injection", "disparaging",
                  "complaint", "placeholder", "audience", "voice", "unsupported", "mixed_language",
                  "prompt_echo", "opener", "opt_out", "borrowed")
SENTENCE_BREAK = re.compile(r"(?<=[。！？!?\n])(?![。！？!?])|(?<=\.)(?=\s)")


_CLAUSE_BREAK = re.compile(r"(?<=[，,；;、])")
_CLAUSE_SEPS = "，,；;、 "
_SENTENCE_TAIL = re.compile(r"[。！？!?.…]+\s*$")


def _drop_failing_clauses(name: str, sentence: str, ctx: GuardContext) -> tuple[str, list[str]] | None:
    """A list-like sentence (three or more comma-separated items, as in a search-ad
    description) without the items that break a guardrail; None when that is not possible."""
    parts = [p for p in _CLAUSE_BREAK.split(sentence) if p.strip()]
    if len(parts) < 3:
        return None
    bad = [p for p in parts
           if check_copy({name: p.strip().rstrip(_CLAUSE_SEPS)}, ctx, only=list(SENTENCE_LEVEL))]
    if not bad or len(bad) == len(parts):
        return None
    text = "".join(p for p in parts if p not in bad).rstrip().rstrip(_CLAUSE_SEPS)
    tail = _SENTENCE_TAIL.search(sentence)
    if tail and not _SENTENCE_TAIL.search(text):
        text += tail.group().strip()
    return text + sentence[len(sentence.rstrip()):], [p.strip().rstrip(_CLAUSE_SEPS + "。！？!?.…")
                                                      for p in bad]


def drop_failing_sentences(fields: Fields, ctx: GuardContext, *,
                           clauses: bool = False) -> tuple[Fields, list[str]]:
    """What an editor does first: remove each sentence that breaks a sentence-level guardrail
    (an absolute claim, an invented price, a copied review line …) and keep the rest. With
    ``clauses``, a failing list-like sentence loses only its failing items (``大屏幕，130万像素，
    手感好`` → ``大屏幕，手感好``): short fields such as search-ad lines are often one sentence.

    Returns the edited fields and what was dropped; the caller re-checks the whole copy
    (length, language, …), so an edit that leaves a field empty or too short does not pass.
    """
    out: Fields = {}
    dropped: list[str] = []
    for name, text in fields.items():
        kept = []
        for sentence in SENTENCE_BREAK.split(text):
            if not (sentence.strip() and check_copy({name: sentence}, ctx, only=list(SENTENCE_LEVEL))):
                kept.append(sentence)
                continue
            partial = _drop_failing_clauses(name, sentence, ctx) if clauses else None
            if partial:
                kept.append(partial[0])
                dropped.extend(partial[1])
            else:
                dropped.append(sentence.strip())
        out[name] = "".join(kept).strip()
    return out, dropped
