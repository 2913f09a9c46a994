"""# esn_daily: land every configured source for one day, then publish the warehouse

**What it does.** For each *enabled* source of the configuration (`$ESN_CONFIG`), one mapped
`ingest_source` group runs `extract_source -> stage_source -> validate_source -> land_source`
(the functions of `pipelines.jobs`). When every source has landed, `publish_warehouse` loads the
canonical lake of the day into the warehouse and rebuilds the marts by write-audit-publish, then emits
the asset `esn://warehouse/published` (its event carries `start_date`/`end_date`), which triggers
`esn_network`.

**Interval.** The run's data interval: `data_interval_start.date()` to `data_interval_end.date() - 1 day`
(at least one day). The schedule is an explicit `CronDataIntervalTimetable("@daily")`, so the run with
logical date *D* covers day *D* and starts once *D* is over (a plain `"@daily"` string would give a
cron *trigger* timetable in Airflow 3, whose zero-length interval would process a day not yet over).

**Secrets.** The pseudonymisation key is the password of the Airflow connection `esn_pseudonym_key`
when it exists, else the environment variable `ESN_PSEUDONYM_KEY`. Each task resolves it itself; it
never goes through XCom or the logs.

**Failures.** A batch rejected by a blocking expectation (or a missing key, or a bad configuration)
fails its task at once, without retries, with the message naming the failed expectation and the
quarantine folder; nothing of that day is published. Other errors (network, locks) are retried twice
with exponential back-off. Rerunning a day replaces exactly that day.

**Warehouse pool.** `publish_warehouse` runs in the Airflow pool `esn_warehouse` (1 slot, shared with
`esn_network`'s `compute_network`): one long warehouse writer at a time. The extractions, validations
and landings run in parallel outside it (their writes are short; a DuckDB file is opened per write and
waits for another writer's lock, `pipelines.duckdb_access`). Create the pool once:
`airflow pools set esn_warehouse 1 "esn-metrics warehouse writers"` (docs/bi.md).

**Reruns / backfill.** `catchup` is off unless the environment variable `ESN_CATCHUP=true`;
`max_active_runs=1` because the runs write the same lake and warehouse.

This file only wires: it must never read the configuration, the lake, the warehouse or a connection at
parse time, and it must never pass data frames or secrets through XCom.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.jobs import Interval

DAG_ID = "esn_daily"
PUBLISHED = Asset("esn://warehouse/published")
#: the Airflow pool (1 slot) of the tasks that write the warehouse for long (docs/bi.md)
WAREHOUSE_POOL = "esn_warehouse"


def _catchup_from_env() -> bool:
    return os.environ.get("ESN_CATCHUP", "false").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- helpers called inside tasks
def run_interval(data_interval_start: dt.datetime | None, data_interval_end: dt.datetime | None) -> Interval:
    """The days a run covers: start.date() .. end.date() - 1 day (UTC), never less than one day."""
    from pipelines.jobs import Interval

    if data_interval_start is None or data_interval_end is None:
        raise AirflowFailException("this run has no data interval; esn_daily needs one (trigger it with a "
                                   "logical date)")
    first = data_interval_start.astimezone(dt.UTC).date()
    last = data_interval_end.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return Interval(first, max(first, last))


def _current_interval() -> Interval:
    context = get_current_context()
    return run_interval(context.get("data_interval_start"), context.get("data_interval_end"))


def _settings() -> Settings:
    from pipelines.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:  # retrying cannot fix a bad configuration file
        raise AirflowFailException(str(exc)) from exc


def _pseudonym_key(settings: Settings) -> str | None:
    """The key from the Airflow connection when it exists; None lets `pipelines` fall back to the env var."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(settings.privacy.pseudonym_key_conn_id)
    except AirflowNotFoundException:
        return None
    return conn.password or None


