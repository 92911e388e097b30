"""Text measures for the scorecard: readability (English and Chinese), diversity across a set
of variants (distinct-n, self-BLEU), and BLEU / ROUGE-L against references."""

from __future__ import annotations

import re

import numpy as np

_VOWELS = re.compile(r"[aeiouy]+")
_SENTENCE = re.compile(r"[.!?。！？]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _syllables(word: str) -> int:
    word = word.lower()
    count = len(_VOWELS.findall(word))
    if word.endswith("e") and count > 1 and not word.endswith(("le", "ee")):
        count -= 1
    return max(count, 1)


def flesch_reading_ease(text: str) -> float:
    """Flesch reading ease (higher = easier; 60-70 is plain English)."""
    words = re.findall(r"[A-Za-z']+", text)
    if not words:
        return float("nan")
    sentences = max(1, len([s for s in _SENTENCE.split(text) if s.strip()]))
    syllables = sum(_syllables(w) for w in words)
    return 206.835 - 1.015 * len(words) / sentences - 84.6 * syllables / len(words)


def chinese_sentence_length(text: str) -> float:
    """Mean Chinese characters per sentence (shorter reads easier; ~15-25 is comfortable)."""
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return float("nan")
    return float(np.mean([len(_CJK.findall(s)) for s in sentences]))


def readability(text: str, lang: str) -> tuple[float, str]:
    """A 0-1 readability score and what it is based on."""
    if lang == "zh":
        n = chinese_sentence_length(text)
        if np.isnan(n):
            return float("nan"), "no Chinese sentences"
        score = float(np.clip(1 - max(0.0, n - 20) / 40, 0, 1))
        return score, f"{n:.0f} characters per sentence"
    fre = flesch_reading_ease(text)
    if np.isnan(fre):
        return float("nan"), "no English words"
    return float(np.clip(fre / 100, 0, 1)), f"Flesch reading ease {fre:.0f}"


def tokens(text: str) -> list[str]:
    """Words for English, characters for Chinese (so n-gram measures work for both)."""
    out = []
    for piece in re.findall(r"[\u4e00-\u9fff]|[A-Za-z0-9']+", text.lower()):
        out.append(piece)
    return out


def distinct_n(texts: list[str], n: int) -> float:
    """Share of distinct n-grams among all n-grams of the set."""
    grams = [tuple(t[i:i + n]) for t in map(tokens, texts) for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def _bleu_text(text: str) -> str:
    return " ".join(tokens(text))


SELF_BLEU_REFERENCES = 100  # above this many texts, each is compared with a sample of the rest


def self_bleu(texts: list[str], *, max_references: int = SELF_BLEU_REFERENCES,
              seed: int = 0) -> list[float]:
    """Per text: BLEU against the other texts of the set (high = repetitive).

    All pairs cost O(n²): with more than ``max_references`` other texts, each text is compared
    with a fixed-seed random sample of that many (the usual practice for large sets)."""
    import numpy as np
    import sacrebleu

    joined = [_bleu_text(t) for t in texts]
    rng = np.random.default_rng(seed)
    out = []
    for i, t in enumerate(joined):
        if len(joined) - 1 > max_references:
            pick = rng.choice(len(joined) - 1, size=max_references, replace=False)
            others = [joined[j + (j >= i)] for j in pick]
        else:
            others = joined[:i] + joined[i + 1:]
        out.append(sacrebleu.sentence_bleu(t, others, tokenize="none").score / 100
                   if others else float("nan"))
    return out


def bleu(text: str, references: list[str]) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(_bleu_text(text), [_bleu_text(r) for r in references],
                                   tokenize="none").score / 100


def rouge_l(text: str, references: list[str]) -> float:
    """Best ROUGE-L F1 against the references (token LCS, both languages)."""
    a = tokens(text)
    best = 0.0
    for ref in references:
        b = tokens(ref)
        if not a or not b:
            continue
        dp = np.zeros((len(a) + 1, len(b) + 1), dtype=np.int32)
        for i, x in enumerate(a, 1):
            for j, y in enumerate(b, 1):
                dp[i, j] = dp[i - 1, j - 1] + 1 if x == y else max(dp[i - 1, j], dp[i, j - 1])
        lcs = dp[-1, -1]
        if lcs:
            p, r = lcs / len(a), lcs / len(b)
            best = max(best, 2 * p * r / (p + r))
    return best
