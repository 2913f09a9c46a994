"""The publication's primitives on a real PostgreSQL: in-place refresh, grants, comments, a BI client."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipelines import publication
from pipelines.config import load_settings
from pipelines.warehouse import DEFAULT_SCHEMAS as S

MARTS, BUILD = S.marts, S.build


def build(engine: Engine, name: str, select: str) -> None:
    """What dbt leaves in the build schema: the model's table, committed."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"drop table if exists {BUILD}.{name}")
        conn.exec_driver_sql(f"create table {BUILD}.{name} as {select}")


def publish(engine: Engine, *names: str) -> list[int]:
    with engine.begin() as conn:
        return [publication.refresh_in_place(conn, S, n) for n in names]


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def oid(engine: Engine, qualified: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("select cast(:q as regclass)::oid"), {"q": qualified}).scalar_one()


def bi_connect(pg_db: str, role: str) -> psycopg.Connection:
    """A BI tool's connection (Superset, Metabase: psycopg / the PostgreSQL wire protocol) as the role."""
    dbname = pg_db.rsplit("/", 1)[1]
    return psycopg.connect(host="127.0.0.1", port=5432, dbname=dbname, user=role, autocommit=True)


def test_refresh_creates_then_replaces_rows_in_place(pg_engine: Engine) -> None:
    build(pg_engine, "mart_a", "select g as k, 'v' || g as label, g::numeric(12, 3) / 7 as share, "
                               "now()::timestamptz as at, array[g, g] as pair from generate_series(1, 10) g")
    assert publish(pg_engine, "mart_a") == [10]
    first = oid(pg_engine, f"{MARTS}.mart_a")
    types = rows(pg_engine, "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
                            f"'{MARTS}.mart_a'::regclass and attnum > 0 order by attnum")
    assert [t for (t,) in types] == ["integer", "text", "numeric", "timestamp with time zone", "integer[]"]
    build(pg_engine, "mart_a", "select g as k, 'w' || g as label, g::numeric(12, 3) as share, "
                               "now()::timestamptz as at, array[g] as pair from generate_series(1, 4) g")
    assert publish(pg_engine, "mart_a") == [4]
    assert oid(pg_engine, f"{MARTS}.mart_a") == first  # never dropped nor renamed
    assert rows(pg_engine, f"select k, label from {MARTS}.mart_a order by k") == [(i, f"w{i}") for i in range(1, 5)]


def test_columns_follow_the_build_by_name(pg_engine: Engine) -> None:
    build(pg_engine, "mart_cols", "select 1 as a, 2 as b, 3 as c")
    publish(pg_engine, "mart_cols")
    # b dropped, d added, c's type changes to text, columns in another order
    build(pg_engine, "mart_cols", "select 'x'::text as c, 4 as d, 10 as a")
    publish(pg_engine, "mart_cols")
    assert rows(pg_engine, f"select a, c, d from {MARTS}.mart_cols") == [(10, "x", 4)]
    names = rows(pg_engine, "select column_name, data_type from information_schema.columns where "
                            f"table_schema = '{MARTS}' and table_name = 'mart_cols' order by ordinal_position")
    assert names == [("a", "integer"), ("c", "text"), ("d", "integer")]


def test_grant_to_a_bi_role_survives_refreshes(pg_engine: Engine, pg_db: str, make_role) -> None:
    by_hand, configured = make_role(), make_role()
    build(pg_engine, "mart_g", "select g as k from generate_series(1, 3) g")
    publish(pg_engine, "mart_g")
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f"grant usage on schema {MARTS} to {by_hand}")
        conn.exec_driver_sql(f"grant select on {MARTS}.mart_g to {by_hand}")
    settings = load_settings(None, warehouse={"bi_roles": [configured]})
    for n in range(3):  # the second refresh adds a column, the third drops it (ALTER keeps the grants)
        extra = ", g * 2 as extra" if n == 1 else ""
        build(pg_engine, "mart_g", f"select g as k{extra} from generate_series(1, {5 + n}) g")
        with pg_engine.begin() as conn:
            publication.refresh_in_place(conn, S, "mart_g")
            publication.apply_grants(conn, settings.schemas(), settings.warehouse.bi_roles)
    assert rows(pg_engine, f"select count(*) from {MARTS}.mart_g") == [(7,)]
    for role in (by_hand, configured):
        assert rows(pg_engine, f"select has_table_privilege('{role}', '{MARTS}.mart_g', 'SELECT')") == [(True,)]
        with bi_connect(pg_db, role) as bi:
            assert bi.execute(f"select count(*) from {MARTS}.mart_g").fetchone() == (7,)
    with pg_engine.begin() as conn:  # granted already: nothing to do
        assert publication.apply_grants(conn, S, [configured]) == []


