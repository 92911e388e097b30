"""Guardrails for copy written elsewhere (``adpilot score``, ``POST /v1/score``).

Copy handed in for scoring has no channel fields and no prompt, so only the content checks
apply: banned claims (China's Advertising Law terms and the brand's words), disparagement,
PII, placeholders, the brand's rules and mixed language always; the facts checks (a number,
colour, material or claim the record lacks) when the product record is given. Channel checks
(length, call to action, opt-out) need the channel's fields and are the generator's.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from adpilot.data.language import detect_one
from adpilot.data.records import Product
from adpilot.errors import InputError
from adpilot.generation.audience import product_facts
from adpilot.generation.brand import BrandKit, load_brand
from adpilot.generation.channels import channel_spec
from adpilot.generation.guardrail_base import GuardContext, check_copy

ALWAYS = ["banned_claims", "disparaging", "pii", "placeholder", "brand", "mixed_language"]
WITH_PRODUCT = ["facts", "unsupported"]


def scorecard_guardrails(product: Product | dict | None = None,
                         brand: BrandKit | None = None) -> list[Callable[[str], list[str]]]:
    """One scorecard guardrail (copy text → its violations as text) running the content checks
    in the copy's own language (English or Chinese, detected per copy)."""
    import adpilot.generation  # noqa: F401  (registers every built-in check)

    if isinstance(product, dict):
        fields = {k: v for k, v in product.items() if k in Product.model_fields and v is not None}
        try:
            product = Product.model_validate(fields)
        except ValidationError as exc:
            raise InputError(f"not a valid product record: {exc}") from None
    kit = brand or load_brand()
    checks = ALWAYS + (WITH_PRODUCT if product is not None else [])
    contexts = {lang: GuardContext(channel_spec("social", lang), kit, facts=product_facts(
        product, lang) if product is not None else "") for lang in ("en", "zh")}

    def check(copy: str) -> list[str]:
        ctx = contexts["zh" if detect_one(copy) == "zh" else "en"]
        return [str(v) for v in check_copy({"text": copy}, ctx, only=checks)]

    return [check]
