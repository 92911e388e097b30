"""Charts for reports: small, labelled, colour-blind-safe matplotlib figures returned as SVG."""

from __future__ import annotations

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
    labels = segments["segment"] + "  " + segments["name"].str.slice(0, 38)
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