def test_view_of_an_analyst_survives_and_sees_the_new_rows(pg_engine: Engine) -> None:
    build(pg_engine, "mart_v", "select g as k, g * 10 as v, 'x' as spare from generate_series(1, 3) g")
    publish(pg_engine, "mart_v")
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("create schema if not exists analyst")
        conn.exec_driver_sql(f"create view analyst.big as select k, v from {MARTS}.mart_v where v >= 20")
    build(pg_engine, "mart_v", "select g as k, g * 10 as v, g as added from generate_series(1, 6) g")
    publish(pg_engine, "mart_v")  # drops `spare` (the view does not use it), adds `added`
    assert rows(pg_engine, "select k from analyst.big order by k") == [(k,) for k in range(2, 7)]


def test_dropping_a_column_a_view_uses_fails_and_changes_nothing(pg_engine: Engine) -> None:
    build(pg_engine, "mart_w", "select g as k, g * 10 as v from generate_series(1, 3) g")
    build(pg_engine, "mart_w2", "select 1 as k")
    publish(pg_engine, "mart_w2", "mart_w")
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("create schema if not exists analyst")
        conn.exec_driver_sql(f"create view analyst.uses_v as select k, v from {MARTS}.mart_w")
    build(pg_engine, "mart_w", "select g as k, g as extra from generate_series(1, 9) g")
    build(pg_engine, "mart_w2", "select 2 as k")
    with pytest.raises(publication.PublicationError) as err:
        publish(pg_engine, "mart_w2", "mart_w")
    assert "column v is used by view analyst.uses_v" in str(err.value)
    assert "mart_w" in str(err.value)
    # rolled back, both tables as before: mart_w2 too, refreshed before the failure in the same transaction
    assert rows(pg_engine, "select k, v from analyst.uses_v order by k") == [(1, 10), (2, 20), (3, 30)]
    assert rows(pg_engine, f"select * from {MARTS}.mart_w2") == [(1,)]
    cols = rows(pg_engine, f"select column_name from information_schema.columns where table_schema = '{MARTS}' "
                           "and table_name = 'mart_w' order by ordinal_position")
    assert cols == [("k",), ("v",)]
    # a type change of a used column is refused the same way
    build(pg_engine, "mart_w", "select g as k, g::text as v from generate_series(1, 9) g")
    with pytest.raises(publication.PublicationError, match="column v is used by view analyst.uses_v"):
        publish(pg_engine, "mart_w")


def test_comments_are_written_once_and_survive_refreshes(pg_engine: Engine) -> None:
    build(pg_engine, "mart_c", "select 1 as k, 2 as v")
    publish(pg_engine, "mart_c")
    nasty = "it's the v; drop table esn_marts.mart_c; -- \\' \\\\ \"q\" 5% %s %(v)s :v $1"
    with pg_engine.begin() as conn:
        written = publication.apply_descriptions(conn, MARTS, "mart_c", "Daily k's",
                                                 {"k": "the key", "v": nasty, "gone": "no such column"})
        assert written == 3
        assert publication.apply_descriptions(conn, MARTS, "mart_c", "Daily k's",
                                              {"k": "the key", "v": nasty}) == 0
        assert publication.apply_descriptions(conn, MARTS, "mart_c", None, {"k": "the new key"}) == 1
    with pytest.raises(ValueError), pg_engine.begin() as conn:
        publication.apply_descriptions(conn, MARTS, "mart_c", None, {'k" is null; --': "x"})
    for n in range(2):
        build(pg_engine, "mart_c", f"select {n} as k, 3 as v, 4 as w")
        publish(pg_engine, "mart_c")
    got = rows(pg_engine, f"select obj_description('{MARTS}.mart_c'::regclass, 'pg_class'), "
                          f"col_description('{MARTS}.mart_c'::regclass, 1), "
                          f"col_description('{MARTS}.mart_c'::regclass, 2)")
    assert got == [("Daily k's", "the new key", nasty)]


