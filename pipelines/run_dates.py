"""Which days an Airflow run processes: the pure rules behind the DAGs' `date` / `end_date` params.

A data engineer reruns "the day asked for", whatever the way a run was started; Airflow 3 does not make
that easy: a manual run's data interval is inferred from its `run_after` (the moment of the trigger), not
from its logical date, so `airflow dags trigger --logical-date D` and `airflow dags test esn_daily D`
covered some other day. The rules here decide from what the run says about itself (its type, params,
logical date, data interval) and nothing else, so they are tested without a scheduler
(tests/airflow/test_dag_dates.py) and the DAG files stay thin.

This module imports only the standard library: the DAG files call it inside tasks, and the scheduler's
parser must never pay for more.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: what a day param must look like; also the Param's `pattern`, so the UI and the API refuse the same values
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_DAY = re.compile(DAY_PATTERN)


class RunDatesError(ValueError):
    """The run's params or dates do not name days that can be processed (the message names the param)."""


@dataclass(frozen=True)
class RunDays:
    """First and last day (inclusive) a run processes, and why (for the task log)."""

    start: dt.date
    end: dt.date
    reason: str

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def parse_day(value: Any, param: str) -> dt.date | None:
    """A `YYYY-MM-DD` param as a date; None when unset or empty. The error names the param."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):  # a conf built in Python may carry a datetime
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not _DAY.match(text):
        raise RunDatesError(f"param {param!r} must be a day as YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise RunDatesError(f"param {param!r} is not a calendar day: {value!r} ({exc})") from exc


def _utc_day(moment: dt.datetime) -> dt.date:
    return (moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).date()


def _run_type(value: Any) -> str:
    """`DagRunType.MANUAL`, `"manual"` and None alike as a lower-case string ("" when unknown)."""
    return str(getattr(value, "value", value) or "").lower()


def _check_over(days: RunDays, now: dt.datetime, param: str) -> RunDays:
    """A day is over once its UTC midnight has passed: processing it earlier would publish half a day."""
    today = _utc_day(now)
    if days.end >= today:
        raise RunDatesError(f"{param} {days.end.isoformat()} is not over yet (today is {today.isoformat()} UTC): "
                            "a day can be processed from the next day on")
    return days


def daily_run_days(*, params: Mapping[str, Any] | None, run_type: Any, logical_date: dt.datetime | None,
                   data_interval_start: dt.datetime | None, data_interval_end: dt.datetime | None,
                   run_after: dt.datetime | None = None, now: dt.datetime | None = None) -> RunDays:
    """The days an `esn_daily` run processes (the contract of issue 14).

    - `params.date` given: `date` .. `end_date` (or `date` alone), inclusive;
    - else a *manual* run with a logical date: that logical date's day (UTC) only; when that day is today
      (the UI's Trigger form fills in "now") the data interval Airflow inferred, the last day that is over;
    - else (scheduled, backfill, manual without logical date): the data interval, `start.date()` ..
      `end.date() - 1 day`, at least one day; a run with no interval at all (manual, no logical date)
      takes the day before its `run_after`, the last day that is over, as the timetable would.

    Raises RunDatesError for a malformed param, an `end_date` without `date` or before it, a day that is
    not over yet, or a `date` param on a backfill run (all its runs would process that one day).
    """
    params = params or {}
    now = now or dt.datetime.now(dt.UTC)
    first = parse_day(params.get("date"), "date")
    last = parse_day(params.get("end_date"), "end_date")
    if _run_type(run_type) == "backfill" and (first or last):
        # every run of the backfill would process the same days instead of its own logical date
        raise RunDatesError("a backfill's runs each process their own logical date: do not pass 'date' or "
                            "'end_date' in --dag-run-conf (give the range as --from-date/--to-date)")
    if first is not None:
        if last is not None and last < first:
            raise RunDatesError(f"param 'end_date' ({last.isoformat()}) is before param 'date' "
                                f"({first.isoformat()}): the range is date..end_date, inclusive")
        days = RunDays(first, last or first, "param 'date'" + (" .. 'end_date'" if last else ""))
        return _check_over(days, now, "param 'end_date'" if last else "param 'date'")
    if last is not None:
        raise RunDatesError("param 'end_date' needs param 'date' (the first day of the range): give both, "
                            "e.g. {\"date\": \"2026-05-01\", \"end_date\": \"2026-05-07\"}")
    if _run_type(run_type) == "manual" and logical_date is not None:
        day = _utc_day(logical_date)
        if day == _utc_day(now) and data_interval_start is not None and data_interval_end is not None:
            # the UI's Trigger form fills in "now": the user wants the last day that is over, which is the
            # interval Airflow inferred for the run
            start = _utc_day(data_interval_start)
            end = max(start, _utc_day(data_interval_end) - dt.timedelta(days=1))
            return _check_over(RunDays(start, end, "the data interval: the manual run's logical date is today, "
                                       "not over yet"), now, "data interval end")
        return _check_over(RunDays(day, day, "the manual run's logical date"), now, "logical date")
    if data_interval_start is not None and data_interval_end is not None:
        start = _utc_day(data_interval_start)
        end = _utc_day(data_interval_end) - dt.timedelta(days=1)
        return RunDays(start, max(start, end), "the run's data interval")
    if run_after is not None:
        day = _utc_day(run_after) - dt.timedelta(days=1)
        return RunDays(day, day, "the day before the run's run_after (no logical date, no data interval)")
    raise RunDatesError("this run has no 'date' param, no logical date and no data interval: trigger it with "
                        "conf {\"date\": \"YYYY-MM-DD\"}")


def network_end_dates(*, event_end_dates: list[Any], params: Mapping[str, Any] | None, run_type: Any,
                      logical_date: dt.datetime | None, now: dt.datetime | None = None) -> list[dt.date]:
    """The end dates an `esn_network` run computes, oldest first.

    The `end_date` param wins (a manual rerun of one day); else the distinct `end_date`s of the triggering
    asset events; else a manual run's logical date (its UTC day; the day before when that is today, the
    UI form's default). Raises RunDatesError otherwise.
    """
    params = params or {}
    now = now or dt.datetime.now(dt.UTC)
    manual = parse_day(params.get("end_date"), "end_date")
    if manual is not None:
        _check_over(RunDays(manual, manual, ""), now, "param 'end_date'")
        return [manual]
    found = {d for d in (parse_day(v, "asset event end_date") for v in event_end_dates) if d is not None}
    if found:
        return sorted(found)
    if _run_type(run_type) == "manual" and logical_date is not None:
        day = _utc_day(logical_date)
        if day == _utc_day(now):  # the UI form's "now": the last day that is over, as in esn_daily
            day -= dt.timedelta(days=1)
        _check_over(RunDays(day, day, ""), now, "logical date")
        return [day]
    raise RunDatesError("no end date: the triggering asset events carry no 'end_date', no 'end_date' param was "
                        "given and the run has no logical date (trigger manually with conf "
                        "{\"end_date\": \"YYYY-MM-DD\"})")


def reports_as_of(*, params: Mapping[str, Any] | None, logical_date: dt.datetime | None,
                  run_after: dt.datetime | None) -> dt.date:
    """The day an `esn_reports` run reports as of: the `as_of` param (or its alias `date`), else the day
    before the run's logical date (or run_after), UTC: the daily 07:00 run reports on the day that ended at
    midnight, and sends the audiences whose period closed on it."""
    params = params or {}
    as_of = parse_day(params.get("as_of"), "as_of")
    alias = parse_day(params.get("date"), "date")
    if as_of is not None and alias is not None and as_of != alias:
        raise RunDatesError(f"params 'as_of' ({as_of.isoformat()}) and 'date' ({alias.isoformat()}) disagree: "
                            "give one of them")
    chosen = as_of or alias
    if chosen is not None:
        return chosen
    moment = logical_date or run_after
    if moment is None:
        raise RunDatesError("this run has neither a logical date nor a run_after: give the 'as_of' param")
    return _utc_day(moment) - dt.timedelta(days=1)
