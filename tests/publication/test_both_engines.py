"""Range refreshes and Python-computed marts, the same on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from pipelines import publication, warehouse
from pipelines.warehouse import DEFAULT_SCHEMAS as S

MARTS, BUILD = S.marts, S.build
D = dt.date(2026, 5, 1)


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("pg_db")
    engine = warehouse.make_engine(url)
    with engine.begin() as conn:
        for name in ("mart_inc", "mart_frame"):
            conn.exec_driver_sql(f"drop table if exists {MARTS}.{name}")
    yield engine
    engine.dispose()


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def frame(days: range, value: int) -> pd.DataFrame:
    return pd.DataFrame({"as_of_date": [D + dt.timedelta(days=d) for d in days], "v": [value] * len(days)})


def test_a_range_refresh_replaces_those_days_only(engine: Engine) -> None:
    with engine.begin() as conn:
        assert publication.replace_rows(conn, S, "mart_inc", frame(range(5), 1)) == 5
        # days 3 and 4 recomputed, with a new column
        assert publication.replace_rows(conn, S, "mart_inc", frame(range(3, 5), 2).assign(extra=9),
                                        partition_by="as_of_date", start=D + dt.timedelta(days=3),
                                        end=D + dt.timedelta(days=4)) == 2
    got = rows(engine, f"select extract(day from as_of_date), v, extra from {MARTS}.mart_inc order by 1")
    assert [(int(d), v, e) for d, v, e in got] == [(1, 1, None), (2, 1, None), (3, 1, None), (4, 2, 9), (5, 2, 9)]
    with pytest.raises(publication.PublicationError, match="has no column nope"), engine.begin() as conn:
        publication.refresh_range(conn, S, "mart_inc", "nope", D, D)


def test_an_empty_frame_keeps_the_published_types(engine: Engine) -> None:
    with engine.begin() as conn:
        publication.replace_rows(conn, S, "mart_frame", pd.DataFrame({"k": [1], "label": ["a"], "x": [0.5]}))
        empty = pd.DataFrame({"k": pd.Series([], dtype="int64"), "label": pd.Series([], dtype=object),
                              "x": pd.Series([], dtype=object)})
        assert publication.replace_rows(conn, S, "mart_frame", empty) == 0
        types = [c.sql_type.lower() for c in publication.table_columns(conn, MARTS, "mart_frame") or []]
    # the untyped (all-null) object columns keep the published types, not turned into text
    assert types == (["bigint", "varchar", "double"] if engine.dialect.name == "duckdb"
                     else ["bigint", "character varying", "double precision"])
    assert rows(engine, f"select count(*) from {MARTS}.mart_frame") == [(0,)]


def test_describing_a_missing_table_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(publication.PublicationError, match=f"cannot describe {MARTS}.mart_nowhere"), \
            engine.begin() as conn:
        publication.apply_descriptions(conn, MARTS, "mart_nowhere", "x", {})
