"""Return on a campaign's cost, honestly: incremental against a control group where there is
one, with a 95% interval; labelled *attributed* where there is none.

incremental revenue = (revenue per treated customer − revenue per control customer) × treated
customers, where revenue is what each customer ordered in a window after the send (orders, not
the campaign's own conversion events: the control group has none of those by construction).
The interval comes from a bootstrap of both groups (a normal approximation for very large
groups). cost = the provider's price per message × messages sent + media cost per 1,000
impressions on channels that are not messages + the LLM's tokens. ROI = (revenue − cost) / cost.

This module computes from arrays and counts; :mod:`adpilot.optimization.roi_store` gathers them
from the store and the delivery ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

MESSAGE_CHANNELS = ("email", "sms", "push")
# Assumed media cost per 1,000 impressions of channels that are not messages (bought reach).
DEFAULT_MEDIA_CPM = {"social": 6.0, "search_ad": 10.0}
FALLBACK_CPM = 2.0
BOOTSTRAP_MAX_USERS = 50_000  # above this a normal approximation (the same answer at that size, no wait)
_DRAWS_PER_CHUNK = 2_000_000  # bounded memory for the bootstrap's index draws

ROIKind = Literal["incremental", "attributed"]


@dataclass(frozen=True)
class Prices:
    """What sending costs: per message per channel, per 1,000 LLM tokens, and media CPMs."""

    email: float = 0.001
    sms: float = 0.05
    push: float = 0.0002
    llm_1k_tokens: float = 0.0
    media_cpm: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MEDIA_CPM))

    @classmethod
    def from_settings(cls, settings, media_cpm: Mapping[str, float] | None = None) -> Prices:
        """Prices from :class:`adpilot.config.Settings` (``ADPILOT_PRICE_*``)."""
        return cls(email=settings.price_email, sms=settings.price_sms, push=settings.price_push,
                   llm_1k_tokens=settings.price_llm_1k_tokens,
                   media_cpm={**DEFAULT_MEDIA_CPM, **(media_cpm or {})})

    def per_message(self, channel: str) -> float | None:
        """The price of one message on ``channel``; None for a channel that is not a message."""
        return getattr(self, channel) if channel in MESSAGE_CHANNELS else None


@dataclass(frozen=True)
class Cost:
    """A campaign's cost and where each part comes from."""

    messages: dict[str, int]  # channel → messages (or impressions, see ``message_source``)
    message_source: Literal["ledger", "impressions"]
    messages_cost: float
    media_cost: float
    llm_tokens: int
    llm_cost: float

    @property
    def total(self) -> float:
        return self.messages_cost + self.media_cost + self.llm_cost


def campaign_cost(messages: Mapping[str, int], prices: Prices, *, llm_tokens: int = 0,
                  source: Literal["ledger", "impressions"] = "ledger") -> Cost:
    """The cost of ``messages`` (channel → count): message channels at their price, others at
    their media CPM (``FALLBACK_CPM`` when unknown), plus ``llm_tokens`` at their price."""
    msg = media = 0.0
    for channel, n in messages.items():
        price = prices.per_message(channel)
        if price is not None:
            msg += price * n
        else:
            media += prices.media_cpm.get(channel, FALLBACK_CPM) * n / 1000.0
    return Cost({k: int(v) for k, v in messages.items()}, source, msg, media, int(llm_tokens),
                prices.llm_1k_tokens * llm_tokens / 1000.0)