def test_a_real_bi_client_sees_the_marts_and_nothing_else(pg_engine: Engine, pg_db: str, make_role) -> None:
    role = make_role()
    build(pg_engine, "mart_bi", "select 1 as k, 'a' as segment")
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f"create table {S.internal}.int_people (person_key text)")
        conn.exec_driver_sql(f"create table {S.staging}.lake_people (person_key text)")
        conn.exec_driver_sql(f"create view {S.staging}.stg_people as select * from {S.staging}.lake_people")
        # privileges a careless administrator left: all revoked by apply_grants
        conn.exec_driver_sql(f"grant usage on schema {S.internal} to {role}")
        conn.exec_driver_sql(f"grant select on {S.internal}.int_people to {role}")
        conn.exec_driver_sql(f"grant usage, create on schema {S.staging} to public")
        conn.exec_driver_sql(f"grant create on schema {MARTS} to {role}")
        publication.refresh_in_place(conn, S, "mart_bi")
        publication.apply_descriptions(conn, MARTS, "mart_bi", "Per segment", {"k": "the key"})
        done = publication.apply_grants(conn, S, [role])
    assert any(f"revoke USAGE on schema {S.internal} from {role}" == d for d in done)
    assert any(f"revoke CREATE on schema {S.staging} from public" == d for d in done)
    with pg_engine.begin() as conn:
        assert publication.apply_grants(conn, S, [role]) == []  # idempotent
        # PostgreSQL's default USAGE of PUBLIC on schema public (unused by the warehouse) is revoked too
        assert conn.execute(sa.text("select has_schema_privilege(:r, 'public', 'USAGE')"),
                            {"r": role}).scalar_one() is False
        # a mart created after the grants: default privileges give it to the role
        build(pg_engine, "mart_later", "select 2 as k")
        publication.refresh_in_place(conn, S, "mart_later")

    with bi_connect(pg_db, role) as bi:
        tables = bi.execute(
            "select t.table_schema, t.table_name, obj_description(format('%I.%I', t.table_schema, t.table_name)"
            "::regclass, 'pg_class') from information_schema.tables t "
            "where t.table_schema not in ('pg_catalog', 'information_schema') order by 1, 2").fetchall()
        assert {schema for schema, _, _ in tables} == {MARTS}  # the other schemas' tables are not even listed
        described = {name: desc for _, name, desc in tables}
        assert described["mart_bi"] == "Per segment" and described["mart_later"] is None
        cols = bi.execute(
            "select c.column_name, c.data_type, col_description((quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))"
            "::regclass, c.ordinal_position) from information_schema.columns c "
            "where c.table_schema = %s and c.table_name = 'mart_bi' order by c.ordinal_position", [MARTS]).fetchall()
        assert cols == [("k", "integer", "the key"), ("segment", "text", None)]
        assert bi.execute(f"select k, segment from {MARTS}.mart_bi").fetchall() == [(1, "a")]
        assert bi.execute(f"select k from {MARTS}.mart_later").fetchall() == [(2,)]
        for forbidden in (f"select * from {S.internal}.int_people", f"select * from {S.staging}.lake_people",
                          f"select * from {S.staging}.stg_people", f"select * from {BUILD}.mart_bi",
                          f"create table {MARTS}.mine (x int)", "create table public.mine (x int)",
                          f"delete from {MARTS}.mart_bi"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                bi.execute(forbidden)


def test_a_missing_or_superuser_bi_role_is_refused(pg_engine: Engine, pg_server: str) -> None:
    with pytest.raises(publication.PublicationError,
                       match=r"BI role esn_h_c_nobody does not exist: create it \(CREATE ROLE esn_h_c_nobody "
                             r"LOGIN\) or remove it from warehouse.bi_roles"), pg_engine.begin() as conn:
        publication.apply_grants(conn, S, ["esn_h_c_nobody"])
    with pytest.raises(publication.PublicationError, match="superuser"), pg_engine.begin() as conn:
        publication.apply_grants(conn, S, ["postgres"])
    with pytest.raises(ValueError), pg_engine.begin() as conn:
        publication.apply_grants(conn, S, ["x; drop schema esn_marts"])


def test_membership_giving_an_internal_schema_is_reported(pg_engine: Engine, make_role) -> None:
    role, group = make_role(), make_role()
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f"grant usage on schema {S.internal} to {group}")
        conn.exec_driver_sql(f"grant {group} to {role}")
    expected = f"{role} still has USAGE on schema {S.internal}"
    with pytest.raises(publication.PublicationError, match=expected), pg_engine.begin() as conn:
        publication.apply_grants(conn, S, [role])


