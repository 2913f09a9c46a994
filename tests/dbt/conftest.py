"""Fixtures of the dbt tests: a small demo lake landed and loaded into a warehouse (DuckDB or PostgreSQL),
the runs of the equivalence test (a first build of 30 days, then two single days), `dbt build` of the
project in-process (`build`) or as a subprocess (`run_dbt`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines import canonical, jobs, lake, transform, warehouse
from pipelines.config import Settings
from tests.conftest import demo_settings

DBT = Path(sys.executable).parent / "dbt"
#: the schema vars of `run_dbt` (the subprocess; `build` uses the settings' schemas)
DBT_SCHEMAS = {"schema_staging": "esn_staging", "schema_internal": "dbt_internal", "schema_build": "dbt_build"}
#: the demo lake of the equivalence test (tests/dbt/expected/equivalence.json was computed on it) and its
#: runs: a first build of 30 days, then two single-day (incremental) runs
#: models added after the old runner (issue 17: ideas), so neither its digests nor its headers have them; the
#: demo has no ideas, so their tables are empty there (tests/metrics/test_ideas_hand.py checks them by hand)
MODELS_AFTER_OLD_RUNNER = frozenset({"fct_ideas", "fct_idea_status_spells", "fct_idea_contributors", "mart_ideas",
                                     "int_activity_topics", "fct_person_topic_expertise", "mart_topic_expertise",
                                     "mart_group_connections"})
DEMO = {"people": 200, "days": 32, "seed": 11}
START = dt.date(2026, 5, 1)
RUNS = [jobs.Interval(START, START + dt.timedelta(days=29)),
        *(jobs.Interval(d, d) for d in (START + dt.timedelta(days=30), START + dt.timedelta(days=31)))]
#: the pseudonym key the expectation was computed with (the person keys of every table depend on it)
PSEUDONYM_KEY = "test-key-not-a-secret"


def land(settings: Settings, interval: jobs.Interval, engine: sa.Engine) -> None:
    """extract, stage, validate and land every source of the interval (the lake, not the warehouse)."""
    for cfg in settings.sources:
        jobs.extract(settings, cfg.name, interval, allow_demo_key=True)
        jobs.stage(settings, cfg.name, interval, allow_demo_key=True)
        jobs.validate(settings, cfg.name, interval, engine=engine)
        jobs.land(settings, cfg.name, interval)


def load_lake(settings: Settings, interval: jobs.Interval, engine: sa.Engine) -> None:
    """The load of jobs.publish (its first transaction): the interval's activity and usage days, the
    people as of its end and the latest containers, into the staging schema's lake tables."""
    names = [s.name for s in settings.sources if s.enabled]
    with engine.begin() as conn:
        warehouse.ensure_lake_tables(conn)
        files = [f for src in names for f in lake.partition_files(
            lake.canonical_dir(settings.lake_dir, "activities") / f"source={src}", interval.days)]
        warehouse.replace_activity_days(conn, names, interval.days, files)
        usage = [f for src in names for f in lake.partition_files(
            lake.canonical_dir(settings.lake_dir, "usage") / f"source={src}", interval.days)]
        warehouse.replace_usage_days(conn, names, interval.days, usage)
        people, history = canonical.people_over_time(jobs._people_snapshots(settings, interval.end))
        people = people.assign(snapshot_date=interval.end)
        warehouse.replace_table(conn, "lake_people", pa.Table.from_pandas(people, preserve_index=False))
        warehouse.replace_table(conn, "lake_people_history", pa.Table.from_pandas(history, preserve_index=False))
        containers = jobs._latest_canonical(settings, "containers", interval.end)
        if containers is not None:
            warehouse.replace_table(conn, "lake_containers", pa.Table.from_pandas(containers, preserve_index=False))


def build(settings: Settings, interval: jobs.Interval) -> transform.BuildResult:
    """`dbt build` of sql/ in-process (pipelines.transform: the parsed manifest is reused) with the run's
    parameters (jobs.model_params), into the settings' schemas."""
    return transform.build(settings, jobs.model_params(settings, interval), schemas=settings.schemas())


def schema_of(model: warehouse.Model, schemas: warehouse.Schemas) -> str:
    """Where dbt builds a model: staging views in the staging schema, internal models in the internal
    one, marts in the build schema."""
    return {"staging": schemas.staging, "intermediate": schemas.internal, "marts": schemas.build}[model.layer]


def write_profile(directory: Path, url: str) -> Path:
    """A profiles.yml of profile esn_metrics, target test, for a warehouse URL of the tests."""
    directory.mkdir(parents=True, exist_ok=True)
    if url.startswith("duckdb:///"):
        output = {"type": "duckdb", "path": url.removeprefix("duckdb:///"), "threads": 1,
                  "schema": "esn_internal", "settings": {"TimeZone": "UTC"}}
    else:
        u = sa.make_url(url)
        output = {"type": "postgres", "host": u.host, "port": u.port or 5432, "user": u.username,
                  "password": u.password or "", "dbname": u.database, "schema": "esn_internal", "threads": 1}
    (directory / "profiles.yml").write_text(json.dumps({"esn_metrics": {"target": "test",
                                                                         "outputs": {"test": output}}}))
    return directory


def run_dbt(settings: Settings, interval: jobs.Interval, profiles_dir: Path, target_dir: Path,
            command: str = "build", extra_vars: dict[str, Any] | None = None,
            extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> tuple[float, str]:
    """`dbt <command>` of sql/ with the run's vars (jobs.model_params), in a subprocess; returns the
    seconds it took and its output; raises with the output when it fails."""
    dbt_vars = {**transform.dbt_vars(jobs.model_params(settings, interval), warehouse.DEFAULT_SCHEMAS),
                **DBT_SCHEMAS, **(extra_vars or {})}
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PGTZ": "UTC",
           "DBT_PROFILES_DIR": str(profiles_dir), **(extra_env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(DBT), command, "--project-dir", str(warehouse.SQL_DIR), "--target-path", str(target_dir),
         "--log-path", str(target_dir / "logs"), "--vars", json.dumps(dbt_vars), "--no-use-colors",
         "--no-send-anonymous-usage-stats", "--no-version-check", "--no-partial-parse", *args],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise AssertionError(f"dbt {command} failed ({proc.returncode}):\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


@pytest.fixture
def demo(tmp_path: Path) -> Settings:
    return demo_settings(tmp_path, **DEMO)


@pytest.fixture
def pg_warehouse(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database of helper A's tests, dropped afterwards."""
    name = f"esn_h_a_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
    try:
        yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()
