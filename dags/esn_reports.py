"""# esn_reports: weekly stakeholder emails

**Schedule.** Mondays at 07:00 UTC (`CronTriggerTimetable`, so the logical date is the Monday itself).
The reports are *as of* the day before the run (the Sunday), the last day `esn_daily` has published
by then; a manual run takes the `as_of` param instead.

**Task.** `send_stakeholder_reports` calls `pipelines.reports.send_reports(settings, as_of)`, which
renders the audiences due on `as_of` (weekly periods close on `reports.weekly_on`, Sunday by default)
and sends them through the Airflow connection `smtp_default`. It returns counts only.

**Failures.** A recipient that could not be reached does not stop the others; if any failed, the task
fails afterwards *without retrying* (a retry would send the delivered emails twice) and names the
audiences concerned. A bad configuration also fails at once.

Known limit: `send_reports` only sends audiences whose period closes on `as_of`; with a weekly run a
*monthly* audience goes out only when a month ends on a Sunday.

This file only wires: it must never read the configuration, the warehouse or a connection at parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

DAG_ID = "esn_reports"


def as_of_for(logical_date: dt.datetime | None, run_after: dt.datetime | None, manual_as_of: str | None) -> dt.date:
    """The manual param when given, else the day before the run's (logical) date, in UTC."""
    if manual_as_of:
        return dt.date.fromisoformat(manual_as_of)
    moment = logical_date or run_after
    if moment is None:
        raise AirflowFailException("this run has neither a logical date nor a run_after: give the 'as_of' param")
    return moment.astimezone(dt.UTC).date() - dt.timedelta(days=1)


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 7 * * 1", timezone="UTC"),
    start_date=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    params={"as_of": Param(None, type=["null", "string"], format="date",
                           description="manual runs only: the day the reports are as of (YYYY-MM-DD)")},
    default_args={
        "owner": "esn-metrics",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
    },
    tags=["esn-metrics", "reports", "email"],
)
def esn_reports() -> None:
    @task
    def send_stakeholder_reports() -> dict[str, Any]:
        from pipelines.config import ConfigError, load_settings
        from pipelines.reports import send_reports

        context = get_current_context()
        dag_run = context.get("dag_run")
        as_of = as_of_for(context.get("logical_date"), getattr(dag_run, "run_after", None),
                          (context.get("params") or {}).get("as_of"))
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from exc
        report = send_reports(settings, as_of)
        failed = report.get("failed") or []
        summary = {"as_of": as_of.isoformat(), "transport": str(report.get("transport")),
                   "delivered": report.get("delivered"), "failed": len(failed),
                   "skipped": report.get("skipped") or {}, "out_dir": str(report.get("out_dir"))}
        if failed:
            audiences = sorted({str(r.get("audience")) for r in failed})
            raise AirflowFailException(f"{len(failed)} report email(s) not delivered (audiences {audiences}); "
                                       f"the others were sent. Summary: {summary}")
        return summary

    send_stakeholder_reports()


esn_reports()
