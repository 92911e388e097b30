"""The records of the copy-quality evaluation (issue 18): AdvertiseGen test records (zh) and at
least 40 English products with real attributes: the built-in sample's English products and a
seeded sample of UCI Online Retail products (name and price as sold, with the colour, material,
size and pack size their description states, and how many customers in how many countries
ordered them: only facts the data has)."""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ADPILOT_DATA_DIR", ROOT.parent / "shared" / "data"))
ADGEN = DATA / "copy" / "adgen_zh.jsonl"
RETAIL = DATA / "transactions" / "uci_online_retail.parquet"
TEST_SHARE = 0.2  # of the 600 AdvertiseGen records, the seeded test part (never tuned on)
SEGMENT = {  # a real segment description as profiling writes it (traits with their figures)
    "en": "older: older (avg 47 vs 38); unhappy with fit & size (-0.31 vs +0.12); "
          "high spenders (412 vs 260)",
    "zh": "年龄偏大: 年龄偏大（平均47岁，整体38岁）；不满意尺码合身（-0.31，整体+0.12）；"
          "高消费（412，整体260）",
}
MIN_INVOICES = 50  # UCI products ordered on at least this many invoices (real, regular stock)


def adgen_test(n: int, seed: int) -> list[dict]:
    """The first ``n`` records of the seeded test split of AdvertiseGen (the split the few-shot
    library leaves out: :func:`adpilot.generation.fewshot.adgen_split`)."""
    from adpilot.generation.fewshot import adgen_split

    rows = [json.loads(line) for line in ADGEN.read_text(encoding="utf-8").splitlines() if line]
    _, test = adgen_split(len(rows), seed, TEST_SHARE)
    out = []
    for i in test[:n]:
        r = rows[int(i)]
        attrs: dict[str, list[str]] = {}
        for k, v in r["attributes"]:
            attrs.setdefault(k, []).append(v)
        out.append({"id": f"adgen-{int(i)}", "lang": "zh", "channel": "social", "source": "adgen",
                    "product": {"id": f"adgen-{int(i)}", "category": attrs.get("类型", [None])[0],
                                "attributes": attrs},
                    "values": [v for k, v in r["attributes"] if k != "类型"],
                    "references": r["references"]})
    return out


def sample_en(n: int) -> list[dict]:
    """The built-in sample's English products (title, category, price, description)."""
    import pandas as pd

    df = pd.read_csv(ROOT / "src" / "adpilot" / "sample" / "products.csv")
    df = df[df["language"] == "en"].head(n)
    return [{"id": r.product_id, "lang": "en", "channel": "email", "source": "sample",
             "product": {"id": r.product_id, "title": r.title, "category": r.category,
                         "price": float(r.price), "currency": r.currency,
                         "description": r.description},
             "values": [], "references": []} for r in df.itertuples()]


# what a UCI description states, word for word (nothing inferred: "HEART" is no material)
COLOURS = ("red", "pink", "blue", "light blue", "green", "yellow", "ivory", "cream", "white",
           "black", "silver", "gold", "purple", "orange", "brown", "grey", "multicolour", "pastel",
           "turquoise", "lilac", "natural")
MATERIALS = ("paper", "wooden", "wood", "glass", "metal", "enamel", "ceramic", "zinc", "felt",
             "cotton", "lace", "tin", "raffia", "velvet", "porcelain", "bone china", "acrylic",
             "foil", "crystal", "leather", "wicker", "jute", "linen", "silk", "bamboo", "slate")
SIZES = ("large", "small", "mini", "jumbo", "medium")
PACK = re.compile(r"\b(?:(pack|set|box|bag) ?(?:of ?|/ ?)?(\d+)|(\d+) (pieces|piece))\b")


def description_attributes(desc: str) -> dict[str, str]:
    """The colour, material, size and pack size a UCI description states."""
    low = " " + re.sub(r"\s+", " ", desc.lower()) + " "

    def found(words: tuple[str, ...]) -> list[str]:
        hits = [w for w in words if f" {w} " in low]
        return [w for w in hits if not any(w != o and w in o for o in hits)]  # blue ⊂ light blue

    out = {k: ", ".join(v) for k, v in (("colour", found(COLOURS)), ("material", found(MATERIALS)),
                                       ("size", found(SIZES))) if v}
    m = PACK.search(low)
    if m:
        out["pack size"] = (f"{m.group(1)} of {m.group(2)}" if m.group(1)
                            else f"{m.group(3)} pieces")
    return out


def retail_en(n: int, seed: int) -> list[dict]:
    """``n`` UCI Online Retail products drawn with ``seed`` from the regular stock (a five-digit
    stock code, ordered on at least :data:`MIN_INVOICES` invoices, not cancelled) whose
    description states at least one colour, material, size or pack size. The title is the
    description (word-capitalised), the price the unit price it sold at most often (GBP)."""
    if n <= 0:
        return []
    import pandas as pd

    df = pd.read_parquet(RETAIL, columns=["InvoiceNo", "StockCode", "Description", "Quantity",
                                          "UnitPrice", "CustomerID", "Country"])
    df = df[(df.Quantity > 0) & (df.UnitPrice > 0) & ~df.InvoiceNo.str.startswith("C")
            & df.StockCode.str.fullmatch(r"\d{5}[A-Za-z]?") & df.Description.notna()]
    g = df.groupby("StockCode").agg(
        desc=("Description", lambda s: s.mode().iat[0]), price=("UnitPrice", lambda s: s.mode().iat[0]),
        invoices=("InvoiceNo", "nunique"), customers=("CustomerID", "nunique"),
        countries=("Country", "nunique")).sort_index()
    g = g[g.invoices >= MIN_INVOICES]
    g["title"] = [string.capwords(re.sub(r"\s+", " ", d.strip().rstrip(".").lower())) for d in g.desc]
    g["facts"] = [description_attributes(d) for d in g.desc]
    g = g[g.facts.map(bool)].drop_duplicates("title")
    pick = np.sort(np.random.default_rng(seed).choice(len(g), size=min(n, len(g)), replace=False))
    out = []
    for code, r in g.iloc[pick].iterrows():
        attrs = dict(r.facts)
        attrs["ordered by"] = (f"{r.customers} customers in {r.countries} "
                               f"{'country' if r.countries == 1 else 'countries'}")
        out.append({"id": f"uci-{code}", "lang": "en", "channel": "email", "source": "uci",
                    "product": {"id": f"uci-{code}", "title": r.title, "price": float(r.price),
                                "currency": "GBP", "attributes": attrs},
                    "values": [], "references": []})
    return out


def english_products(n: int, seed: int) -> list[dict]:
    """The sample's English products first, then UCI products up to ``n`` in all."""
    sample = sample_en(n)
    return sample + retail_en(n - len(sample), seed)
