"""# esn_network: organisational network analysis after each warehouse publication

**Trigger.** Data-aware: runs when `esn_daily.publish_warehouse` updates the asset
`esn://warehouse/published`. Each asset event carries the published interval (`start_date`,
`end_date`); the run computes the network tables for every distinct `end_date` among its triggering
events, oldest first, so a day published while a previous network run was still going is not skipped
(month-end snapshots depend on that). A manual run takes the `end_date` param instead.

**Task.** `compute_network` calls `pipelines.network_stage.run_network(settings, end_date)`, which reads
the published interactions, computes the rolling-window and month-end network tables and publishes them
by write-audit-publish; on a month end, in the same transaction, `mart_impact_correlation` again, whose
influence measure is the month snapshot's pagerank (`pipelines.metrics.impact_after_network`: from the
outcome files the publication pseudonymised into the lake, so no key is needed here). Until that module
is installed the task is *skipped* with a message saying so (never a silent success).

**Warehouse pool.** `compute_network` runs in the Airflow pool `esn_warehouse` (1 slot, shared with
`esn_daily.publish_warehouse`): it never writes the warehouse at the same time as a publish. Create the
pool once: `airflow pools set esn_warehouse 1 "esn-metrics warehouse writers"` (docs/bi.md).

**Failures.** A missing or unreadable end date or a bad configuration fails at once without retries;
other errors are retried twice with exponential back-off. Rerunning a date replaces its tables.

This file only wires: it must never read the configuration or the warehouse at parse time, and never
pass data frames through XCom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

DAG_ID = "esn_network"
PUBLISHED = Asset("esn://warehouse/published")
#: the Airflow pool (1 slot) of the tasks that write the warehouse for long, shared with esn_daily's publish
WAREHOUSE_POOL = "esn_warehouse"


def end_dates_from_events(events: Mapping[Any, Any] | None, manual_end_date: str | None) -> list[dt.date]:
    """The distinct `end_date`s of the triggering asset events (oldest first), else the manual param.

    `events` is the context's `triggering_asset_events` (asset -> events, each with an `extra` dict).
    """
    found: set[dt.date] = set()
    for event in (events or {}).get(PUBLISHED, []):
        value = (getattr(event, "extra", None) or {}).get("end_date")
        if value:
            found.add(dt.date.fromisoformat(str(value)))
    if not found and manual_end_date:
        found.add(dt.date.fromisoformat(manual_end_date))
    if not found:
        raise AirflowFailException(
            "no end date: the triggering asset events carry no 'end_date' and no 'end_date' param was given "
            "(trigger manually with conf {\"end_date\": \"YYYY-MM-DD\"})")
    return sorted(found)


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=[PUBLISHED],
    start_date=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    params={"end_date": Param(None, type=["null", "string"], format="date",
                              description="manual runs only: last day of the windows (YYYY-MM-DD)")},
    default_args={
        "owner": "esn-metrics",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
    },
    tags=["esn-metrics", "network", "warehouse"],
)
def esn_network() -> None:
    @task(pool=WAREHOUSE_POOL)
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
        end_dates = end_dates_from_events(context.get("triggering_asset_events"),
                                          (context.get("params") or {}).get("end_date"))
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