def _source_credentials(settings: Settings, source: str) -> dict[str, Any]:
    """The source's credentials from its Airflow connection (`conn_id` in the config), if it names one;
    otherwise the source reads the environment variables named in its options."""
    from airflow.sdk import Connection

    from pipelines.sources import credentials_from_connection

    cfg = settings.source(source)
    if not cfg.conn_id:
        return {}
    conn = Connection.get(cfg.conn_id)
    return credentials_from_connection(cfg.kind, login=conn.login, password=conn.password,
                                       extra=conn.extra_dejson)


def _quality_run_id() -> str:
    """The Airflow run (and try) as a file-name-safe id, so DQ evidence links back to the DAG run."""
    context = get_current_context()
    try_number = context.get("try_number") or 1
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{context['run_id']}-try{try_number}")


def _fail_fast(exc: Exception) -> AirflowFailException:
    return AirflowFailException(f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------------------------- the DAG
@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    catchup=_catchup_from_env(),
    max_active_runs=1,
    default_args={
        "owner": "esn-metrics",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
    },
    tags=["esn-metrics", "daily", "warehouse"],
)
def esn_daily() -> None:
    @task
    def list_sources() -> list[str]:
        """The names of the enabled sources of the configuration (read now, not at parse time)."""
        names = [s.name for s in _settings().sources if s.enabled]
        if not names:
            raise AirflowFailException("the configuration enables no source: nothing to land or publish")
        return names

    @task
    def extract_source(source: str) -> dict[str, Any]:
        from pipelines import jobs
        from pipelines.privacy import MissingKeyError

        settings = _settings()
        try:
            return jobs.extract(settings, source, _current_interval(), key=_pseudonym_key(settings),
                                credentials=_source_credentials(settings, source))
        except MissingKeyError as exc:
            raise _fail_fast(exc) from exc

    @task
    def stage_source(source: str) -> dict[str, Any]:
        from pipelines import jobs
        from pipelines.privacy import MissingKeyError

        settings = _settings()
        try:
            return jobs.stage(settings, source, _current_interval(), key=_pseudonym_key(settings))
        except MissingKeyError as exc:
            raise _fail_fast(exc) from exc

    @task
    def validate_source(source: str) -> dict[str, Any]:
        from pipelines import jobs, warehouse

        settings = _settings()
        engine = warehouse.engine_for(settings)
        try:
            return jobs.validate(settings, source, _current_interval(), run_id=_quality_run_id(), engine=engine)
        except jobs.BatchRejected as exc:  # the batch is quarantined; a retry would reject it again
            raise AirflowFailException(str(exc)) from exc
        finally:
            engine.dispose()

    @task
    def land_source(source: str) -> dict[str, Any]:
        from pipelines import jobs

        return jobs.land(_settings(), source, _current_interval())

    @task_group(group_id="ingest_source", prefix_group_id=False)
    def ingest_source(source: str) -> None:
        extract_source(source) >> stage_source(source) >> validate_source(source) >> land_source(source)

    @task(outlets=[PUBLISHED], pool=WAREHOUSE_POOL)
    def publish_warehouse(sources: list[str]) -> dict[str, Any]:
        from pipelines import jobs, warehouse

        settings = _settings()
        interval = _current_interval()
        engine = warehouse.engine_for(settings)
        try:
            report = jobs.publish(settings, interval, engine=engine,
                                  source_names=list(sources), key=_pseudonym_key(settings))
        finally:
            engine.dispose()
        # consumers (esn_network) read the published interval from the asset event; publish may have
        # covered earlier days too (a source rewrote them), which its summary's interval says
        published_start = str(report.get("interval", interval.batch)).split("_")[0]
        get_current_context()["outlet_events"][PUBLISHED].extra = {
            "start_date": published_start, "end_date": interval.end.isoformat()}
        return report

    sources = list_sources()
    # publish runs only when every source has landed (all_success): never a partial warehouse
    ingest_source.expand(source=sources) >> publish_warehouse(sources)  # type: ignore[arg-type]


esn_daily()
