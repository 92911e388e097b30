"""Task data for tuning the copy generator, in the generator's own prompt format.

Every example starts from a :class:`Brief` (product × audience × channel × language) rendered by
:func:`adpilot.generation.prompts.build_prompt`, the function the generator calls, so a tuned
model is trained on exactly the prompts it will be served. The target is the JSON object the
generator parses (``{"text": ...}`` for a social post, ``{"subject": ..., "body": ...}`` for an
e-mail).

Sources:

* **files**: the Upworthy headline A/B tests (``copy/upworthy_headline_tests.csv``). The brief
  of a test is its story (the excerpt and the lede, HTML stripped), the channel a social post;
  SFT targets are each test's winning headline, DPO pairs its winner against a loser.
* **the store**: adpilot's own campaigns. Variants with their copy, their campaign's audience
  and impressions/clicks from the feedback events: SFT targets are each campaign's best
  variant, DPO pairs come from :func:`adpilot.scoring.pairs.make_pairs`.

Files are JSON lines: SFT ``{"id", "brief", "messages", "completion"}``; DPO ``{"id", "brief",
"messages", "chosen", "rejected", "z"}``; briefs for evaluation ``{"id", "product",
"audience", "channel", "lang", "references"}``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.data.records import Product
from adpilot.errors import InputError
from adpilot.generation.audience import Audience
from adpilot.generation.brand import BrandKit, load_brand
from adpilot.generation.channels import channel_spec
from adpilot.generation.prompts import build_prompt
from adpilot.scoring.pairs import arms_from_events, arms_from_upworthy, make_pairs

# The brand whose voice the Upworthy tests carry (used for briefs built from them).
UPWORTHY_BRAND = BrandKit(
    name={"en": "Upworthy"},
    voice={"en": "curious, warm and human; one headline that makes people want to know more"},
    emoji="none")
UPWORTHY_AUDIENCE = ("Facebook readers of Upworthy: people who like and share uplifting, "
                     "socially conscious stories and videos")
UPWORTHY_WEEK_SPLIT = 201430  # the attractiveness model's time split: earlier weeks train
_TAG = re.compile(r"<[^>]+>")


@dataclass
class Brief:
    """What one piece of copy is for; ``references`` are known good copies (for BLEU/ROUGE)."""

    id: str
    product: Product
    audience: Audience
    channel: str = "social"
    lang: str = "en"
    references: list[str] = field(default_factory=list)

    def messages(self, brand: BrandKit) -> list[dict[str, str]]:
        """The generator's system and user messages for this brief (variant 0)."""
        prompt = build_prompt(self.product, self.audience, channel_spec(self.channel, self.lang),
                              brand, variant=0)
        return [m.as_dict() for m in prompt.messages]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "product": self.product.model_dump(exclude_none=True),
                "audience": self.audience.model_dump(exclude_none=True),
                "channel": self.channel, "lang": self.lang, "references": self.references}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Brief:
        try:
            return cls(id=str(d.get("id", "")), product=Product.model_validate(d["product"]),
                       audience=Audience.model_validate(d.get("audience") or {}),
                       channel=d.get("channel", "social"), lang=d.get("lang", "en"),
                       references=[str(r) for r in d.get("references", [])])
        except (KeyError, ValueError) as exc:
            raise InputError(f"not a valid brief ({exc})") from None


def brief_of(row: dict[str, Any]) -> tuple[Brief, BrandKit]:
    """The brief and brand kit of an example row, or of a plain brief row."""
    brief = Brief.from_dict(row.get("brief", row))
    try:
        brand = BrandKit.model_validate(row["brand"]) if row.get("brand") else load_brand()
    except ValueError as exc:
        raise InputError(f"brief {brief.id!r}: not a valid brand kit ({exc})") from None
    return brief, brand


def reference_completion(row: dict[str, Any]) -> str | None:
    """The reply to score perplexity on: the example's completion (or DPO winner), else the
    brief's first reference as the channel's JSON object."""
    if row.get("completion") or row.get("chosen"):
        return row.get("completion") or row["chosen"]
    brief, _ = brief_of(row)
    fields = _fields_for(brief, brief.references[0]) if brief.references else None
    return completion(fields) if fields else None


def completion(fields: dict[str, str]) -> str:
    """The reply the generator parses: one JSON object, fields in the channel's order."""
    return json.dumps(fields, ensure_ascii=False)


def _fields_for(brief: Brief, text: str) -> dict[str, str] | None:
    """Copy text as the channel's fields: one-field channels take it whole; two-field channels
    split it at the first line break (how :class:`CopyVariant.text` joins them)."""
    names = channel_spec(brief.channel, brief.lang).fields
    if len(names) == 1:
        return {names[0]: text.strip()}
    parts = [p.strip() for p in text.split("\n", 1)]
    return dict(zip(names, parts, strict=True)) if len(parts) == 2 and all(parts) else None


