"""Who the copy is for (a segment or one user) and what is known about the product."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adpilot.data.records import Product

ASPECT_THRESHOLD = 0.2  # |mean opinion| above this counts as liked / disliked (as in profiles)


class Audience(BaseModel):
    """A segment description or a user profile. Profile rows from :mod:`adpilot.profiling`
    (``summary``, ``top_categories``, ``aspect_<name>`` scores) are accepted as they are.

    ``name`` and other personal fields may be present; they are never put into a prompt.
    """

    model_config = ConfigDict(extra="ignore")
    kind: Literal["segment", "user"] = "segment"
    id: str | None = None
    name: str | None = None
    description: str = ""
    age: str | None = None
    interests: list[str] = Field(default_factory=list)
    likes: list[str] = Field(default_factory=list)      # aspects they are happy with
    dislikes: list[str] = Field(default_factory=list)   # aspects they complained about
    reviews: list[str] = Field(default_factory=list)    # raw snippets; cleaned before prompting

    @model_validator(mode="before")
    @classmethod
    def _from_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        d = dict(data)
        if "user_id" in d and "id" not in d:
            d["id"] = str(d["user_id"])
            d.setdefault("kind", "user")
        if not d.get("description"):
            d["description"] = d.get("summary") or d.get("summary_zh") or ""
        if isinstance(d.get("top_categories"), str) and not d.get("interests"):
            d["interests"] = [c.strip() for c in d["top_categories"].split(",") if c.strip()]
        for key, value in list(d.items()):
            if key.startswith("aspect_") and isinstance(value, int | float):
                aspect = key.removeprefix("aspect_")
                if value > ASPECT_THRESHOLD:
                    d.setdefault("likes", []).append(aspect)
                elif value < -ASPECT_THRESHOLD:
                    d.setdefault("dislikes", []).append(aspect)
        if d.get("age") is not None:
            d["age"] = str(d["age"])
        return d

    def describe(self, lang: str) -> str:
        """One line for the prompt, without personal identifiers."""
        parts = [self.description] if self.description else []
        if lang == "zh":
            if self.age:
                parts.append(f"年龄{self.age}")
            if self.interests:
                parts.append("常买" + "、".join(self.interests))
            if self.likes:
                parts.append("看重" + "、".join(self.likes))
            if self.dislikes:
                parts.append("曾不满意" + "、".join(self.dislikes))
            return "；".join(parts) or "普通顾客"
        if self.age:
            parts.append(f"age {self.age}")
        if self.interests:
            parts.append("buys " + ", ".join(self.interests))
        if self.likes:
            parts.append("values " + ", ".join(self.likes))
        if self.dislikes:
            parts.append("was unhappy with " + ", ".join(self.dislikes))
        return "; ".join(parts) or "general customers"


def product_facts(product: Product, lang: str = "en") -> str:
    """The product record as the list of facts the copy may use (no price line when unknown)."""
    zh = lang == "zh"
    lines = [f"{'名称' if zh else 'name'}: {product.title or product.id}"]
    if product.category:
        lines.append(f"{'品类' if zh else 'category'}: {product.category}")
    if product.price is not None:
        cur = f" {product.currency}" if product.currency else ""
        lines.append(f"{'价格' if zh else 'price'}: {product.price:g}{cur}")
    if product.description:
        lines.append(f"{'描述' if zh else 'description'}: {product.description}")
    lines += [f"{k}: {v}" for k, v in product.attributes.items() if v not in (None, "")]
    return "\n".join(lines)
