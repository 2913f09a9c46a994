"""An incremental table follows its model's columns across releases: a column the model gained is added
(NULL on the days not rebuilt since), a column it lost or renamed is dropped, on DuckDB and PostgreSQL.
Before, a renamed column stayed in published tables with the figures of the old definition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import warehouse

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def _model(sql: str) -> warehouse.Model:
    return warehouse.Model(name="mart_probe", layer="marts", path=Path("mart_probe.sql"), sql=sql,
                           materialized="incremental", partition_by="as_of_date", key=["as_of_date"], depends_on=[])


OLD = "select cast(:start_date as date) as as_of_date, 0.25 as cross_department_share, 3 as interactions"
NEW = ("select cast(:start_date as date) as as_of_date, 3 as interactions, 0.5 as cross_department_interaction_share, "
       "2 as known_department_interactions")


def _check(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for day in (D1, D2):
            warehouse.run_model(conn, _model(OLD), {"start_date": day, "end_date": day})
    with engine.begin() as conn:  # the next release renames a column and adds one; only D2 is republished
        warehouse.run_model(conn, _model(NEW), {"start_date": D2, "end_date": D2})
    got = warehouse.read_frame(engine, "select * from mart_probe order by as_of_date")
    assert "cross_department_share" not in got.columns
    assert set(got.columns) == {"as_of_date", "interactions", "cross_department_interaction_share",
                                "known_department_interactions"}
    assert got["interactions"].tolist() == [3, 3]
    assert got["cross_department_interaction_share"].isna().tolist() == [True, False]  # D1 not rebuilt since
    assert float(got["cross_department_interaction_share"].iloc[1]) == 0.5


def test_duckdb_incremental_table_follows_its_model(tmp_path: Path) -> None:
    engine = warehouse.make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        _check(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_incremental_table_follows_its_model(pg_url: str) -> None:
    engine = warehouse.make_engine(pg_url)
    try:
        _check(engine)
    finally:
        engine.dispose()
