"""Which days a run processes (pipelines.run_dates), for every way a run is started, without a scheduler.

The contract (issue 14): the `date` (.. `end_date`) params win; else a manual run processes its logical
date's day; else the data interval (scheduled, backfill, manual without logical date). Bad params fail
with a message naming the param. The same rules are checked through a real Airflow (dag.test) in
test_esn_daily_e2e.py and test_failure_alerts.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines.run_dates import RunDatesError, daily_run_days, network_end_dates, parse_day, reports_as_of

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def at(day: str, hour: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def daily(**kwargs: Any) -> tuple[str, str]:
    args: dict[str, Any] = {"params": None, "run_type": "scheduled", "logical_date": None,
                            "data_interval_start": None, "data_interval_end": None, "now": NOW}
    args.update(kwargs)
    days = daily_run_days(**args)
    return days.start.isoformat(), days.end.isoformat()


def test_a_manual_run_with_a_logical_date_processes_that_day_not_airflows_inferred_interval() -> None:
    # `airflow dags test esn_daily 2026-05-20`: Airflow's interval for it is 05-19 .. 05-20
    assert daily(run_type="manual", logical_date=at("2026-05-20"),
                 data_interval_start=at("2026-05-19"), data_interval_end=at("2026-05-20")) == ("2026-05-20",
                                                                                                "2026-05-20")
    # `airflow dags trigger --logical-date 2026-05-22` at 09:30 on 12-01: the interval is 11-30 .. 12-01
    assert daily(run_type="manual", logical_date=at("2026-05-22"),
                 data_interval_start=at("2026-11-30"), data_interval_end=at("2026-12-01")) == ("2026-05-22",
                                                                                                "2026-05-22")


def test_the_date_param_wins_over_the_logical_date_and_takes_an_inclusive_range() -> None:
    assert daily(params={"date": "2026-05-21"}, run_type="manual", logical_date=at("2026-05-20")) == (
        "2026-05-21", "2026-05-21")
    assert daily(params={"date": "2026-05-01", "end_date": "2026-05-07"}, run_type="manual",
                 logical_date=at("2026-11-30")) == ("2026-05-01", "2026-05-07")


def test_scheduled_and_backfill_runs_process_their_data_interval() -> None:
    assert daily(run_type="scheduled", logical_date=at("2026-05-10"),
                 data_interval_start=at("2026-05-10"), data_interval_end=at("2026-05-11")) == ("2026-05-10",
                                                                                                "2026-05-10")
    assert daily(run_type="backfill", logical_date=at("2026-05-04"),
                 data_interval_start=at("2026-05-04"), data_interval_end=at("2026-05-11")) == ("2026-05-04",
                                                                                                "2026-05-10")
    # a zero-length (trigger) interval still covers its day
    assert daily(data_interval_start=at("2026-05-10"), data_interval_end=at("2026-05-10")) == ("2026-05-10",
                                                                                               "2026-05-10")


def test_a_manual_run_without_a_logical_date_takes_the_last_day_that_is_over() -> None:
    # Airflow 3: `airflow dags trigger esn_daily` has no logical date and no data interval
    assert daily(run_type="manual", run_after=at("2026-11-30", 14)) == ("2026-11-29", "2026-11-29")


@pytest.mark.parametrize(("params", "message"), [
    ({"date": "20-05-2026"}, "param 'date' must be a day as YYYY-MM-DD, got '20-05-2026'"),
    ({"date": "2026-02-30"}, "param 'date' is not a calendar day"),
    ({"date": "2026-05-10", "end_date": "2026-05"}, "param 'end_date' must be a day as YYYY-MM-DD"),
    ({"end_date": "2026-05-07"}, "param 'end_date' needs param 'date'"),
    ({"date": "2026-05-07", "end_date": "2026-05-01"}, "param 'end_date' (2026-05-01) is before param 'date'"),
    ({"date": "2026-12-01"}, "param 'date' 2026-12-01 is not over yet (today is 2026-12-01 UTC)"),
    ({"date": "2026-11-20", "end_date": "2026-12-05"}, "param 'end_date' 2026-12-05 is not over yet"),
])
def test_bad_params_fail_with_a_message_naming_the_param(params: dict[str, str], message: str) -> None:
    with pytest.raises(RunDatesError) as raised:
        daily(params=params, run_type="manual", logical_date=at("2026-05-20"))
    assert message in str(raised.value)


def test_a_backfill_refuses_a_date_param_that_would_make_all_its_runs_process_one_day() -> None:
    with pytest.raises(RunDatesError, match="do not pass 'date' or 'end_date' in --dag-run-conf"):
        daily(params={"date": "2026-05-01"}, run_type="backfill", logical_date=at("2026-05-03"),
              data_interval_start=at("2026-05-03"), data_interval_end=at("2026-05-04"))


def test_a_manual_run_for_today_processes_the_last_day_that_is_over_and_a_future_one_fails() -> None:
    # the UI's Trigger form defaults the logical date to now; Airflow infers the interval of the day before
    assert daily(run_type="manual", logical_date=at("2026-12-01", 9), data_interval_start=at("2026-11-30"),
                 data_interval_end=at("2026-12-01")) == ("2026-11-30", "2026-11-30")
    with pytest.raises(RunDatesError, match="logical date 2026-12-01 is not over yet"):
        daily(run_type="manual", logical_date=at("2026-12-01"))  # no interval to fall back to
    with pytest.raises(RunDatesError, match="logical date 2026-12-02 is not over yet"):
        daily(run_type="manual", logical_date=at("2026-12-02"), data_interval_start=at("2026-12-01"),
              data_interval_end=at("2026-12-02"))


def test_empty_params_count_as_unset() -> None:
    # the UI's trigger form sends "" or null for a field left empty
    assert daily(params={"date": "", "end_date": None}, run_type="manual", logical_date=at("2026-05-20")) == (
        "2026-05-20", "2026-05-20")
    assert parse_day("  ", "date") is None


def test_network_end_dates_param_then_events_then_the_manual_logical_date() -> None:
    assert network_end_dates(event_end_dates=["2026-05-11"], params={"end_date": "2026-05-31"},
                             run_type="manual", logical_date=None, now=NOW) == [dt.date(2026, 5, 31)]
    assert network_end_dates(event_end_dates=["2026-05-11", "2026-05-10", "2026-05-11"], params={},
                             run_type="asset_triggered", logical_date=None, now=NOW) == [dt.date(2026, 5, 10),
                                                                                          dt.date(2026, 5, 11)]
    assert network_end_dates(event_end_dates=[], params={}, run_type="manual", logical_date=at("2026-05-20"),
                             now=NOW) == [dt.date(2026, 5, 20)]
    assert network_end_dates(event_end_dates=[], params={}, run_type="manual", logical_date=NOW,
                             now=NOW) == [dt.date(2026, 11, 30)]
    with pytest.raises(RunDatesError, match="no end date"):
        network_end_dates(event_end_dates=[], params={}, run_type="asset_triggered", logical_date=None, now=NOW)
    with pytest.raises(RunDatesError, match="param 'end_date' must be a day as YYYY-MM-DD"):
        network_end_dates(event_end_dates=[], params={"end_date": "31/05/2026"}, run_type="manual",
                          logical_date=None, now=NOW)


def test_reports_as_of_param_its_date_alias_or_the_day_before_the_run() -> None:
    monday = at("2026-05-11", 7)
    assert reports_as_of(params={}, logical_date=monday, run_after=None) == dt.date(2026, 5, 10)
    assert reports_as_of(params={}, logical_date=None, run_after=monday) == dt.date(2026, 5, 10)
    assert reports_as_of(params={"as_of": "2026-04-30"}, logical_date=monday, run_after=None) == dt.date(2026, 4, 30)
    assert reports_as_of(params={"date": "2026-04-30"}, logical_date=monday, run_after=None) == dt.date(2026, 4, 30)
    with pytest.raises(RunDatesError, match="params 'as_of' .* and 'date' .* disagree"):
        reports_as_of(params={"as_of": "2026-04-30", "date": "2026-05-01"}, logical_date=monday, run_after=None)
