"""No number in any email or report may concern a group smaller than privacy.min_group_size.

The fixture's "Tiny Team" has 3 people and its mart rows are NOT flagged suppressed (as if the marts had
been built with a lower threshold): the reports must still leave out every figure about it, in the HTML,
the plain text, the charts' underlying data, alerts, backlog, network and influence tiers.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from pipelines.reports import build_reports
from pipelines.reports.content import (
    Figure,
    Kpi,
    KpiSide,
    MetricRef,
    Period,
    PrivacyViolation,
    Report,
    build_report,
)
from pipelines.reports.render import render_static

from .conftest import AS_OF, TINY, TINY_TEXT, reports_config


def _all_text(tmp: Path, settings, engine, config) -> dict[str, str]:
    from pipelines.reports import render_reports

    render_reports(settings, AS_OF, tmp, config=config, engine=engine)
    out = {"report.html": (tmp / "report.html").read_text()}
    for eml in tmp.glob("*.eml"):
        msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        out[f"{eml.name}:plain"] = msg.get_body(("plain",)).get_content()
        out[f"{eml.name}:html"] = msg.get_body(("html",)).get_content()
    return out


def test_no_figure_about_a_group_under_min_group_size_appears_anywhere(settings, engine, catalogue,
                                                                       tmp_path: Path) -> None:
    config = reports_config(catalogue)
    texts = _all_text(tmp_path, settings, engine, config)
    assert len(texts) == 1 + 2 * len(config.audiences)
    for where, text in texts.items():
        for needle in TINY_TEXT + ("c-small", "2 of 3 people"):
            assert needle not in text, f"{needle!r} about a 3-person group found in {where}"
        # the department name itself only appears in the tiny team's own email, in the withheld note
        if not where.startswith("tiny-head"):
            assert TINY not in text, f"{TINY!r} named in {where}"

    built, _ = build_reports(settings, AS_OF, config.audiences, config, engine)
    for name, b in built.items():
        report = b.report
        sizes = [size for _, _, size in report.figures()]
        assert sizes and min(sizes) >= settings.privacy.min_group_size, name
        for chart in report.charts:  # the data the images are drawn from
            labels = {s.label for p in chart.panels for s in p.series}
            assert TINY not in labels, (name, chart.key)
            values = [v for p in chart.panels for s in p.series for v in s.y]
            assert 0.6667 not in values, (name, chart.key)
        assert all(t.group != TINY for t in report.tiers)
        assert report.alerts_withheld >= (1 if name != "sales-head" else 0)


def test_the_tiny_departments_head_gets_organisation_figures_only(settings, engine, catalogue) -> None:
    config = reports_config(catalogue)
    with engine.connect() as conn:
        report = build_report(conn, settings, config, config.audience("tiny-head"), AS_OF)
    assert all(side.label == "Organisation" for k in report.kpis for side in k.sides)
    assert any("fewer than 5 people" in n for n in report.notes)
    assert not report.backlog  # its only container has 3 members


def test_a_raised_threshold_withholds_more(settings, engine, catalogue) -> None:
    strict = settings.model_copy(update={"privacy": settings.privacy.model_copy(update={"min_group_size": 45})})
    config = reports_config(catalogue)
    with engine.connect() as conn:
        report = build_report(conn, strict, config, config.audience("sales-head"), AS_OF)
    assert all(side.label == "Organisation" for k in report.kpis for side in k.sides)  # Sales has 40 people
    adoption = report.chart("adoption_by_department")
    assert adoption is None  # only Engineering (57) is left: one bar says nothing a KPI does not


def test_rendering_refuses_a_model_with_a_small_group(settings, catalogue) -> None:
    config = reports_config(catalogue)
    audience = config.audience("leadership")
    report = Report(audience=audience, organisation="x", as_of=AS_OF,
                    period=Period.ending(audience.frequency, AS_OF), min_group_size=5)
    ref = MetricRef("participation_rate", "Participation", "#participation_rate", True)
    report.kpis.append(Kpi(ref, [KpiSide("Tiny", Figure(0.5, "pct", 3), None)]))
    with pytest.raises(PrivacyViolation):
        render_static(report, "docs")
