"""Closing the loop: what the feedback says goes back into generation.

After a campaign has gathered evidence, :func:`close_loop`

1. retires clear losers (probability of being best below ``retire_below`` once every live
   variant has ``min_impressions``), keeping at least ``keep`` live variants;
2. records the leader as a winning example (:class:`~adpilot.generation.examples.ExampleBank`),
   which the generator shows as few-shot examples for the same channel and language;
3. returns preference pairs (winner's copy vs each loser's), the training data of the
   attractiveness model and of preference tuning;
4. with a generator, writes a new variant for each retired one (prompted with the winners) and
   adds it to the running campaign, where it starts from the prior (cold start).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pandas as pd

from adpilot.data import columns as C
from adpilot.errors import ConfigError
from adpilot.optimization.campaigns import Campaigns
from adpilot.optimization.stats import variant_report


@dataclass
class LoopResult:
    campaign_id: str
    winner: str | None
    retired: list[str]
    added: list[str]
    example_recorded: bool
    pairs: pd.DataFrame = field(repr=False)
    report: pd.DataFrame = field(repr=False)
    reason: str = ""

    def as_dict(self) -> dict:
        return {"campaign": self.campaign_id, "winner": self.winner, "retired": self.retired,
                "added": self.added, "example_recorded": self.example_recorded,
                "pairs": int(len(self.pairs)), "reason": self.reason,
                "variants": self.report.reset_index().rename(columns={"index": C.VARIANT})
                .to_dict("records")}


def _lang(text: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"


def _copy_text(copy: dict) -> str:
    return "\n".join(str(v) for v in copy.values())


def close_loop(campaigns: Campaigns, campaign_id: str, *, retire_below: float = 0.05,
               min_impressions: int = 1000, keep: int = 2, bank=None, generator=None,
               product=None, audience=None) -> LoopResult:
    """One turn of the loop for ``campaign_id`` (see the module docstring). ``bank`` is an
    :class:`~adpilot.generation.examples.ExampleBank`; ``generator`` a
    :class:`~adpilot.generation.CopyGenerator` used with ``product`` and ``audience`` to
    replace what was retired."""
    if not 0 < retire_below < 0.5:
        raise ConfigError(f"retire_below must be in (0, 0.5), got {retire_below}")
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, got {keep}")
    camp = campaigns.get(campaign_id)
    variants = campaigns.variants(campaign_id)
    live = variants[variants["status"] == "active"].set_index(C.VARIANT)
    events = campaigns.events(campaign_id)
    events = events[events[C.VARIANT].isin(live.index)]
    empty = pd.DataFrame(columns=["chosen_variant", "rejected_variant", "chosen_text",
                                  "rejected_text", "chosen_rate", "rejected_rate"])
    if events.empty:
        return LoopResult(campaign_id, None, [], [], False, empty, pd.DataFrame(),
                          "no feedback events yet")
    report = variant_report(events, goal=camp["goal"]).reindex(live.index)
    report["impressions"] = report["impressions"].fillna(0).astype(int)
    if (report["impressions"] < min_impressions).any():
        short = report.index[report["impressions"] < min_impressions].tolist()
        return LoopResult(campaign_id, None, [], [], False, empty, report,
                          f"waiting for {min_impressions} impressions on {short}")

    winner = str(report["p_best"].idxmax())
    losers = report[(report["p_best"] < retire_below) & (report.index != winner)]
    losers = losers.sort_values("p_best").index[: max(0, len(live) - keep)].tolist()
    for loser in losers:
        campaigns.retire_variant(campaign_id, loser)

    copies = {v: json.loads(live.loc[v, "copy"] or "{}") for v in live.index}
    recorded = False
    if bank is not None and copies[winner]:
        text = _copy_text(copies[winner])
        bank.add(campaign_id=campaign_id, variant=winner,
                 channel=live.loc[winner, C.CHANNEL] or "social", lang=_lang(text),
                 fields=copies[winner], rate=float(report.loc[winner, "rate"]),
                 impressions=int(report.loc[winner, "impressions"]),
                 p_best=float(report.loc[winner, "p_best"]))
        recorded = True
    pairs = pd.DataFrame([{
        "campaign_id": campaign_id, "chosen_variant": winner, "rejected_variant": loser,
        "chosen_text": _copy_text(copies[winner]), "rejected_text": _copy_text(copies[loser]),
        "chosen_rate": float(report.loc[winner, "rate"]),
        "rejected_rate": float(report.loc[loser, "rate"]),
        "impressions": int(report.loc[[winner, loser], "impressions"].sum())}
        for loser in losers if copies[winner] and copies[loser]], columns=[
            "campaign_id", "chosen_variant", "rejected_variant", "chosen_text", "rejected_text",
            "chosen_rate", "rejected_rate", "impressions"])

    added: list[str] = []
    if generator is not None and losers:
        if product is None or audience is None:
            raise ConfigError("regenerating variants needs the campaign's product and audience")
        taken = set(variants[C.VARIANT])
        for loser in losers:
            channel = live.loc[loser, C.CHANNEL] or "social"
            lang = _lang(_copy_text(copies[loser])) if copies[loser] else "en"
            variant = generator.generate(product, audience, channel, lang, n=1).variants[0]
            if not variant.passed:  # never put copy that failed a guardrail in front of people
                continue
            k = 2
            while (name := f"{loser}.{k}") in taken:
                k += 1
            taken.add(name)
            campaigns.add_variant(campaign_id, name, channel=channel, copy=variant.fields)
            added.append(name)
    return LoopResult(campaign_id, winner, losers, added, recorded, pairs, report,
                      "retired the clear losers" if losers else "no clear loser yet")
