"""# esn_daily: land every configured source for one day, then publish the warehouse

**What it does.** For each *enabled* source of the configuration (`$ESN_CONFIG`), one mapped
`ingest_source` group runs `extract_source -> stage_source -> validate_source -> land_source`
(the functions of `pipelines.jobs`). When every source has landed, `publish_warehouse` loads the
canonical lake of the day into the warehouse and rebuilds the marts by write-audit-publish, then emits
the asset `esn://warehouse/published` (its event carries `start_date`/`end_date`), which triggers
`esn_network`.

**Which days.** A run processes exactly the day asked for (`pipelines.run_dates.daily_run_days`):
- the params `date` (and optionally `end_date`, inclusive) when given: `{"date": "2026-05-20"}` or
  `{"date": "2026-05-01", "end_date": "2026-05-07"}`;
- else a *manual* run with a logical date processes that day (UTC): `airflow dags test esn_daily 2026-05-20`
  and `airflow dags trigger esn_daily --logical-date 2026-05-20` process 2026-05-20 (a logical date of
  today, the UI form's default, processes the last day that is over);
- else (scheduled, backfill, manual without logical date) the data interval,
  `data_interval_start.date()` to `data_interval_end.date() - 1 day`. The schedule is an explicit
  `CronDataIntervalTimetable("@daily")`, so the scheduled run with logical date *D* covers day *D* and
  starts once *D* is over (a plain `"@daily"` would give a zero-length trigger interval).

A malformed param, an `end_date` without `date` or before it, a day that is not over yet, or a `date`
param on a backfill run (all its runs would process that day) fails the first task (`list_sources`) at
once, without retries, with a message naming the param.

**Rerun a day:** `airflow dags trigger esn_daily -c '{"date": "2026-05-20"}'` (or the UI's *Trigger* form).
**Rerun a range in one run:** `-c '{"date": "2026-05-01", "end_date": "2026-05-07"}'`.
**Backfill (one run per day, one at a time):**
`airflow backfill create --dag-id esn_daily --from-date 2026-05-01 --to-date 2026-05-07 --max-active-runs 1
--reprocess-behavior completed` (Airflow 3 backfills do not inherit the DAG's `max_active_runs`).
Rerunning a day replaces exactly that day. docs/operations.md is the on-call runbook.

**Secrets.** The pseudonymisation key is the password of the Airflow connection `esn_pseudonym_key`
when it exists, else the environment variable `ESN_PSEUDONYM_KEY`. Each task resolves it itself; it
never goes through XCom or the logs.

**Failures.** A batch rejected by a blocking expectation (or a missing key, a bad configuration, a
source's invalid options, bad params) fails its task at once, without retries, with the message naming
the failed expectation and the quarantine folder; nothing of that day is published. Other errors
(network, locks) are retried twice with exponential back-off. Rerunning a day replaces exactly that day.

**Pools.** `extract_source` runs in the pool `esn_extract` (default 4 slots: at most four sources call
their platforms at once, across runs; one source's extraction is also serialised across runs by a lock in
`pipelines.jobs.extract`). `publish_warehouse` runs in the pool `esn_warehouse` (1 slot, shared with
`esn_network`'s `compute_network`): one long warehouse writer at a time. Validations and landings run
outside pools (short writes; a DuckDB file waits for another writer's lock, `pipelines.duckdb_access`).
Create the pools once (Compose's init does):
`airflow pools set esn_extract 4 "esn-metrics source extraction"` and
`airflow pools set esn_warehouse 1 "esn-metrics warehouse writers"`.

**Timeouts.** Every task has an `execution_timeout` (extraction 3 h, staging/validation/landing 45 min,
publish 4 h, listing the sources 5 min) and the run a `dagrun_timeout` of 12 h; for a range longer
than a few weeks prefer a backfill (one run per day) to one run.

**Alerts.** A failed task sends one email (`pipelines.alerting.FailureNotifier`) to the config's
`alerts.email_on_failure` and `$ESN_ALERT_EMAILS` through the SMTP connection `alerts.smtp_conn_id`.

**Catchup.** Off unless the environment variable `ESN_CATCHUP=true`; `max_active_runs=1` because the
runs write the same lake and warehouse.

This file only wires: it must never read the configuration, the lake, the warehouse or a connection at
parse time, and it must never pass data frames or secrets through XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from pipelines.alerting import FailureNotifier
from pipelines.run_dates import DAY_PATTERN

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.jobs import Interval

log = logging.getLogger(__name__)

DAG_ID = "esn_daily"
PUBLISHED = Asset("esn://warehouse/published")
#: the Airflow pool (1 slot) of the tasks that write the warehouse for long (docs/bi.md)
WAREHOUSE_POOL = "esn_warehouse"
#: the Airflow pool (default 4 slots) of the extractions: how many platforms are called at once
EXTRACT_POOL = "esn_extract"


def _catchup_from_env() -> bool:
    return os.environ.get("ESN_CATCHUP", "false").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- helpers called inside tasks
def run_interval(data_interval_start: dt.datetime | None, data_interval_end: dt.datetime | None) -> Interval:
    """The days of a data interval: start.date() .. end.date() - 1 day (UTC), never less than one day."""
    from pipelines.jobs import Interval
    from pipelines.run_dates import RunDatesError, daily_run_days

    try:
        days = daily_run_days(params=None, run_type="scheduled", logical_date=None,
                              data_interval_start=data_interval_start, data_interval_end=data_interval_end)
    except RunDatesError as exc:
        raise AirflowFailException(str(exc)) from exc
    return Interval(days.start, days.end)


def _current_interval() -> Interval:
    """The days this run processes (params, manual logical date or data interval: module doc)."""
    from pipelines.jobs import Interval
    from pipelines.run_dates import RunDatesError, daily_run_days

    context = get_current_context()
    dag_run = context.get("dag_run")
    try:
        days = daily_run_days(
            params=context.get("params"), run_type=getattr(dag_run, "run_type", None),
            logical_date=context.get("logical_date") or getattr(dag_run, "logical_date", None),
            data_interval_start=context.get("data_interval_start") or getattr(dag_run, "data_interval_start", None),
            data_interval_end=context.get("data_interval_end") or getattr(dag_run, "data_interval_end", None),
            run_after=getattr(dag_run, "run_after", None))
    except RunDatesError as exc:  # a bad param: a retry would fail the same way
        raise AirflowFailException(f"esn_daily: {exc}") from exc
    log.info("esn_daily processes %s .. %s (from %s)", days.start.isoformat(), days.end.isoformat(), days.reason)
    return Interval(days.start, days.end)


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


def _bad_options(source: str, exc: Exception) -> AirflowFailException:
    """A source's options that do not validate are a bad configuration: a retry cannot fix them."""
    return AirflowFailException(f"the options of source {source!r} in the configuration are invalid: {exc}")


