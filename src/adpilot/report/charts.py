"""Charts for reports: small, labelled, colour-blind-safe matplotlib figures returned as SVG."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from adpilot.data import columns as C  # noqa: E402
from adpilot.report.html import figure_svg  # noqa: E402

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _axes(title: str, size=(5.6, 3.2)):
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title, fontsize=11, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def rating_chart(reviews: pd.DataFrame) -> str:
    """Share of reviews per star rating, by language."""
    fig, ax = _axes("Ratings by language (share of reviews)")
    rated = reviews.dropna(subset=[C.RATING])
    table = (pd.crosstab(rated[C.RATING].round().astype(int), rated[C.LANGUAGE], normalize="columns")
             .reindex(range(1, 6), fill_value=0))
    width = 0.8 / max(1, len(table.columns))
    for i, lang in enumerate(table.columns):
        ax.bar(table.index + (i - (len(table.columns) - 1) / 2) * width, table[lang], width,
               label=f"{lang} (n={int((rated[C.LANGUAGE] == lang).sum())})", color=PALETTE[i])
    ax.set_xlabel("stars")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(frameon=False, fontsize=9)
    return figure_svg(fig)


def revenue_chart(tx: pd.DataFrame) -> str:
    """Revenue and buyers per month."""
    fig, ax = _axes("Revenue per month")
    month = pd.to_datetime(tx[C.TIME]).dt.to_period("M").dt.to_timestamp()
    revenue = (tx[C.QUANTITY] * tx[C.UNIT_PRICE]).groupby(month).sum()
    ax.bar(revenue.index, revenue.to_numpy(), width=20, color=PALETTE[0])
    ax.set_ylabel("revenue (mixed currencies)")
    fig.autofmt_xdate()
    return figure_svg(fig)


def funnel_chart(events: pd.DataFrame) -> str:
    """Click-through and conversion rate per variant (per impression)."""
    fig, ax = _axes("Past campaign: rates per variant")
    counts = pd.crosstab(events[C.VARIANT], events[C.EVENT_TYPE])
    imps = counts.get("impression", pd.Series(0, index=counts.index)).clip(lower=1)
    for i, kind in enumerate(["click", "conversion"]):
        if kind in counts:
            ax.bar([j + (i - 0.5) * 0.38 for j in range(len(counts))], counts[kind] / imps, 0.38,
                   label=f"{kind}s / impression", color=PALETTE[i])
    ax.set_xticks(range(len(counts)), counts.index)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(frameon=False, fontsize=9)
    return figure_svg(fig)


def segment_chart(segments: pd.DataFrame) -> str:
    """Segment sizes with their short names."""
    fig, ax = _axes("Segments by size", size=(5.6, 0.5 + 0.45 * max(1, len(segments))))
    labels = segments[C.SEGMENT] + "  " + segments["name"].str.slice(0, 38)
    ax.barh(labels[::-1], segments["size"][::-1], color=PALETTE[0])
    ax.set_xlabel("customers")
    return figure_svg(fig)


def qini_chart(curves: dict, *, title: str = "Qini curve") -> str:
    """Qini curves (incremental outcomes vs people targeted) against random targeting."""
    fig, ax = _axes(title)
    for i, (name, (x, q)) in enumerate(curves.items()):
        frac = x / x[-1]
        ax.plot(frac, q, label=name, color=PALETTE[i % len(PALETTE)])
        if i == 0:
            ax.plot([0, 1], [0, q[-1]], "--", color="grey", label="random")
    ax.set_xlabel("share of customers targeted (by score)")
    ax.set_ylabel("incremental outcomes")
    ax.legend(frameon=False, fontsize=9)
    return figure_svg(fig)


def roi_chart(table: pd.DataFrame, *, zh: bool = False) -> str:
    """Revenue against cost per campaign (one row per campaign of
    :func:`adpilot.optimization.roi_store.roi_frame`): incremental revenue as solid bars with
    their 95% interval, attributed revenue as hatched grey bars labelled so, cost as a marker."""
    if table.empty:
        return ""
    t = table.reset_index(drop=True)
    title = "收入与成本（增量含 95% 区间）" if zh else "Revenue against cost (incremental: 95% interval)"
    fig, ax = _axes(title, size=(5.6, 0.9 + 0.5 * len(t)))
    y = list(range(len(t)))[::-1]
    inc = (t["kind"] == "incremental").to_numpy()
    revenue = pd.to_numeric(t["revenue"], errors="coerce").fillna(0.0).to_numpy()
    labels = {"incremental": "增量收入" if zh else "incremental revenue",
              "attributed": "归因收入（非增量）" if zh else "attributed revenue (not incremental)"}
    for kind, mask, style in (("incremental", inc, {"color": PALETTE[0]}),
                              ("attributed", ~inc, {"color": "#c7c7c7", "hatch": "//",
                                                    "edgecolor": "#7f7f7f"})):
        if mask.any():
            ax.barh([y[i] for i in range(len(t)) if mask[i]], revenue[mask], height=0.5,
                    label=labels[kind], **style)
    if inc.any():
        low = pd.to_numeric(t["revenue_low"], errors="coerce").to_numpy()
        high = pd.to_numeric(t["revenue_high"], errors="coerce").to_numpy()
        has = inc & ~pd.isna(low) & ~pd.isna(high)
        ax.errorbar(revenue[has], [y[i] for i in range(len(t)) if has[i]],
                    xerr=[revenue[has] - low[has], high[has] - revenue[has]], fmt="none",
                    ecolor="#1d2430", capsize=4, label="95% 区间" if zh else "95% interval")
    ax.scatter(pd.to_numeric(t["cost"], errors="coerce").fillna(0.0), y, marker="D",
               color=PALETTE[3], zorder=3, label="成本" if zh else "cost")
    ax.axvline(0, color="#7f7f7f", linewidth=0.8)
    ax.set_yticks(y, [str(n)[:28] for n in t["name"]])
    ax.set_xlabel("金额（原币种相加）" if zh else "amount (currencies as recorded)")
    ax.legend(frameon=False, fontsize=8, loc="best")
    # text stays text in the SVG, so the browser draws Chinese in its own fonts (none here has CJK)
    with plt.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        return figure_svg(fig)
