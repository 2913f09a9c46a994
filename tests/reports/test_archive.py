"""The report archive (issue 16, part 6): every scheduled run keeps its report.html under its as_of, an
index links them with the run's coverage, and the scorecard history gets one row per period and objective,
never replaced."""

from __future__ import annotations

import csv
import datetime as dt
import json
from html.parser import HTMLParser
from pathlib import Path

from pipelines import publication, warehouse
from pipelines.config import load_settings
from pipelines.reports import send_reports
from pipelines.reports.archive import (
    HISTORY,
    HISTORY_COLUMNS,
    HISTORY_DESCRIPTION,
    HISTORY_TABLE,
    read_history,
    read_history_table,
)

from .conftest import AS_OF, make_warehouse, reports_config


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [str(v) for k, v in attrs if k == "href"]


def _run(settings, engine, catalogue, root: Path, as_of: dt.date, port: int) -> dict:
    config = reports_config(catalogue, output_dir=str(root), delivery={
        "sender": "esn@fixture.example", "transport": "smtp", "backoff_seconds": 0.01,
        "smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 5}})
    return send_reports(settings, as_of, smtp_conn_id="", engine=engine, config=config, sleep=lambda _: None)


def test_each_run_is_kept_and_indexed_with_its_coverage(settings, engine, catalogue, smtp_server,
                                                        tmp_path: Path) -> None:
    controller, handler = smtp_server
    root = tmp_path / "reports"
    days = [AS_OF - dt.timedelta(days=8), AS_OF - dt.timedelta(days=7), AS_OF - dt.timedelta(days=1), AS_OF]
    for day in days:
        result = _run(settings, engine, catalogue, root, day, controller.port)
        assert result["out_dir"] == str(root / day.isoformat()) and "index" in result["archive"]
    for day in days:
        assert (root / day.isoformat() / "report.html").exists()
        record = json.loads((root / day.isoformat() / "run.json").read_text())
        assert record["as_of"] == day.isoformat() and record["coverage"]["end"] == day.isoformat()
    # the earlier runs were not overwritten: each report says its own period
    assert f"{days[0]:%d %b}" in (root / days[0].isoformat() / "report.html").read_text()
    parser = _Hrefs()
    parser.feed((root / "index.html").read_text())
    assert parser.hrefs == [f"{d.isoformat()}/report.html" for d in sorted(days, reverse=True)]
    assert all((root / h).exists() for h in parser.hrefs)
    assert "complete" in (root / "index.html").read_text()
    # the weekly audiences went out on the two Sundays only: one message per recipient and period
    sundays = [d for d in days if d.weekday() == 6]
    recipients = sum(len(a.recipients) for a in reports_config(catalogue).audiences)
    assert len(sundays) == 2 and len(handler.messages) == len(sundays) * recipients


def test_the_scorecard_history_has_one_row_per_closed_period_and_objective_never_replaced(
        catalogue, smtp_server, tmp_path: Path) -> None:
    controller, _ = smtp_server
    root = tmp_path / "reports"
    url = make_warehouse(tmp_path / "w.duckdb")  # its own warehouse: the history table is written
    settings = load_settings(None, warehouse_url=url, lake_dir=tmp_path / "lake", privacy={"min_group_size": 5})
    engine = warehouse.make_engine(url)
    sunday_before = AS_OF - dt.timedelta(days=7)
    _run(settings, engine, catalogue, root, sunday_before, controller.port)
    first = read_history(root)
    objectives = {r["objective"] for r in first}
    assert first and {r["period_end"] for r in first} == {sunday_before.isoformat()}
    # a weekday run (week to date) adds nothing; the next Sunday adds its week; a rerun adds nothing
    _run(settings, engine, catalogue, root, AS_OF - dt.timedelta(days=2), controller.port)
    _run(settings, engine, catalogue, root, AS_OF, controller.port)
    _run(settings, engine, catalogue, root, AS_OF, controller.port)
    rows = read_history(root)
    assert rows[:len(first)] == first  # the earlier rows are untouched
    keys = [(r["period_end"], r["frequency"], r["objective"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * len(objectives)
    assert {r["period_end"] for r in rows} == {sunday_before.isoformat(), AS_OF.isoformat()}
    with (root / HISTORY).open(newline="") as f:
        for r in csv.DictReader(f):
            metrics = json.loads(r["metrics"])
            assert r["status"] in {"on track", "off track", "no data"} and metrics
    # the warehouse table holds the same rows, typed, with its descriptions for BI tools
    table = read_history_table(engine)
    assert [(r["period_end"].isoformat(), r["frequency"], r["objective"], r["status"], r["trend"], r["metrics"],
             str(r["data_complete"]), r["reported_on"].isoformat()) for r in table] == sorted(
        (r["period_end"], r["frequency"], r["objective"], r["status"], r["trend"], r["metrics"], r["data_complete"],
         r["reported_on"]) for r in rows)
    with engine.connect() as conn:
        described, columns = publication.current_descriptions(conn, warehouse.DEFAULT_SCHEMAS.marts, HISTORY_TABLE)
    assert described == HISTORY_DESCRIPTION and all(columns[c] for c in HISTORY_COLUMNS)
    engine.dispose()
