"""The publication's primitives on DuckDB: in-place refresh, views, comments (duckdb_tables/duckdb_columns)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from pipelines import publication, warehouse
from pipelines.warehouse import DEFAULT_SCHEMAS as S

MARTS, BUILD = S.marts, S.build


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = warehouse.make_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    yield engine
    engine.dispose()


def build(engine: Engine, name: str, select: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"drop table if exists {BUILD}.{name}")
        conn.exec_driver_sql(f"create table {BUILD}.{name} as {select}")


def publish(engine: Engine, *names: str) -> list[int]:
    with engine.begin() as conn:
        return [publication.refresh_in_place(conn, S, n) for n in names]


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def test_refresh_creates_with_the_build_types_then_follows_its_columns(engine: Engine) -> None:
    build(engine, "mart_a", "select i as k, 'v' || i as label, (i / 7)::decimal(12, 3) as share, "
                            "[i, i] as pair, 'drop me' as spare from range(10) t(i)")
    assert publish(engine, "mart_a") == [10]
    assert rows(engine, f"select column_name, data_type from duckdb_columns() where schema_name = '{MARTS}' "
                        "and table_name = 'mart_a' order by column_index") == [
        ("k", "BIGINT"), ("label", "VARCHAR"), ("share", "DECIMAL(12,3)"), ("pair", "BIGINT[]"),
        ("spare", "VARCHAR")]
    build(engine, "mart_a", "select 'x' || i as share, i as k, i * 2 as added from range(3) t(i)")
    assert publish(engine, "mart_a") == [3]
    assert rows(engine, f"select k, share, added from {MARTS}.mart_a order by k") == [
        (0, "x0", 0), (1, "x1", 2), (2, "x2", 4)]
    assert [c for (c,) in rows(engine, f"select column_name from duckdb_columns() where schema_name = '{MARTS}' "
                                       "and table_name = 'mart_a' order by column_index")] == [
        "k", "share", "added"]


def test_view_and_comments_survive_refreshes(engine: Engine) -> None:
    build(engine, "mart_v", "select i as k, i * 10 as v, 'x' as spare from range(3) t(i)")
    publish(engine, "mart_v")
    nasty = "it's v'; drop table esn_marts.mart_v; -- \\ \"q\" 5% %s %(v)s :v $1 ?"
    with engine.begin() as conn:
        conn.exec_driver_sql("create schema analyst")
        conn.exec_driver_sql(f"create view analyst.big as select k, v from {MARTS}.mart_v where v >= 10")
        assert publication.apply_descriptions(conn, MARTS, "mart_v", "Daily v's", {"v": nasty, "nope": "x"}) == 2
        assert publication.apply_descriptions(conn, MARTS, "mart_v", "Daily v's", {"v": nasty}) == 0
    for n in (5, 8):  # the second refresh drops `spare` and adds `added`
        build(engine, "mart_v", f"select i as k, i * 10 as v{', i as added' if n == 8 else ', 1 as spare'} "
                                f"from range({n}) t(i)")
        publish(engine, "mart_v")
    assert rows(engine, "select count(*) from analyst.big") == [(7,)]
    assert rows(engine, f"select comment from duckdb_tables() where schema_name = '{MARTS}' "
                        "and table_name = 'mart_v'") == [("Daily v's",)]
    assert rows(engine, f"select column_name, comment from duckdb_columns() where schema_name = '{MARTS}' "
                        "and table_name = 'mart_v' order by column_index") == [
        ("k", None), ("v", nasty), ("added", None)]
    assert rows(engine, f"select count(*) from {MARTS}.mart_v") == [(8,)]


def test_dropping_a_column_a_view_uses_fails_and_changes_nothing(engine: Engine) -> None:
    build(engine, "mart_w", "select i as k, i * 10 as v from range(3) t(i)")
    build(engine, "mart_w2", "select 1 as k")
    publish(engine, "mart_w2", "mart_w")
    with engine.begin() as conn:
        conn.exec_driver_sql("create schema analyst")
        conn.exec_driver_sql(f"create view analyst.uses_v as select k, v from {MARTS}.mart_w")
    build(engine, "mart_w", "select i as k from range(9) t(i)")
    build(engine, "mart_w2", "select 2 as k")
    with pytest.raises(publication.PublicationError, match="column v is used by view analyst.uses_v"):
        publish(engine, "mart_w2", "mart_w")
    assert rows(engine, "select k, v from analyst.uses_v order by k") == [(0, 0), (1, 10), (2, 20)]
    assert rows(engine, f"select * from {MARTS}.mart_w2") == [(1,)]


def test_replace_rows_and_grants_on_duckdb(engine: Engine) -> None:
    with engine.begin() as conn:
        assert publication.replace_rows(conn, S, "mart_py", pd.DataFrame({"k": [1, 2], "x": [0.5, 1.5]})) == 2
        assert publication.replace_rows(conn, S, "mart_py", pd.DataFrame({"k": [3], "x": [2.5]})) == 1
        assert publication.apply_grants(conn, S, ["bi_reader"]) == []  # no roles in DuckDB
    assert rows(engine, f"select k, x from {MARTS}.mart_py") == [(3, 2.5)]


def test_a_reader_sees_old_rows_until_the_commit(engine: Engine) -> None:
    build(engine, "mart_r", "select i as k, 1 as gen from range(100) t(i)")
    publish(engine, "mart_r")
    build(engine, "mart_r", "select i as k, 2 as gen from range(150) t(i)")
    with engine.connect() as reader, engine.connect() as writer:
        tx = writer.begin()
        publication.refresh_in_place(writer, S, "mart_r")
        assert reader.exec_driver_sql(f"select count(*), max(gen) from {MARTS}.mart_r").fetchall() == [(100, 1)]
        tx.commit()
        reader.rollback()
        assert reader.exec_driver_sql(f"select count(*), max(gen) from {MARTS}.mart_r").fetchall() == [(150, 2)]


def test_a_broken_view_of_another_table_does_not_stop_the_refresh(engine: Engine) -> None:
    build(engine, "mart_b", "select 1 as k, 2 as v, 3 as w")
    publish(engine, "mart_b")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table {S.internal}.scratch (x int)")
        conn.exec_driver_sql(f"create view {S.internal}.stale as select x from {S.internal}.scratch")
        conn.exec_driver_sql(f"drop table {S.internal}.scratch")  # the view no longer binds
    build(engine, "mart_b", "select 5 as k, 6 as v")
    assert publish(engine, "mart_b") == [1]  # w dropped: the stale view is parsed, never bound (a binder error aborts a DuckDB transaction)
    assert rows(engine, f"select * from {MARTS}.mart_b") == [(5, 6)]


def test_a_star_view_blocks_any_drop_and_a_retype_of_a_used_column_is_refused(engine: Engine) -> None:
    build(engine, "mart_s", "select 1 as k, 2 as v, 3 as w")
    publish(engine, "mart_s")
    with engine.begin() as conn:
        conn.exec_driver_sql(f'create view {S.internal}."All of S" as select * from {MARTS}.mart_s')
        conn.exec_driver_sql(f"create view {S.internal}.uses_v as (select v + 1 as v1 from mart_s);")
    build(engine, "mart_s", "select 1 as k, 2 as v")
    with pytest.raises(publication.PublicationError, match=f"column w is used by view {S.internal}.All of S"):
        publish(engine, "mart_s")
    with engine.begin() as conn:
        conn.exec_driver_sql(f'drop view {S.internal}."All of S"')
    build(engine, "mart_s", "select 1 as k, 'two' as v, 3 as w")
    with pytest.raises(publication.PublicationError, match=f"column v is used by view {S.internal}.uses_v"):
        publish(engine, "mart_s")
    build(engine, "mart_s", "select 7 as k, 2 as v")  # w used by no view any more
    assert publish(engine, "mart_s") == [1]
    assert rows(engine, f"select v1 from {S.internal}.uses_v") == [(3,)]
