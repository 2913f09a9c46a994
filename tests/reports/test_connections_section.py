"""The leadership email's "Groups to introduce" (issue 18): the top 3 pairs of departments of
mart_group_connections by connection gap, with their shared topics and ties per 100 pairs of people;
nothing when the mart is missing or empty, never for a department's audience, never a pair the mart
suppressed or whose smaller side has fewer than min_group_size people."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.reports import render_reports
from pipelines.reports.content import Figure, IntroductionRow, PrivacyViolation, build_report

from .conftest import AS_OF, make_warehouse, reports_config

COLUMNS = ["department_a", "department_b", "measured_through", "suppressed", "people_a_on_shared_topics",
           "people_b_on_shared_topics", "shared_topics", "topic_similarity", "ties", "ties_per_100_pairs",
           "connection_gap", "gap_rank", "bridge_candidates"]
PAIRS = [
    # gap rank 1..5 among the visible pairs; "Legal"/"Tiny Team" suppressed; "Ops"/"Tiny Team" visible in the
    # mart (as if built with a lower threshold) but with 3 people on its side: the email withholds it
    ("Engineering", "Sales", AS_OF, False, 12, 9, 4, 0.8, 3, 1.5, 0.32, 1, 2),
    ("Ops", "Tiny Team", AS_OF, False, 7, 3, 2, 0.7, 0, 0.0, 0.7, 2, 0),
    ("Legal", "Sales", AS_OF, False, 6, 8, 3, 0.6, 4, 4.0, 0.12, 3, 3),
    ("Engineering", "Legal", AS_OF, False, 10, 5, 2, 0.5, 5, 5.5, 0.077, 4, 4),
    ("Engineering", "Ops", AS_OF, False, 11, 7, 1, 0.3, 9, 8.0, 0.033, 5, 5),
    ("Legal", "Tiny Team", AS_OF, True, None, None, None, None, None, None, None, None, None),
]


def _with_connections(tmp: Path, rows: list[tuple]) -> str:
    url = make_warehouse(tmp / "w.duckdb")
    frame = pd.DataFrame(rows or PAIRS, columns=COLUMNS).iloc[:len(rows)]  # typed columns, even with no rows
    con = duckdb.connect(str(tmp / "w.duckdb"))
    try:
        con.register("frame", frame)
        con.execute(f"create table {warehouse.DEFAULT_SCHEMAS.qualified('mart_group_connections')} as "
                    "select * from frame")
        con.unregister("frame")
    finally:
        con.close()
    return url


def _report(url: str, catalogue: Path, audience: str = "leadership", as_of: dt.date = AS_OF):
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    config = reports_config(catalogue)
    engine = warehouse.make_engine(url)
    try:
        with engine.connect() as conn:
            return build_report(conn, settings, config, config.audience(audience), as_of)
    finally:
        engine.dispose()


def test_the_top_three_pairs_by_gap_for_leadership(tmp_path: Path, catalogue: Path) -> None:
    url = _with_connections(tmp_path, PAIRS)
    report = _report(url, catalogue)
    got = [(r.rank, r.group_a, r.group_b, r.shared_topics.value, r.ties_per_100_pairs.value, r.group_size)
           for r in report.introductions]
    # Ops / Tiny Team (3 people on one side) is left out: the next three by gap_rank
    assert got == [(1, "Engineering", "Sales", 4.0, 1.5, 9), (2, "Legal", "Sales", 3.0, 4.0, 6),
                   (3, "Engineering", "Legal", 2.0, 5.5, 5)]
    assert report.introductions_metric is not None
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=reports_config(catalogue))
    html = (tmp_path / "out" / "leadership.html").read_text()
    assert "Groups to introduce" in html and "Engineering and Sales" in html and "Tiny Team" not in html
    msg = email.message_from_bytes((tmp_path / "out" / "leadership.eml").read_bytes(), policy=policy.default)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "GROUPS TO INTRODUCE" in text
    assert "1. Engineering and Sales: 4 shared topic(s), 1.50 ties per 100 pairs of people" in text
    assert "3. Engineering and Legal: 2 shared topic(s), 5.50 ties per 100 pairs of people" in text
    assert "Engineering and Ops" not in text  # only three


def test_nothing_for_a_department_audience_a_missing_or_an_empty_mart(tmp_path: Path, catalogue: Path) -> None:
    (tmp_path / "full").mkdir()
    url = _with_connections(tmp_path / "full", PAIRS)
    assert _report(url, catalogue, "sales-head").introductions == []
    # measured after the report's day: not shown
    assert _report(url, catalogue, as_of=AS_OF - dt.timedelta(days=1)).introductions == []
    (tmp_path / "none").mkdir()
    missing = make_warehouse(tmp_path / "none" / "w.duckdb")
    assert _report(missing, catalogue).introductions == []
    (tmp_path / "empty").mkdir()
    empty = _with_connections(tmp_path / "empty", [])
    report = _report(empty, catalogue)
    assert report.introductions == [] and report.introductions_metric is None


def test_a_small_pair_in_the_model_is_a_privacy_violation(tmp_path: Path, catalogue: Path) -> None:
    report = _report(_with_connections(tmp_path, PAIRS), catalogue)
    report.introductions.append(IntroductionRow(4, "Ops", "Tiny Team", Figure(2.0, "int", 3),
                                                Figure(0.0, "ratio", 3), 3))
    with pytest.raises(PrivacyViolation):
        report.check_privacy()
