"""The report model: sections built from the tables that exist, links to the catalogue, named leaderboards."""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy
from pathlib import Path

import pytest
import yaml

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.reports import render_reports
from pipelines.reports.content import Period, build_report
from pipelines.reports_config import ConfigError, Frequency, is_due, load_reports_config

from .conftest import AS_OF, make_warehouse, reports_config


def test_weekly_period_compares_with_the_seven_days_before() -> None:
    p = Period.ending(Frequency.weekly, AS_OF)
    assert (p.start, p.end, p.previous_start, p.previous_end) == (
        dt.date(2026, 10, 19), AS_OF, dt.date(2026, 10, 12), dt.date(2026, 10, 18))


def test_monthly_period_is_the_calendar_month() -> None:
    p = Period.ending(Frequency.monthly, dt.date(2026, 10, 31))
    assert (p.start, p.previous_start, p.previous_end) == (dt.date(2026, 10, 1), dt.date(2026, 9, 1),
                                                           dt.date(2026, 9, 30))
    assert is_due(Frequency.monthly, dt.date(2026, 10, 31)) and not is_due(Frequency.monthly, AS_OF)
    assert is_due(Frequency.weekly, AS_OF) and not is_due(Frequency.weekly, AS_OF - dt.timedelta(days=1))


def test_bad_recipient_is_reported_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"reports": {"audiences": [{"name": "x", "recipients": ["not-an-address"]}]}}))
    with pytest.raises(ConfigError, match=r"reports\.audiences\.0\.recipients"):
        load_reports_config(load_settings(None), path)


def test_department_head_sees_department_against_organisation(settings, engine, catalogue) -> None:
    config = reports_config(catalogue)
    with engine.connect() as conn:
        report = build_report(conn, settings, config, config.audience("sales-head"), AS_OF)
    participation = next(k for k in report.kpis if k.metric.name == "participation_rate")
    assert [s.label for s in participation.sides] == ["Sales", "Organisation"]
    assert participation.sides[0].current is not None and participation.sides[0].current.value == pytest.approx(0.3)
    # only alerts about Sales or the whole organisation, within the week
    assert {(a.alert_type, a.segment) for a in report.alerts} == {
        ("decline_after_enthusiasm", "Organisation"), ("absent_leaders", "Sales (department)")}
    assert [t.group for t in report.tiers] == ["Organisation", "Sales"]
    assert [b.container for b in report.backlog] == ["c-sales (channel)"]


def test_every_section_is_present_when_every_table_exists(settings, engine, catalogue) -> None:
    config = reports_config(catalogue)
    with engine.connect() as conn:
        report = build_report(conn, settings, config, config.audience("leadership"), AS_OF)
    # no adoption_by_department: Tiny Team (3) is withheld, and the organisation's figure minus Sales and
    # Engineering would give it back, so Sales is withheld too (complementary suppression); one bar is no chart
    assert {c.key for c in report.charts} == {"activity_trend", "answered_trend", "cross_department"}
    assert {k.metric.name for k in report.kpis} >= {"weekly_active_users", "participation_rate", "answered_rate",
                                                    "cross_department_share"}
    assert report.alerts[0].severity == "high"  # most severe first
    assert report.alerts_withheld == 2  # Tiny Team and the 3-member container
    assert report.backlog[0].container == "c-big (community)" and report.backlog_withheld == 1


def test_sections_without_their_table_are_left_out(tmp_path: Path, catalogue) -> None:
    url = make_warehouse(tmp_path / "w.duckdb", ("mart_engagement_daily",))
    settings = load_settings(None, warehouse_url=url)
    config = reports_config(catalogue)
    paths = render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=config)
    html = (tmp_path / "out" / "leadership.html").read_text()
    # (adoption by department is withheld by complementary suppression: see the test above)
    assert "Headline figures" in html and "Active users and participation" in html
    for absent in ("Alerts", "Unanswered questions", "Influence", "Answered questions", "Cross-department"):
        assert absent not in html
    assert {p.name for p in paths} == {"report.html", "leadership.eml", "leadership.html"}


