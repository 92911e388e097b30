"""The guardrail contract: what copy is checked against (:class:`GuardContext`), the registry
(:data:`GUARDRAILS`, :func:`register_guardrail`) and :func:`check_copy`, which runs it.

The built-in checks, and how to add one, are in :mod:`adpilot.generation.guardrails`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.violation import Violation

Fields = dict[str, str]


@dataclass
class GuardContext:
    """What the copy is checked against."""

    spec: ChannelSpec
    brand: BrandKit
    facts: str = ""                                     # the product record as text
    sensitive: list[str] = field(default_factory=list)  # PII removed from the inputs
    injected: list[str] = field(default_factory=list)   # instruction spans removed from reviews
    reviews: list[str] = field(default_factory=list)    # review snippets shown to the model
    audience: list[str] = field(default_factory=list)   # segment traits the copy must not restate
    shots: list[str] = field(default_factory=list)      # few-shot example texts (never copied)
    borrowed: list[str] = field(default_factory=list)   # examples' facts this record lacks
    # the ModelStore of the complaint classifiers (None: the stated lexical complaint check)
    store: Any = None

    @property
    def lang(self) -> str:
        return self.spec.lang


Guardrail = Callable[[Fields, GuardContext], Sequence[str | Violation]]
GUARDRAILS: dict[str, Guardrail] = {}


def register_guardrail(name: str) -> Callable[[Guardrail], Guardrail]:
    """Decorator: add ``fn`` to :data:`GUARDRAILS` under ``name`` (see :mod:`adpilot.generation.guardrails`).
    A name already taken by another function is an error, so a check never silently replaces
    one; re-importing the same module is not."""
    def deco(fn: Guardrail) -> Guardrail:
        old = GUARDRAILS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"guardrail {name!r} is already registered by "
                             f"{old.__module__}.{old.__qualname__}; choose another name")
        GUARDRAILS[name] = fn
        return fn
    return deco


guardrail = register_guardrail  # the name the built-in checks use


def check_copy(fields: Fields, ctx: GuardContext, *,
               only: list[str] | None = None) -> list[Violation]:
    """Every reason the copy fails, as :class:`Violation` objects named by their guardrail."""
    out = []
    for name, fn in GUARDRAILS.items():
        if only is None or name in only:
            out += [dataclasses.replace(r, check=name) if isinstance(r, Violation)
                    else Violation(name, r) for r in fn(fields, ctx)]
    return out


def all_text(fields: Fields) -> str:
    """Every field's text, one per line (what most checks search)."""
    return "\n".join(fields.values())
