"""# esn_reports: stakeholder emails, every audience on its own schedule

**Schedule.** Every day at 07:00 UTC (`CronTriggerTimetable`, so the logical date is the day of the run).
Each run reports *as of* the day before (the last day `esn_daily` has published by then) and sends the
audiences whose period closes on that day (`ReportsConfig.due_audiences`): a `daily` audience every run, a
`weekly` one when the day is its `weekday` (default `reports.weekly_on`, Sunday), a `monthly` one on the
month's last day. So each audience gets exactly one email per period, the morning after it ends
(tests/airflow/test_reports_schedule.py counts them over two years of the DAG's own timetable). A manual
run takes the `as_of` param (or its alias `date`, as in `esn_daily`) instead, else the day before its
logical date (`pipelines.run_dates.reports_as_of`).

**Rerun a day (the emails as of one day):** `airflow dags trigger esn_reports -c '{"as_of": "2026-05-10"}'`
(a Sunday for the default weekly audiences, a month end for the monthly ones), or `airflow dags test
esn_reports 2026-05-11` (as of the day before). Each run emails the recipients due that day again. **A
range:** one run per `as_of` day. docs/operations.md is the on-call runbook.

**Task.** `send_stakeholder_reports` calls `pipelines.reports.send_reports(settings, as_of)`, which
renders the audiences due on `as_of` and sends them through the Airflow connection `smtp_default`. Each
email states every source's coverage of its period; incomplete data is sent with a "DATA INCOMPLETE"
banner or held (`reports.freshness.on_incomplete`): a held audience is listed under `held` in the
task's return value and logged as a warning; the next runs send it once its period is complete, or
with the banner `reports.freshness.hold_max_days` days later (`late` in the return value). It returns
counts only.

**Task.** `send_answer_suggestions` (beside it, independent) sends the lists of who could answer the questions
still open at the end of the as-of day (`pipelines.answer_suggestions.run_daily`, the `answer_suggestions:`
section: to each container's managers or to the asker, each question once); it does nothing while
`answer_suggestions.deliver_to` is `none` (the default).

**Failures.** A recipient that could not be reached does not stop the others; if any failed, the task
fails afterwards *without retrying* (a retry would send the delivered emails twice) and names the
audiences concerned. A bad configuration or a malformed `as_of` also fails at once. Other errors (the
warehouse locked or unreachable before anything was sent) are retried. The task has an
`execution_timeout` of 1 h, the run a `dagrun_timeout` of 2 h; a failure emails `alerts.email_on_failure`
and `$ESN_ALERT_EMAILS` (`pipelines.alerting.FailureNotifier`).

This file only wires: it must never read the configuration, the warehouse or a connection at parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from pipelines.alerting import FailureNotifier
from pipelines.run_dates import DAY_PATTERN

DAG_ID = "esn_reports"


def as_of_for(logical_date: dt.datetime | None, run_after: dt.datetime | None, manual_as_of: str | None,
              manual_date: str | None = None) -> dt.date:
    """The manual param when given (`as_of`, or its alias `date`), else the day before the run's (logical)
    date, in UTC (`pipelines.run_dates.reports_as_of`)."""
    from pipelines.run_dates import RunDatesError, reports_as_of

    try:
        return reports_as_of(params={"as_of": manual_as_of, "date": manual_date}, logical_date=logical_date,
                             run_after=run_after)
    except RunDatesError as exc:  # a retry would send nothing better
        raise AirflowFailException(f"esn_reports: {exc}") from exc


def _as_of_and_settings() -> tuple[dt.date, Any]:
    """In a running task: the day the run reports as of (`as_of_for` its context) and the settings; a bad
    configuration fails the task at once."""
    from pipelines.config import ConfigError, load_settings

    context = get_current_context()
    params = context.get("params") or {}
    as_of = as_of_for(context.get("logical_date"), getattr(context.get("dag_run"), "run_after", None),
                      params.get("as_of"), params.get("date"))
    try:
        return as_of, load_settings()
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 7 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=2),
    params={
        "as_of": Param(None, type=["null", "string"], pattern=DAY_PATTERN, format="date",
                       description="manual runs only: the day the reports are as of (YYYY-MM-DD)"),
        "date": Param(None, type=["null", "string"], pattern=DAY_PATTERN, format="date",
                      description="alias of as_of (the name esn_daily uses)"),
    },
    on_failure_callback=FailureNotifier(),
    default_args={
        "owner": "esn-metrics",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(hours=1),
        "on_failure_callback": FailureNotifier(),
    },
    tags=["esn-metrics", "reports", "email"],
)
def esn_reports() -> None:
    @task
    def send_stakeholder_reports() -> dict[str, Any]:
        from pipelines.reports import send_reports

        as_of, settings = _as_of_and_settings()
        report = send_reports(settings, as_of)
        failed = report.get("failed") or []
        summary = {"as_of": as_of.isoformat(), "transport": str(report.get("transport")),
                   "delivered": report.get("delivered"), "failed": len(failed),
                   "skipped": report.get("skipped") or {}, "held": report.get("held") or {},
                   "late": report.get("late") or {},
                   "out_dir": str(report.get("out_dir"))}
        if failed:
            audiences = sorted({str(r.get("audience")) for r in failed})
            raise AirflowFailException(f"{len(failed)} report email(s) not delivered (audiences {audiences}); "
                                       f"the others were sent. Summary: {summary}")
        return summary

    @task
    def send_answer_suggestions() -> dict[str, Any]:
        """Who could answer the questions still open at the end of the as-of day, to the people allowed to
        see the lists (`answer_suggestions:`; nothing when `deliver_to` is `none`), each question once."""
        from pipelines.answer_suggestions import run_daily

        as_of, settings = _as_of_and_settings()
        try:
            summary = run_daily(settings, as_of)
        except ValueError as exc:  # the configuration or the people file: a retry would not help
            raise AirflowFailException(f"send_answer_suggestions: {exc}") from exc
        if summary.get("failed"):
            raise AirflowFailException(f"{summary['failed']} recipient(s) of answer suggestions not reached; "
                                       f"the others were sent (and recorded). Summary: {summary}")
        return summary

    send_stakeholder_reports()
    send_answer_suggestions()


esn_reports_dag = esn_reports()
