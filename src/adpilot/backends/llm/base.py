"""The provider-neutral LLM contract, the backend registry and the structured-output loop.

A backend turns chat messages into a :class:`Completion` (text, token usage, seconds). Everything
above it (prompts, guardrails, caching, re-asking) is backend-independent: :func:`structured`
parses the text into a pydantic model, feeds validation errors back, and raises
:class:`StructuredOutputError` with every attempt and the token usage when it still fails.
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from adpilot.errors import ConfigError, StructuredOutputError
from adpilot.errors import LLMError as LLMError  # re-exported: defined in adpilot.errors
from adpilot.registry import Registry

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class Usage:
    """Token counts; ``+`` adds them up across calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage:
        """The counts of an OpenAI-style ``usage`` object (``prompt_tokens``,
        ``completion_tokens``); a missing object or field counts as 0."""
        usage = usage or {}
        return cls(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens)

    def as_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt_tokens, "completion": self.completion_tokens,
                "total": self.total_tokens}


@dataclass
class Completion:
    """One model reply."""

    text: str
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    model: str = ""
    cached: bool = False


@dataclass
class Attempt:
    """One try of the structured loop: the raw reply and why it was rejected (None = accepted)."""

    text: str
    error: str | None
    usage: Usage


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings shared by every backend."""

    max_tokens: int = 256
    temperature: float = 0.7
    seed: int | None = 0
    json_schema: dict[str, Any] | None = None  # backends that can constrain output use it

    def __post_init__(self) -> None:
        if not 0 <= self.temperature <= 2:
            raise ConfigError("The 'temperature' parameter of GenerationParams must be a float in "
                              f"[0, 2]. Got {self.temperature}.")
        if self.max_tokens < 1:
            raise ConfigError("The 'max_tokens' parameter of GenerationParams must be an int >= 1. "
                              f"Got {self.max_tokens}.")


class LLMBackend(ABC):
    """Contract every backend fulfils. ``remote`` backends send prompts off this machine, so the
    generator masks personal data before calling them and checks the prompt afterwards."""

    name: str = "?"
    remote: bool = False

    @property
    def model_id(self) -> str:
        """Identifies the weights, so caches never mix outputs of different models."""
        return self.name

    @abstractmethod
    def complete(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """One chat completion."""

    def complete_many(self, batch: Sequence[Sequence[Message]],
                      params: GenerationParams) -> list[Completion]:
        """Several independent completions; servers override this to run them concurrently."""
        return [self.complete(m, params) for m in batch]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model memory or connections."""


# --- registry ---------------------------------------------------------------------------------

BackendFactory = Callable[..., LLMBackend]


def _load_builtin() -> None:
    # importing the modules runs their @register_backend; they import heavy libraries lazily
    from adpilot.backends.llm import hf, llamacpp, llamacpp_python, openai_compat  # noqa: F401


_BACKENDS: Registry[BackendFactory] = Registry("LLM backend", load=_load_builtin)
register_backend = _BACKENDS.register      # class decorator: available to get_backend by name
unregister_backend = _BACKENDS.unregister
available_backends = _BACKENDS.names


def get_backend(name: str, **options: Any) -> LLMBackend:
    """Build the backend registered as ``name`` with its constructor ``options``."""
    return _BACKENDS.build(name, **options)


# --- structured output ------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> Any:
    """The first JSON object in a reply, tolerating code fences and chatter around it."""
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start = candidate.find("{")
    if start < 0:
        raise ValueError("no JSON object in the reply")
    # strict=False: raw newlines inside strings are common in model output (and grammars allow them)
    obj, _ = json.JSONDecoder(strict=False).raw_decode(candidate[start:])
    return obj


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}"
                     for e in exc.errors())


@dataclass
class StructuredResult(Generic[M]):
    value: M
    attempts: list[Attempt]
    usage: Usage
    seconds: float
    cached: bool = False


Checker = Callable[[Any], list[str]]
Caller = Callable[[list[Message]], Completion]


def structured(call: Caller, messages: Sequence[Message], schema: type[M], *,
               max_attempts: int = 3, check: Checker | None = None,
               reask: Callable[[str], str] | None = None) -> StructuredResult[M]:
    """Ask until the reply parses into ``schema`` and ``check(value)`` returns no reasons.

    Each rejected reply goes back to the model with its error (``reask`` words the message).
    JSON or schema errors that persist raise :class:`StructuredOutputError`; a reply that parses
    but still fails ``check`` after the last attempt is returned (the caller reports its reasons).
    """
    if max_attempts < 1:
        raise ConfigError(f"The 'max_attempts' parameter of structured must be an int >= 1. "
                          f"Got {max_attempts}.")
    reask = reask or (lambda err: f"Your reply was rejected: {err}\nReply again with only the "
                                  "corrected JSON object.")
    convo = list(messages)
    attempts: list[Attempt] = []
    usage, started, cached = Usage(), time.perf_counter(), True
    best: M | None = None
    for _ in range(max_attempts):
        reply = call(convo)
        usage += reply.usage
        cached = cached and reply.cached
        try:
            value = schema.model_validate(extract_json(reply.text))
        except ValidationError as exc:
            error = f"invalid fields: {_describe(exc)}"
        except ValueError as exc:  # JSONDecodeError is a ValueError
            error = f"not valid JSON ({exc})"
        else:
            best = value
            reasons = check(value) if check else []
            error = "; ".join(reasons) or None
        attempts.append(Attempt(reply.text, error, reply.usage))
        if error is None:
            break
        convo += [Message("assistant", reply.text), Message("user", reask(error))]
    if best is None:
        raise StructuredOutputError(f"no valid {schema.__name__} from the model",
                                    attempts=attempts, usage=usage)
    return StructuredResult(best, attempts, usage, time.perf_counter() - started, cached)
