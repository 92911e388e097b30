"""Campaign charts (allocation, cumulative rates) for the CLI's HTML report and the dashboard,
drawn as SVG with the report helpers; pyplot is global, so every chart here draws under one
lock (:func:`locked` runs the other :mod:`adpilot.report.charts` under it too)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from adpilot.data import columns as C
from adpilot.optimization.stats import wilson
from adpilot.report import charts as base

_LOCK = threading.Lock()  # pyplot keeps global state: one figure at a time across threads


def allocation_chart(report: dict) -> str:
    """Share of impressions per variant per day (stacked bars)."""
    by_day = pd.DataFrame(report.get("allocation_by_day", {})).T.fillna(0)
    if by_day.empty:
        return ""
    share = by_day.div(by_day.sum(axis=1).replace(0, 1), axis=0)
    with _LOCK:
        fig, ax = base._axes("Allocation: share of impressions per day")
        bottom = np.zeros(len(share))
        for i, v in enumerate(share.columns):
            ax.bar(range(len(share)), share[v].to_numpy(), bottom=bottom, label=str(v),
                   color=base.PALETTE[i % len(base.PALETTE)])
            bottom += share[v].to_numpy()
        ax.set_xticks(range(len(share)), share.index, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(frameon=False, fontsize=8, ncols=min(4, len(share.columns)))
        return base.figure_svg(fig)


def rates_chart(events: pd.DataFrame, goal: str) -> str:
    """Cumulative goal rate per variant per day with its 95% Wilson interval."""
    if events.empty:
        return ""
    ev = events.assign(day=pd.to_datetime(events[C.TIME]).dt.floor("D"))
    counts = ev.groupby(["day", C.VARIANT, C.EVENT_TYPE]).size().unstack(fill_value=0)
    with _LOCK:
        fig, ax = base._axes(f"Cumulative {goal} rate (95% interval)")
        for i, (variant, g) in enumerate(counts.groupby(level=C.VARIANT)):
            g = g.droplevel(C.VARIANT).cumsum()
            n = g.get("impression", pd.Series(0, index=g.index)).to_numpy(dtype=float)
            k = np.minimum(g.get(goal, pd.Series(0, index=g.index)).to_numpy(dtype=float), n)
            lo, hi = wilson(k, n)
            rate = np.divide(k, n, out=np.full_like(k, np.nan), where=n > 0)
            color = base.PALETTE[i % len(base.PALETTE)]
            ax.plot(g.index, rate, marker="o", label=str(variant), color=color)
            ax.fill_between(g.index, lo, hi, alpha=0.2, color=color)
        ax.legend(frameon=False, fontsize=8)
        fig.autofmt_xdate()
        return base.figure_svg(fig)


def locked(fn, *args, **kwargs) -> str:
    """Run one of :mod:`adpilot.report.charts` under the pyplot lock."""
    with _LOCK:
        return fn(*args, **kwargs)
