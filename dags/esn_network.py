"""# esn_network: organisational network analysis after each warehouse publication

**Trigger.** Data-aware: runs when `esn_daily.publish_warehouse` updates the asset
`esn://warehouse/published`. Each asset event carries the published interval (`start_date`,
`end_date`); the run computes the network tables for every distinct `end_date` among its triggering
events, oldest first, so a day published while a previous network run was still going is not skipped
(month-end snapshots depend on that). A manual run takes the `end_date` param, else its logical date's day
(`pipelines.run_dates.network_end_dates`); a malformed `end_date` or a day not over yet fails at once.

**Rerun a day:** `airflow dags trigger esn_network -c '{"end_date": "2026-05-20"}'` (or
`airflow dags test esn_network 2026-05-20`). **A range:** one run per day, e.g.
`for d in 2026-05-01 2026-05-02 2026-05-03; do airflow dags trigger esn_network -c "{\"end_date\": \"$d\"}"; done`
(the runs queue one at a time, `max_active_runs=1`), or `esn network --start 2026-05-01 --end 2026-05-03`
outside Airflow. docs/operations.md is the on-call runbook.

**Task.** `compute_network` calls `pipelines.network_stage.run_network(settings, end_date)`, which reads
the published interactions, computes the rolling-window and month-end network tables and publishes them
by write-audit-publish; on a month end, in the same transaction, `mart_impact_correlation` again, whose
influence measure is the month snapshot's pagerank (`pipelines.metrics.impact_after_network`: from the
outcome files the publication pseudonymised into the lake, so no key is needed here). Until that module
is installed the task is *skipped* with a message saying so (never a silent success).

**Warehouse pool.** `compute_network` runs in the Airflow pool `esn_warehouse` (1 slot, shared with
`esn_daily.publish_warehouse`): it never writes the warehouse at the same time as a publish. Create the
pool once: `airflow pools set esn_warehouse 1 "esn-metrics warehouse writers"` (docs/bi.md).

**Timeouts.** `compute_network` has an `execution_timeout` of 3 h (a month end computes the month
snapshot too); the run a `dagrun_timeout` of 6 h.

**Failures.** A missing or unreadable end date or a bad configuration fails at once without retries;
other errors (a warehouse lock) are retried twice with exponential back-off. Rerunning a date replaces
its tables. A failure emails `alerts.email_on_failure` and `$ESN_ALERT_EMAILS`
(`pipelines.alerting.FailureNotifier`).

This file only wires: it must never read the configuration or the warehouse at parse time, and never
pass data frames through XCom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipelines.alerting import FailureNotifier
from pipelines.run_dates import DAY_PATTERN

DAG_ID = "esn_network"
PUBLISHED = Asset("esn://warehouse/published")
#: the Airflow pool (1 slot) of the tasks that write the warehouse for long, shared with esn_daily's publish
WAREHOUSE_POOL = "esn_warehouse"


def end_dates_from_events(events: Mapping[Any, Any] | None, manual_end_date: str | None,
                          run_type: Any = None, logical_date: dt.datetime | None = None) -> list[dt.date]:
    """The end dates to compute, oldest first: the `end_date` param, else the distinct `end_date`s of the
    triggering asset events, else a manual run's logical date (`pipelines.run_dates.network_end_dates`).

    `events` is the context's `triggering_asset_events` (asset -> events, each with an `extra` dict).
    """
    from pipelines.run_dates import RunDatesError, network_end_dates

    values = [(getattr(event, "extra", None) or {}).get("end_date") for event in (events or {}).get(PUBLISHED, [])]
    try:
        return network_end_dates(event_end_dates=values, params={"end_date": manual_end_date},
                                 run_type=run_type, logical_date=logical_date)
    except RunDatesError as exc:  # a retry would find the same dates
        raise AirflowFailException(f"esn_network: {exc}") from exc


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=[PUBLISHED],
    start_date=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=6),
    params={"end_date": Param(None, type=["null", "string"], pattern=DAY_PATTERN, format="date",
                              description="manual runs: last day of the windows (YYYY-MM-DD); empty: the "
                                          "logical date")},
    on_failure_callback=FailureNotifier(),
    default_args={
        "owner": "esn-metrics",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "on_failure_callback": FailureNotifier(),
    },
    tags=["esn-metrics", "network", "warehouse"],
)
def esn_network() -> None:
    @task(pool=WAREHOUSE_POOL, execution_timeout=dt.timedelta(hours=3))
    def compute_network() -> dict[str, Any]:
        from pipelines.config import ConfigError, load_settings

        try:
            from pipelines.network_stage import run_network
        except ModuleNotFoundError as exc:
            if exc.name != "pipelines.network_stage":
                raise
            raise AirflowSkipException("pipelines.network_stage is not installed yet: no network tables "
                                       "were computed") from exc
        context = get_current_context()
        dag_run = context.get("dag_run")
        end_dates = end_dates_from_events(context.get("triggering_asset_events"),
                                          (context.get("params") or {}).get("end_date"),
                                          getattr(dag_run, "run_type", None),
                                          context.get("logical_date") or getattr(dag_run, "logical_date", None))
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from exc
        results = {}
        for end in end_dates:
            report = run_network(settings, end)
            results[end.isoformat()] = {"rows": report.get("rows"), "seconds": report.get("seconds")}
        return results

    compute_network()


esn_network()
