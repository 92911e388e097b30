"""Few-shot examples chosen by similarity from a library of good copy (issue 18).

A small model writes closer to how people write ads when it sees two or three ads for products
like the one at hand, each with its facts. :class:`ShotLibrary` holds (facts, text) pairs and
returns the nearest ones for a product: cosine similarity of character n-gram TF-IDF vectors of
the facts (attribute values, category, title, description), no neural model, a few
milliseconds per query. Libraries:

- :func:`adgen_library`: the AdvertiseGen records (Chinese clothing: attribute lists and the ad
  texts people wrote for them), **training part only** of the seeded split
  :func:`adgen_split` that ``evaluation/copy_quality.py`` holds out for testing;
- :meth:`ShotLibrary.from_pairs`: any (facts, text) pairs, e.g. the company's own passed or
  winning variants with the product facts they were written from.

Examples show how to write, never what to say: the copy is still checked against its own
product record only, so a fact copied from an example fails the guardrails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adpilot.data import columns as C
from adpilot.data.records import Product
from adpilot.errors import ConfigError

if TYPE_CHECKING:
    from adpilot.datasets_fetch import DataSources

ADGEN_SEED, ADGEN_TEST_SHARE = 0, 0.2  # the evaluation's held-out part: never shown as examples
MAX_SHOT_CHARS = 120  # longer human texts cost prompt tokens and overshoot the channel's length


@dataclass(frozen=True)
class Shot:
    """One example: the product's facts as one compact line, and the copy written for it."""

    facts: str
    text: str
    source: str = ""  # where it came from (record id), for reports


def facts_line(product: Product, lang: str) -> str:
    """A product's facts as one compact line (``版型：宽松、显瘦；颜色：白色``): what a shot
    shows, and what a query is matched on."""
    sep, kv, join = ("；", "：", "、") if lang == "zh" else ("; ", ": ", ", ")
    parts = [str(x) for x in (product.title, product.category) if x]
    parts += [f"{key}{kv}{join.join(dict.fromkeys(values))}"
              for key, values in product.attribute_values().items() if key != "类型"]
    if product.description:
        parts.append(product.description)
    return sep.join(dict.fromkeys(parts))


class ShotLibrary:
    """Examples of good copy in one language, searchable by product similarity."""

    def __init__(self, shots: Iterable[Shot], lang: str) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.shots = [s for s in shots if s.text.strip()]
        if not self.shots:
            raise ConfigError("a ShotLibrary needs at least one example with text")
        self.lang = lang
        # characters, not words: Chinese has no spaces, and attribute values are short words
        self._vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 2) if lang == "zh"
                                    else (3, 4), sublinear_tf=True, min_df=1)
        self._matrix = self._vec.fit_transform([_match_text(s.facts) for s in self.shots])

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], lang: str) -> ShotLibrary:
        """A library from (facts, text) pairs: the company's own approved copy, for instance."""
        return cls((Shot(f, t) for f, t in pairs), lang)

    def __len__(self) -> int:
        return len(self.shots)

    def nearest(self, product: Product | str, k: int = 2, *, exclude: str = "") -> list[Shot]:
        """The ``k`` examples whose facts are most like ``product``'s (a Product or a facts
        line); one per distinct facts line, so two near-copies do not both take prompt room.
        ``exclude`` drops an example by its source (the product itself, in evaluations)."""
        query = product if isinstance(product, str) else facts_line(product, self.lang)
        sims = (self._matrix @ self._vec.transform([_match_text(query)]).T).toarray().ravel()
        out: list[Shot] = []
        seen: set[str] = set()
        for i in np.argsort(-sims, kind="stable"):
            shot = self.shots[int(i)]
            if shot.facts in seen or (exclude and shot.source == exclude):
                continue
            out.append(shot)
            seen.add(shot.facts)
            if len(out) == k:
                break
        return out


def _match_text(facts: str) -> str:
    """Facts without their keys (版型、颜色 …): values carry the similarity."""
    return re.sub(r"[^；;：:、,，\s]+[：:]", " ", facts)


def adgen_split(n: int, seed: int = ADGEN_SEED,
                test_share: float = ADGEN_TEST_SHARE) -> tuple[list[int], list[int]]:
    """(train, test) row indices of the seeded AdvertiseGen split: the evaluation's test part
    comes first in one seeded permutation of the ``n`` rows."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(n * test_share)
    return [int(i) for i in order[cut:]], [int(i) for i in order[:cut]]


def adgen_rows(source: str | Path | DataSources) -> list[dict[str, Any]]:
    """The AdvertiseGen records: the file ``source``, or ``copy/adgen_zh.jsonl`` found through
    the :class:`~adpilot.datasets_fetch.DataSources` ``source`` (data folder or download
    cache)."""
    from adpilot.datasets_fetch import DataSources, locate

    path = locate("adgen_zh", source) if isinstance(source, DataSources) else Path(source)
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def adgen_product(row: dict[str, Any], rid: str) -> Product:
    """An AdvertiseGen record as a Product: its type as category, the rest as attributes."""
    attrs: dict[str, list[str]] = {}
    for key, value in row[C.ATTRIBUTES]:
        attrs.setdefault(key, []).append(value)
    return Product(id=rid, category=attrs.get("类型", [None])[0], attributes=attrs, language="zh")


def adgen_library(source: str | Path | DataSources, *, seed: int = ADGEN_SEED,
                  test_share: float = ADGEN_TEST_SHARE,
                  max_chars: int = MAX_SHOT_CHARS) -> ShotLibrary:
    """Chinese examples: the training part of the seeded AdvertiseGen split, each record's
    shortest human text within ``max_chars`` without Latin letters (records with none are
    left out)."""
    rows = adgen_rows(source)
    train, _ = adgen_split(len(rows), seed, test_share)
    shots = []
    for i in train:
        # no text naming a brand in Latin letters (fiveplus, ONLY): a small model copies it
        refs = sorted((r.strip() for r in rows[i]["references"]
                       if r.strip() and not re.search(r"[A-Za-z]", r)), key=len)
        if refs and len(refs[0]) <= max_chars:
            product = adgen_product(rows[i], f"adgen-{i}")
            shots.append(Shot(facts_line(product, "zh"), refs[0], source=f"adgen-{i}"))
    return ShotLibrary(shots, "zh")


def borrowed_facts(shots: list[Shot], facts: str) -> list[str]:
    """Attribute values of the examples (``key：value`` parts of their facts lines, two or more
    characters) that ``facts`` (this product's record) does not contain, in either direction
    (牛仔 is in 牛仔布): in the copy they would be facts of another product."""
    low = facts.lower()
    mine = [v.strip().lower() for line in low.splitlines() for v in
            re.split(r"[、,，;；]", line.partition(":")[2] or line.partition("：")[2])]
    out = []
    for shot in shots:
        for part in re.split(r"[；;]", shot.facts):
            key, sep, value = part.partition("：") if "：" in part else part.partition(": ")
            for v in re.split(r"[、,，]", value if sep else ""):
                v = v.strip().lower()
                if len(v) >= 2 and v not in low and not any(v in m or m in v for m in mine if m):
                    out.append(v)
    return list(dict.fromkeys(out))
