"""The dbt project of sql/ builds the tables the old SQL runner built: on a small demo lake, after a first
build of 30 days and after two single-day incremental runs, every model's table has the row count, the
columns and types and the rows (sorted, floats to 1e-12 relative) of the old runner's, on DuckDB and on
PostgreSQL. The old runner is gone (d662a50); its results are stored as digests in
tests/dbt/expected/equivalence.json, computed by `python -m tests.dbt.regenerate_expected` from the old
runner of git history (3d61d4b). A change of any model's result fails here, naming the table and the run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines import dbt_project, warehouse
from pipelines.config import Settings
from tests.conftest import demo_settings
from tests.dbt import compare
from tests.dbt.conftest import (
    DEMO,
    MODELS_AFTER_OLD_RUNNER,
    PSEUDONYM_KEY,
    RUNS,
    START,
    build,
    land,
    load_lake,
    schema_of,
)

EXPECTED = json.loads((Path(__file__).resolve().parent / "expected" / "equivalence.json").read_text())
#: columns the canonical form gained after the old runner (which never had them): left out of the
#: comparison, and required to exist (tests/unit/test_lake_schema_evolution.py checks their values)
ADDED_SINCE_OLD_RUNNER: dict[str, tuple[str, ...]] = {"stg_activities": ("is_idea", "idea_status", "topic_ids")}


def _digests(settings: Settings, models: list[warehouse.Model]) -> dict[str, dict[str, Any]]:
    engine = warehouse.engine_for(settings)
    schemas = settings.schemas()
    try:
        with engine.connect() as conn:
            return {m.name: compare.digest(compare.snapshot(conn, schema_of(m, schemas), m.name,
                                                            ADDED_SINCE_OLD_RUNNER.get(m.name, ())))
                    for m in models}
    finally:
        engine.dispose()


def _equivalence(settings: Settings, backend: str) -> dict[str, float]:
    expected = compare.unpack(EXPECTED[backend])
    assert list(expected) == [i.batch for i in RUNS]
    models = dbt_project.discover_models()
    assert {m.name for m in models} - MODELS_AFTER_OLD_RUNNER == set(expected[RUNS[0].batch]), (
        "the models are not the old runner's")
    timings: dict[str, float] = {}
    problems: list[str] = []
    for i, interval in enumerate(RUNS):
        engine = warehouse.engine_for(settings)
        try:
            land(settings, interval, engine)
            load_lake(settings, interval, engine)
        finally:
            engine.dispose()
        t0 = time.perf_counter()
        build(settings, interval)
        timings[f"dbt_{i}"] = time.perf_counter() - t0
        built = _digests(settings, models)
        for name, want in expected[interval.batch].items():
            problems += compare.digest_differences(f"run {interval.batch}, {name}", want, built[name])
    descriptions = dbt_project.model_descriptions()
    for m in models:  # every column of every built model is described
        undescribed = [c for c, _ in built[m.name]["columns"] if not descriptions[m.name][1].get(c)]
        problems += [f"{m.name}: columns without a description: {undescribed}"] if undescribed else []
    # the comparison compared something: rows in the marts, on every day of the lake
    engine = warehouse.engine_for(settings)
    with engine.connect() as conn:
        days = conn.exec_driver_sql(f"select count(distinct activity_date) from {settings.schemas().build}"
                                    ".mart_engagement_daily").scalar_one()
    engine.dispose()
    assert days == DEMO["days"] and sum(d["rows"] for d in built.values()) > 10_000
    assert not problems, "\n".join(problems)
    print({k: round(v, 1) for k, v in timings.items()})
    return timings


def test_dbt_builds_the_tables_of_the_old_runner_on_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", PSEUDONYM_KEY)
    _equivalence(demo_settings(tmp_path, **DEMO, start=START), "duckdb")


@pytest.mark.postgres
def test_dbt_builds_the_tables_of_the_old_runner_on_postgres(tmp_path: Path, pg_warehouse: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", PSEUDONYM_KEY)
    _equivalence(demo_settings(tmp_path, warehouse_url=pg_warehouse, **DEMO, start=START), "postgresql")
