"""A small HTML report builder. Charts are matplotlib figures embedded as inline SVG, so the
file opens anywhere offline and can be attached to an e-mail."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC","Microsoft YaHei",
sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{background:#1f3a5f;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.8;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:16px 32px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
h2{font-size:18px;margin:0 0 8px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.kpis{display:flex;gap:12px;flex-wrap:wrap}.kpi{background:#f0f4fa;border-radius:6px;
padding:10px 14px;min-width:120px}.kpi b{display:block;font-size:20px}.kpi span{font-size:12px;
color:#536070}.figs{display:flex;flex-wrap:wrap;gap:12px}.fig{flex:1 1 460px}
.fig svg{max-width:100%;height:auto}.note{color:#536070;font-size:13px}
"""


def figure_svg(fig) -> str:
    """A matplotlib figure as an inline SVG string (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg"):]


def table_html(frame: pd.DataFrame, *, max_rows: int = 30) -> str:
    """A DataFrame as an HTML table; numbers right-aligned and formatted."""
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):  # display only: at most max_rows rows
        cells = []
        for v in row:
            if isinstance(v, int | float) and not isinstance(v, bool):
                text = "" if pd.isna(v) else (f"{v:,.3g}" if isinstance(v, float) and abs(v) < 1
                                              else f"{v:,.2f}".rstrip("0").rstrip(".")
                                              if isinstance(v, float) else f"{v:,}")
                cells.append(f'<td class="num">{text}</td>')
            else:
                cells.append(f"<td>{html.escape('' if v is None or v is pd.NA else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p class="note">… {len(frame) - max_rows:,} more rows</p>'
            if len(frame) > max_rows else "")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Sections of HTML parts; each pipeline stage adds its own section."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        sec = Section(title)
        self.sections.append(sec)
        return sec

    @staticmethod
    def kpis(items: dict[str, object]) -> str:
        cells = "".join(
            f'<div class="kpi"><b>{html.escape(f"{v:,}" if isinstance(v, int) else str(v))}</b>'
            f"<span>{html.escape(k)}</span></div>" for k, v in items.items())
        return f'<div class="kpis">{cells}</div>'

    @staticmethod
    def figures(*svgs: str) -> str:
        return '<div class="figs">' + "".join(f'<div class="fig">{s}</div>' for s in svgs) + "</div>"

    @staticmethod
    def text(text: str, *, note: bool = False) -> str:
        return f'<p class="{"note" if note else ""}">{html.escape(text)}</p>'

    def render(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = "".join(
            f"<section><h2>{html.escape(s.title)}</h2>{''.join(s.parts)}</section>"
            for s in self.sections)
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
                f"<header><h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)}"
                f" · {stamp}</p></header><main>{body}</main></body></html>")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path