def _boot_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    out = np.empty(n_boot)
    per = max(1, _DRAWS_PER_CHUNK // n)
    for start in range(0, n_boot, per):
        k = min(per, n_boot - start)
        out[start:start + k] = x[rng.integers(0, n, (k, n))].mean(axis=1)
    return out


def incremental_revenue(treated: np.ndarray, control: np.ndarray, *, n_boot: int = 2000,
                        seed: int = 0, level: float = 0.95
                        ) -> tuple[float, float | None, float | None, str | None]:
    """(estimate, low, high, method) of (mean(treated) − mean(control)) × len(treated).

    ``treated``/``control`` hold one revenue per customer (zeros for those who bought nothing).
    The interval is None when either group has fewer than two customers.
    """
    t = np.asarray(treated, dtype=float)
    c = np.asarray(control, dtype=float)
    if len(t) == 0 or len(c) == 0:
        raise ValueError("incremental revenue needs at least one treated and one control customer")
    n_t = len(t)
    estimate = float((t.mean() - c.mean()) * n_t)
    if n_t < 2 or len(c) < 2:
        return estimate, None, None, None
    alpha = 1.0 - level
    if n_t + len(c) <= BOOTSTRAP_MAX_USERS:
        rng = np.random.default_rng(seed)
        diffs = (_boot_means(t, n_boot, rng) - _boot_means(c, n_boot, rng)) * n_t
        low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
        return estimate, float(low), float(high), "bootstrap"
    from scipy.stats import norm

    se = np.sqrt(t.var(ddof=1) / n_t + c.var(ddof=1) / len(c)) * n_t
    z = float(norm.ppf(1 - alpha / 2))
    return estimate, estimate - z * se, estimate + z * se, "normal"


def _roi(revenue: float | None, cost: float) -> float | None:
    return None if revenue is None or cost <= 0 else (revenue - cost) / cost


@dataclass
class CampaignROI:
    """One campaign's ROI. ``revenue`` is what the ROI divides: the incremental revenue when
    ``kind`` is ``incremental``, the attributed one (conversion values) when ``attributed``."""

    campaign: str
    name: str
    kind: ROIKind
    note: str
    note_zh: str
    revenue: float
    revenue_low: float | None
    revenue_high: float | None
    attributed_revenue: float
    cost: Cost
    roi: float | None
    roi_low: float | None
    roi_high: float | None
    treated: int = 0
    control: int = 0
    control_global: int = 0
    control_campaign: int = 0
    control_excluded: int = 0
    revenue_per_treated: float | None = None
    revenue_per_control: float | None = None
    interval_method: str | None = None
    window_days: float | None = None
    currencies: list[str] = field(default_factory=list)
    funnel: dict[str, float | int | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """A flat JSON-ready row (cost parts as ``cost_*`` columns, funnel counts inline)."""
        out = asdict(self)
        cost = out.pop("cost")
        funnel = out.pop("funnel")
        out.update(cost=round(self.cost.total, 6), cost_messages=round(cost["messages_cost"], 6),
                   cost_media=round(cost["media_cost"], 6), cost_llm=round(cost["llm_cost"], 6),
                   llm_tokens=cost["llm_tokens"], messages=sum(cost["messages"].values()),
                   messages_by_channel=cost["messages"], message_source=cost["message_source"])
        out.update(funnel)
        return out


def _cost_sentence(cost: Cost) -> tuple[str, str]:
    if cost.message_source == "impressions":
        return ("Cost counts each impression as a message sent (the send ledger has none for this "
                "campaign).", "成本把每次曝光计为一条已发送消息（发送台账中没有该活动的记录）。")
    return "Cost counts the messages the send ledger recorded as sent.", "成本按发送台账中已发送的消息计算。"


_WHY_ATTRIBUTED = {
    "no_control": ("this campaign has no control group, so the revenue is everything credited to "
                   "it (its conversion values), including purchases that would have happened "
                   "without it.",
                   "该活动没有对照组，这里的收入是记在它名下的全部转化金额，包括没有它也会发生的购买。"),
    "no_orders": ("the campaign has a control group ({control} customers) but the store holds no "
                  "orders to compare its revenue with.",
                  "该活动有对照组（{control} 人），但数据库中没有订单可用于比较收入。"),
    "no_treated": ("the campaign has a control group ({control} customers) but no message of it "
                   "was sent yet.",
                   "该活动有对照组（{control} 人），但尚未发送任何消息。"),
}


def attributed(campaign: str, name: str, *, attributed_revenue: float, cost: Cost,
               control: int = 0, reason: str = "no_control",
               funnel: Mapping | None = None) -> CampaignROI:
    """The ROI of a campaign that cannot be compared with a control group, labelled so
    (``reason``: ``no_control``, ``no_orders`` or ``no_treated``)."""
    why_en, why_zh = _WHY_ATTRIBUTED[reason]
    en = "Attributed, not incremental: " + why_en.format(control=control)
    zh = "归因值，而非增量：" + why_zh.format(control=control)
    cost_en, cost_zh = _cost_sentence(cost)
    return CampaignROI(campaign, name, "attributed", f"{en} {cost_en}", f"{zh}{cost_zh}",
                       attributed_revenue, None, None, attributed_revenue, cost,
                       _roi(attributed_revenue, cost.total), None, None,
                       control=control, funnel=dict(funnel or {}))


def incremental(campaign: str, name: str, *, treated: np.ndarray, control: np.ndarray,
                cost: Cost, attributed_revenue: float = 0.0, window_days: float,
                control_global: int = 0, control_campaign: int = 0, control_excluded: int = 0,
                currencies: list[str] | None = None, funnel: Mapping | None = None,
                n_boot: int = 2000, seed: int = 0) -> CampaignROI:
    """The ROI of a campaign from per-customer revenue of its treated and control customers."""
    est, low, high, method = incremental_revenue(treated, control, n_boot=n_boot, seed=seed)
    per_t, per_c = float(np.mean(treated)), float(np.mean(control))
    how_en = {"bootstrap": "by bootstrap", "normal": "by normal approximation"}.get(
        method or "", "not available with fewer than two customers in a group")
    how_zh = {"bootstrap": "自助法", "normal": "正态近似"}.get(method or "", "任一组少于两人，无法给出")
    en = (f"Incremental: orders within {window_days:g} days of the send; revenue per treated "
          f"customer {per_t:,.2f} minus per control customer {per_c:,.2f} ({len(control)} held "
          f"out), times {len(treated)} treated; 95% interval {how_en}.")
    zh = (f"增量：统计发送后 {window_days:g} 天内的订单；每位触达客户收入 {per_t:,.2f} 减去每位对照"
          f"客户收入 {per_c:,.2f}（对照 {len(control)} 人），乘以触达人数 {len(treated)}；"
          f"95% 区间：{how_zh}。")
    if currencies and len(currencies) > 1:
        en += f" Orders are in {', '.join(currencies)}, added as recorded (no conversion)."
        zh += f"订单币种为 {'、'.join(currencies)}，按原值相加（未换算）。"
    cost_en, cost_zh = _cost_sentence(cost)
    total = cost.total
    return CampaignROI(
        campaign, name, "incremental", f"{en} {cost_en}", f"{zh}{cost_zh}", est, low, high,
        attributed_revenue, cost, _roi(est, total), _roi(low, total), _roi(high, total),
        treated=len(treated), control=len(control), control_global=control_global,
        control_campaign=control_campaign, control_excluded=control_excluded,
        revenue_per_treated=per_t, revenue_per_control=per_c, interval_method=method,
        window_days=window_days, currencies=list(currencies or []), funnel=dict(funnel or {}))
