"""A scorecard per copy, each score with a one-line explanation:

fluency (perplexity under a character LM of the copy's language), relevance to the product and
to the audience (embedding cosine), personalisation (which audience facts the copy uses),
diversity within the set (1 − self-BLEU, plus the set's distinct-1/2), readability, tone
(opinion-word polarity), compliance (the generation guardrails, when given), predicted
attractiveness (the A/B-trained model), and BLEU / ROUGE-L against references when given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adpilot.data.language import detect_language
from adpilot.scoring import text_metrics as tm

# How the overall score weighs its parts (compliance gates: a failing copy scores 0).
WEIGHTS = {"attractiveness": 0.35, "relevance_product": 0.2, "relevance_audience": 0.1,
           "personalisation": 0.1, "fluency": 0.1, "readability": 0.1, "diversity": 0.05}

Guardrail = Callable[[str], list[str]]  # copy text -> violation reasons


def _facts(audience: dict | None) -> list[str]:
    """Short facts from an audience (segment or profile) that a personalised copy can use."""
    if not audience:
        return []
    facts = []
    for key in ("top_categories", "categories", "interests"):
        v = audience.get(key)
        if isinstance(v, str):
            facts += [x.strip() for x in v.split(",") if x.strip()]
        elif isinstance(v, list):
            facts += [str(x) for x in v]
    for key in ("region", "name", "segment_name", "cares_about", "aspect"):
        if isinstance(audience.get(key), str):
            facts.append(audience[key])
    return [f for f in dict.fromkeys(facts) if len(f) >= 2]


def _audience_text(audience: dict | None) -> str:
    if not audience:
        return ""
    parts = [str(audience.get(k, "")) for k in ("summary", "description", "summary_zh",
                                                 "description_zh", "name", "top_categories")]
    snippets = audience.get("reviews") or audience.get("review_snippets") or []
    return " ".join(parts + [str(s) for s in snippets][:5]).strip()


def _product_text(product: dict | None) -> str:
    if not product:
        return ""
    return " ".join(str(product.get(k, "")) for k in ("title", "category", "description"))


@dataclass
class Scorecard:
    """Scores copies; pass an :class:`AttractivenessModel` and guardrails when available.
    Fluency uses the reference LMs that :func:`~adpilot.scoring.fluency.ensure_reference_lms`
    built in ``store`` (the shell's :class:`~adpilot.artifacts.ModelStore`); a stated fallback
    without them or without a store (None)."""

    attractiveness: object | None = None
    guardrails: list[Guardrail] = field(default_factory=list)
    embedder: str = "minilm"
    store: object | None = None  # the ModelStore of the reference LMs (None: the fallback)
    _lms: dict = field(default_factory=dict, init=False, repr=False)

    def _lm(self, lang: str):
        if lang not in self._lms:
            from adpilot.scoring.fluency import reference_lm

            self._lms[lang] = reference_lm(lang, store=self.store)
        return self._lms[lang]

    def score(self, copies: list[str], *, product: dict | None = None,
              audience: dict | None = None, references: list[str] | None = None,
              lang: str | None = None,
              violations: list[list[str]] | None = None) -> pd.DataFrame:
        """One row per copy with every score in [0, 1] (where defined), explanations in
        ``why_<score>`` columns, and ``overall``.

        ``violations`` (one list per copy) are guardrail results already known, e.g. the
        generator's: compliance is 0 for a copy with any, whatever ``guardrails`` say, so the
        scorecard never calls compliant a copy the guardrails rejected."""
        from adpilot.profiling.aspects import clause_opinion
        from adpilot.profiling.embeddings import get_embedder

        copies = [str(c) for c in copies]
        langs = (pd.Series([lang] * len(copies)) if lang
                 else detect_language(pd.Series(copies)).replace("und", "en"))
        out = pd.DataFrame({"copy": copies, "language": langs.to_numpy()})
        # fluency
        ppl = [self._lm(lg).perplexity(c) for c, lg in zip(copies, langs, strict=True)]
        out["perplexity"] = ppl
        out["fluency"] = [float(np.clip(1 - (math.log(p) - math.log(8)) / math.log(40), 0, 1))
                          for p in ppl]
        out["why_fluency"] = [f"character-LM perplexity {p:.1f}" for p in ppl]
        # relevance
        emb = get_embedder(self.embedder)
        texts = copies + [_product_text(product), _audience_text(audience)]
        if self.embedder == "lsa":
            emb.fit(texts)
        vecs = emb.encode(texts)
        c, prod_v, aud_v = vecs[: len(copies)], vecs[-2], vecs[-1]
        out["relevance_product"] = np.clip(c @ prod_v, 0, 1) if product else np.nan
        out["relevance_audience"] = np.clip(c @ aud_v, 0, 1) if _audience_text(audience) else np.nan
        out["why_relevance"] = [f"cosine to product {p:.2f}, to audience {a:.2f}"
                                for p, a in zip(out["relevance_product"].fillna(0),
                                                out["relevance_audience"].fillna(0), strict=True)]
        # personalisation
        facts = _facts(audience)
        used = [[f for f in facts if f.lower() in cp.lower()] for cp in copies]
        out["personalisation"] = [min(1.0, len(u) / 2) if facts else np.nan for u in used]
        out["why_personalisation"] = [("uses " + ", ".join(u)) if u else
                                      ("uses no audience fact" if facts else "no audience facts")
                                      for u in used]
        # diversity
        sb = tm.self_bleu(copies) if len(copies) > 1 else [np.nan]
        out["diversity"] = [1 - s if not np.isnan(s) else np.nan for s in sb]
        d1, d2 = tm.distinct_n(copies, 1), tm.distinct_n(copies, 2)
        out.attrs["set_diversity"] = {"distinct_1": d1, "distinct_2": d2,
                                      "self_bleu_mean": float(np.nanmean(sb)) if len(sb) else None}
        out["why_diversity"] = [f"self-BLEU {s:.2f} (set distinct-2 {d2:.2f})"
                                if not np.isnan(s) else "single copy" for s in sb]
        # readability and tone
        read = [tm.readability(cp, lg) for cp, lg in zip(copies, langs, strict=True)]
        out["readability"] = [r[0] for r in read]
        out["why_readability"] = [r[1] for r in read]
        tone = []
        for cp, lg in zip(copies, langs, strict=True):
            o = clause_opinion(pd.Series([cp.lower()], dtype="string"), lg).iloc[0]
            tone.append((o["pos"] - o["neg"]) / max(1, o["pos"] + o["neg"]))
        out["tone"] = tone
        out["why_tone"] = [("positive" if t > 0.2 else "negative" if t < -0.2 else "neutral")
                           + f" ({t:+.2f})" for t in tone]
        # compliance
        known = violations is not None
        if known and len(violations) != len(copies):
            raise ValueError(f"{len(violations)} violation lists for {len(copies)} copies")
        found = [list(dict.fromkeys([*(violations[i] if known else []),
                                     *(v for g in self.guardrails for v in g(cp))]))
                 for i, cp in enumerate(copies)]
        out["compliance"] = [0.0 if v else 1.0 for v in found]
        out["violations"] = found
        out["why_compliance"] = ["; ".join(v) if v else (
            "passes all guardrails" if self.guardrails or known else "no guardrails given")
            for v in found]
        # attractiveness
        if self.attractiveness is not None:
            s = self.attractiveness.score(copies)
            out["attractiveness_score"] = s
            out["attractiveness"] = self.attractiveness.percentile(s) / 100
            out["why_attractiveness"] = [f"better than {p:.0%} of tested headlines"
                                         for p in out["attractiveness"]]
        else:
            out["attractiveness"] = np.nan
            out["why_attractiveness"] = "no attractiveness model"
        if references:
            out["bleu"] = [tm.bleu(cp, references) for cp in copies]
            out["rouge_l"] = [tm.rouge_l(cp, references) for cp in copies]
        parts = pd.DataFrame({k: out[k] for k in WEIGHTS}).astype(float)
        w = pd.Series(WEIGHTS)
        weighted = (parts * w).sum(axis=1) / parts.notna().mul(w).sum(axis=1)
        out["overall"] = weighted * out["compliance"]
        return out


def best_of(card: pd.DataFrame) -> int:
    """Index of the copy to keep: compliant first, then the highest overall score."""
    ranked = card.assign(_ok=card["compliance"] > 0).sort_values(["_ok", "overall"],
                                                               ascending=False)
    return int(ranked.index[0])


