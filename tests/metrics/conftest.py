"""Fixtures of the metric tests: warehouses on DuckDB and PostgreSQL, and a run of the dbt models with the
alert thresholds merged into the parameters, their marts published as jobs.publish does."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.config import SourceConfig, UsageSegments, load_settings
from pipelines.metrics.thresholds import load_thresholds

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def run_models(engine: sa.Engine, start: dt.date, end: dt.date, *, min_group_size: int = 1,
               **extra: Any) -> None:
    params = {"start_date": start, "end_date": end, "min_group_size": min_group_size, "w_reply": 1.0,
              "w_reaction": 0.5, "w_mention": 1.0, "w_share": 1.0, **load_thresholds(),
              **UsageSegments().params(), "usage_report_teams_channels": True, "usage_report_teams_chat": True,
              "usage_report_engage": True, **extra}
    from pipelines import transform

    transform.build(engine.url.render_as_string(hide_password=False), params, schemas=warehouse.schemas_of(engine))
    with engine.begin() as conn:  # published in place, as jobs.publish does (no suppression: min_group_size 1)
        jobs.refresh_marts(conn, jobs.Interval(start, end))


def load_lake(engine: sa.Engine, activities: pd.DataFrame, people: pd.DataFrame,
              containers: pd.DataFrame | None = None) -> None:
    with engine.begin() as conn:
        warehouse.ensure_lake_tables(conn)
        for name, df in (("lake_activities", activities), ("lake_people", people), ("lake_containers", containers)):
            if df is not None:
                warehouse.replace_table(conn, name, pa.Table.from_pandas(df, preserve_index=False))


def frame(engine: sa.Engine, sql: str, **params: Any) -> pd.DataFrame:
    return warehouse.read_frame(engine, sql, params)


@pytest.fixture
def duck(tmp_path: Path) -> sa.Engine:
    return warehouse.make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")


@pytest.fixture
def pg() -> Iterator[sa.Engine]:
    admin = sa.create_engine(PG_URL + "test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            name = f"esn_test_metrics_{os.getpid()}"
            c.exec_driver_sql(f"drop database if exists {name}")
            c.exec_driver_sql(f"create database {name}")
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unreachable at 127.0.0.1:5432 ({exc.__class__.__name__}); CI is not set")
    engine = warehouse.make_engine(PG_URL + name)
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()


def demo_settings(tmp: Path, people: int, days: int, start: dt.date = dt.date(2026, 5, 1)) -> Any:
    return load_settings(None, lake_dir=tmp / "lake", warehouse_url=f"duckdb:///{tmp / 'w.duckdb'}",
                         sources=[SourceConfig(name="demo", kind="demo", options={
                             "people": people, "days": days, "start": start, "seed": 7})])


@pytest.fixture
def thresholds_in_params(monkeypatch: pytest.MonkeyPatch) -> None:
    original = jobs.model_params
    monkeypatch.setattr(jobs, "model_params", lambda s, i: {**original(s, i), **load_thresholds()})
