"""Personalisation at scale.

``segment`` mode: the LLM writes one variant per (segment, product, channel); each user then gets
that copy with grounded slots filled from their own records: the product chosen for them and the
aspect they cared about in their reviews. LLM calls grow with segments × products, not users.
``per_user`` mode: one LLM generation per user (small audiences, or a batching GPU server).
``auto`` picks per-user when the audience is small or the backend is a remote server.
Every final message goes through the guardrails again; a personalised text that breaks a limit
falls back to the segment copy.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from adpilot.backends.llm.base import StructuredOutputError
from adpilot.data.records import Product
from adpilot.errors import ConfigError
from adpilot.generation.audience import Audience
from adpilot.generation.channels import channel_spec
from adpilot.generation.generator import CopyGenerator, CopyVariant
from adpilot.generation.guardrails import GuardContext, Violation, check_copy
from adpilot.generation.prompts import prompt_config
from adpilot.profiling.aspects import aspect_labels

Mode = Literal["auto", "segment", "per_user"]
SMALL_AUDIENCE = 20  # at or below this many users, per-user generation is affordable locally
NO_SLOTS = {"search_ad"}  # search ads answer a query, not a person


@dataclass(frozen=True)
class UserTarget:
    """One recipient: their segment, the product picked for them, the aspect they care about."""

    user_id: str
    segment: str
    product_id: str
    aspect: str | None = None  # an aspect key (fit, quality, …) from their profile


@dataclass
class PersonalMessage:
    user_id: str
    product_id: str
    channel: str
    fields: dict[str, str]
    violations: list[Violation]
    mode: str
    personalised: bool

    @property
    def passed(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "product_id": self.product_id, "channel": self.channel,
                "text": "\n".join(self.fields.values()), "fields": self.fields,
                "violations": [str(v) for v in self.violations], "passed": self.passed, "mode": self.mode,
                "personalised": self.personalised}


@dataclass
class PersonalisationRun:
    messages: list[PersonalMessage]
    mode: str
    llm_variants: int
    tokens: int
    seconds: float
    llm_seconds: float
    fill_seconds: float
    variants: dict[tuple[str, str], CopyVariant] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        n = len(self.messages)
        return {"messages": n, "mode": self.mode, "llm_variants": self.llm_variants,
                "tokens": self.tokens, "seconds": round(self.seconds, 3),
                "llm_seconds": round(self.llm_seconds, 3), "fill_seconds": round(self.fill_seconds, 4),
                "passed": sum(m.passed for m in self.messages),
                "personalised": sum(m.personalised for m in self.messages),
                "messages_per_hour": round(n / self.seconds * 3600) if self.seconds else None}


def top_aspect(profile: dict[str, Any]) -> str | None:
    """The aspect a user talked about most (``mentions_<aspect>`` columns of a profile row)."""
    counts = {k.removeprefix("mentions_"): v for k, v in profile.items()
              if k.startswith("mentions_") and isinstance(v, int | float) and v > 0}
    return max(counts, key=counts.get) if counts else None


def fill_slots(fields: dict[str, str], channel: str, lang: str, target: UserTarget,
               product: Product) -> dict[str, str] | None:
    """The segment copy with this user's grounded opener, or None when there is nothing to add."""
    if channel in NO_SLOTS or not target.aspect:
        return None
    label = aspect_labels(lang).get(target.aspect)
    if not label:
        return None
    template = prompt_config("slots.yaml")["opener"][lang]
    if not template:
        return None
    opener = template.format(aspect=label, product=product.title or product.id)
    main = channel_spec(channel, lang).main_field
    return {**fields, main: opener + fields[main]}


def _safe_variant(generator: CopyGenerator, product: Product, audience: Audience,
                  spec) -> CopyVariant:
    """A model that never produced valid JSON fails this message, not the whole campaign."""
    try:
        return generator.variant(product, audience, spec)
    except StructuredOutputError as exc:
        return CopyVariant({f: "" for f in spec.fields}, [f"structured: {exc}"],
                           len(exc.attempts), exc.usage, 0.0)


class Personaliser:
    """Write messages for many users with one :class:`CopyGenerator`."""

    def __init__(self, generator: CopyGenerator, *, small_audience: int = SMALL_AUDIENCE) -> None:
        self.generator = generator
        self.small_audience = small_audience

    def choose_mode(self, n_users: int, mode: Mode) -> str:
        if mode not in ("auto", "segment", "per_user"):
            raise ConfigError(f"unknown personalisation mode {mode!r}; use auto, segment or per_user")
        if mode != "auto":
            return mode
        return "per_user" if n_users <= self.small_audience or self.generator.backend.remote \
            else "segment"

    def run(self, targets: Iterable[UserTarget], products: dict[str, Product],
            segments: dict[str, Audience], channel: str, lang: str, *,
            users: dict[str, Audience] | None = None, mode: Mode = "auto") -> PersonalisationRun:
        """Messages for every target. ``segments`` describes each segment; ``users`` (per-user
        mode) holds each user's own audience record, falling back to their segment's."""
        targets = list(targets)
        chosen = self.choose_mode(len(targets), mode)
        spec = channel_spec(channel, lang)
        brand = self.generator.brand
        started = time.perf_counter()
        variants: dict[tuple[str, str], CopyVariant] = {}
        messages: list[PersonalMessage] = []
        llm_seconds = fill_seconds = 0.0
        for t in targets:
            if t.product_id not in products:
                raise ConfigError(f"user {t.user_id}: product {t.product_id!r} is not in the catalogue")
            if chosen == "segment" and t.segment not in segments:
                raise ConfigError(f"user {t.user_id}: segment {t.segment!r} has no description")
        if chosen == "per_user":
            def one(t: UserTarget) -> CopyVariant:
                audience = (users or {}).get(t.user_id) or segments[t.segment]
                return _safe_variant(self.generator, products[t.product_id], audience, spec)
            tick = time.perf_counter()
            for t, v in zip(targets, self.generator.map(one, targets), strict=True):
                variants[(t.user_id, t.product_id)] = v
                messages.append(PersonalMessage(t.user_id, t.product_id, channel, v.fields,
                                                v.violations, chosen, True))
            llm_seconds = time.perf_counter() - tick
            targets = []
        pairs = sorted({(t.segment, t.product_id) for t in targets})
        tick = time.perf_counter()
        variants.update(zip(pairs, self.generator.map(
            lambda key: _safe_variant(self.generator, products[key[1]], segments[key[0]], spec),
            pairs),
            strict=True))
        llm_seconds += time.perf_counter() - tick
        tick = time.perf_counter()
        for t in targets:
            product = products[t.product_id]
            base = variants[(t.segment, t.product_id)]
            filled = fill_slots(base.fields, channel, lang, t, product)
            msg = PersonalMessage(t.user_id, t.product_id, channel, base.fields, base.violations,
                                  chosen, False)
            if filled is not None:
                ctx = GuardContext(spec, brand, facts="")  # the opener adds no claims; limits may
                if not check_copy(filled, ctx, only=["length", "language"]):
                    msg = PersonalMessage(t.user_id, t.product_id, channel, filled, base.violations,
                                          chosen, True)
            messages.append(msg)
        fill_seconds = time.perf_counter() - tick
        tokens = sum(v.usage.total_tokens for v in variants.values() if not v.cached)
        return PersonalisationRun(messages, chosen, len(variants), tokens,
                                  time.perf_counter() - started, llm_seconds, fill_seconds, variants)
