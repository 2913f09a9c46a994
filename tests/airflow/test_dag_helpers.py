"""The small pure helpers of the DAG files: which days a run covers, which dates the network and the
reports are computed for. The DAG modules are imported in this process (they only import airflow.sdk);
AIRFLOW_HOME is pointed at a temporary folder first unless Airflow was already imported."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.airflow.conftest import DAGS

pytestmark = pytest.mark.airflow
UTC = dt.UTC


def _load(name: str, home: Path) -> ModuleType:
    if "airflow" not in sys.modules:
        os.environ.setdefault("AIRFLOW_HOME", str(home))
        os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    spec = importlib.util.spec_from_file_location(f"esn_dag_under_test_{name}", DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dags(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    home = tmp_path_factory.mktemp("airflow_home_helpers")
    return SimpleNamespace(daily=_load("esn_daily", home), network=_load("esn_network", home),
                           reports=_load("esn_reports", home))


def test_daily_interval_is_the_data_interval_minus_its_open_end(dags: SimpleNamespace) -> None:
    interval = dags.daily.run_interval(dt.datetime(2026, 5, 10, tzinfo=UTC), dt.datetime(2026, 5, 11, tzinfo=UTC))
    assert (interval.start, interval.end) == (dt.date(2026, 5, 10), dt.date(2026, 5, 10))


def test_daily_interval_is_never_shorter_than_one_day(dags: SimpleNamespace) -> None:
    moment = dt.datetime(2026, 5, 10, tzinfo=UTC)
    interval = dags.daily.run_interval(moment, moment)  # a zero-length (trigger) interval
    assert interval.days == [dt.date(2026, 5, 10)]


def test_daily_interval_of_a_backfill_week_covers_seven_days(dags: SimpleNamespace) -> None:
    interval = dags.daily.run_interval(dt.datetime(2026, 5, 4, tzinfo=UTC), dt.datetime(2026, 5, 11, tzinfo=UTC))
    assert len(interval.days) == 7 and interval.end == dt.date(2026, 5, 10)


def test_network_computes_every_published_end_date_oldest_first(dags: SimpleNamespace) -> None:
    events = {dags.network.PUBLISHED: [SimpleNamespace(extra={"end_date": "2026-05-11"}),
                                       SimpleNamespace(extra={"end_date": "2026-05-10"}),
                                       SimpleNamespace(extra={"end_date": "2026-05-11"})]}
    assert dags.network.end_dates_from_events(events, None) == [dt.date(2026, 5, 10), dt.date(2026, 5, 11)]


def test_network_falls_back_to_the_manual_param_and_fails_without_any_date(dags: SimpleNamespace) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    assert dags.network.end_dates_from_events({}, "2026-05-31") == [dt.date(2026, 5, 31)]
    with pytest.raises(AirflowFailException, match="no end date"):
        dags.network.end_dates_from_events(None, None)


def test_reports_are_as_of_the_sunday_before_the_monday_run(dags: SimpleNamespace) -> None:
    monday = dt.datetime(2026, 5, 11, 7, tzinfo=UTC)
    assert dags.reports.as_of_for(monday, None, None) == dt.date(2026, 5, 10)
    assert dags.reports.as_of_for(None, monday, None) == dt.date(2026, 5, 10)
    assert dags.reports.as_of_for(monday, None, "2026-04-30") == dt.date(2026, 4, 30)


def test_network_takes_a_manual_runs_logical_date_and_refuses_a_malformed_end_date(dags: SimpleNamespace) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    assert dags.network.end_dates_from_events({}, None, "manual", dt.datetime(2026, 5, 20, tzinfo=UTC)) == [
        dt.date(2026, 5, 20)]
    with pytest.raises(AirflowFailException, match="esn_network: param 'end_date' must be a day as YYYY-MM-DD"):
        dags.network.end_dates_from_events({}, "2026/05/20", "manual", None)


def test_reports_take_the_date_alias_and_fail_on_a_malformed_as_of(dags: SimpleNamespace) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    assert dags.reports.as_of_for(None, None, None, "2026-05-17") == dt.date(2026, 5, 17)
    with pytest.raises(AirflowFailException, match="esn_reports: param 'as_of' must be a day as YYYY-MM-DD"):
        dags.reports.as_of_for(None, None, "17.05.2026")
