"""Evaluation of a tuned generator against its base, on the same held-out briefs.

* **perplexity** of the held-out reference copy given the generator's prompt (completion tokens
  only), base vs tuned;
* **generation** through the real path: :class:`CopyGenerator` over the ``transformers``
  backend (prompt → JSON → guardrails → re-ask), the same settings and seeds for both models;
* **BLEU / ROUGE-L** of each copy against the brief's references (sacrebleu; ROUGE-L by LCS);
* **guardrail pass rate** (the generator's guardrails; a brief without valid JSON fails);
* **win-rate** of tuned over base as judged by the attractiveness model (Bradley-Terry score of
  the two copies of a brief): wins / (wins + losses) with a Wilson 95 % interval; a model that
  produced no valid copy loses that brief, both failing is a tie. The same rate over the briefs
  where both produced copy is reported beside it, with the mean P(tuned beats base).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from adpilot.tuning.data import brief_of, read_jsonl, reference_completion, sample


def load_briefs(path: str | Path, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded sample of ``n`` rows of a briefs / examples file (the same rows for any model)."""
    return sample(read_jsonl(path), n, seed)


def perplexity_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as perplexity needs them: the prompt messages and the reference reply."""
    out = []
    for r in rows:
        ref = reference_completion(r)
        if ref is None:
            continue
        if "messages" in r:
            msgs = r["messages"]
        else:
            brief, brand = brief_of(r)
            msgs = brief.messages(brand)
        out.append({"messages": msgs, "completion": ref})
    return out


def generate_copies(model_dir: str | Path, rows: list[dict[str, Any]], *, max_attempts: int = 2,
                    max_tokens: int = 96, temperature: float = 0.7, seed: int = 0,
                    device: str = "auto", store: Any = None) -> list[dict[str, Any]]:
    """One variant per brief from the model in ``model_dir`` via the real generator (its
    complaint guardrail's models from ``store``, a :class:`~adpilot.artifacts.ModelStore`)."""
    from adpilot.backends.llm import StructuredOutputError, get_backend
    from adpilot.generation import CopyGenerator
    from adpilot.tuning.base import resolve_device

    backend = get_backend("transformers", model_dir=str(model_dir), device=resolve_device(device))
    out = []
    try:
        for r in rows:
            brief, brand = brief_of(r)
            gen = CopyGenerator(backend, brand=brand, cache=False, max_attempts=max_attempts,
                                temperature=temperature, max_tokens=max_tokens, seed=seed,
                                store=store)
            started = time.perf_counter()
            try:
                v = gen.generate(brief.product, brief.audience, brief.channel, brief.lang).variants[0]
                out.append({"id": brief.id, "valid": True, "text": v.text, "passed": v.passed,
                            "violations": [str(r) for r in v.violations], "attempts": v.attempts,
                            "tokens": v.usage.total_tokens,
                            "seconds": round(time.perf_counter() - started, 2)})
            except StructuredOutputError as exc:
                out.append({"id": brief.id, "valid": False, "text": None, "passed": False,
                            "violations": ["no valid JSON"], "attempts": len(exc.attempts),
                            "tokens": exc.usage.total_tokens, "last_reply": exc.attempts[-1].text[:300],
                            "seconds": round(time.perf_counter() - started, 2)})
    finally:
        backend.close()
    return out


def copy_metrics(copies: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Valid-JSON rate, guardrail pass rate, BLEU and ROUGE-L (an invalid brief scores 0)."""
    from adpilot.scoring import text_metrics as tm

    refs = {brief_of(r)[0].id: brief_of(r)[0].references for r in rows}
    bleu, rouge = [], []
    for c in copies:
        ref = refs.get(c["id"]) or []
        ok = c["valid"] and ref
        bleu.append(tm.bleu(c["text"], ref) if ok else 0.0)
        rouge.append(tm.rouge_l(c["text"], ref) if ok else 0.0)
    n = len(copies)
    return {"briefs": n, "valid_json_rate": round(sum(c["valid"] for c in copies) / n, 3),
            "guardrail_pass_rate": round(sum(c["passed"] for c in copies) / n, 3),
            "bleu": round(float(np.mean(bleu)), 4), "rouge_l": round(float(np.mean(rouge)), 4),
            "mean_attempts": round(float(np.mean([c["attempts"] for c in copies])), 2),
            "mean_seconds": round(float(np.mean([c["seconds"] for c in copies])), 2)}


def win_rate(tuned: list[dict[str, Any]], base: list[dict[str, Any]], judge: Any) -> dict[str, Any]:
    """The attractiveness model's verdict per brief, tuned vs base (see the module docstring)."""
    from adpilot.optimization.stats import wilson

    by_id = {c["id"]: c for c in base}
    wins = losses = ties = 0
    both_t, both_b, ids = [], [], []
    for t in tuned:
        b = by_id[t["id"]]
        if t["valid"] and b["valid"]:
            both_t.append(t["text"])
            both_b.append(b["text"])
            ids.append(t["id"])
        elif t["valid"]:
            wins += 1
        elif b["valid"]:
            losses += 1
        else:
            ties += 1
    st = judge.score(both_t) if both_t else np.zeros(0)
    sb = judge.score(both_b) if both_b else np.zeros(0)
    w2, l2 = int(np.sum(st > sb)), int(np.sum(st < sb))
    t2 = len(st) - w2 - l2
    wins, losses, ties = wins + w2, losses + l2, ties + t2

    def rate(w: int, lo: int) -> dict[str, Any]:
        n = w + lo
        if not n:
            return {"rate": None, "ci95": None, "n": 0}
        a, b_ = wilson(np.array([w]), np.array([n]))
        return {"rate": round(w / n, 3), "ci95": [round(float(a[0]), 3), round(float(b_[0]), 3)],
                "n": n}

    prob = 1 / (1 + np.exp(-(st - sb))) if len(st) else np.zeros(0)
    return {"wins": wins, "losses": losses, "ties": ties, "win_rate": rate(wins, losses),
            "both_valid": {"briefs": len(st), "wins": w2, "losses": l2, "ties": t2,
                           "win_rate": rate(w2, l2),
                           "mean_p_tuned_beats_base": round(float(prob.mean()), 3) if len(prob) else None},
            "per_brief": [{"id": i, "score_tuned": round(float(x), 4), "score_base": round(float(y), 4)}
                          for i, x, y in zip(ids, st, sb, strict=True)]}


def load_judge(folder: str | Path | None = None, *, store: Any = None):
    """The attractiveness model in ``folder``, else in ``store`` (a
    :class:`~adpilot.artifacts.ModelStore`; trained by evaluation/attractiveness_eval.py or
    `adpilot attract train`)."""
    from adpilot.errors import NotFoundError
    from adpilot.scoring.attractiveness import AttractivenessModel, default_model_dir, is_saved

    if folder is None and store is None:
        raise TypeError("load_judge needs the model's folder or store=")
    folder = Path(folder or default_model_dir(store))
    if not is_saved(folder):
        raise NotFoundError(f"no attractiveness model in {folder}: train it with "
                            "adpilot attract train --data <upworthy csv> --before-week 201430")
    return AttractivenessModel.load(folder)


def evaluate_models(model: str | Path, base: str | Path, briefs: str | Path, *, n: int = 50,
                    ppl_n: int = 100, max_attempts: int = 2, max_tokens: int = 96,
                    temperature: float = 0.7, seed: int = 0, device: str = "auto",
                    judge_dir: str | Path | None = None,
                    store: Any = None) -> dict[str, Any]:
    """Everything in the module docstring for ``model`` (tuned) against ``base``; ``store``:
    the :class:`~adpilot.artifacts.ModelStore` holding the converted base, the judge and the
    complaint guardrail's models."""
    from adpilot.tuning.base import resolve_base
    from adpilot.tuning.train import perplexity

    base_dir = resolve_base(base, store=store)
    rows = load_briefs(briefs, max(n, ppl_n), seed=seed)
    ppl_in = perplexity_rows(rows[:ppl_n])
    ppl = {"base": perplexity(base_dir, ppl_in, device=device),
           "tuned": perplexity(model, ppl_in, device=device)}
    gen_rows = rows[:n]
    settings = {"max_attempts": max_attempts, "max_tokens": max_tokens,
                "temperature": temperature, "seed": seed, "device": device}
    copies = {"base": generate_copies(base_dir, gen_rows, **settings, store=store),
              "tuned": generate_copies(model, gen_rows, **settings, store=store)}
    judged = win_rate(copies["tuned"], copies["base"], load_judge(judge_dir, store=store))
    metrics = {k: copy_metrics(v, gen_rows) for k, v in copies.items()}
    summary = {"perplexity_base": ppl["base"]["perplexity"],
               "perplexity_tuned": ppl["tuned"]["perplexity"],
               "perplexity_examples": ppl["base"]["examples"],
               **{f"{k}_{m}": v for k, d in metrics.items() for m, v in d.items() if m != "briefs"},
               "briefs": len(gen_rows), "win_rate": judged["win_rate"],
               "win_rate_both_valid": judged["both_valid"]["win_rate"],
               "mean_p_tuned_beats_base": judged["both_valid"]["mean_p_tuned_beats_base"]}
    return {"model": str(model), "base": str(base), "base_dir": str(base_dir),
            "briefs_file": str(briefs), "settings": {**settings, "n": n, "ppl_n": ppl_n},
            "summary": summary, "perplexity": ppl, "metrics": metrics, "judge": judged,
            "copies": copies}
