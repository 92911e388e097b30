"""Winning Upworthy headlines as few-shot examples for English subject lines (issue 18).

The Upworthy Research Archive holds real headline A/B tests. :func:`upworthy_library` keeps,
per test with two or more distinct headlines (each ≥ 1,000 impressions), the headline with the
highest click-through rate, **only from tests that started before week 201430** (the time split
of the attractiveness model and ``evaluation/tune_copy_eval.py``; later tests stay held out),
short enough for a subject line, and none on the topics a brand would not go near. Each
example's facts are its story (excerpt and lede), so :class:`~.fewshot.ShotLibrary` retrieves
the winners whose story is most like the product (character n-gram TF-IDF, as for AdvertiseGen).

With ``CopyGenerator(headlines=upworthy_library(sources))``, the nearest winners that fit the
field go into the prompt of English e-mail (subject), search ads (headline) and push notifications
(title) as a style hint; the guardrails treat them as examples: copying one word for word fails.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

from adpilot.data.records import Product
from adpilot.generation.brand import BrandKit
from adpilot.generation.channels import ChannelSpec
from adpilot.generation.fewshot import Shot, ShotLibrary
from adpilot.generation.prompts import Prompt, target

if TYPE_CHECKING:
    from adpilot.datasets_fetch import DataSources

UPWORTHY_WEEK_SPLIT = 201430  # tests from this week on are held out (tuning.data uses the same)
MIN_IMPRESSIONS = 1000
MAX_HEADLINE_CHARS = 60  # the longest e-mail subject a channel allows
HEADLINE_FIELDS = ("subject", "headline", "title")
# topics of a news site that have no place next to a product (politics, sex, violence, death)
_OFF_BRAND = re.compile(
    r"\b(sex|porn|rape|abort|kill|murder|gun|shoot|war|dead|death|die[sd]?|suicid|nazi|racis|"
    r"obama|romney|bernie|sanders|republican|democrat|gop|congress|senat|fox news|hitler|"
    r"terror|cancer|poverty|prison)\w*", re.I)
_TAG = re.compile(r"<[^>]+>")

LEAD = {"subject": "Subject lines", "headline": "Headlines", "title": "Titles"}
ASK = ("{what} that won A/B tests elsewhere (their style only, never their words or topics): "
       "{examples}")


def _plain(text: object, limit: int = 300) -> str:
    if not isinstance(text, str):
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())[:limit]


def upworthy_winners(source: str | Path | DataSources, *, week: int = UPWORTHY_WEEK_SPLIT,
                     min_impressions: int = MIN_IMPRESSIONS):
    """One row per training test (started before ``week``): ``test_id``, the winning
    ``headline`` (highest CTR of its distinct headlines), its ``ctr`` and the test's ``story``.
    ``source``: the Upworthy file, or a :class:`~adpilot.datasets_fetch.DataSources` to find
    it through."""
    import pandas as pd

    from adpilot.datasets_fetch import DataSources, locate

    path = locate("upworthy", source) if isinstance(source, DataSources) else Path(source)
    tests = pd.read_csv(path)
    start = tests.groupby("clickability_test_id")["test_week"].transform("min")
    tests = tests[start < week]
    arms = (tests.groupby(["clickability_test_id", "headline"], sort=True)
            .agg(impressions=("impressions", "sum"), clicks=("clicks", "sum")).reset_index())
    arms = arms[arms["impressions"] >= min_impressions]
    arms = arms[arms.groupby("clickability_test_id")["headline"].transform("nunique") >= 2]
    arms = arms.assign(ctr=arms["clicks"] / arms["impressions"])
    best = (arms.sort_values(["clickability_test_id", "ctr"], ascending=[True, False])
            .drop_duplicates("clickability_test_id"))
    first = tests.sort_values("archive_row").groupby("clickability_test_id").first()
    story = (first["excerpt"].map(_plain) + " " + first["lede"].map(_plain)).str.strip()
    best = best.assign(story=best["clickability_test_id"].map(story),
                       headline=best["headline"].map(lambda t: " ".join(html.unescape(t).split())))
    return best.rename(columns={"clickability_test_id": "test_id"})[
        ["test_id", "headline", "ctr", "story"]].reset_index(drop=True)


def upworthy_library(source: str | Path | DataSources, *, week: int = UPWORTHY_WEEK_SPLIT,
                     max_chars: int = MAX_HEADLINE_CHARS) -> ShotLibrary:
    """English headline examples: the training tests' winners of at most ``max_chars``,
    none on an off-brand topic, matched by their story."""
    rows = upworthy_winners(source, week=week)
    shots = [Shot(r.story or r.headline, r.headline, source=f"upworthy-{r.test_id}")
             for r in rows.itertuples(index=False)
             if len(r.headline) <= max_chars and not _OFF_BRAND.search(f"{r.headline} {r.story}")]
    return ShotLibrary(shots, "en")


def headline_field(spec: ChannelSpec) -> str | None:
    """The field a headline example is for (e-mail subject, search-ad headline, push title):
    English channels with a short first field only."""
    if spec.lang != "en" or len(spec.fields) < 2:
        return None
    return next((f for f in spec.fields if f in HEADLINE_FIELDS), None)


def headline_examples(library: ShotLibrary | None, product: Product, spec: ChannelSpec,
                      brand: BrandKit, k: int = 2) -> list[str]:
    """The ``k`` winners nearest to ``product`` that fit the channel's headline field (none
    without a library, for a channel without such a field, or a library in another language)."""
    name = headline_field(spec)
    if library is None or name is None or library.lang != spec.lang:
        return []
    cap = target(spec, brand, name)
    near = library.nearest(product, min(len(library), 20 * k))
    return [s.text for s in near if len(s.text) <= cap][:k]


def with_headline_examples(prompt: Prompt, examples: list[str], spec: ChannelSpec) -> None:
    """Put the examples into the prompt's last user message, before its reply-shape line."""
    name = headline_field(spec)
    if not examples or name is None:
        return
    user = prompt.messages[-1]
    line = ASK.format(what=LEAD[name], examples="; ".join(f'"{e}"' for e in examples))
    head, _, last = user.content.rstrip().rpartition("\n")
    content = f"{head}\n{line}\n{last}" if last.startswith("JSON") else f"{user.content}\n{line}"
    prompt.messages[-1] = type(user)(user.role, content)


def headline_runs(examples: list[str], n: int = 4) -> list[str]:
    """Every run of ``n`` words of each example (all of a shorter one): found in the copy, an
    example was copied, not followed (the ``borrowed`` guardrail rejects it; the guardrails'
    verbatim check needs eight words, longer than most headlines)."""
    out: list[str] = []
    for example in examples:
        words = re.findall(r"[A-Za-z0-9']+", example.lower())
        out += [" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))]
    return list(dict.fromkeys(r for r in out if r))
