"""A BI client on the published PostgreSQL warehouse (issue 13's acceptance, on the real demo).

The demo job publishes (dbt build, the marts refreshed in place, comments, grants to `warehouse.bi_roles`),
the network stage adds its marts; the publisher then creates an analyst's view over a mart in a schema of
its own and grants the BI role that schema by hand; a second run publishes the next day. Then psycopg,
the driver Superset and Metabase use, connects AS THE BI ROLE and does what those tools do: lists the
tables of esn_marts with their descriptions (information_schema + pg_catalog.obj_description /
col_description), reads every mart and the analyst's view, and finds the person-level tables closed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from pipelines import dbt_project, jobs, warehouse
from pipelines.config import Settings, WarehouseConfig
from pipelines.network_stage import run_network_range
from tests.bi.conftest import EMPTY_ON_THE_DEMO, FIRST, LAST_DAY, expected_marts
from tests.conftest import demo_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ANALYST_VIEW = "analyst.daily_active"


@dataclass
class Published:
    settings: Settings
    url: str  # the publisher's SQLAlchemy URL
    dbname: str
    role: str
    publisher_counts: dict[str, int]  # rows per esn_marts table, read by the publisher
    build_tables: list[str]
    seconds: dict[str, float]

    def bi(self) -> psycopg.Connection:
        """A connection as the BI role, as a BI tool makes it (psycopg, the role's own login)."""
        return psycopg.connect(host="127.0.0.1", port=5432, dbname=self.dbname, user=self.role, autocommit=True)


@pytest.fixture(scope="module")
def published(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    dbname = f"esn_h_c2_{uuid.uuid4().hex[:10]}"
    role = f"esn_h_c2_bi_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{dbname}"')
        conn.exec_driver_sql(f"create role {role} login")
    url = pg_server.rsplit("/", 1)[0] + f"/{dbname}"
    engine = warehouse.make_engine(url)
    try:
        tmp: Path = tmp_path_factory.mktemp("bi_pg")
        settings = demo_settings(tmp, url).model_copy(update={"warehouse": WarehouseConfig(bi_roles=[role])})
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        jobs.run(settings, FIRST, engine=engine)
        seconds["first_run"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_network_range(settings, FIRST.start, FIRST.end, engine=engine)
        seconds["network"] = time.perf_counter() - t0
        with engine.begin() as conn:  # an analyst's view over a mart, and the grant the DBA adds by hand
            conn.exec_driver_sql("create schema analyst")
            conn.exec_driver_sql(
                f"create view {ANALYST_VIEW} as select activity_date, segment_type, segment_value, dau "
                "from esn_marts.mart_engagement_daily where segment_type = 'org'")
            conn.exec_driver_sql(f"grant usage on schema analyst to {role}")
            conn.exec_driver_sql(f"grant select on {ANALYST_VIEW} to {role}")
        t0 = time.perf_counter()
        jobs.run(settings, jobs.Interval(LAST_DAY, LAST_DAY), engine=engine)  # the next day's publish
        seconds["second_run"] = time.perf_counter() - t0
        with engine.connect() as conn:
            counts = {t: int(conn.exec_driver_sql(f"select count(*) from esn_marts.{t}").scalar_one())
                      for t in _tables(conn, "esn_marts")}
            build = _tables(conn, "esn_build")
        yield Published(settings, url, dbname, role, counts, build, seconds)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{dbname}" with (force)')
            conn.exec_driver_sql(f"drop role if exists {role}")
        admin.dispose()


def _tables(conn: sa.Connection, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(sa.text(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = :s and c.relkind in ('r', 'p', 'v', 'm') order by 1"), {"s": schema})]


def test_esn_marts_holds_every_mart_and_nothing_else(published: Published) -> None:
    assert set(published.publisher_counts) == expected_marts()
    assert not [t for t in published.publisher_counts if t.startswith(("int_", "fct_", "lake_", "stg_", "dq_"))]
    # dbt built every dbt mart in esn_build, which the publication copied from (and the BI role must not see)
    assert {m.name for m in dbt_project.discover_models() if m.layer == "marts"} <= set(published.build_tables)


def _listing(published: Published) -> tuple[dict[str, str | None], list[tuple[str, str, str | None]]]:
    """What a BI tool lists as the BI role: the tables of esn_marts and their columns, with descriptions."""
    with published.bi() as bi:
        assert bi.execute("select current_user").fetchone() == (published.role,)
        # Superset's and Metabase's table list: information_schema.tables, descriptions from pg_catalog
        tables = dict(bi.execute(
            "select t.table_name, obj_description(format('%I.%I', t.table_schema, t.table_name)::regclass, "
            "'pg_class') from information_schema.tables t where t.table_schema = 'esn_marts'").fetchall())
        columns = bi.execute(
            "select c.table_name, c.column_name, col_description(format('%I.%I', c.table_schema, "
            "c.table_name)::regclass, c.ordinal_position::int) from information_schema.columns c "
            "where c.table_schema = 'esn_marts' order by 1, c.ordinal_position").fetchall()
    return tables, columns


def test_bi_role_lists_every_mart_with_its_description(published: Published) -> None:
    tables, columns = _listing(published)
    assert set(tables) == expected_marts()
    assert {t for t, _, _ in columns} == set(tables)
    undescribed = sorted(t for t, d in tables.items() if not (d or "").strip())
    assert not undescribed, f"marts without a description: {undescribed}"


def test_bi_role_lists_every_column_with_its_description(published: Published) -> None:
    tables, columns = _listing(published)
    assert {t for t, _, _ in columns} == set(tables) == expected_marts()
    undescribed = [f"{t}.{c}" for t, c, d in columns if not (d or "").strip()]
    assert not undescribed, f"columns without a description: {undescribed}"


def test_superset_s_inspector_lists_the_marts_with_their_comments(published: Published) -> None:
    """Superset reads a database's tables through SQLAlchemy's inspector (psycopg dialect): the same
    descriptions reach it, as the BI role."""
    url = sa.make_url(published.url).set(username=published.role)
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        assert "esn_marts" in inspector.get_schema_names()
        tables = set(inspector.get_table_names(schema="esn_marts"))
        comments = {t: inspector.get_table_comment(t, schema="esn_marts")["text"] for t in tables}
        columns = {t: inspector.get_columns(t, schema="esn_marts") for t in tables}
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select current_user").scalar_one() == published.role
    finally:
        engine.dispose()
    assert tables == expected_marts()
    assert all(columns[t] for t in tables)
    assert not [f"{t}.{c['name']}" for t in tables for c in columns[t] if not (c.get("comment") or "").strip()]
    assert not sorted(t for t, text in comments.items() if not (text or "").strip()), "tables without a comment"


def test_bi_role_reads_every_mart(published: Published) -> None:
    with published.bi() as bi:
        counts = {t: bi.execute(f"select count(*) from esn_marts.{t}").fetchone()[0]
                  for t in published.publisher_counts}
        sample = {t: bi.execute(f"select * from esn_marts.{t} limit 5").fetchall() for t in counts}
    assert counts == published.publisher_counts
    empty = {t for t, n in counts.items() if n == 0}
    assert empty <= EMPTY_ON_THE_DEMO, f"marts the demo should fill are empty: {empty - EMPTY_ON_THE_DEMO}"
    assert all(len(sample[t]) == min(5, counts[t]) for t in counts)


def test_analysts_view_survives_the_publish_and_shows_the_new_day(published: Published) -> None:
    with published.bi() as bi:
        rows = bi.execute(f"select activity_date, dau from {ANALYST_VIEW} order by activity_date").fetchall()
        mart_days = bi.execute("select count(distinct activity_date) from esn_marts.mart_engagement_daily "
                               "where segment_type = 'org'").fetchone()[0]
    days = [d for d, _ in rows]
    assert days[0] == FIRST.start and days[-1] == LAST_DAY, "the view sees the day published after it was made"
    assert len(set(days)) == mart_days == (LAST_DAY - FIRST.start).days + 1
    assert all(dau is not None for _, dau in rows) and any(dau > 0 for d, dau in rows if d == LAST_DAY)


@pytest.mark.parametrize("table", ["esn_internal.fct_person_daily_activity", "esn_staging.lake_activities",
                                   "esn_internal.fct_person_network", "esn_staging.lake_people"])
def test_bi_role_cannot_read_person_level_tables(published: Published, table: str) -> None:
    with psycopg.connect(published.url.replace("postgresql+psycopg", "postgresql")) as owner:
        assert owner.execute(f"select count(*) from {table}").fetchone()[0] > 0  # it exists, with rows
    with published.bi() as bi, pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi.execute(f"select * from {table} limit 1")


def test_bi_role_cannot_read_the_build_schema(published: Published) -> None:
    assert published.build_tables
    with published.bi() as bi:
        for table in published.build_tables:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(f"select * from esn_build.{table} limit 1")


def test_information_schema_shows_the_bi_role_only_what_it_may_use(published: Published) -> None:
    with published.bi() as bi:
        schemas = {r[0] for r in bi.execute(
            "select distinct table_schema from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema')").fetchall()}
        closed_columns = bi.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('esn_internal', 'esn_staging', 'esn_build', 'public')").fetchall()
        usable = {r[0] for r in bi.execute(
            "select nspname from pg_namespace where has_schema_privilege(oid, 'USAGE') "
            "and nspname not like 'pg\\_%' and nspname <> 'information_schema'").fetchall()}
    assert schemas == {"esn_marts", "analyst"}
    assert closed_columns == []
    assert usable == {"esn_marts", "analyst"}

