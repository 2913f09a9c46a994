"""The dbt project of sql/ builds the same tables as today's runner of sql/<layer>/*.sql: every model's
table (columns, types, sorted rows, floats to 1e-12) on a small demo lake, on DuckDB and PostgreSQL, after a
first build of 30 days and after two single-day incremental runs.

The old-runner half goes when the old runner does; `compare` and the dbt half stay (against a stored
expectation, e.g. the snapshots of a run of this test)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import dbt_project, jobs, warehouse
from pipelines.config import Settings
from tests.conftest import demo_settings
from tests.dbt import compare
from tests.dbt.conftest import DEMO, dbt_schema_of, land, load_lake, run_dbt, run_old, write_profile

START = dt.date(2026, 5, 1)
FIRST = jobs.Interval(START, START + dt.timedelta(days=29))
NEXT_DAYS = [jobs.Interval(d, d) for d in (START + dt.timedelta(days=30), START + dt.timedelta(days=31))]


def _compare_all(engine: sa.Engine, step: str) -> list[str]:
    problems: list[str] = []
    with engine.connect() as conn:
        old_schema = warehouse.schemas_of(conn).internal
        for model in dbt_project.discover_models():
            old = compare.snapshot(conn, old_schema, model.name)
            new = compare.snapshot(conn, dbt_schema_of(model), model.name)
            problems += compare.differences(f"{step} {model.name}", old, new)
    return problems


def _equivalence(settings: Settings, tmp: Path) -> dict[str, float]:
    engine = warehouse.engine_for(settings)
    profiles = write_profile(tmp / "profiles", settings.warehouse_url)
    timings: dict[str, float] = {}
    problems: list[str] = []
    for i, interval in enumerate([FIRST, *NEXT_DAYS]):
        land(settings, interval, engine)
        load_lake(settings, interval, engine)
        timings[f"old_{i}"] = run_old(settings, interval, engine)
        engine.dispose()  # a DuckDB file has one writer process: dbt's
        timings[f"dbt_{i}"], _ = run_dbt(settings, interval, profiles, tmp / "target")
        problems += _compare_all(engine, interval.batch)
    descriptions = dbt_project.model_descriptions()
    with engine.connect() as conn:
        for model in dbt_project.discover_models():  # every column of every built model is described
            built = [c for c, _ in compare.column_types(conn, dbt_schema_of(model), model.name)]
            undescribed = [c for c in built if not descriptions[model.name][1].get(c)]
            problems += [f"{model.name}: columns without a description: {undescribed}"] if undescribed else []
        # the comparison compared something: rows in the marts
        rows = conn.exec_driver_sql("select count(*) from dbt_build.mart_engagement_daily").scalar_one()
        days = conn.exec_driver_sql("select count(distinct activity_date) from dbt_build.mart_engagement_daily"
                                    ).scalar_one()
    engine.dispose()
    assert rows > 0 and days == 32
    assert not problems, "\n".join(problems)
    print({k: round(v, 1) for k, v in timings.items()})
    return timings


def test_dbt_builds_the_tables_of_the_old_runner_on_duckdb(tmp_path: Path) -> None:
    _equivalence(demo_settings(tmp_path, **DEMO, start=START), tmp_path)


@pytest.mark.postgres
def test_dbt_builds_the_tables_of_the_old_runner_on_postgres(tmp_path: Path, pg_warehouse: str) -> None:
    _equivalence(demo_settings(tmp_path, warehouse_url=pg_warehouse, **DEMO, start=START), tmp_path)
