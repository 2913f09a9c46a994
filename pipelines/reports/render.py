"""Turn a `content.Report` into an email (HTML + plain text + inline PNGs by Content-ID) or a static page.

The email is `multipart/alternative` (text/plain, then `multipart/related` holding text/html and the charts
as `image/png` parts with a Content-ID the HTML references as `cid:`). The static report is the same HTML
with the images embedded as `data:` URIs, so it is one self-contained file.

This module must never query the warehouse or send anything, and it refuses to render a report that fails
its privacy check: rendering is the last gate before a figure leaves the pipeline.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipelines.reports.charts import render_png
from pipelines.reports.content import TIER_ORDER, BacklogRow, Figure, KpiSide, Report, TierRow

TEMPLATES = Path(__file__).resolve().parent / "templates"
EMAIL_WIDTH = 648
MSGID_DOMAIN = "esn-metrics.local"

_FONT = "font-family:Arial,Helvetica,sans-serif;"
STYLES: dict[str, str] = {
    "body": f"margin:0;padding:0;background:#f3f5f7;{_FONT}color:#222222;",
    "outer": "background:#f3f5f7;",
    "card": "background:#ffffff;border:1px solid #dde3ea;border-collapse:collapse;",
    "header": "padding:20px 24px 12px 24px;border-bottom:3px solid #1f5fa8;",
    "kicker": f"{_FONT}font-size:12px;color:#5d6d7e;text-transform:uppercase;letter-spacing:0.5px;",
    "h1": f"{_FONT}font-size:22px;margin:4px 0;color:#1b2a3a;",
    "sub": f"{_FONT}font-size:14px;color:#5d6d7e;",
    "banner": f"padding:14px 24px;{_FONT}font-size:14px;background:#c62828;color:#ffffff;",
    "banner_title": f"{_FONT}font-size:16px;font-weight:bold;letter-spacing:0.5px;margin-bottom:4px;",
    "coverage": f"padding:10px 24px;{_FONT}font-size:12px;background:#f8f9fb;color:#33414f;"
                "border-bottom:1px solid #eef1f4;",
    "coverage_line": f"padding:6px 24px;{_FONT}font-size:12px;background:#eef7ee;color:#2e5e31;",
    "note": f"padding:10px 24px;{_FONT}font-size:13px;background:#fff7e6;color:#6b4e16;",
    "section": "padding:16px 24px;border-bottom:1px solid #eef1f4;",
    "h2": f"{_FONT}font-size:16px;margin:0 0 8px 0;color:#1b2a3a;",
    "h2_link": "color:#1b2a3a;text-decoration:none;",
    "table": "border-collapse:collapse;",
    "th": f"{_FONT}font-size:12px;color:#5d6d7e;font-weight:normal;padding:4px;border-bottom:1px solid #dde3ea;",
    "td": f"{_FONT}font-size:13px;padding:6px 4px;border-bottom:1px solid #eef1f4;vertical-align:top;",
    "td_num": f"{_FONT}font-size:13px;padding:6px 4px;border-bottom:1px solid #eef1f4;vertical-align:top;"
              "white-space:nowrap;",
    "kpi_value": f"{_FONT}font-size:18px;font-weight:bold;color:#1b2a3a;",
    "up": f"{_FONT}font-size:12px;color:#2e7d32;",
    "down": f"{_FONT}font-size:12px;color:#c62828;",
    "flat": f"{_FONT}font-size:12px;color:#5d6d7e;",
    "link": "color:#1f5fa8;",
    "img": "display:block;border:0;max-width:100%;height:auto;",
    "small": f"{_FONT}font-size:11px;color:#5d6d7e;margin-top:6px;",
    "small_inline": f"{_FONT}font-size:11px;color:#5d6d7e;",
    "strong": "color:#1b2a3a;",
    "evidence": f"{_FONT}font-size:13px;color:#333333;",
    "sev_high": "background:#c62828;color:#ffffff;font-size:10px;padding:1px 5px;border-radius:3px;",
    "sev_medium": "background:#d9822b;color:#ffffff;font-size:10px;padding:1px 5px;border-radius:3px;",
    "sev_low": "background:#7a8ea6;color:#ffffff;font-size:10px;padding:1px 5px;border-radius:3px;",
    "footer": f"padding:14px 24px;{_FONT}font-size:11px;color:#5d6d7e;background:#f8f9fb;",
}


def format_figure(f: Figure | None) -> str:
    if f is None:
        return "–"
    if f.fmt == "pct":
        return f"{f.value:.1%}"
    if f.fmt == "int":
        return f"{f.value:,.0f}"
    return f"{f.value:,.2f}"


def format_change(side: KpiSide) -> str:
    if side.small and side.current is not None and side.current.fmt == "int":
        delta = side.count_change
        assert delta is not None
        return f"{delta:+,.0f} (small base)"
    change = side.change
    if change is None:
        return "no comparison"
    if side.current is not None and side.current.fmt == "int":
        return f"{change:+.1%}"
    return f"{change * 100:+.1f} pp" + (" (small group)" if side.small else "")


def _change_style(side: KpiSide, s: dict[str, str]) -> str:
    if side.small:  # the small-bases rule: never red or green on a base that moves by chance
        return s["flat"]
    change = side.change
    if change is None or abs(change) < 0.0005:
        return s["flat"]
    return s["up"] if change > 0 else s["down"]


def _plan_number(value: float | None, fmt: str) -> str:
    if value is None:
        return "no data"
    return f"{value:.1%}" if fmt == "pct" else f"{value:,.2f}"


def _plan_value(m: object) -> str:
    return _plan_number(m.value, m.fmt)  # type: ignore[attr-defined]


def _plan_target(m: object) -> str:
    sign = ">=" if m.spec.direction == "min" else "<="  # type: ignore[attr-defined]
    return f"{sign} {_plan_number(m.spec.target, m.fmt)}"  # type: ignore[attr-defined]


_STATUS_MARKS = {"on track": "\u2713", "off track": "\u2717", "no data": "\u00b7", "met": "\u2713",
                 "not met": "\u2717"}
_TREND_MARKS = {"better": "\u2197", "worse": "\u2198", "steady": "\u2192", "mixed": "\u2195", "no trend": ""}


def _status_style(status: str, s: dict[str, str]) -> str:
    return {"on track": s["up"], "met": s["up"], "off track": s["down"], "not met": s["down"]}.get(status, s["flat"])


def _severity_style(severity: str, s: dict[str, str]) -> str:
    sev = severity.lower()
    if sev in ("critical", "high", "error"):
        return s["sev_high"]
    if sev in ("medium", "warning", "warn"):
        return s["sev_medium"]
    return s["sev_low"]


def _age_bands(rows: list[BacklogRow]) -> list[str]:
    bands: list[str] = []
    for r in rows:
        bands += [b for b in r.by_age if b not in bands]
    return sorted(bands, key=_band_order)


def _band_order(band: str) -> tuple[float, str]:
    """'0-1d' < '1-7d' < '7-30d' < '>30d'; bands without a leading number go last, alphabetically."""
    m = re.match(r"\s*(>=?|<)?\s*(\d+(?:\.\d+)?)", band)
    if not m:
        return float("inf"), band
    return float(m.group(2)) + (0.5 if m.group(1) and m.group(1).startswith(">") else 0.0), band


def _tier_names(rows: list[TierRow]) -> list[str]:
    seen = {t for r in rows for t in r.counts}
    return [t for t in TIER_ORDER if t in seen] + sorted(seen - set(TIER_ORDER))


def _sides_text(sides: list[KpiSide]) -> str:
    return "; ".join(f"{s.label} {format_figure(s.current)} ({format_change(s)})" for s in sides)


def _backlog_text(row: BacklogRow) -> str:
    bands = ", ".join(f"{b}: {format_figure(f)}" for b, f in row.by_age.items() if f.value)
    return f"{format_figure(row.open_questions)} open" + (f" ({bands})" if bands else "")


def _tiers_text(row: TierRow) -> str:
    return ", ".join(f"{t} {format_figure(row.counts[t])}" for t in _tier_names([row]))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(figure=format_figure, change=format_change, change_style=_change_style,
                       severity_style=_severity_style, age_bands=_age_bands, tier_names=_tier_names,
                       sides_text=_sides_text, backlog_text=_backlog_text, tiers_text=_tiers_text,
                       plan_value=_plan_value, plan_target=_plan_target, status_style=_status_style,
                       status_mark=lambda st: _STATUS_MARKS.get(st, "?"),
                       trend_mark=lambda t: _TREND_MARKS.get(t, ""))
    return env


_ENV = _environment()
_TEXT_ENV = _environment()
_TEXT_ENV.autoescape = False


@dataclass(frozen=True)
class RenderedEmail:
    audience: str
    subject: str
    html: str
    text: str
    images: dict[str, bytes]  # Content-ID (without brackets) -> PNG

    def message(self, sender: str, to: list[str], reply_to: str | None = None) -> EmailMessage:
        """The MIME message for these recipients (a fresh Message-ID each call)."""
        msg = EmailMessage()
        msg["Subject"] = self.subject
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        if reply_to:
            msg["Reply-To"] = reply_to
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=self.audience, domain=MSGID_DOMAIN)
        msg["X-ESN-Audience"] = self.audience
        msg.set_content(self.text)
        msg.add_alternative(self.html, subtype="html")
        html_part = msg.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, EmailMessage)
        for cid, png in self.images.items():
            html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>",
                                  disposition="inline", filename=f"{cid.split('@')[0]}.png")
        return msg

    def preview_html(self) -> str:
        """The email's HTML with cid: references swapped for data: URIs, to open in a browser."""
        out = self.html
        for cid, png in self.images.items():
            out = out.replace(f"cid:{cid}", _data_uri(png))
        return out


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def subject_for(report: Report) -> str:
    """Short enough (< 70 characters for usual names) that mail clients show it unfolded."""
    a = report.audience
    who = a.title or (a.scope.segment_value if a.scope else report.organisation)
    if not report.data_complete:  # shorter, so that the flag still fits unfolded
        return f"[DATA INCOMPLETE] {who}: ESN report, {report.period.label}"
    return f"{who}: social network report, {report.period.label}"


def _render(report: Report, image_src: dict[str, str], docs_url: str) -> tuple[str, str]:
    report.check_privacy()
    ctx = {"report": report, "s": STYLES, "width": EMAIL_WIDTH, "image_src": image_src.__getitem__,
           "docs_url": docs_url}
    return (_ENV.get_template("report.html.j2").render(**ctx),
            _TEXT_ENV.get_template("report.txt.j2").render(**ctx))


def render_email(report: Report, docs_url: str) -> RenderedEmail:
    pngs = {c.key: render_png(c) for c in report.charts}
    cids = {key: f"{key}.{report.audience.name}@{MSGID_DOMAIN}" for key in pngs}
    html_text, plain = _render(report, {k: f"cid:{v}" for k, v in cids.items()}, docs_url)
    return RenderedEmail(audience=report.audience.name, subject=subject_for(report), html=html_text,
                         text=plain, images={cids[k]: png for k, png in pngs.items()})


def render_static(report: Report, docs_url: str) -> str:
    """One self-contained HTML page (charts as data: URIs)."""
    pngs = {c.key: _data_uri(render_png(c)) for c in report.charts}
    page, _ = _render(report, pngs, docs_url)
    return page
