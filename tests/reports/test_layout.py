"""Layout for action (issue 16, part 2): the alerts come first, before the figures behind them, and a
change on a small base is shown as a count (or neutral points), never as an alarming percentage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.reports import render_reports
from pipelines.reports.render import STYLES, _change_style, format_change

from .conftest import AS_OF, fixture_tables, make_warehouse, report_of, reports_config

LEGAL = 12  # people: above min_group_size, a small base for a count of active users


def _with_legal(tmp_path: Path) -> str:
    """The fixture warehouse plus a 12-person Legal department whose 2 weekly active users of the previous
    week became 0 this week (the -100 % in red of issue 16)."""
    url = make_warehouse(tmp_path / "w.duckdb", tuple(t for t in fixture_tables() if t != "mart_engagement_daily"))
    eng = fixture_tables()["mart_engagement_daily"]
    org = eng[eng["segment_type"] == "org"].copy()
    this_week = org["activity_date"] > AS_OF - dt.timedelta(days=7)
    legal = org.assign(segment_type="department", segment_value="Legal", headcount=LEGAL,
                       wau=(~this_week).astype(int) * 2, mau=2, dau=0, participation_rate=2 / LEGAL,
                       contributor_rate=1 / LEGAL, stickiness=0.0)
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    try:
        con.register("frame", pd.concat([eng, legal], ignore_index=True))
        con.execute(f"create table {warehouse.DEFAULT_SCHEMAS.qualified('mart_engagement_daily')} as "
                    "select * from frame")
    finally:
        con.close()
    return url


def _legal_config(catalogue: Path, **overrides):
    return reports_config(catalogue, audiences=[
        {"name": "legal-head", "recipients": ["legal@fixture.example"],
         "scope": {"segment_type": "department", "segment_value": "Legal"}}], **overrides)


def test_alerts_come_before_the_headline_figures_and_the_charts(settings, catalogue, tmp_path: Path) -> None:
    render_reports(settings, AS_OF, tmp_path, ["leadership"], config=reports_config(catalogue))
    html = (tmp_path / "leadership.html").read_text()
    alerts = html.index('data-role="alerts"')
    assert alerts < html.index("Headline figures") < html.index("<img")
    assert alerts < html.index("Unanswered questions by container")
    # the per-source coverage is stated at the top in one line, its details at the end
    assert html.index('data-role="coverage-line"') < alerts < html.index('data-role="coverage"')
    plain = (tmp_path / "leadership.eml").read_text()
    assert plain.index("ALERTS (") < plain.index("HEADLINE FIGURES") < plain.index("CHARTS")


def test_a_small_base_shows_its_change_as_a_count_not_a_percentage(tmp_path: Path, catalogue: Path) -> None:
    url = _with_legal(tmp_path)
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    config = _legal_config(catalogue)
    report = report_of(url, settings, config, "legal-head")
    wau = next(k for k in report.kpis if k.metric.name == "weekly_active_users")
    legal, org = wau.sides
    assert (legal.label, legal.current.value, legal.previous.value) == ("Legal", 0.0, 2.0)  # type: ignore[union-attr]
    assert legal.small and not org.small
    assert format_change(legal) == "-2 (small base)"
    assert _change_style(legal, STYLES) == STYLES["flat"]  # never red on a base that moves by chance
    assert format_change(org).endswith("%") and org.change is not None
    # the participation rate of a 12-person group: neutral points, labelled
    part = next(k for k in report.kpis if k.metric.name == "participation_rate").sides[0]
    assert part.small and format_change(part).endswith("pp (small group)")
    render_reports(settings, AS_OF, tmp_path / "out", config=config)
    html = (tmp_path / "out" / "legal-head.html").read_text()
    assert "-2 (small base)" in html and "-100.0%" not in html


def test_the_rule_can_be_switched_off(tmp_path: Path, catalogue: Path) -> None:
    url = _with_legal(tmp_path)
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    config = _legal_config(catalogue, small_base=0)
    render_reports(settings, AS_OF, tmp_path / "out", config=config)
    html = (tmp_path / "out" / "legal-head.html").read_text()
    assert "-100.0%" in html and "small base" not in html