def test_a_reader_sees_all_old_rows_or_all_new(pg_engine: Engine, pg_db: str) -> None:
    for name in ("mart_r1", "mart_r2"):
        build(pg_engine, name, "select g as k, 1 as gen from generate_series(1, 1000) g")
    publish(pg_engine, "mart_r1", "mart_r2")
    for name in ("mart_r1", "mart_r2"):
        build(pg_engine, name, "select g as k, 2 as gen from generate_series(1, 1500) g")
    both = (f"select (select count(*) from {MARTS}.mart_r1), (select min(gen) || '-' || max(gen) from "
            f"{MARTS}.mart_r1), (select count(*) from {MARTS}.mart_r2), (select min(gen) || '-' || max(gen) "
            f"from {MARTS}.mart_r2)")
    dbname = pg_db.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", dbname=dbname, user="postgres", autocommit=True) as reader:
        reader.execute("set lock_timeout = '3s'")  # a reader that had to wait would fail here
        with pg_engine.connect() as writer:
            tx = writer.begin()
            assert publication.refresh_in_place(writer, S, "mart_r1") == 1500
            assert reader.execute(both).fetchone() == (1000, "1-1", 1000, "1-1")
            assert publication.refresh_in_place(writer, S, "mart_r2") == 1500
            assert reader.execute(both).fetchone() == (1000, "1-1", 1000, "1-1")
            # one statement after the other, as a dashboard does: old, old
            assert reader.execute(f"select count(*), max(gen) from {MARTS}.mart_r1").fetchone() == (1000, 1)
            assert reader.execute(f"select count(*), max(gen) from {MARTS}.mart_r2").fetchone() == (1000, 1)
            tx.commit()
        assert reader.execute(both).fetchone() == (1500, "2-2", 1500, "2-2")


def test_a_refresh_changing_columns_makes_readers_wait(pg_engine: Engine, pg_db: str) -> None:
    """Documented cost: ALTER TABLE locks the table until the commit (only when the columns change)."""
    build(pg_engine, "mart_lock", "select 1 as k")
    publish(pg_engine, "mart_lock")
    build(pg_engine, "mart_lock", "select 1 as k, 2 as added")
    dbname = pg_db.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", dbname=dbname, user="postgres", autocommit=True) as reader:
        reader.execute("set lock_timeout = '300ms'")
        with pg_engine.begin() as writer:
            publication.refresh_in_place(writer, S, "mart_lock")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                reader.execute(f"select * from {MARTS}.mart_lock")
        assert reader.execute(f"select * from {MARTS}.mart_lock").fetchall() == [(1, 2)]


def test_replace_rows_publishes_a_frame_in_place(pg_engine: Engine) -> None:
    import pandas as pd

    with pg_engine.begin() as conn:
        assert publication.replace_rows(conn, S, "mart_py", pd.DataFrame({"k": [1, 2], "x": [0.5, 1.5]})) == 2
    first = oid(pg_engine, f"{MARTS}.mart_py")
    with pg_engine.begin() as conn:
        assert publication.replace_rows(conn, S, "mart_py", pd.DataFrame({"k": [3], "x": [2.5]})) == 1
    assert oid(pg_engine, f"{MARTS}.mart_py") == first
    assert rows(pg_engine, f"select k, x from {MARTS}.mart_py") == [(3, 2.5)]


def test_a_missing_build_table_is_a_clear_error(pg_engine: Engine) -> None:
    expected = f"{BUILD}.mart_none does not exist"
    with pytest.raises(publication.PublicationError, match=expected), pg_engine.begin() as conn:
        publication.refresh_in_place(conn, S, "mart_none")
