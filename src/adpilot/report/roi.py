"""The ROI section of the HTML report: a plot and a table of every campaign's ROI, each figure
labelled incremental (with its 95% interval) or attributed, in English and Chinese."""

from __future__ import annotations

import pandas as pd

from adpilot.optimization.roi import Prices
from adpilot.report.html import Report, Section, table_html

_SHOWN = {"name": "campaign · 活动", "kind": "kind · 类型", "revenue": "revenue · 收入",
          "interval": "95% interval · 区间", "cost": "cost · 成本", "roi": "ROI · 回报率",
          "roi_interval": "ROI 95% interval · 区间", "treated": "treated · 触达",
          "control": "control · 对照", "messages": "messages · 消息"}


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{v * 100:,.1f}%"


def _interval(low, high, fmt) -> str:
    return "–" if low is None or pd.isna(low) or high is None or pd.isna(high) \
        else f"{fmt(low)} … {fmt(high)}"


def roi_table_view(table: pd.DataFrame) -> pd.DataFrame:
    """The ROI frame as shown: one readable row per campaign."""
    money = "{:,.2f}".format
    rows = [{"name": r["name"], "kind": r["kind"], "revenue": money(r["revenue"]),
             "interval": _interval(r["revenue_low"], r["revenue_high"], money),
             "cost": money(r["cost"]), "roi": _pct(r["roi"]),
             "roi_interval": _interval(r["roi_low"], r["roi_high"], _pct),
             "treated": int(r["treated"]), "control": int(r["control"]),
             "messages": int(r["messages"])} for r in table.to_dict("records")]
    return pd.DataFrame(rows, columns=list(_SHOWN)).rename(columns=_SHOWN)


def roi_section(report: Report, store, *, names: dict[str, str] | None = None,
                prices: Prices | None = None) -> Section:
    """Add "ROI · 投资回报" to ``report`` from ``store`` and return it. ``prices``: what a
    message costs (a shell builds them with :meth:`Prices.from_settings`); None: the defaults
    of :class:`~adpilot.optimization.roi.Prices`."""
    from adpilot.optimization.roi_store import campaign_rois, roi_frame
    from adpilot.report.charts import roi_chart

    table = roi_frame(campaign_rois(store, names, prices=prices or Prices()))
    sec = report.section("ROI · 投资回报")
    if table.empty:
        sec.parts.append(Report.text("No campaign yet. 暂无营销活动。", note=True))
        return sec
    sec.parts.append(Report.figures(roi_chart(table)))
    sec.parts.append(table_html(roi_table_view(table)))
    for r in table.to_dict("records"):
        sec.parts.append(Report.text(f"{r['name']}: {r['note']}", note=True))
        sec.parts.append(Report.text(f"{r['name']}：{r['note_zh']}", note=True))
    return sec


def step_roi(ctx) -> None:
    """Pipeline step (``adpilot run``): the ROI section of the run's report, priced from the
    run's settings (the defaults when the caller passed none)."""
    prices = Prices.from_settings(ctx.settings) if ctx.settings is not None else None
    roi_section(ctx.report, ctx.store, prices=prices)
