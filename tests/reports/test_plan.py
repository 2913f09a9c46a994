"""The ESN action plan (issue 16, part 5): objectives with their metrics and targets, shown with status,
trend and history in the emails and report.html, and the business-impact results with their intervals and
"association, not causation"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.errors import ConfigError
from pipelines.metrics.config import load_impact_config
from pipelines.reports import render_reports
from pipelines.reports.content import build_report
from pipelines.reports.plan import DEFAULT_OBJECTIVES
from pipelines.reports_config import parse_reports_config

from .conftest import AS_OF, fixture_tables, make_warehouse, report_of, reports_config


def _org_participation(day: dt.date) -> float:
    eng = fixture_tables()["mart_engagement_daily"]
    row = eng[(eng["segment_type"] == "org") & (eng["activity_date"] == day)]
    return float(row["participation_rate"].iloc[0])


def test_the_default_plan_has_the_scorecard_targets_with_status_and_history(settings, engine, catalogue) -> None:
    config = reports_config(catalogue)
    assert config.plan is None
    with engine.connect() as conn:
        report = build_report(conn, settings, config, config.audience("leadership"), AS_OF)
    assert [o.objective.title for o in report.objectives] == [t for _, t, _ in DEFAULT_OBJECTIVES]
    adoption = report.objectives[0]
    part = next(m for m in adoption.metrics if m.spec.metric == "participation_rate")
    target = load_impact_config().targets["participation_rate"].target
    assert part.spec.target == target
    # six weekly periods ending on as_of, each read on its last day
    assert adoption.period_ends == tuple(AS_OF - dt.timedelta(days=7 * k) for k in range(5, -1, -1))
    assert part.values == pytest.approx([_org_participation(d) for d in adoption.period_ends])
    assert part.status == ("met" if _org_participation(AS_OF) >= target else "not met")
    assert part.trend == "better"  # the fixture organisation grows
    # no leader mart in the fixtures: that objective says so, it does not make a figure up
    leadership = next(o for o in report.objectives if o.objective.name == "leadership")
    assert leadership.status == "no data" and all(v is None for v in leadership.metrics[0].values)


def test_a_configured_plan_is_shown_first_with_its_status_and_trend(settings, catalogue, tmp_path: Path) -> None:
    now = _org_participation(AS_OF)
    plan = {"objectives": [
        {"name": "onboarding", "title": "New joiners take part", "sources": ["slack_main"],
         "metrics": [{"metric": "participation_rate", "target": round(now + 0.1, 3)}]},
        {"name": "silos", "title": "Sales and Engineering talk",
         "metrics": [{"metric": "mart_network_org.cross_department_share", "target": 0.1}]}],
        "relationships": {"grow_ties": [["Sales", "Engineering"]]}, "history_periods": 4}
    config = reports_config(catalogue, plan=plan)
    render_reports(settings, AS_OF, tmp_path, ["leadership"], config=config)
    html = (tmp_path / "leadership.html").read_text()
    objectives = html.index('data-role="objectives"')
    assert html.index('data-role="alerts"') < objectives < html.index("Headline figures")
    section = html[objectives:html.index("Headline figures")]
    assert "New joiners take part" in section and "OFF TRACK" in section  # the target is above the value
    assert "Sales and Engineering talk" in section and "ON TRACK" in section
    assert "Last 4 periods" in section and section.count("title=") == 8
    plain = (tmp_path / "leadership.eml").read_text()
    assert "OBJECTIVES OF THE ESN PLAN" in plain and "trend better" in plain


def test_bad_plans_are_refused_with_their_field() -> None:
    good = {"name": "a", "title": "A", "metrics": [{"metric": "participation_rate", "target": 0.5}]}
    with pytest.raises(ConfigError, match="objective names must be unique"):
        parse_reports_config({"plan": {"objectives": [good, good]}})
    with pytest.raises(ConfigError, match=r"reports\.plan\.objectives\.0\.metrics\.0\.direction"):
        parse_reports_config({"plan": {"objectives": [{**good, "metrics": [
            {"metric": "participation_rate", "target": 0.5, "direction": "up"}]}]}})


def test_business_impact_results_with_intervals_and_association_not_causation(tmp_path: Path,
                                                                              catalogue: Path) -> None:
    url = make_warehouse(tmp_path / "w.duckdb")
    rows = pd.DataFrame([
        {"outcome": "retention_12m", "segment_type": "org", "segment_value": "all", "n": 400, "n_engaged": 180,
         "n_not_engaged": 220, "mean_engaged": 0.91, "mean_not_engaged": 0.83, "difference": 0.08,
         "ci_low": 0.03, "ci_high": 0.13, "suppressed": False, "engaged_definition": "power/habitual",
         "interpretation": "association, not causation"},
        {"outcome": "retention_12m", "segment_type": "department", "segment_value": "Sales", "n": 90,
         "n_engaged": 40, "n_not_engaged": 50, "mean_engaged": 0.777, "mean_not_engaged": 0.555,
         "difference": 0.222, "ci_low": 0.1, "ci_high": 0.3, "suppressed": False,
         "engaged_definition": "power/habitual", "interpretation": "association, not causation"},
        {"outcome": "sales_per_head", "segment_type": "org", "segment_value": "all", "n": 6, "n_engaged": 3,
         "n_not_engaged": 3, "mean_engaged": None, "mean_not_engaged": None, "difference": 9.876,
         "ci_low": None, "ci_high": None, "suppressed": True, "engaged_definition": "power/habitual",
         "interpretation": "association, not causation"}])
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    try:
        con.register("frame", rows)
        con.execute("create table esn_marts.mart_impact_engaged_vs_not as select * from frame")
    finally:
        con.close()
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=reports_config(catalogue))
    html = (tmp_path / "out" / "leadership.html").read_text()
    section = html[html.index('data-role="impact"'):]
    assert "association, not causation" in section and "retention 12m" in section
    assert "+0.08" in section and "0.03 to 0.13" in section
    # a department's result and a suppressed one are not shown
    assert "0.222" not in html and "0.22" not in section and "9.88" not in html and "sales per head" not in html
    config = reports_config(catalogue)
    report = report_of(url, settings, config, "leadership")
    assert [(r.kind, r.group_size) for r in report.impact] == [("engaged_vs_not", 180)]


def test_leaders_to_be_reachable_are_measured_and_small_leader_groups_withheld(tmp_path: Path,
                                                                            catalogue: Path) -> None:
    url = make_warehouse(tmp_path / "w.duckdb")
    ends = [AS_OF - dt.timedelta(days=7 * k) for k in range(3, -1, -1)]
    rows = []
    for i, day in enumerate(ends):
        rows.append({"as_of_date": day, "period_type": "rolling_28d", "segment_type": "department",
                     "segment_value": "Sales", "suppressed": False, "leaders_suppressed": False, "leaders": 6,
                     "leader_reach": 0.30 + 0.05 * i})
        rows.append({"as_of_date": day, "period_type": "rolling_28d", "segment_type": "department",
                     "segment_value": "Engineering", "suppressed": False, "leaders_suppressed": False,
                     "leaders": 3, "leader_reach": 0.777})  # 3 leaders: under min_group_size
    # the network stage's 28-day windows, one per week end, the last one two days before the period end:
    # Sales s0..s9 and Engineering e0..e9 people; week k has 2 + k Sales-Engineering pairs (one of them
    # both ways: counted once), a Sales-Sales tie and a tie to Tiny Team, which are not counted
    people, tie_rows = [], []
    for k, end in enumerate(ends):
        window_end = end - dt.timedelta(days=2 if k == len(ends) - 1 else 0)
        for dept, prefix in (("Sales", "s"), ("Engineering", "e"), ("Tiny Team", "t")):
            for i in range(10 if prefix != "t" else 3):
                people.append({"window_name": "rolling_28d", "window_end": window_end,
                               "person_key": f"{prefix}{i}", "department": dept})
        pairs = [(f"s{i}", f"e{i}") for i in range(2 + k)] + [("e0", "s0"), ("s1", "s2"), ("s3", "t0")]
        tie_rows += [{"window_name": "rolling_28d", "window_end": window_end, "source_key": a,
                      "target_key": b} for a, b in pairs]
        tie_rows.append({"window_name": "rolling_90d", "window_end": window_end, "source_key": "s9",
                         "target_key": "e8"})  # another window: not counted
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    try:
        for name, frame in (("mart_leader_engagement", pd.DataFrame(rows)), ("fct_person_network",
                            pd.DataFrame(people)), ("fct_network_ties", pd.DataFrame(tie_rows))):
            con.register("frame", frame)
            con.execute(f"create or replace table {warehouse.DEFAULT_SCHEMAS.qualified(name)} as select * from frame")
            con.unregister("frame")
    finally:
        con.close()
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    plan = {"objectives": [{"name": "leaders", "title": "Leaders are reachable",
                            "metrics": [{"metric": "participation_rate", "target": 0.5}]}],
            "relationships": {"leaders_reachable": ["Sales", "Engineering"],
                              "grow_ties": [["Sales", "Engineering"], ["Tiny Team", "Sales"]]},
            "history_periods": 4}
    config = reports_config(catalogue, plan=plan)
    report = report_of(url, settings, config, "leadership")
    sales, engineering, ties, tiny = report.relationships
    assert sales.values == pytest.approx([0.30 + 0.05 * i for i in range(4)]) and sales.trend == "better"
    assert sales.group_size == 6
    assert engineering.value is None and "fewer than 5 leaders" in engineering.note
    assert ties.values == (2.0, 3.0, 4.0, 5.0), ties.note
    assert ties.trend == "better" and ties.shown == "5"
    assert ties.group_size == 40 and "pairs of people" in (ties.measure or "")
    assert tiny.value is None and "fewer than 5 people" in tiny.note  # Tiny Team has 3 people
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=config)
    html = (tmp_path / "out" / "leadership.html").read_text()
    assert "Leaders of Sales reachable" in html and "45.0%" in html and "77.7" not in html
    section = html[html.index('data-role="relationships"'):]
    assert "Ties between Sales and Engineering grow" in section and ">5<br>" in section


def test_each_objective_names_its_technology_with_the_sources_coverage(tmp_path: Path, catalogue: Path) -> None:
    from .test_freshness import WEEK, _config, _warehouse

    url = _warehouse(tmp_path, {("slack_main", d): None for d in WEEK[5:]})
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    config = _config(catalogue, plan={"objectives": [
        {"name": "answers", "title": "Questions get answered", "sources": ["slack_main", "hr"],
         "metrics": [{"metric": "answered_rate", "target": 0.5}]}]})
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=config)
    html = (tmp_path / "out" / "leadership.html").read_text()
    section = html[html.index('data-role="objectives"'):html.index("Headline figures")]
    assert "Technology: slack_main (late), hr (complete)" in section
    assert "technology: slack_main (late), hr (complete)" in (tmp_path / "out" / "leadership.eml").read_text()