def sft_example(brief: Brief, fields: dict[str, str], brand: BrandKit) -> dict[str, Any]:
    return {"id": brief.id, "brief": brief.as_dict(), "brand": brand.model_dump(),
            "messages": brief.messages(brand), "completion": completion(fields)}


def dpo_example(brief: Brief, chosen: dict[str, str], rejected: dict[str, str], brand: BrandKit,
                z: float) -> dict[str, Any]:
    return {"id": brief.id, "brief": brief.as_dict(), "brand": brand.model_dump(),
            "messages": brief.messages(brand), "chosen": completion(chosen),
            "rejected": completion(rejected), "z": round(float(z), 3)}


# --- Upworthy (files) ------------------------------------------------------------------------

def _clean_html(text: Any, limit: int) -> str:
    if not isinstance(text, str):
        return ""
    plain = " ".join(html.unescape(_TAG.sub(" ", text)).split())
    if len(plain) <= limit:
        return plain
    cut = plain[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def upworthy_briefs(tests: pd.DataFrame) -> dict[str, Brief]:
    """One brief per test: its story (first arm's excerpt and lede) as the product record."""
    first = tests.sort_values("archive_row" if "archive_row" in tests else "headline").groupby(
        "clickability_test_id", sort=True).first()
    audience = Audience(description=UPWORTHY_AUDIENCE)
    out = {}
    for tid, row in first.iterrows():
        excerpt = _clean_html(row.get("excerpt"), 120)
        product = Product(id=f"upworthy-{tid}", title=excerpt or "a story", category="story",
                          description=_clean_html(row.get("lede"), 400) or None)
        out[str(tid)] = Brief(str(tid), product, audience, "social", "en")
    return out


def _usable(text: str, lo: int = 40, hi: int = 200) -> bool:
    return lo <= len(text) <= hi


def upworthy_arms(tests: pd.DataFrame, *, min_impressions: int = 1000) -> pd.DataFrame:
    arms = arms_from_upworthy(tests)
    arms[C.TEXT] = arms[C.TEXT].map(lambda t: " ".join(html.unescape(str(t)).split()))
    return arms[arms["impressions"] >= min_impressions].reset_index(drop=True)


def upworthy_sft(tests: pd.DataFrame, *, brand: BrandKit = UPWORTHY_BRAND,
                 min_impressions: int = 1000) -> list[dict[str, Any]]:
    """Per test with two or more headlines: the headline with the highest CTR."""
    arms = upworthy_arms(tests, min_impressions=min_impressions)
    arms = arms[arms.groupby("test_id")[C.TEXT].transform("nunique") >= 2]
    best = arms.sort_values(["test_id", "ctr"], ascending=[True, False]).drop_duplicates("test_id")
    briefs = upworthy_briefs(tests)
    out = []
    for row in best.itertuples(index=False):
        if _usable(row.text):
            b = briefs[str(row.test_id)]
            b.references = sorted(arms.loc[arms["test_id"] == row.test_id, C.TEXT].unique())
            out.append(sft_example(b, {"text": row.text}, brand))
    return out


def upworthy_dpo(tests: pd.DataFrame, *, brand: BrandKit = UPWORTHY_BRAND, min_z: float = 1.0,
                 min_impressions: int = 1000) -> list[dict[str, Any]]:
    """Per test: the pair of headlines whose CTR difference carries the most evidence
    (two-proportion z ≥ ``min_z``), winner chosen, loser rejected."""
    pairs = make_pairs(upworthy_arms(tests, min_impressions=min_impressions))
    pairs = pairs[(pairs["z"] >= min_z) & pairs["text_a"].map(_usable) & pairs["text_b"].map(_usable)]
    pairs = pairs.sort_values(["test_id", "z"], ascending=[True, False]).drop_duplicates("test_id")
    briefs = upworthy_briefs(tests)
    out = []
    for row in pairs.itertuples(index=False):
        win, lose = (row.text_a, row.text_b) if row.label == 1 else (row.text_b, row.text_a)
        out.append(dpo_example(briefs[str(row.test_id)], {"text": win}, {"text": lose}, brand,
                               row.z))
    return out


def split_upworthy(tests: pd.DataFrame, week: int = UPWORTHY_WEEK_SPLIT
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tests that started before ``week`` (train) and the rest (held out), as the
    attractiveness model splits them, so its judgements are on tests it never saw."""
    start = tests.groupby("clickability_test_id")["test_week"].transform("min")
    return tests[start < week].reset_index(drop=True), tests[start >= week].reset_index(drop=True)


# --- adpilot's own campaigns (store) ----------------------------------------------------------

def _lang_of(text: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"


def campaign_arms(store) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[Brief, dict]]]:
    """Arms (test_id = campaign, text = copy) with impressions and clicks from the feedback
    events, and per (campaign, variant) its brief and copy fields."""
    from adpilot.optimization.campaigns import Campaigns

    camps = Campaigns(store)
    products = store.read("products") if store.count("products") else pd.DataFrame()
    catalogue = ({str(r[C.ID]): r for _, r in products.iterrows()} if len(products) else {})
    rows, briefs = [], {}
    for cid in camps.list()[C.ID]:
        camp = camps.get(cid)
        audience_raw = json.loads(camp["audience"] or "{}")
        for v in camps.variants(cid).itertuples(index=False):
            fields = json.loads(v.copy or "{}")
            text = "\n".join(str(x) for x in fields.values()).strip()
            if not text:
                continue
            lang = fields.pop("lang", None) or audience_raw.get("lang") or _lang_of(text)
            channel = v.channel or audience_raw.get("channel") or "social"
            pid = str(fields.pop("product_id", "") or audience_raw.get("product_id", ""))
            prod = catalogue.get(pid)
            product = (Product(id=pid, title=prod.get(C.TITLE), category=prod.get(C.CATEGORY),
                               description=prod.get(C.DESCRIPTION)) if prod is not None
                       else Product(id=pid or cid, title=audience_raw.get("product") or camp["name"]))
            brief = Brief(f"{cid}/{v.variant}", product, Audience.model_validate(audience_raw),
                          channel, lang)
            spec = channel_spec(channel, lang)
            copy_fields = ({f: str(fields[f]) for f in spec.fields} if all(f in fields for f in spec.fields)
                           else _fields_for(brief, text))
            if copy_fields is None:
                continue
            briefs[(cid, v.variant)] = (brief, copy_fields)
            rows.append({"campaign_id": cid, "variant": v.variant, "text": text})
    variants = pd.DataFrame(rows, columns=["campaign_id", C.VARIANT, C.TEXT])
    if variants.empty or not store.count("events"):
        return pd.DataFrame(columns=["test_id", C.VARIANT, C.TEXT, "impressions", "clicks", "ctr"]), briefs
    events = store.read("events")
    arms = arms_from_events(events, variants)
    arms = arms.merge(variants.rename(columns={"campaign_id": "test_id"}), on=["test_id", C.TEXT])
    return arms, briefs


def campaign_sft(store, *, brand: BrandKit | None = None, min_impressions: int = 30
                 ) -> list[dict[str, Any]]:
    """Each campaign's best variant by click-through rate (at least ``min_impressions``)."""
    brand = brand or load_brand()
    arms, briefs = campaign_arms(store)
    arms = arms[arms["impressions"] >= min_impressions]
    best = arms.sort_values(["test_id", "ctr"], ascending=[True, False]).drop_duplicates("test_id")
    out = []
    for row in best.itertuples(index=False):
        brief, fields = briefs[(row.test_id, row.variant)]
        brief.references = arms.loc[arms["test_id"] == row.test_id, C.TEXT].tolist()
        out.append(sft_example(brief, fields, brand))
    return out


def campaign_dpo(store, *, brand: BrandKit | None = None, min_z: float = 1.0,
                 min_impressions: int = 30) -> list[dict[str, Any]]:
    """Within each campaign, every pair of variants whose CTR gap has z ≥ ``min_z``."""
    brand = brand or load_brand()
    arms, briefs = campaign_arms(store)
    arms = arms[arms["impressions"] >= min_impressions].reset_index(drop=True)
    if arms.empty:
        return []
    variant_of = {(r.test_id, r.text): r.variant for r in arms.itertuples(index=False)}
    pairs = make_pairs(arms[["test_id", C.TEXT, "impressions", "clicks", "test_week", "ctr"]])
    out = []
    for row in pairs[pairs["z"] >= min_z].itertuples(index=False):
        win, lose = (row.text_a, row.text_b) if row.label == 1 else (row.text_b, row.text_a)
        bw, fw = briefs[(row.test_id, variant_of[(row.test_id, win)])]
        _, fl = briefs[(row.test_id, variant_of[(row.test_id, lose)])]
        out.append(dpo_example(bw, fw, fl, brand, row.z))
    return out


# --- files ------------------------------------------------------------------------------------

def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path, *, need: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; each must have the keys in ``need``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=str(path))
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {i} is not valid JSON ({exc})", path=str(path)) from None
        missing = [k for k in need if k not in row]
        if missing:
            raise InputError(f"line {i} lacks {', '.join(missing)}", path=str(path))
        rows.append(row)
    if not rows:
        raise InputError("no examples in the file", path=str(path))
    return rows


def data_hash(rows: list[dict[str, Any]]) -> str:
    """sha256 (first 16 hex digits) of the examples as they are trained on."""
    digest = hashlib.sha256()
    for r in rows:
        digest.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def kind_of(rows: list[dict[str, Any]]) -> str:
    """``sft`` (messages + completion) or ``dpo`` (messages + chosen + rejected)."""
    if all("chosen" in r and "rejected" in r for r in rows):
        return "dpo"
    if all("completion" in r for r in rows):
        return "sft"
    raise InputError("examples must all be SFT (messages, completion) or all DPO (messages, "
                     "chosen, rejected)")


def sample(rows: list[dict[str, Any]], n: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows drawn without replacement (all when ``n`` is None or larger)."""
    if n is None or n >= len(rows):
        return list(rows)
    idx = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [rows[i] for i in sorted(idx)]
