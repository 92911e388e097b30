"""Copy generation: prompt → model → validated JSON → guardrails → re-ask → variants.

Every variant reports its violations (empty when it passed every guardrail), attempts, tokens
and seconds. A model that never produces valid JSON raises
:class:`~adpilot.backends.llm.StructuredOutputError` with the attempts and token usage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from adpilot.backends.llm import (
    DEFAULT_BACKEND,
    Completion,
    GenerationParams,
    LLMBackend,
    LLMError,
    Message,
    Usage,
    get_backend,
    structured,
)
from adpilot.data.records import Product
from adpilot.errors import ConfigError
from adpilot.generation.audience import Audience
from adpilot.generation.brand import BrandKit, load_brand
from adpilot.generation.cache import PromptCache
from adpilot.generation.channels import ChannelSpec, channel_spec
from adpilot.generation.copy_checks import with_cta
from adpilot.generation.copy_tidy import tidy
from adpilot.generation.examples import ExampleBank
from adpilot.generation.fewshot import ShotLibrary, borrowed_facts
from adpilot.generation.finalize import closed_fields, finalize
from adpilot.generation.grounding import with_facts
from adpilot.generation.guardrails import (
    GuardContext,
    Violation,
    check_copy,
    drop_failing_sentences,
)
from adpilot.generation.headlines import headline_examples, headline_runs, with_headline_examples
from adpilot.generation.plan import make_plan
from adpilot.generation.prompts import Prompt, build_prompt, reask_message, target
from adpilot.generation.safety import contains_value, find_pii


@dataclass
class CopyVariant:
    """One piece of copy. ``text`` joins the fields; ``passed`` means no guardrail objected."""

    fields: dict[str, str]
    violations: list[Violation]
    attempts: int
    usage: Usage
    seconds: float
    cached: bool = False
    closed: list[str] = field(default_factory=list)  # fields cut at the cap and closed by us
    dropped: list[str] = field(default_factory=list)  # sentences removed by the automatic edit
    scores: dict[str, float] = field(default_factory=dict)  # set when ranked (best-of-N)

    @property
    def passed(self) -> bool:
        return not self.violations

    @property
    def text(self) -> str:
        return "\n".join(self.fields.values())

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "fields": self.fields, "violations": [str(v) for v in self.violations],
                "passed": self.passed, "attempts": self.attempts, "tokens": self.usage.as_dict(),
                "seconds": round(self.seconds, 3), "cached": self.cached, "closed": self.closed,
                "dropped": self.dropped, **({"scores": self.scores} if self.scores else {})}


@dataclass
class GenerationResult:
    variants: list[CopyVariant]
    backend: str
    channel: str
    lang: str
    seconds: float
    usage: Usage = field(default_factory=Usage)

    candidates: int = 0  # variants written before keeping the best (best-of-N)

    @property
    def best(self) -> CopyVariant | None:
        """The variant to use: the first that passed every guardrail (variants are kept in
        that order), or None when none did: never a rejected copy."""
        return next((v for v in self.variants if v.passed), None)

    def message(self) -> str:
        """One line on the outcome: which variant to use, or why there is none."""
        if self.best is not None:
            return f"{sum(v.passed for v in self.variants)} of {len(self.variants)} variants " \
                   "passed the guardrails; the best is variants[0]"
        reasons = dict.fromkeys(r.check for v in self.variants for r in v.violations)
        return (f"none of the {len(self.variants)} variants passed the guardrails "
                f"({', '.join(list(reasons)[:5])}): no copy to use; ask again, or change the "
                "product record, audience or brand kit")

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {"variants": [v.as_dict() for v in self.variants],
                "passed": best is not None,
                "best": self.variants.index(best) if best is not None else None,
                "message": self.message(), "backend": self.backend,
                "channel": self.channel, "lang": self.lang, "tokens": self.usage.as_dict(),
                "seconds": round(self.seconds, 3), "candidates": self.candidates or len(self.variants)}


def passing_first(variants: list[CopyVariant]) -> list[CopyVariant]:
    """``variants`` with those that passed every guardrail first, each group in its order."""
    return sorted(variants, key=lambda v: not v.passed)


# characters no copy needs and a small model writes when it drifts into a letter template or
# markup: tags and placeholders (<Your name>, <br>, <review>, [Company]), braces, markdown
# emphasis; in English copy also CJK characters and punctuation ("A Warm and自信" in a subject)
_NO_COPY_CHARS = {"en": r"<>{}\[\]*\\\u3000-\u9fff\uff00-\uffef", "zh": r"<>{}\[\]*\\"}


def output_schema(spec: ChannelSpec, brand: BrandKit) -> dict[str, Any]:
    """JSON schema sent to the backend: the reply model plus each field's target length and the
    characters copy never needs (:data:`_NO_COPY_CHARS`), which grammar-constrained backends
    (llama.cpp, OpenAI's strict structured output) enforce while sampling: no run-away copy, no
    placeholder to reject and re-ask afterwards, and fewer tokens to pay for."""
    schema = spec.schema().model_json_schema()
    for name, prop in schema["properties"].items():
        prop["maxLength"] = target(spec, brand, name)
        prop["pattern"] = f"^[^{_NO_COPY_CHARS[spec.lang]}]*$"
    return schema


# characters per generated token (Qwen2.5's tokenizer, measured on our copy: ~3.5 for English,
# ~1.3 for Chinese), with room to spare; plus the JSON around each field
_CHARS_PER_TOKEN = {"en": 3.0, "zh": 1.0}


def max_tokens_for(spec: ChannelSpec, brand: BrandKit) -> int:
    """Tokens one reply can need at most: a cap for backends that cannot enforce the schema."""
    chars = sum(target(spec, brand, f) for f in spec.fields)
    return int(chars / _CHARS_PER_TOKEN[spec.lang]) + 12 * len(spec.fields) + 8


class CopyGenerator:
    """Generate copy with any registered backend.

    ``backend`` is a backend object or a registered name; ``cache`` is a :class:`PromptCache`
    or its folder (a shell passes ``Settings.llm_cache_dir``); None or False: no cache.
    ``on_message(variant)`` is called after each variant (logging, cost accounting). With
    ``examples`` (an :class:`ExampleBank`), the best ``n_examples`` winning copies of the same
    channel and language go into the prompt.
    With ``best_of`` > 1, that many candidates are written and the best kept (see :meth:`generate`).
    ``shots`` maps a language to a :class:`~adpilot.generation.fewshot.ShotLibrary`: the
    ``n_shots`` examples nearest to each product go into its prompt (retrieved few-shot).
    ``plan=True`` asks for a plan (facts, angle, call to action) before each copy
    (:mod:`.plan`); ``headlines`` (:func:`~adpilot.generation.headlines.upworthy_library`)
    adds winning headlines to English subject and headline prompts.
    ``store`` (a shell passes ``ModelStore.from_settings(settings)``) holds the trained models
    the checks and the ranking load: the complaint classifiers, the attractiveness model and
    the fluency references; None: their stated fallbacks.
    """

    def __init__(self, backend: LLMBackend | str = DEFAULT_BACKEND, *, brand: BrandKit | None = None,
                 cache: PromptCache | str | Path | bool | None = None, max_attempts: int = 3,
                 temperature: float = 0.7, max_tokens: int = 320, seed: int = 0,
                 on_message: Callable[[CopyVariant], None] | None = None,
                 examples: ExampleBank | None = None, n_examples: int = 3,
                 best_of: int = 1, scorecard: Any = None,
                 shots: dict[str, ShotLibrary] | None = None, n_shots: int = 2,
                 plan: bool = False, headlines: ShotLibrary | None = None,
                 store: Any = None) -> None:
        if max_attempts < 1:
            raise ConfigError(f"The 'max_attempts' parameter of CopyGenerator must be an int >= 1. "
                              f"Got {max_attempts}.")
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.brand = brand or load_brand()
        if cache is True:
            raise ConfigError("The 'cache' parameter of CopyGenerator must be a PromptCache, its "
                              "folder, or None/False for no cache. Got True.")
        self.cache = PromptCache(cache) if isinstance(cache, (str, Path)) else (cache or None)
        self.max_attempts, self.seed = max_attempts, seed
        GenerationParams(max_tokens=max_tokens, temperature=temperature)  # validates early
        self.temperature, self.max_tokens = temperature, max_tokens
        self.on_message = on_message
        self.examples, self.n_examples = examples, n_examples
        self.shots, self.n_shots = shots or {}, n_shots
        self.plan, self.headlines = plan, headlines
        if best_of < 1:
            raise ConfigError(f"The 'best_of' parameter of CopyGenerator must be an int >= 1. "
                              f"Got {best_of}.")
        self.best_of, self.store = best_of, store
        self._scorecard = scorecard  # a Scorecard; built on first use (loads small models)

    def _call(self, convo: list[Message], params: GenerationParams,
              sensitive: list[str]) -> Completion:
        if self.backend.remote:
            self._check_outgoing(convo, sensitive)
        if self.cache is not None:
            return self.cache.complete(self.backend, convo, params)
        return self.backend.complete(convo, params)

    @staticmethod
    def _check_outgoing(convo: list[Message], sensitive: list[str]) -> None:
        """Masking happened when the prompt was built; this is the check after it."""
        text = "\n".join(m.content for m in convo if m.role != "assistant")  # ours, not the model's
        leaks = find_pii(text) + [v for v in sensitive if contains_value(text, v)]
        if leaks:
            raise LLMError(f"refusing to send personal data to the remote backend: {leaks[:3]}")

    def generate(self, product: Product, audience: Audience, channel: str, lang: str, *,
                 n: int = 1, best_of: int | None = None) -> GenerationResult:
        """``n`` variants of copy for ``product`` × ``audience`` on ``channel`` in ``lang``.

        With ``best_of`` > ``n`` (default: the generator's ``best_of``), that many candidates
        are written and the ``n`` best by the scorecard are kept: those that pass every
        guardrail first, then the highest overall score (attractiveness learnt from A/B
        outcomes weighs most). Each kept variant carries its ``scores``."""
        if n < 1:
            raise ConfigError(f"The 'n' parameter of CopyGenerator.generate must be an int >= 1. Got {n}.")
        spec = channel_spec(channel, lang)
        started = time.perf_counter()
        k = max(n, best_of if best_of is not None else self.best_of)
        variants = self.map(lambda i: self.variant(product, audience, spec, i), range(k))
        total = sum((v.usage for v in variants), Usage())
        # ranked (best-of-N) or not, variants[0] is never a rejected copy when one passed
        variants = (self.rank(variants, product, audience, lang)[:n] if k > n
                    else passing_first(variants))
        return GenerationResult(variants, self.backend.model_id, channel, lang,
                                time.perf_counter() - started, total, candidates=k)

    def rank(self, variants: list[CopyVariant], product: Product, audience: Audience,
             lang: str) -> list[CopyVariant]:
        """Best first by the scorecard (guardrail passes first), each with its ``scores``."""
        from adpilot.scoring.scorecard import WEIGHTS, Scorecard

        if self._scorecard is None:
            from adpilot.scoring.attractiveness import load_default_model

            self._scorecard = Scorecard(attractiveness=load_default_model(store=self.store),
                                        store=self.store)
        card = self._scorecard.score([v.text for v in variants], lang=lang,
                                     product=product.model_dump(mode="json"),
                                     audience=audience.model_dump(mode="json"),
                                     violations=[[str(r) for r in v.violations] for v in variants])
        for v, (_, row) in zip(variants, card.iterrows(), strict=True):
            v.scores = {k: round(float(row[k]), 4) for k in ("overall", "compliance", *WEIGHTS)
                        if k in row and row[k] == row[k]}  # skip NaN
        order = sorted(range(len(variants)), key=lambda i: (
            not variants[i].passed, -card["overall"].iloc[i]))
        return [variants[i] for i in order]

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(x) for x in items]``, concurrently up to the backend's ``concurrency`` (servers
        batch parallel requests; in-process backends run one at a time anyway)."""
        items = list(items)
        workers = min(getattr(self.backend, "concurrency", 1), len(items))
        if workers <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    def variant(self, product: Product, audience: Audience, spec: ChannelSpec,
                index: int = 0) -> CopyVariant:
        """One variant: render the prompt, ask until the JSON validates and the guardrails pass
        (or attempts run out), and report what is still wrong. If the model kept pasting a
        review, one more round runs without showing it the reviews (the audience description
        still steers the copy)."""
        out = self._one_variant(product, audience, spec, index)
        if audience.reviews and any(v.check == "quotes" for v in out.violations):
            retry = self._one_variant(product, audience.model_copy(update={"reviews": []}),
                                      spec, index)
            retry.attempts += out.attempts
            retry.usage = retry.usage + out.usage
            retry.seconds += out.seconds
            out = retry if retry.passed else out
        if self.on_message:
            self.on_message(out)
        return out

    def _one_variant(self, product: Product, audience: Audience, spec: ChannelSpec,
                     index: int) -> CopyVariant:
        """One variant: render the prompt, ask until the JSON validates and the guardrails pass
        (or attempts run out), and report what is still wrong."""
        shots = self.examples.top(spec.channel, spec.lang, self.n_examples) if self.examples else []
        library = self.shots.get(spec.lang)
        near = library.nearest(product, self.n_shots, exclude=product.id) if library else []
        prompt: Prompt = build_prompt(product, audience, spec, self.brand, variant=index,
                                      examples=shots, shots=near)
        near = near if len(spec.fields) == 1 else []  # an example has one text (shot_turns)
        heads = headline_examples(self.headlines, product, spec, self.brand, self.n_shots)
        with_headline_examples(prompt, heads, spec)  # winning headlines (English subjects)
        ctx = GuardContext(spec, self.brand, facts=prompt.facts, sensitive=prompt.sensitive,
                           injected=prompt.injected, reviews=prompt.reviews,
                           audience=prompt.audience, shots=[s.text for s in near] + heads,
                           borrowed=borrowed_facts(near, prompt.facts) + headline_runs(heads),
                           store=self.store)
        schema = spec.schema()
        params = GenerationParams(max_tokens=min(self.max_tokens, max_tokens_for(spec, self.brand)),
                                  temperature=self.temperature,
                                  seed=self.seed + index, json_schema=output_schema(spec, self.brand))
        def edited(value: BaseModel) -> tuple[dict[str, str], list[Violation], list[str]]:
            """Finalised fields; if they fail, the copy without its failing sentences when
            that passes every guardrail (one edit instead of another model call); copy with
            no call to action gets the channel's own, copy that leaves out the price or states
            fewer than two record facts gets them from the record (:mod:`.grounding`)."""
            def complete(f: dict[str, str]) -> dict[str, str]:
                return with_facts(with_cta(f, spec, self.brand), spec, self.brand, ctx.facts)

            written = tidy(finalize(value, spec, self.brand, ctx.facts), ctx)
            fields = complete(written)
            violations = check_copy(fields, ctx)
            for clauses in (False, True) if violations else ():  # whole sentences first
                # the model's own sentences are edited, then completed (what it wrote must
                # still state a fact: an edit never leaves only our completion)
                fixed, dropped = drop_failing_sentences(with_cta(written, spec, self.brand), ctx,
                                                        clauses=clauses)
                fixed = complete(fixed)
                if dropped and not check_copy(fixed, ctx):
                    return fixed, [], dropped
            return fields, violations, []

        planned = self.plan and make_plan(  # a plan turn first: facts, angle, call to action
            lambda c, p: self._call(c, p, prompt.sensitive), prompt, product, spec, self.brand,
            temperature=self.temperature, seed=self.seed + index)
        result = structured(
            lambda convo: self._call(convo, params, prompt.sensitive),
            planned.messages if planned else prompt.messages, schema,
            max_attempts=self.max_attempts, check=lambda value: [str(r) for r in edited(value)[1]],
            reask=lambda err: reask_message(err, spec, self.brand))
        fields, violations, dropped = edited(result.value)
        out = CopyVariant(fields, violations, len(result.attempts), result.usage,
                          result.seconds, result.cached,
                          closed_fields(result.value, spec, self.brand, ctx.facts), dropped)
        if planned:  # the plan turn's cost is the variant's
            out.usage, out.seconds = out.usage + planned.usage, out.seconds + planned.seconds
        return out
