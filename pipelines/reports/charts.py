"""Charts of a report as PNG bytes (matplotlib, Agg backend), sized for a 600-pixel-wide email.

It draws exactly the series of a `content.Chart`, nothing else: every number a chart shows has already
passed the report's privacy check. This module must never query the warehouse, never touch the pyplot
global state (figures are built with the object API so renders are thread-safe and leak nothing), and
never write files: the caller decides whether the bytes become a cid: attachment or a data: URI.
"""

from __future__ import annotations

import datetime as dt
import io

import matplotlib

matplotlib.use("Agg")  # no display, ever; must precede any pyplot-dependent import
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.dates import AutoDateLocator, DateFormatter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from pipelines.reports.content import Chart, Fmt, Panel  # noqa: E402

WIDTH_IN = 6.0
DPI = 150  # 900 px, shown at 600 px: sharp on high-density screens
ACCENT = "#1f5fa8"
MUTED = ["#7a8ea6", "#a9b7c6", "#c9d3de", "#5d6d7e"]
HIGHLIGHT = "#d9822b"
REFERENCE = "#444444"


def _formatter(fmt: Fmt) -> FuncFormatter:
    if fmt == "pct":
        return FuncFormatter(lambda v, _: f"{v:.0%}")
    if fmt == "int":
        return FuncFormatter(lambda v, _: f"{v:,.0f}")
    return FuncFormatter(lambda v, _: f"{v:.2f}")


def _style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8, colors="#333333")


def _line(ax: Axes, panel: Panel) -> None:
    muted = iter(MUTED)
    for i, s in enumerate(panel.series):
        color = ACCENT if (s.highlight or (i == 0 and not any(x.highlight for x in panel.series))) \
            else next(muted, MUTED[-1])
        ax.plot(s.x, s.y, label=s.label, color=color, linewidth=2.0 if color == ACCENT else 1.4)
    if panel.series and isinstance(panel.series[0].x[0], dt.date):
        ax.xaxis.set_major_locator(AutoDateLocator(maxticks=7))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
    ax.yaxis.set_major_formatter(_formatter(panel.fmt))
    ax.yaxis.set_major_locator(MaxNLocator(5, integer=panel.fmt == "int"))
    top = max((max(s.y) for s in panel.series if s.y), default=1.0)
    room = 1.35 if len(panel.series) > 1 else 1.15  # headroom for the legend above the lines
    if panel.fmt == "pct":
        ax.set_ylim(0, min(1.0 * room / 1.15, top * room) if top > 0 else 1.0)
    else:
        ax.set_ylim(0, top * room if top > 0 else 1.0)
    if len(panel.series) > 1:
        ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=len(panel.series))


def _barh(ax: Axes, panel: Panel) -> None:
    labels = [s.label for s in panel.series]
    values = [s.y[0] for s in panel.series]
    colors = [HIGHLIGHT if s.highlight else ACCENT for s in panel.series]
    bars = ax.barh(labels, values, color=colors, height=0.65)
    fmt = _formatter(panel.fmt)
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + fmt(value, None),
                va="center", fontsize=7, color="#333333")
    if panel.reference is not None:
        label, value, _ = panel.reference
        ax.axvline(value, color=REFERENCE, linestyle="--", linewidth=1)
        ax.text(value, len(labels) - 0.4, f" {label} {fmt(value, None)}", fontsize=7, color=REFERENCE)
    ax.xaxis.set_major_formatter(fmt)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    right = max([*values, panel.reference[1] if panel.reference else 0.0])
    ax.set_xlim(0, right * 1.2 if right > 0 else 1)


def render_png(chart: Chart) -> bytes:
    """The chart as a PNG image."""
    heights = [max(1.6, 0.24 * len(p.series) + 0.6) if p.kind == "barh" else 2.1 for p in chart.panels]
    fig = Figure(figsize=(WIDTH_IN, sum(heights) + 0.5), dpi=DPI)
    axes = fig.subplots(len(chart.panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, panel in zip(axes, chart.panels, strict=True):
        _style(ax)
        (_barh if panel.kind == "barh" else _line)(ax, panel)
        ax.set_title(panel.title, fontsize=9, loc="left", color="#222222")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()
