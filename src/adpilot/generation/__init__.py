"""Copy generation: prompts per channel × language × brand voice, structured LLM output with
re-asking, guardrails, personalisation at scale. Entry point: :class:`CopyGenerator`."""

from adpilot.generation.audience import Audience, product_facts
from adpilot.generation.brand import BrandKit, load_brand
from adpilot.generation.cache import PromptCache
from adpilot.generation.channels import CHANNELS, LANGUAGES, LIMITS, channel_spec
from adpilot.generation.generator import CopyGenerator, CopyVariant, GenerationResult
from adpilot.generation.guardrails import (
    GUARDRAILS,
    GuardContext,
    Violation,
    check_copy,
    register_guardrail,
)
from adpilot.generation.personalize import Personaliser, UserTarget

# the guardrails of issue 18 (audience, voice, unsupported facts, CTA …), then the openers,
# out-of-place opt-outs and few-shot borrowing that use them, register after the basic ones
from adpilot.generation import copy_checks, copy_tidy  # noqa: E402,F401  isort: skip

__all__ = ["CHANNELS", "GUARDRAILS", "LANGUAGES", "LIMITS", "Audience", "BrandKit", "CopyGenerator",
           "CopyVariant", "GenerationResult", "GuardContext", "Personaliser", "PromptCache",
           "UserTarget", "Violation", "channel_spec", "check_copy", "load_brand", "product_facts",
           "register_guardrail"]