def test_empty_warehouse_gives_no_email_but_still_a_report_page(tmp_path: Path, catalogue) -> None:
    url = make_warehouse(tmp_path / "w.duckdb", ())
    settings = load_settings(None, warehouse_url=url)
    engine = warehouse.make_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("create table placeholder (x integer)")
        conn.commit()
    paths = render_reports(settings, AS_OF, tmp_path / "out", config=reports_config(catalogue), engine=engine)
    assert [p.name for p in paths] == ["report.html"]
    assert "<h2" not in (tmp_path / "out" / "report.html").read_text()


def test_every_figure_links_to_its_catalogue_definition(settings, engine, catalogue, tmp_path: Path) -> None:
    config = reports_config(catalogue)
    render_reports(settings, AS_OF, tmp_path, ["leadership"], config=config, engine=engine)
    html = (tmp_path / "leadership.html").read_text()
    base = "https://esn.example/docs/metrics.html#"
    anchors = set(re.findall(re.escape(base) + r"([\w-]+)", html))
    assert {"mart_engagement_daily__participation_rate", "mart_engagement_daily__wau",
            "mart_knowledge_sharing_daily__answered_rate", "mart_network_org__cross_department_share"} <= anchors
    # each KPI row and each chart title is a link
    assert html.count(f'href="{base}') >= 4 + 4
    text = email.message_from_bytes((tmp_path / "leadership.eml").read_bytes(), policy=policy.default)
    plain = text.get_body(("plain",)).get_content()
    assert f"{base}mart_engagement_daily__participation_rate" in plain


def test_people_are_named_only_with_a_mapping_and_permission(warehouse_url, engine, catalogue, tmp_path) -> None:
    names = tmp_path / "names.yaml"
    names.write_text(yaml.safe_dump({"p001": "Ada Lovelace", "p002": "Grace Hopper"}))
    config = reports_config(catalogue, names_file=str(names))
    audience = config.audience("leadership")
    for allowed, expected in ((False, []), (True, ["Ada Lovelace", "Grace Hopper"])):
        settings = load_settings(None, warehouse_url=warehouse_url,
                                 privacy={"min_group_size": 5, "allow_named_leaderboards": allowed})
        with engine.connect() as conn:
            report = build_report(conn, settings, config, audience, AS_OF)
        assert [p.name for p in report.leaderboard] == expected
    settings = load_settings(None, warehouse_url=warehouse_url, privacy={"allow_named_leaderboards": True})
    with engine.connect() as conn:
        report = build_report(conn, settings, reports_config(catalogue), audience, AS_OF)
    assert report.leaderboard == []  # allowed, but no mapping file: nobody is named
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=reports_config(catalogue),
                   engine=engine)
    assert "p001" not in (tmp_path / "out" / "leadership.html").read_text()


def test_links_follow_the_repository_catalogue_layout(settings, engine) -> None:
    from pipelines.reports.content import Catalogue

    repo_catalogue = Path(__file__).resolve().parents[2] / "catalogue" / "metrics.yaml"
    if not repo_catalogue.exists():
        pytest.skip("catalogue/metrics.yaml not in this checkout")
    cat = Catalogue(repo_catalogue, "https://esn.example/docs/metrics.html")
    ref = cat.ref("participation_rate", "Participation", "mart_engagement_daily", "participation_rate")
    assert ref.in_catalogue and ref.url == "https://esn.example/docs/metrics.html#mart_engagement_daily__participation_rate"
    # a relative path opens in no mail client: the definition is inlined and the link points at it
    inline = Catalogue(repo_catalogue, "docs/metrics.md").ref("participation_rate", "Participation",
                                                              "mart_engagement_daily", "participation_rate")
    from pipelines.catalogue import load_entries

    [entry] = [e for e in load_entries(repo_catalogue) if e.doc_id == "mart_engagement_daily__participation_rate"]
    assert inline.url == "#def-mart_engagement_daily__participation_rate" and inline.definition == entry.definition
    assert '<a name="mart_engagement_daily__participation_rate">' in (repo_catalogue.parent.parent / "docs" /
                                                                       "metrics.md").read_text()
