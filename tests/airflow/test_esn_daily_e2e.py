"""End to end: a real Airflow (dag.test, SQLite metadata DB) runs esn_daily on the demo organisation.

One run lands and publishes 2026-05-10 into a DuckDB warehouse; the tests check what was published, that
the pseudonymisation key came from the Airflow connection, and that a corrupted landing replayed through
the DAG is rejected at validation: the run fails at once (no retry) and the warehouse keeps what it had.

dag.test makes a *manual* run: it processes the day of its logical date (pipelines.run_dates), although
Airflow 3 gives it the interval before that date (2026-05-09..05-10); a scheduled run of logical date
2026-05-10 covers the same day (CronDataIntervalTimetable).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.airflow.conftest import ProbeResult, fresh_env, probe

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAY = dt.date(2026, 5, 10)
TRIGGER = "2026-05-10T00:00:00+00:00"
DEMO_OPTIONS = {"people": 80, "days": 20, "start": "2026-05-01"}
CONNECTION_KEY = "key-from-the-airflow-connection"
ENV_KEY = "key-from-the-environment"


@dataclass
class Published:
    root: Path
    config: Path
    result: ProbeResult

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"


def write_config(root: Path) -> Path:
    config = root / "esn.yaml"
    config.write_text(yaml.safe_dump({
        "lake_dir": str(root / "lake"),
        "warehouse_url": f"duckdb:///{root / 'warehouse.duckdb'}",
        "sources": [{"name": "demo", "kind": "demo", "options": DEMO_OPTIONS}],
    }))
    return config


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set search_path = 'esn_internal,esn_marts,esn_staging'")  # the warehouse's schemas
        return con.execute(sql).fetchall()


def publish_demo_day(airflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """One esn_daily run that publishes DAY: the session fixture `published` (conftest.py) calls this once
    for every e2e module, which copy its lake and warehouse before changing anything."""
    root = tmp_path_factory.mktemp("esn_daily_e2e")
    config = write_config(root)
    env = fresh_env(airflow_template, root)
    env["ESN_CONFIG"] = str(config)
    env["AIRFLOW_CONN_ESN_PSEUDONYM_KEY"] = f'{{"conn_type": "generic", "password": "{CONNECTION_KEY}"}}'
    env["ESN_PSEUDONYM_KEY"] = ENV_KEY  # the connection must win over it
    result = probe(env, "run", "esn_daily", TRIGGER, "--no-retries", timeout=240)
    return Published(root, config, result)


def test_daily_run_succeeds_and_covers_exactly_the_day_of_its_logical_date(published: Published) -> None:
    run = published.result.data
    assert run["state"] == "success", run["task_instances"]
    # Airflow's own interval for this manual run is the day before; the run processed its logical date's day
    assert run["data_interval_start"].startswith("2026-05-09") and run["data_interval_end"].startswith("2026-05-10")
    assert "esn_daily processes 2026-05-10 .. 2026-05-10 (from the manual run's logical date)" in published.result.output
    assert {k: v["state"] for k, v in run["task_instances"].items()} == {
        "list_sources": "success", "extract_source[0]": "success", "stage_source[0]": "success",
        "validate_source[0]": "success", "land_source[0]": "success", "publish_warehouse": "success"}


def test_daily_run_publishes_the_marts_and_only_that_day_of_activities(published: Published) -> None:
    days = query(published.warehouse, "select distinct activity_date from lake_activities")
    assert days == [(DAY,)]
    (rows,) = query(published.warehouse, "select count(*) from lake_activities")[0]
    assert rows > 0
    mart_days = {d for (d,) in query(published.warehouse, "select distinct activity_date from mart_engagement_daily")}
    assert DAY in mart_days


def test_daily_run_emits_the_published_asset_with_its_interval(published: Published) -> None:
    events = published.result.data["asset_events"]
    assert events == [{"uri": "esn://warehouse/published",
                       "extra": {"start_date": "2026-05-10", "end_date": "2026-05-10"}}]


def test_pseudonym_key_comes_from_the_airflow_connection_before_the_environment(published: Published) -> None:
    from pipelines.privacy import Pseudonymiser
    from pipelines.sources.demo_org import build_org

    org = build_org(DEMO_OPTIONS["people"], DEMO_OPTIONS["days"], dt.date(2026, 5, 1))
    emails = list(org.people["email"])
    landed = {k for (k,) in query(published.warehouse, "select distinct person_key from lake_people")}
    with_connection = {Pseudonymiser(CONNECTION_KEY.encode()).email(e) for e in emails}
    with_env = {Pseudonymiser(ENV_KEY.encode()).email(e) for e in emails}
    assert landed and landed <= with_connection
    assert not landed & with_env


def test_rejected_batch_fails_the_run_at_once_and_leaves_the_warehouse_as_it_was(
        published: Published, airflow_template: Path, tmp_path: Path) -> None:
    # a copy of the published lake and warehouse, so the other tests keep theirs
    shutil.copytree(published.lake, tmp_path / "lake")
    shutil.copy2(published.warehouse, tmp_path / "warehouse.duckdb")
    config = write_config(tmp_path)
    before = query(tmp_path / "warehouse.duckdb", "select count(*) from lake_activities")

    # a corrupted landing for the day: one event delivered twice (same source and event_id)
    raw = tmp_path / "lake/raw/source=demo/stream=activities" / f"date={DAY.isoformat()}" / "part-0.parquet"
    table = pq.read_table(raw)
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), raw)

    env = fresh_env(airflow_template, tmp_path)
    env["ESN_CONFIG"] = str(config)
    # the key the lake was written with (another key is refused before anything is read)
    env["AIRFLOW_CONN_ESN_PSEUDONYM_KEY"] = f'{{"conn_type": "generic", "password": "{CONNECTION_KEY}"}}'
    # replay the landing through the DAG: extraction (which would rewrite raw) is marked done; the real
    # retry settings are kept, to show that a rejection is not retried
    result = probe(env, "run", "esn_daily", TRIGGER, "--mark-success", "extract_source", timeout=240)
    run = result.data
    states = {k: v["state"] for k, v in run["task_instances"].items()}
    assert run["state"] == "failed"
    assert states["validate_source[0]"] == "failed"
    assert run["task_instances"]["validate_source[0]"]["try_number"] == 1
    assert states["land_source[0]"] == "upstream_failed"
    assert states["publish_warehouse"] == "upstream_failed"
    assert run["asset_events"] == []
    # the failure says which expectation failed on what
    assert "AirflowFailException" in result.output
    assert "rejected by 1 blocking expectation" in result.output
    assert "expect_compound_columns_to_be_unique" in result.output
    # the batch is quarantined with its reasons; the warehouse is untouched
    rejected = list((tmp_path / "lake/quarantine/batches/source=demo").rglob("REJECTED.txt"))
    assert len(rejected) == 1 and "expect_compound_columns_to_be_unique" in rejected[0].read_text()
    assert query(tmp_path / "warehouse.duckdb", "select count(*) from lake_activities") == before


def test_a_manual_run_with_a_date_range_param_processes_exactly_those_days(
        airflow_template: Path, tmp_path: Path) -> None:
    # the logical date (05-10) and Airflow's inferred interval (05-09) are both overridden by the params
    env = fresh_env(airflow_template, tmp_path)
    env["ESN_CONFIG"] = str(write_config(tmp_path))
    env["ESN_PSEUDONYM_KEY"] = ENV_KEY
    result = probe(env, "run", "esn_daily", TRIGGER, "--no-retries",
                   "--conf", '{"date": "2026-05-12", "end_date": "2026-05-13"}', timeout=240)
    assert result.data["state"] == "success", result.output[-12000:]
    assert "esn_daily processes 2026-05-12 .. 2026-05-13 (from param 'date' .. 'end_date')" in result.output
    days = {d for (d,) in query(tmp_path / "warehouse.duckdb", "select distinct activity_date from lake_activities")}
    assert days == {dt.date(2026, 5, 12), dt.date(2026, 5, 13)}
    assert result.data["asset_events"] == [{"uri": "esn://warehouse/published",
                                            "extra": {"start_date": "2026-05-12", "end_date": "2026-05-13"}}]
