"""Freshness first (issue 16, part 1): every report states its data's real coverage per source, and a week
with missing or partial data is held or sent with an unmistakable "data incomplete" banner, as configured.

The warehouse is the fixture's, plus what the pipeline records about each day of each source
(`dq_source_days`, as `pipelines.jobs.record_source_days` writes it) and the reply completeness mart; the
emails go through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.jobs import SOURCE_DAYS_DDL
from pipelines.reports import render_reports, send_reports
from pipelines.reports.content import build_report

from .conftest import AS_OF, FIRST, fixture_tables, make_warehouse, reports_config

SOURCES = ["hr", "slack_main"]
WEEK = [AS_OF - dt.timedelta(days=6 - i) for i in range(7)]


def _source_days(status: dict[tuple[str, dt.date], str | None]) -> pd.DataFrame:
    """Every day from FIRST to AS_OF delivered by both sources, except the (source, day) given: a status,
    or None for a day no batch brought (never validated)."""
    rows = []
    for i in range((AS_OF - FIRST).days + 1):
        day = FIRST + dt.timedelta(days=i)
        for source in SOURCES:
            st = status.get((source, day), "delivered")
            if st is None:
                continue
            rows.append({"source": source, "day": day, "rows": 100, "baseline": 100.0, "status": st,
                         "run_id": "r1", "rejected": st == "rejected"})
    return pd.DataFrame(rows).assign(status=lambda d: d["status"].replace({"rejected": "low"}))


def _warehouse(tmp_path: Path, status: dict[tuple[str, dt.date], str | None], *,
               engagement_until: dt.date | None = None, replies: pd.DataFrame | None = None) -> str:
    url = make_warehouse(tmp_path / "w.duckdb", tuple(t for t in fixture_tables() if t != "mart_engagement_daily"))
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    try:
        eng = fixture_tables()["mart_engagement_daily"]
        if engagement_until is not None:
            eng = eng[eng["activity_date"] <= engagement_until]
        con.register("frame", eng)
        con.execute(f"create table {warehouse.DEFAULT_SCHEMAS.qualified('mart_engagement_daily')} as "
                    "select * from frame")
        con.unregister("frame")
        con.execute(f"create table esn_internal.dq_source_days ({SOURCE_DAYS_DDL})")
        con.register("days", _source_days(status))
        con.execute("insert into esn_internal.dq_source_days select source, day, rows, baseline, status, run_id, "
                    "rejected from days")
        if replies is not None:
            con.register("replies", replies)
            con.execute("create table esn_marts.mart_reply_completeness as select * from replies")
    finally:
        con.close()
    return url


def _config(catalogue: Path, port: int = 1, **overrides):
    return reports_config(catalogue, freshness={"sources": SOURCES, **overrides.pop("freshness", {})},
                          delivery={"sender": "esn@fixture.example", "transport": "smtp", "backoff_seconds": 0.01,
                                    "smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 5}},
                          **overrides)


def _report(url: str, catalogue: Path, audience: str = "leadership", **overrides):
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    config = _config(catalogue, **overrides)
    engine = warehouse.make_engine(url)
    try:
        with engine.connect() as conn:
            return build_report(conn, settings, config, config.audience(audience), AS_OF)
    finally:
        engine.dispose()


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_complete_week_says_so_per_source_and_has_no_banner(tmp_path: Path, catalogue: Path) -> None:
    url = _warehouse(tmp_path, {})
    report = _report(url, catalogue)
    assert report.coverage is not None and report.data_complete
    by_source = {s.source: s for s in report.coverage.sources}
    assert set(by_source) == {"hr", "slack_main", "published marts"}
    for s in by_source.values():
        assert (s.status, s.last_complete_day, s.score) == ("complete", AS_OF, 1.0)
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=_config(catalogue))
    html = (tmp_path / "out" / "leadership.html").read_text()
    assert "DATA INCOMPLETE" not in html and 'data-role="data-incomplete"' not in html
    assert "Data complete up to 25 October 2026" in html
    assert "slack_main: last complete day 25 Oct 2026, 7 of 7 day(s) complete (100%)" in html


def test_a_late_source_gets_the_banner_and_never_data_up_to_the_uncovered_day(tmp_path: Path,
                                                                            catalogue: Path) -> None:
    # slack_main delivered nothing after Thursday: the three last days were never validated
    late = {("slack_main", d): None for d in WEEK[4:]}
    settings = load_settings(None, warehouse_url=_warehouse(tmp_path, late), privacy={"min_group_size": 5})
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=_config(catalogue))
    html = (tmp_path / "out" / "leadership.html").read_text()
    eml = _parse((tmp_path / "out" / "leadership.eml").read_bytes())
    assert eml["Subject"].startswith("[DATA INCOMPLETE] ")
    assert 'data-role="data-incomplete"' in html
    # the banner comes before any figure
    assert html.index('data-role="data-incomplete"') < html.index("Headline figures")
    assert "slack_main (late)" in html and "complete only up to 22 Oct 2026" in html
    assert "Data complete up to 25 October 2026" not in html and "Data up to" not in html
    assert "Data complete only up to 22 October 2026, not for the whole period." in html
    assert "4 of 7 day(s) complete (57%)" in html
    plain = eml.get_body(("plain",))
    assert plain is not None and "!!! DATA INCOMPLETE !!!" in plain.get_content()


@pytest.mark.parametrize(("status", "expected"), [("low", "partial (volume far below usual)"),
                                                  ("empty", "not delivered (empty)"),
                                                  ("rejected", "batch rejected by validation")])
def test_a_partial_empty_or_rejected_day_inside_the_week_is_incomplete(tmp_path: Path, catalogue: Path,
                                                                       status: str, expected: str) -> None:
    report = _report(_warehouse(tmp_path, {("hr", WEEK[2]): status}), catalogue)
    assert report.coverage is not None and not report.data_complete
    hr = next(s for s in report.coverage.sources if s.source == "hr")
    assert hr.status == "incomplete" and hr.last_complete_day == AS_OF
    assert hr.problems == (f"{expected}: {WEEK[2]:%d %b}",)
    assert report.data_through == WEEK[1]


def test_replies_below_the_threshold_make_the_source_incomplete(tmp_path: Path, catalogue: Path) -> None:
    # the published mart holds thread_date as text (pipelines.completeness.publish)
    replies = pd.DataFrame([{"source": "slack_main", "thread_date": d.isoformat(), "replies_announced": 100,
                             "replies_fetched": 90 if d == WEEK[3] else 100, "below_threshold": d == WEEK[3],
                             "completeness": 0.9 if d == WEEK[3] else 1.0} for d in WEEK])
    report = _report(_warehouse(tmp_path, {}, replies=replies), catalogue)
    slack = next(s for s in report.coverage.sources if s.source == "slack_main")  # type: ignore[union-attr]
    assert slack.status == "incomplete" and slack.reply_completeness == pytest.approx(690 / 700)
    assert slack.problems == (f"replies incomplete for threads of {WEEK[3]:%d %b}",)


def test_a_week_with_no_data_at_all_is_not_labelled_current(tmp_path: Path, catalogue: Path) -> None:
    # the incident of issue 16: nothing for weeks, only an old influence table left to show
    silent = {(s, FIRST + dt.timedelta(days=i)): None for s in SOURCES
              for i in range((AS_OF - FIRST).days + 1) if FIRST + dt.timedelta(days=i) > AS_OF - dt.timedelta(days=40)}
    url = _warehouse(tmp_path, silent, engagement_until=AS_OF - dt.timedelta(days=40))
    report = _report(url, catalogue)
    assert report.tiers and not report.is_empty  # there is still something to show...
    assert report.coverage is not None and report.data_through is None  # ...but no day of the week is covered
    assert {s.status for s in report.coverage.sources} == {"empty"}
    assert "not complete for any day" in report.coverage.headline


def test_hold_sends_nothing_and_banner_sends_with_the_banner(tmp_path: Path, catalogue: Path, smtp_server) -> None:
    controller, handler = smtp_server
    late = {("hr", d): None for d in WEEK[5:]}
    url = _warehouse(tmp_path, late)
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    # the organisation holds; the Sales head asked for the email anyway, with the banner
    config = _config(catalogue, controller.port, freshness={"on_incomplete": "hold"}, audiences=[
        {"name": "leadership", "recipients": ["ceo@fixture.example"]},
        {"name": "sales-head", "recipients": ["sales.head@fixture.example"], "on_incomplete": "banner",
         "scope": {"segment_type": "department", "segment_value": "Sales"}}])
    engine = warehouse.make_engine(url)
    try:
        result = send_reports(settings, AS_OF, smtp_conn_id="", engine=engine, config=config,
                              out_dir=tmp_path / "out", sleep=lambda _: None)
    finally:
        engine.dispose()
    assert result["delivered"] == 1 and result["failed"] == [], result
    assert set(result["held"]) == {"leadership"} and "hr (late)" in result["held"]["leadership"]
    assert result["skipped"]["leadership"].startswith("held")
    assert result["coverage"]["leadership"]["sources"]["hr"]["last_complete_day"] == WEEK[4].isoformat()
    [(_, rcpt, raw)] = handler.messages
    assert rcpt == ["sales.head@fixture.example"]
    msg = _parse(raw)
    assert msg["Subject"].startswith("[DATA INCOMPLETE] Sales")
    html = msg.get_body(("html",))
    assert html is not None and "DATA INCOMPLETE" in html.get_content()
    out = tmp_path / "out"
    assert not (out / "leadership.eml").exists() and (out / "leadership.html").exists()
    assert "DATA INCOMPLETE" in (out / "report.html").read_text()


def test_a_warehouse_without_source_records_is_judged_by_its_marts(tmp_path: Path, catalogue: Path) -> None:
    url = make_warehouse(tmp_path / "w.duckdb")
    engine = warehouse.make_engine(url)
    try:
        with engine.begin() as conn:  # the marts stop two days before the end of the week
            conn.execute(sa.text("delete from mart_engagement_daily where activity_date > :d"),
                         {"d": AS_OF - dt.timedelta(days=2)})
    finally:
        engine.dispose()
    report = _report(url, catalogue)
    assert report.coverage is not None
    [marts] = report.coverage.sources
    assert (marts.source, marts.status, marts.last_complete_day) == ("published marts", "late",
                                                                      AS_OF - dt.timedelta(days=2))
    assert not report.data_complete


def _scheduled(settings, engine, catalogue: Path, root: Path, as_of: dt.date, port: int) -> dict:
    config = _config(catalogue, port, freshness={"on_incomplete": "hold", "hold_max_days": 3},
                     output_dir=str(root),
                     audiences=[{"name": "leadership", "recipients": ["ceo@fixture.example"]}])
    return send_reports(settings, as_of, smtp_conn_id="", engine=engine, config=config, sleep=lambda _: None)


@pytest.mark.parametrize("arrives", [True, False], ids=["data-arrives-monday", "data-never-arrives"])
def test_a_held_email_goes_out_once_its_data_is_complete_or_with_the_banner_after_the_wait(
        tmp_path: Path, catalogue: Path, smtp_server, arrives: bool) -> None:
    controller, handler = smtp_server
    url = _warehouse(tmp_path, {("slack_main", d): None for d in WEEK[5:]})
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    root = tmp_path / "reports"
    engine = warehouse.make_engine(url)
    sent_per_day = []
    try:
        for offset in range(5):  # the Sunday the week closes, then the four daily runs after it
            day = AS_OF + dt.timedelta(days=offset)
            if offset == 1 and arrives:  # the late days land on Monday
                with engine.begin() as conn:
                    for d in WEEK[5:]:
                        conn.execute(sa.text("insert into dq_source_days values ('slack_main', :d, 100, 100, "
                                             "'delivered', 'r2', false)"), {"d": d})
            before = len(handler.messages)
            result = _scheduled(settings, engine, catalogue, root, day, controller.port)
            sent_per_day.append(len(handler.messages) - before)
            if offset == 0:
                assert set(result["held"]) == {"leadership"}, result
    finally:
        engine.dispose()
    # exactly one email for the week, on Monday when the data came, else with the banner 3 days after
    assert sent_per_day == ([0, 1, 0, 0, 0] if arrives else [0, 0, 0, 1, 0])
    [(_, _, raw)] = handler.messages
    msg = _parse(raw)
    assert "Week 19 Oct to 25 Oct 2026" in msg["Subject"]
    assert msg["Subject"].startswith("[DATA INCOMPLETE]") is (not arrives)
    assert (root / AS_OF.isoformat() / "leadership.eml").exists()
