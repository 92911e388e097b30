"""Who the copy is for (a segment or one user) and what is known about the product."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adpilot.data import columns as C
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
            d[C.ID] = str(d[C.USER_ID])
            d.setdefault("kind", "user")
        if not d.get("description"):
            d[C.DESCRIPTION] = d.get("summary") or d.get("summary_zh") or ""
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
            d[C.AGE] = str(d[C.AGE])
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


# segment traits (profiling.segments) that describe who the customer is: they pick the angle
# and the product, and are never shown to the model as something to say
_WHO = re.compile(r"^(?:older|younger|frequent buyers|few orders|lapsed|recently active|"
                  r"high spenders|low spend|positive reviewers|negative reviewers|"
                  r"write many reviews|rarely review|(?:rarely )?buy .+|年龄偏大|更年轻|购买频繁|"
                  r"购买较少|久未购买|近期活跃|高消费|低消费|评价积极|评价消极|评论多|很少评论|偏好.+|"
                  r"少买.+)$", re.I)
_ASPECT = re.compile(r"^(?:(?:un)?happy with|(?:不)?满意)\s*(.+)$", re.I)
_STATS = re.compile(r"\s*[(（][^)）]*[)）]")


def _traits(description: str) -> list[str]:
    """A segment description ("older: older (avg 45 vs 38); unhappy with fit & size (-0.3 …)")
    as its traits without the figures."""
    text = _STATS.sub("", description)
    parts = re.split(r"[;；]|(?<=\w):\s|：", text)
    return [p.strip() for p in parts if p.strip()]


def audience_angle(audience: Audience, lang: str, product: Product | None = None) -> str:
    """What the copy should speak to, from the audience: aspects they care about and free-text
    interests; never who they are (age, spend, segment traits). With ``product``, only the
    aspects its record has a fact about (a small model otherwise writes "fits perfectly" on a
    thermometer because the segment cares about fit). '' when nothing is left."""
    cares: list[str] = []
    other: list[str] = []
    labels = _aspect_labels(lang)
    for t in _traits(audience.description):
        if m := _ASPECT.match(t):
            cares.append(m.group(1).strip())
        elif not _WHO.match(t):
            other.append(t)
    cares += [labels.get(a, a) for a in audience.likes + audience.dislikes]
    cares = list(dict.fromkeys(cares))
    if product is not None:
        cares = [c for c in cares if product_speaks_to(product, c, lang)]
    sep = "、" if lang == "zh" else ", "
    parts = []
    if cares:
        parts.append(("在意" if lang == "zh" else "they care about ") + sep.join(cares))
    parts += other
    return ("；" if lang == "zh" else "; ").join(parts)


def product_speaks_to(product: Product, aspect: str, lang: str) -> bool:
    """Whether ``product``'s record has a fact about ``aspect`` (its key or its label, e.g.
    "fit" / "fit & size"): a mention from the aspect lexicon in its title, category,
    description or attribute values (not their keys: "pack size" is no fit), or a price for
    the price aspect. An aspect the lexicon does not know is kept."""
    from adpilot.profiling.aspects import lexicon

    labels = _aspect_labels(lang)
    key = next((k for k, label in labels.items()
                if aspect.strip().lower() in (k, label.lower())), None)
    if key is None:
        return True
    if key == "price" and product.price is not None:
        return True
    values = [v for vals in product.attribute_values().values() for v in vals]
    text = " ".join(str(x) for x in [product.title, product.category, product.description,
                                      *values] if x)
    return re.search(lexicon(lang).aspects[key], text.lower()) is not None


def audience_descriptors(audience: Audience) -> list[str]:
    """Trait phrases of a segment the copy must not restate (its name and traits, the age)."""
    terms = [t for t in _traits(audience.description) if _WHO.match(t) or _ASPECT.match(t)]
    return list(dict.fromkeys(terms + ([audience.age] if audience.age else [])))


def _aspect_labels(lang: str) -> dict[str, str]:
    from adpilot.profiling.aspects import aspect_labels

    return aspect_labels(lang)


@lru_cache(maxsize=1)
def _categories() -> dict[str, dict[str, str]]:
    text = (resources.files("adpilot") / "generation" / "prompts" / "categories.yaml").read_text(
        "utf-8")
    return {k.lower(): v for k, v in yaml.safe_load(text).items()}


def category_name(category: str | None, lang: str) -> str | None:
    """The category as copy in ``lang`` names it; None for an English key with no Chinese name
    (left out rather than pasted into Chinese copy)."""
    if not category:
        return None
    shown = _categories().get(category.strip().lower(), {}).get(lang)
    if shown:
        return shown
    return None if lang == "zh" and re.fullmatch(r"[\x00-\x7f]+", category) else category


def product_facts(product: Product, lang: str = "en") -> str:
    """The product record as the list of facts the copy may use (no price line when unknown;
    categories by their display name in ``lang``; ids are never shown as names)."""
    zh = lang == "zh"
    category = category_name(product.category, lang)
    lines = [f"{'名称' if zh else 'name'}: {product.title or category or ('商品' if zh else 'product')}"]
    if category and product.title:
        lines.append(f"{'品类' if zh else 'category'}: {category}")
    if product.price is not None:
        cur = f" {product.currency}" if product.currency else ""
        lines.append(f"{'价格' if zh else 'price'}: {product.price:g}{cur}")
    if product.description:
        lines.append(f"{'描述' if zh else 'description'}: {product.description}")
    lines += [f"{k}: {('、' if zh else ', ').join(v)}" for k, v in product.attribute_values().items()]
    return "\n".join(lines)
