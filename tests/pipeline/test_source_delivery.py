"""A day a source did not deliver is caught, not published as a quiet day (issue 14, point 4).

A demo organisation that lives four weeks (`days: 28`) is landed once (extract, stage, validate, land:
the history the checks compare with); each test copies that lake and runs the day after, on which the
demo source returns nothing, as a source that silently stopped delivering does. With `quality.empty_day: blocking` (the default)
the batch is rejected with a message naming the source, the day, its weekday and history and the setting
that decides, and nothing of the day is published; with `warning` (here the per-source override) the day
is landed and recorded as not delivered in dq_source_days and dq_validation_results. Both on DuckDB and
PostgreSQL. The pure functions behind it are checked on hand-made counts: a usually quiet weekday, a new
source, a batch that stops delivering in its middle (freshness).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, lake, quality, warehouse
from pipelines.config import Settings, SourceQuality
from tests.conftest import SMALL_DEMO, demo_settings

START = SMALL_DEMO["start"]
BASE = jobs.Interval(START, START + dt.timedelta(days=27))  # four weeks (the drift window is two)
DAY = BASE.end + dt.timedelta(days=1)  # 2026-05-29, a Friday: the demo has nothing after BASE
DEMO = {"days": 28}


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    """A lake with BASE landed (not published: the tests publish what they need)."""
    root = tmp_path_factory.mktemp("history")
    settings = demo_settings(root, **DEMO)
    for step in (jobs.extract, jobs.stage, jobs.validate, jobs.land):
        step(settings, "demo", BASE)
    return settings.lake_dir


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_url")


def _settings(tmp_path: Path, landed: Path, url: str, **overrides) -> Settings:
    settings = demo_settings(tmp_path, warehouse_url=url, **DEMO)
    shutil.copytree(landed, settings.lake_dir)
    if overrides:
        source = settings.sources[0].model_copy(update={"quality": SourceQuality(**overrides)})
        settings = settings.model_copy(update={"sources": [source]})
    return settings


def _frame(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    return warehouse.read_frame(engine, sql, params)


def test_an_empty_day_with_history_is_rejected_and_nothing_of_it_is_published(tmp_path, landed, warehouse_url):
    settings = _settings(tmp_path, landed, warehouse_url)
    interval = jobs.Interval(DAY, DAY)
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        with pytest.raises(jobs.BatchRejected) as err:
            jobs.run(settings, interval, engine=engine)
        message = " ".join(str(err.value).split())
        for part in ("source demo delivered nothing", f"{DAY} (Friday): no activity",
                     "Friday had activity in 2 of the previous 2 weeks",
                     f"{DAY - dt.timedelta(days=7)}: ", "quality.empty_day is blocking",
                     "nothing of it is published", "set quality.empty_day: warning",
                     f"esn run --date {DAY}", f'"date": "{DAY}"'):
            assert part in message, f"{part!r} not in: {message}"
        assert "nothing was published" in message and "quarantine" in message
        days = _frame(engine, "select source, day, rows, baseline, status, rejected from dq_source_days")
        assert days.drop(columns="baseline").to_dict("records") == [
            {"source": "demo", "day": DAY, "rows": 0, "status": "empty", "rejected": True}]
        assert days["baseline"].iloc[0] > 0
        failed = _frame(engine, "select severity, success, unexpected_sample from dq_validation_results "
                                "where column_name = 'delivered'")
        assert failed[["severity", "success"]].values.tolist() == [["blocking", False]]
        assert json.loads(failed["unexpected_sample"].iloc[0])[0]["date"] == DAY.isoformat()
        assert lake.read_partition(lake.canonical_dir(settings.lake_dir, "activities") / "source=demo", DAY) is None
        assert DAY not in lake.pending(settings.lake_dir, "demo", "canonical").days()
        # the history is published by the next publication; the rejected day is not, not even as a quiet day
        jobs.publish(settings, jobs.Interval(BASE.end, BASE.end), engine=engine)
        published = _frame(engine, "select min(activity_date) as lo, max(activity_date) as hi "
                                   "from esn_marts.mart_engagement_daily")
        assert (published["lo"].iloc[0], published["hi"].iloc[0]) == (BASE.start, BASE.end)
    finally:
        engine.dispose()


def test_an_empty_day_in_warning_mode_is_landed_and_recorded_as_not_delivered(tmp_path, landed, warehouse_url):
    settings = _settings(tmp_path, landed, warehouse_url, empty_day="warning")
    interval = jobs.Interval(DAY, DAY)
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        report = jobs.run(settings, interval, engine=engine)
        summary = report["sources"]["demo"]["validate"]
        assert summary["blocking_failures"] == 0 and summary["warnings"] >= 1
        assert summary["not_delivered"] == {DAY.isoformat(): "empty"}
        record = _frame(engine, "select severity, success from dq_validation_results where column_name = 'delivered' "
                                "and run_id = :r", r=report["run_id"])
        assert record.values.tolist() == [["warning", False]]
        part = lake.read_partition(lake.canonical_dir(settings.lake_dir, "activities") / "source=demo", DAY)
        assert part is not None and part.num_rows == 0, "the day is landed (empty)"
        days = _frame(engine, "select day, rows, status, run_id, rejected from dq_source_days")
        assert days.to_dict("records") == [{"day": DAY, "rows": 0, "status": "empty", "run_id": report["run_id"],
                                            "rejected": False}]
    finally:
        engine.dispose()


def test_the_warning_names_the_per_source_setting_and_is_logged_without_gx_noise(tmp_path, landed, caplog):
    settings = _settings(tmp_path, landed, f"duckdb:///{tmp_path / 'w.duckdb'}", empty_day="warning")
    interval = jobs.Interval(DAY, DAY)
    jobs.extract(settings, "demo", interval)
    jobs.stage(settings, "demo", interval)
    with caplog.at_level("INFO"):
        jobs.validate(settings, "demo", interval)
    warned = [r.getMessage() for r in caplog.records if "delivered nothing" in r.getMessage()]
    assert len(warned) == 1 and "sources[demo].quality.empty_day is warning" in warned[0], warned
    assert "recorded as not delivered" in warned[0]
    gx_info = [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < 30]
    assert gx_info == [], f"{len(gx_info)} GX INFO lines, e.g. {gx_info[0].getMessage()!r}"


def test_a_batch_that_stops_delivering_is_not_fresh(tmp_path, landed):
    """Thursday to Saturday, of which the demo has Thursday only: with empty_day warning and freshness
    blocking (per source), the freshness check rejects the batch, naming the newest activity and the lag."""
    settings = _settings(tmp_path, landed, f"duckdb:///{tmp_path / 'w.duckdb'}", empty_day="warning",
                         freshness="blocking")
    interval = jobs.Interval(BASE.end, DAY + dt.timedelta(days=1))
    with pytest.raises(jobs.BatchRejected) as err:
        jobs.run(settings, interval)
    message = " ".join(str(err.value).split())
    assert "rejected by 1 blocking expectation" in message, message
    assert f"lag_hours: the newest activity of source demo in {interval.batch} is {BASE.end}T" in message, message
    assert "more than quality.freshness_max_lag_hours (36 h)" in message
    assert "sources[demo].quality.freshness is blocking" in message
    assert f"--start {interval.start} --end {interval.end}" in message


def _acts(counts: dict[dt.date, int]) -> pd.DataFrame:
    stamps = [pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=10) for d, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"occurred_at": pd.Series(stamps, dtype="datetime64[us, UTC]")})


def test_a_usually_quiet_weekday_and_a_new_source_are_not_failures():
    monday = dt.date(2026, 6, 1)
    history = {}
    for week in range(1, 5):  # four weeks of a weekday-only workspace: busy Mon-Fri, nothing at weekends
        for offset in range(7):
            day = monday - dt.timedelta(days=7 * week) + dt.timedelta(days=offset)
            history[day.isoformat()] = 50 if offset < 5 else 0
    week = [monday + dt.timedelta(days=i) for i in range(7)]
    acts = _acts({d: 50 for d in week[:5]})
    volume = quality.daily_volume(acts, history, 4, week, min_weeks=2)
    assert volume["delivered"].all(), volume
    assert volume["rows"].tolist() == [50] * 5 + [0, 0] and volume["weekday"].iloc[5] == "Saturday"
    fresh = quality.batch_freshness(acts, volume, min_weeks=2)
    assert fresh["quiet_days_not_counted"] == [week[5].isoformat(), week[6].isoformat()]
    assert fresh["lag_hours"] == 14.0  # Friday 10:00 to the end of Friday, the weekend not counted
    # the same week with Wednesday empty: not delivered; and stale from Wednesday when Thursday stops too
    acts = _acts({d: 50 for d in week[:2]})
    volume = quality.daily_volume(acts, history, 4, week, min_weeks=2)
    assert volume.loc[~volume["delivered"], "date"].tolist() == [d.isoformat() for d in week[2:5]]
    fresh = quality.batch_freshness(acts, volume, min_weeks=2)
    assert fresh["lag_hours"] == 14.0 + 3 * 24
    statuses = quality.day_statuses(volume, fresh, stale=True, drift_min=0.5, drift_max=2.0)
    assert [s["status"] for s in statuses] == ["delivered"] * 2 + ["empty"] * 3 + ["delivered"] * 2
    # a new source (no history at all): nothing to compare with, every day passes, freshness not judged
    volume = quality.daily_volume(acts, {}, 4, week, min_weeks=2)
    assert volume["delivered"].all() and volume["baseline"].isna().all()
    assert quality.batch_freshness(acts, volume, min_weeks=2, evaluate=False)["lag_hours"] is None
    # the check switched off (an aggregate-only source): never "not delivered"
    empty = quality.daily_volume(_acts({}), history, 4, week, min_weeks=None)
    assert empty["delivered"].all() and empty["rows"].sum() == 0


def test_a_sparse_weekday_can_be_empty_by_chance():
    """A weekday that brought a handful of events (a historical mail sample's Sundays: 4 and 19, or 2 and 4)
    is not a missing delivery when it is empty; the same day is one when every prior week had 10 or more."""
    sunday = dt.date(2001, 5, 20)
    week = [sunday]
    sparse = {(sunday - dt.timedelta(days=7)).isoformat(): 4, (sunday - dt.timedelta(days=14)).isoformat(): 19}
    volume = quality.daily_volume(_acts({}), sparse, 2, week, min_weeks=2, min_events=10)
    assert volume["delivered"].all(), volume
    busy = {d: 12 for d in sparse}
    volume = quality.daily_volume(_acts({}), busy, 2, week, min_weeks=2, min_events=10)
    assert volume["delivered"].tolist() == [False]
    assert volume["weeks_active"].tolist() == [2] and volume["baseline"].tolist() == [12.0]