# ----------------------------------------------------------------------------------------------- the DAG
@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    catchup=_catchup_from_env(),
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=12),
    params={
        "date": Param(None, type=["null", "string"], pattern=DAY_PATTERN, format="date",
                      description="the day to process (YYYY-MM-DD); empty: the run's logical date or interval"),
        "end_date": Param(None, type=["null", "string"], pattern=DAY_PATTERN, format="date",
                          description="with 'date': the last day of an inclusive range (YYYY-MM-DD)"),
    },
    on_failure_callback=FailureNotifier(),
    default_args={
        "owner": "esn-metrics",
        # network and lock errors are retried; a rejected batch, a bad config or bad params raise
        # AirflowFailException, which is never retried
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(minutes=45),
        "on_failure_callback": FailureNotifier(),
    },
    tags=["esn-metrics", "daily", "warehouse"],
)
def esn_daily() -> None:
    @task(execution_timeout=dt.timedelta(minutes=5))
    def list_sources() -> list[str]:
        """The enabled sources of the configuration (read now, not at parse time); checks the run's days
        first, so a bad param fails here, before anything is extracted."""
        _current_interval()
        names = [s.name for s in _settings().sources if s.enabled]
        if not names:
            raise AirflowFailException("the configuration enables no source: nothing to land or publish")
        return names

    @task(pool=EXTRACT_POOL, execution_timeout=dt.timedelta(hours=3))
    def extract_source(source: str) -> dict[str, Any]:
        from pydantic import ValidationError

        from pipelines import jobs
        from pipelines.privacy import MissingKeyError

        settings = _settings()
        try:
            return jobs.extract(settings, source, _current_interval(), key=_pseudonym_key(settings),
                                credentials=_source_credentials(settings, source))
        except MissingKeyError as exc:
            raise _fail_fast(exc) from exc
        except ValidationError as exc:  # the sources validate their options when they start
            raise _bad_options(source, exc) from exc

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

    @task(outlets=[PUBLISHED], pool=WAREHOUSE_POOL, execution_timeout=dt.timedelta(hours=4))
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
