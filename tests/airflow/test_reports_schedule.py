"""Every schedule honoured (issue 16, part 4): over two years of the esn_reports DAG's own timetable, as the
scheduler computes it, each daily, weekly (on any weekday) and monthly audience gets exactly one email per
period, in the run the morning after the period ends.

The DAG module is imported in this process (it only imports airflow.sdk); its timetable is turned into
the scheduler's (`coerce_to_core_timetable`, what serialisation does) and asked for every run of two
years, with catchup, exactly as the scheduler asks it; each run's `as_of` comes from the DAG's own
`as_of_for`, and the audiences it sends from `ReportsConfig.due_audiences`, the function the task calls."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

import pendulum
import pytest

from pipelines.reports_config import WEEKDAYS, Frequency, ReportsConfig
from tests.airflow.test_dag_helpers import _load

pytestmark = pytest.mark.airflow

FIRST = dt.date(2026, 12, 1)
LAST = dt.date(2028, 11, 30)  # two years of runs, a leap day (29 Feb 2028) included


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return _load("esn_reports", tmp_path_factory.mktemp("airflow_home_reports_schedule"))


def _config() -> ReportsConfig:
    audiences = [{"name": "ops-daily", "recipients": ["ops@example.org"], "frequency": "daily"},
                 {"name": "leadership", "recipients": ["ceo@example.org"], "frequency": "weekly"},  # weekly_on
                 {"name": "board", "recipients": ["board@example.org"], "frequency": "monthly"}]
    audiences += [{"name": f"weekly-{day[:3]}", "recipients": [f"{day}@example.org"], "frequency": "weekly",
                   "weekday": day} for day in WEEKDAYS]
    return ReportsConfig.model_validate({"weekly_on": "sunday", "audiences": audiences})


def _runs(module: ModuleType) -> list[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """(logical date, run_after) of every scheduled run from FIRST to LAST, from the scheduler's timetable."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(module.esn_reports_dag.timetable)
    restriction = TimeRestriction(earliest=pendulum.datetime(FIRST.year, FIRST.month, FIRST.day, tz="UTC"),
                                  latest=pendulum.datetime(LAST.year, LAST.month, LAST.day, 23, 59, tz="UTC"),
                                  catchup=True)
    runs, last = [], None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)):
        runs.append((info.logical_date, info.run_after))
        last = info.data_interval
    return runs


def _period(frequency: Frequency, day: dt.date) -> tuple[dt.date, dt.date]:
    """The period (first, last day) of this frequency that holds `day`, computed independently of the code
    under test: calendar arithmetic only."""
    if frequency is Frequency.daily:
        return day, day
    if frequency is Frequency.monthly:
        nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return day.replace(day=1), nxt - dt.timedelta(days=1)
    raise AssertionError(frequency)


def test_the_dag_runs_every_morning_at_seven_utc(module: ModuleType) -> None:
    runs = _runs(module)
    assert len(runs) == (LAST - FIRST).days + 1 == 731
    assert all((r.hour, r.minute, r.utcoffset()) == (7, 0, dt.timedelta(0)) for r, _ in runs)
    assert [r.date() for r, _ in runs] == [FIRST + dt.timedelta(days=i) for i in range(731)]


def test_two_years_give_exactly_one_email_per_audience_per_period_the_morning_after(module: ModuleType) -> None:
    config = _config()
    sends: dict[str, list[tuple[dt.date, dt.date]]] = defaultdict(list)  # audience -> (as_of, run day)
    for logical, run_after in _runs(module):
        as_of = module.as_of_for(logical, run_after, None)
        for audience in config.due_audiences(as_of):
            sends[audience.name].append((as_of, logical.date()))
    reported = [FIRST - dt.timedelta(days=1) + dt.timedelta(days=i) for i in range(731)]  # every as_of
    for audience in config.audiences:
        got = sends[audience.name]
        # on time: every email goes out in the run of the morning after its period's last day
        assert all(run == as_of + dt.timedelta(days=1) for as_of, run in got), audience.name
        if audience.frequency is Frequency.weekly:
            weekday = WEEKDAYS.index("sunday") if audience.weekday is None else audience.weekday
            periods = Counter((as_of - dt.timedelta(days=6), as_of) for as_of, _ in got)
            # every week ending on that weekday whose last day was reported, once; nothing on other days
            expected = {(d - dt.timedelta(days=6), d) for d in reported if d.weekday() == weekday}
            assert all(as_of.weekday() == weekday for as_of, _ in got), audience.name
        else:
            periods = Counter(_period(audience.frequency, as_of) for as_of, _ in got)
            expected = {_period(audience.frequency, d) for d in reported
                        if _period(audience.frequency, d)[1] == d}
            assert all(as_of == _period(audience.frequency, as_of)[1] for as_of, _ in got), audience.name
        assert set(periods) == expected, audience.name
        assert set(periods.values()) == {1}, f"{audience.name}: a period sent twice"
    counts = {name: len(v) for name, v in sends.items()}
    assert counts["ops-daily"] == 731
    assert counts["board"] == 24  # Nov 2026 .. Oct 2028: each month end reported once
    assert 104 <= counts["leadership"] == counts["weekly-sun"] <= 105
    assert all(104 <= counts[f"weekly-{d[:3]}"] <= 105 for d in WEEKDAYS)
    assert sum(counts[f"weekly-{d[:3]}"] for d in WEEKDAYS) == 731  # each day closes exactly one weekday's week


def test_a_month_end_that_is_not_a_sunday_is_sent(module: ModuleType) -> None:
    # the known limit of the weekly DAG: a monthly audience went out only when a month ended on a Sunday
    config = _config()
    month_ends = [as_of for as_of in (module.as_of_for(lg, ra, None) for lg, ra in _runs(module))
                  if (as_of + dt.timedelta(days=1)).day == 1]
    assert sum(d.weekday() != 6 for d in month_ends) >= 20
    assert all("board" in {a.name for a in config.due_audiences(d)} for d in month_ends)


def test_weekday_names_and_numbers_are_accepted_and_bad_ones_refused(tmp_path: Path) -> None:
    from pipelines.errors import ConfigError
    from pipelines.reports_config import parse_reports_config

    base = {"name": "x", "recipients": ["x@example.org"], "frequency": "weekly"}
    assert parse_reports_config({"audiences": [{**base, "weekday": "Wed"}]}).audiences[0].weekday == 2
    assert parse_reports_config({"weekly_on": "friday"}).weekly_on == 4
    with pytest.raises(ConfigError, match=r"reports\.audiences\.0\.weekday"):
        parse_reports_config({"audiences": [{**base, "weekday": "someday"}]})
    with pytest.raises(ConfigError, match="weekday is for weekly audiences only"):
        parse_reports_config({"audiences": [{**base, "frequency": "monthly", "weekday": 1}]})
