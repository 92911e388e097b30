"""The best variant is one that passed its guardrails, or the result says none did; and the
scorecard's compliance agrees with the guardrails (issue 17 item 10).

The LLM is the one external part: ``ScriptedLLM`` is a real class implementing the backend
interface that replies with the next given copy; prompts, guardrails, the re-ask loop and the
scorecard are the real ones."""

from __future__ import annotations

import json
from collections.abc import Sequence

from adpilot.backends.llm import Completion, GenerationParams, LLMBackend, Message, Usage
from adpilot.data.records import Product
from adpilot.generation import Audience, CopyGenerator
from adpilot.scoring.scorecard import Scorecard

PRODUCT = Product(id="p1", title="Linen shirt", category="Tops",
                  description="breathable linen, relaxed fit")  # no price: a price claim fails
FAILS = "Only $9 today, the best shirt ever!"  # a price not in the record and a superlative
PASSES = "Breathable linen shirt with a relaxed fit for warm summer days."


class ScriptedLLM(LLMBackend):
    name = "scripted"

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies, self.calls = list(replies), 0

    @property
    def model_id(self) -> str:
        return "scripted"

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        text = json.dumps({"text": self.replies[min(self.calls, len(self.replies) - 1)]})
        self.calls += 1
        return Completion(text, Usage(10, len(text) // 4), 0.01, "scripted")


def generate(replies, **kw):
    gen = CopyGenerator(ScriptedLLM(replies), cache=False, max_attempts=1,
                        scorecard=Scorecard(embedder="lsa"))
    return gen, gen.generate(PRODUCT, Audience(description="summer shoppers"), "sms", "en", **kw)


def test_no_variant_passed_means_no_best_and_a_clear_message():
    _, result = generate([FAILS], n=2)
    assert [v.passed for v in result.variants] == [False, False]
    assert result.best is None
    out = result.as_dict()
    assert out["passed"] is False and out["best"] is None
    assert out["message"].startswith("none of the 2 variants passed the guardrails")
    assert "facts" in out["message"]  # the guardrails that objected


def test_a_passing_variant_comes_first_without_best_of():
    _, result = generate([FAILS, PASSES], n=2)  # the model's first variant fails
    assert [v.passed for v in result.variants] == [True, False]
    assert result.best is result.variants[0] and result.variants[0].text.startswith("Breathable")
    out = result.as_dict()
    assert out["passed"] is True and out["best"] == 0 and "1 of 2" in out["message"]


def test_ranked_scorecard_compliance_agrees_with_the_guardrails():
    """What /v1/generate does after generating: rank the variants with the scorecard. A
    variant the guardrails rejected scored compliance 1.0 ("no guardrails given") before."""
    gen, result = generate([FAILS, PASSES], n=2)
    ranked = gen.rank(result.variants, PRODUCT, Audience(description="summer shoppers"), "en")
    assert ranked[0].passed and ranked[0].scores["compliance"] == 1.0
    rejected = ranked[1]
    assert not rejected.passed
    assert rejected.scores["compliance"] == 0.0 and rejected.scores["overall"] == 0.0


def test_all_rejected_best_of_n_keeps_none_as_best():
    _, result = generate([FAILS], n=1, best_of=3)
    assert result.candidates == 3 and len(result.variants) == 1
    assert result.best is None and result.as_dict()["best"] is None
    assert result.variants[0].scores["compliance"] == 0.0


def test_scorecard_takes_known_violations():
    card = Scorecard(embedder="lsa").score([PASSES, FAILS], violations=[[], ["price claim"]])
    assert card["compliance"].tolist() == [1.0, 0.0]
    assert card.loc[1, "why_compliance"] == "price claim" and card.loc[1, "overall"] == 0
    assert card.loc[0, "why_compliance"] == "passes all guardrails"
