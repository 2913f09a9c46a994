"""The warehouse through SQLAlchemy: DuckDB file by default, PostgreSQL in production.

Its schemas (`Schemas`), engines with their search path (`make_engine`, `engine_for`), the lake tables
the publication loads the canonical lake into (`LAKE_DDL`, `replace_activity_days`, ...), and the
write-audit-publish of the tables Python computes (`publish_frame`: built, audited, then put in place,
never dropped). The SQL models are the dbt project of `sql/` (pipelines.dbt_project reads it,
pipelines.transform runs it); `jobs.publish` orders the whole publication. Values are bound parameters,
never formatted into SQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipelines.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAYERS = ("staging", "intermediate", "marts")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
#: event ids of the synthetic activities aggregate usage reports were turned into before the usage table
LEGACY_AGGREGATE_PREFIX = "agg:"


class AuditError(RuntimeError):
    pass


def _check_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe table or column name: {name!r}")
    return name


# -------------------------------------------------------------------------------------------- schemas
@dataclass(frozen=True)
class Schemas:
    """The warehouse's schemas (names configurable: `Settings.warehouse.schemas`).

    - `marts`: the published, privacy-safe `mart_*` tables, the only schema a BI role is granted;
    - `internal`: person-level and internal tables (`int_*`, `fct_*`, `dq_*`, extraction state);
    - `staging`: the lake tables (`lake_*`) and the staging views (`stg_*`);
    - `build`: where dbt builds and tests the marts before the publication refreshes `marts` from it.

    Connections of `make_engine` search internal, marts, staging (in that order): a table is read by its
    name, and a table created without a schema lands in `internal`, never in the published schema."""

    staging: str = "esn_staging"
    internal: str = "esn_internal"
    marts: str = "esn_marts"
    build: str = "esn_build"

    def __post_init__(self) -> None:
        names = [self.staging, self.internal, self.marts, self.build]
        for n in names:
            _check_ident(n)
        if len(set(names)) != 4:
            raise ValueError(f"the four warehouse schemas must have four different names, got {names}")

    @property
    def all(self) -> tuple[str, str, str, str]:
        return (self.internal, self.marts, self.staging, self.build)

    @property
    def search_path(self) -> tuple[str, str, str]:
        return (self.internal, self.marts, self.staging)

    def of_table(self, name: str) -> str:
        """The schema a table of this name belongs to: lake_ and stg_ to staging, mart_ to marts, the rest
        to internal."""
        if name.startswith(("lake_", "stg_")):
            return self.staging
        if name.startswith("mart_"):
            return self.marts
        return self.internal

    def qualified(self, name: str) -> str:
        return f"{self.of_table(name)}.{_check_ident(name)}"


DEFAULT_SCHEMAS = Schemas()


def schemas_of(conn: Connection | Engine) -> Schemas:
    """The schemas of an engine made by `make_engine` (the defaults for any other)."""
    engine = conn.engine if isinstance(conn, Connection) else conn
    return getattr(engine, "esn_schemas", DEFAULT_SCHEMAS)


def ensure_schemas(conn: Connection) -> None:
    """The four schemas, and the tables of a warehouse of the one-schema layout moved into them."""
    for name in schemas_of(conn).all:
        conn.exec_driver_sql(f"create schema if not exists {name}")
    migrate_legacy_layout(conn)


#: the table names of esn-metrics before the schemas (all in the default schema, main or public)
_LEGACY = re.compile(r"^(lake|stg|int|fct|dq|mart)_[a-z0-9_]+$|^etl_source_state$")


def migrate_legacy_layout(conn: Connection) -> list[str]:
    """Move the tables of a warehouse written before the schemas (every table in `main` on DuckDB,
    `public` on PostgreSQL) into their schemas (`Schemas.of_table`), so that an upgrade keeps the lake
    tables' history, the extraction state and the incremental tables. A published mart is also copied
    into the build schema: the marts that read a mart's history (mart_alerts) read it there. Leftover
    `__build` tables and the views dbt recreates are dropped. Nothing happens (one catalogue query) when
    the default schema holds none of them; a table already in its new schema is left where it is.
    Inside the caller's transaction; returns the tables moved."""
    legacy = "public" if dialect(conn) == "postgresql" else "main"
    schemas = schemas_of(conn)
    if legacy in schemas.all:
        return []
    rows = conn.execute(sa.text("select table_name, table_type from information_schema.tables "
                                "where table_schema = :s order by table_name"), {"s": legacy}).fetchall()
    found = [(str(n), str(t)) for n, t in rows if _LEGACY.match(str(n)) or str(n).endswith("__build")]
    if not found:
        return []
    moved = []
    for name, kind in found:
        if kind.upper() == "VIEW":  # the staging views: dbt creates them in their schema
            conn.exec_driver_sql(f"drop view if exists {legacy}.{name} cascade" if dialect(conn) == "postgresql"
                                 else f"drop view if exists {legacy}.{name}")
    for name, kind in found:
        if kind.upper() == "VIEW":
            continue
        if name.endswith("__build") or not _LEGACY.match(name):
            conn.exec_driver_sql(f"drop table if exists {legacy}.{_check_ident(name)}")
            continue
        target = schemas.of_table(name)
        if relation_exists(conn, f"{target}.{name}"):
            log.warning("%s.%s is left where it is: %s.%s exists already", legacy, name, target, name)
            continue
        if name.startswith("mart_") and not relation_exists(conn, f"{schemas.build}.{name}"):
            conn.exec_driver_sql(f"create table {schemas.build}.{name} as select * from {legacy}.{name}")
        if dialect(conn) == "postgresql":  # keeps the table, its grants and the views over it
            conn.exec_driver_sql(f"alter table {legacy}.{name} set schema {target}")
        else:
            conn.exec_driver_sql(f"create table {target}.{name} as select * from {legacy}.{name}")
            conn.exec_driver_sql(f"drop table {legacy}.{name}")
        moved.append(f"{target}.{name}")
    log.warning("warehouse of the one-schema layout: %d table(s) moved out of %s into %s", len(moved), legacy,
                ", ".join(sorted({m.split('.')[0] for m in moved})))
    return moved


# --------------------------------------------------------------------------------------------- engine
def make_engine(url: str, schemas: Schemas | None = None) -> Engine:
    """An engine with the session time zone pinned to UTC (date logic must not depend on the host) and
    the search path of `schemas` (created on a DuckDB file on first connection, as DuckDB refuses a search
    path of missing schemas; PostgreSQL gets them from `ensure_schemas` at the first publish)."""
    schemas = schemas or DEFAULT_SCHEMAS
    if url.startswith("duckdb:///") and not url.startswith("duckdb:///:memory:"):
        Path(url.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)
    path = ",".join(schemas.search_path)
    if url.startswith("postgresql"):
        engine = sa.create_engine(url, connect_args={"options": f"-c timezone=UTC -c search_path={path},public"},
                                  pool_pre_ping=True)

        @sa.event.listens_for(engine, "connect")
        def _schemas(dbapi_conn, _record):  # pragma: no cover - trivial
            # the schemas exist before anything is created without one (it would land in public); a role
            # without the right to create them (a reader) reads what the publisher created
            try:
                with dbapi_conn.cursor() as cur:
                    for name in schemas.all:
                        cur.execute(f"create schema if not exists {name}")
                dbapi_conn.commit()
            except Exception:  # noqa: BLE001 - insufficient privilege, or a concurrent creation
                dbapi_conn.rollback()
    elif url.startswith("duckdb:///") and not url.startswith("duckdb:///:memory:"):
        # a DuckDB file is locked by the process holding it: NullPool closes it with every released
        # connection, and each new one waits for another process's lock (pipelines.duckdb_access)
        from pipelines import duckdb_access

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        duckdb_access.install(engine, url.removeprefix("duckdb:///"))
    else:
        engine = sa.create_engine(url)

    if not url.startswith("postgresql"):

        @sa.event.listens_for(engine, "connect")
        def _utc(dbapi_conn, _record):  # pragma: no cover - trivial
            if engine.dialect.name == "duckdb":
                dbapi_conn.execute("SET TimeZone = 'UTC'")
                # bounded memory (spills to disk beyond it) and no ordering guarantee we do not need
                dbapi_conn.execute(f"SET memory_limit = '{_duckdb_memory_limit()}'")
                spill = _duckdb_temp_directory()
                if spill is not None:
                    dbapi_conn.execute("SET temp_directory = '" + spill.replace("'", "''") + "'")
                dbapi_conn.execute("SET preserve_insertion_order = false")
                for name in schemas.all:
                    dbapi_conn.execute(f"create schema if not exists {name}")
                dbapi_conn.execute(f"SET search_path = '{path}'")

    engine.esn_schemas = schemas  # type: ignore[attr-defined]
    return engine


def engine_for(settings: Any) -> Engine:
    """The engine of the configured warehouse (`warehouse_url_of`) with the configured schemas."""
    return make_engine(warehouse_url_of(settings), settings.schemas())


def warehouse_url_of(settings: Any) -> str:
    """The warehouse's SQLAlchemy URL: from the Airflow connection `settings.warehouse.conn_id` when it is
    set (it wins over `warehouse_url`, so the password stays out of the YAML), else `warehouse_url`.
    The URL holds the password: print it through `pipelines.config.redact_url`."""
    conn_id = settings.warehouse.conn_id
    if not conn_id:
        return str(settings.warehouse_url)
    from pipelines import secrets

    return url_from_connection(secrets.get_connection(conn_id, purpose="warehouse.conn_id"))


#: libpq parameters an Airflow postgres connection's extra may carry into the URL; the provider's own
#: extras (cursor, iam, aws_conn_id, ...) mean nothing to SQLAlchemy and are left out
_LIBPQ_EXTRAS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout",
                           "application_name", "target_session_attrs", "keepalives", "keepalives_idle",
                           "gssencmode", "channel_binding"})


def url_from_connection(conn: Any) -> str:
    """The SQLAlchemy URL of an Airflow connection (`pipelines.secrets.ConnectionFields`): conn_type
    postgres (or postgresql) -> `postgresql+psycopg://login:password@host:port/schema` (extra `driver`
    names another DBAPI; libpq extras such as sslmode become query parameters), duckdb -> `duckdb:///`
    + the file (host, else schema: `duckdb:///data/w.duckdb` as a URI is the relative file
    data/w.duckdb, as for SQLAlchemy)."""
    where = f"the Airflow connection '{conn.conn_id}' ({conn.origin})"
    kind = (conn.conn_type or "").lower()
    if kind in ("postgres", "postgresql"):
        if not conn.host:
            raise ConfigError(f"{where} has no host: a postgres warehouse needs host, port, login, password "
                             "and the database in schema")
        driver = str(conn.extra.get("driver") or "psycopg")
        ignored = sorted(k for k in conn.extra if k not in _LIBPQ_EXTRAS and k != "driver")
        if ignored:
            log.info("%s: extra %s not passed to the database driver", where, ignored)
        query = {k: str(v) for k, v in conn.extra.items() if k in _LIBPQ_EXTRAS}
        url = sa.engine.URL.create(f"postgresql+{driver}", username=conn.login, password=conn.password,
                                   host=conn.host, port=conn.port, database=conn.schema or None, query=query)
        return url.render_as_string(hide_password=False)
    if kind == "duckdb":
        path = conn.host or conn.schema
        if not path:
            raise ConfigError(f"{where} has no file: put the DuckDB file's path in host (or the URI's path)")
        return f"duckdb:///{path}"
    raise ConfigError(f"{where} has conn_type {conn.conn_type!r}: the warehouse must be postgres (or "
                     "postgresql) or duckdb")


#: DuckDB's default share of the machine's memory, and its ceiling: DuckDB's own default (80 %) and this
#: module's former one (half) let one publish at 100k people take 10 GB, so that a machine running it next
#: to Airflow, or a 300k-person organisation, ran out of memory; DuckDB spills what exceeds the budget to
#: its temp_directory (`_duckdb_temp_directory`) instead, at a small cost in time (measured in
#: bench/results/pipeline_*.md)
DUCKDB_MEMORY_SHARE = 0.25
DUCKDB_MEMORY_CAP_GB = 4


def _duckdb_memory_limit() -> str:
    """DuckDB's memory budget: $ESN_DUCKDB_MEMORY_LIMIT (e.g. '8GB'), default a quarter of the machine
    capped at 4 GB (`DUCKDB_MEMORY_SHARE`, `DUCKDB_MEMORY_CAP_GB`), at least 1 GB. The budget bounds
    DuckDB's buffers, not the process: the Python side of a publish (pandas frames of the Python metrics)
    comes on top of it, which is why it is well below the machine's memory."""
    value = os.environ.get("ESN_DUCKDB_MEMORY_LIMIT")
    if value:
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value.strip(), re.I):
            raise ValueError(f"ESN_DUCKDB_MEMORY_LIMIT must look like '8GB', got {value!r}")
        return value.strip()
    import psutil

    mib = int(psutil.virtual_memory().total * DUCKDB_MEMORY_SHARE) // 2**20
    return f"{max(1024, min(mib, DUCKDB_MEMORY_CAP_GB * 1024))}MB"


def _duckdb_temp_directory() -> str | None:
    """Where DuckDB spills what exceeds its memory budget: $ESN_DUCKDB_TEMP_DIRECTORY when set, else None:
    DuckDB's default for a database file, `<file>.tmp` beside it (on the warehouse's own disk, removed
    when the database closes)."""
    value = os.environ.get("ESN_DUCKDB_TEMP_DIRECTORY", "").strip()
    return value or None


def with_engine(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for steps taking `(settings, ..., engine=None)`: without an engine, one is made from
    the configured warehouse (`engine_for`) for the call and disposed after it (a DuckDB file stays locked while any
    engine holds it open, so a step must not leave one behind)."""

    @functools.wraps(fn)
    def wrapper(settings: Any, *args: Any, engine: Engine | None = None, **kwargs: Any) -> T:
        if engine is not None:
            return fn(settings, *args, engine=engine, **kwargs)
        owned = engine_for(settings)
        try:
            return fn(settings, *args, engine=owned, **kwargs)
        finally:
            owned.dispose()

    return wrapper


def dialect(conn: Connection | Engine) -> str:
    return conn.dialect.name


def _check_name(name: str) -> str:
    """A table name, bare or `schema.table`, made of safe identifiers."""
    parts = name.split(".")
    if len(parts) > 2:
        raise ValueError(f"not a safe table name: {name!r}")
    for part in parts:
        _check_ident(part)
    return name


def relation_exists(conn: Connection, qualified: str) -> bool:
    """Whether `schema.table` (a table or a view) exists."""
    schema, _, name = _check_name(qualified).rpartition(".")
    return conn.execute(sa.text("select count(*) from information_schema.tables where table_schema = :s "
                                "and table_name = :n"), {"s": schema, "n": name}).scalar_one() > 0


def table_exists(conn: Connection, name: str) -> bool:
    """Whether a table or view of this name is in one of the searched schemas (`Schemas.search_path`)."""
    return table_schema(conn, name) is not None


def table_schema(conn: Connection, name: str) -> str | None:
    """The searched schema holding a table or view of this name (the first of the search path), or None."""
    path = schemas_of(conn).search_path
    found = {r[0] for r in conn.execute(sa.text(
        "select table_schema from information_schema.tables where table_name = :n and table_schema in :s"
    ).bindparams(sa.bindparam("s", expanding=True)), {"n": name, "s": list(path)})}
    return next((s for s in path if s in found), None)


def base_tables(conn: Connection, schemas: Sequence[str] | None = None) -> list[str]:
    """`schema.table` of every base table of the warehouse's schemas (all four unless given), sorted."""
    names = list(schemas) if schemas is not None else list(schemas_of(conn).all)
    return [f"{s}.{t}" for s, t in conn.execute(sa.text(
        "select table_schema, table_name from information_schema.tables where table_schema in :s "
        "and table_type = 'BASE TABLE' order by table_schema, table_name"
    ).bindparams(sa.bindparam("s", expanding=True)), {"s": names})]


def columns(conn: Connection, table: str) -> list[str]:
    """A table's column names, from a zero-row select: duckdb-engine's column reflection breaks on
    DuckDB 2 with SQLAlchemy 2.1 (it queries pg_catalog tables DuckDB lacks), and this is portable."""
    result = conn.exec_driver_sql(f"select * from {_check_name(table)} where 1 = 0")
    names = [str(c).lower() for c in result.keys()]  # noqa: SIM118 - Result iterates rows, not keys
    result.close()
    return names


# ---------------------------------------------------------------------------------------- lake tables
LAKE_DDL: dict[str, str] = {
    "lake_activities": """
        source varchar not null, event_id varchar not null, occurred_at timestamp with time zone not null,
        activity_date date not null, actor_key varchar not null, verb varchar not null,
        container_id varchar, thread_id varchar, parent_id varchar, target_key varchar,
        content_length integer, is_question boolean not null, is_edited boolean not null,
        is_deleted boolean not null, is_idea boolean not null default false, idea_status varchar,
        topic_ids varchar""",
    # one row per person: the people of every source merged by `pipelines.canonical.merge_people`
    # (in_directory: an HR directory lists them; account_type: member, guest, external, bot; sources:
    # the sources that list them), and the people no snapshot lists any more, with their last listed row
    # and `delisted_on` (`canonical.people_over_time`). The columns after snapshot_date were added later
    # (`LAKE_ADDED`)
    "lake_people": """
        person_key varchar not null, department varchar, location varchar, level varchar,
        manager_key varchar, is_leader boolean not null, hire_date date, termination_date date,
        snapshot_date date not null, in_directory boolean, account_type varchar, is_deactivated boolean,
        sources varchar, delisted_on date""",
    # effective-dated directory attributes: one row per person and range of constant department,
    # location, level and leader flag, from every people snapshot of the lake (`canonical.people_over_time`)
    "lake_people_history": """
        person_key varchar not null, department varchar, location varchar, level varchar,
        is_leader boolean not null, listed boolean not null, valid_from date not null, valid_to date not null""",
    # aggregate usage counts per person, product and day (pipelines.model.USAGE: aggregate-only sources,
    # the Microsoft 365 usage reports), never mixed with the per-event lake_activities
    "lake_usage_daily": """
        source varchar not null, usage_date date not null, person_key varchar not null, product varchar not null,
        channel_messages bigint, posts bigint, replies bigint, chat_messages bigint, urgent_messages bigint,
        meetings bigint, calls bigint, reactions bigint, reads bigint, reads_are_actions boolean not null,
        refresh_date date""",
    "lake_containers": """
        source varchar not null, container_id varchar not null, kind varchar not null,
        visibility varchar not null, member_count integer, owner_department varchar,
        created_at timestamp with time zone""",
}


#: columns added to a lake table after its first release: added to a warehouse created before them
LAKE_ADDED: dict[str, tuple[tuple[str, str], ...]] = {
    "lake_activities": (("is_idea", "boolean default false"), ("idea_status", "varchar"), ("topic_ids", "varchar")),
    "lake_people": (("in_directory", "boolean"), ("account_type", "varchar"), ("is_deactivated", "boolean"),
                    ("sources", "varchar"), ("delisted_on", "date")),
}


def ensure_lake_tables(conn: Connection) -> None:
    """The schemas, and the lake tables in the staging schema."""
    ensure_schemas(conn)
    staging = schemas_of(conn).staging
    for name, cols in LAKE_DDL.items():
        conn.exec_driver_sql(f"create table if not exists {staging}.{name} ({cols})")
    for name, added in LAKE_ADDED.items():
        have = set(conn.exec_driver_sql(f"select * from {staging}.{name} where 1 = 0").keys())
        for col, sql_type in added:
            if col not in have:  # an ALTER only when needed: it locks the table out for readers
                conn.exec_driver_sql(f"alter table {staging}.{name} add column {col} {sql_type}")


def insert_arrow(conn: Connection, table: str, data: pa.Table) -> int:
    """Bulk insert an Arrow table into an existing table (bare or schema.table), inside the caller's
    transaction."""
    _check_name(table)
    if data.num_rows == 0:
        return 0
    cols = ", ".join(_check_ident(c) for c in data.column_names)
    raw: Any = conn.connection.driver_connection
    if dialect(conn) == "duckdb":
        view = f"_arrow_{table.replace('.', '__')}"
        raw.register(view, data)
        try:
            raw.execute(f"insert into {table} ({cols}) select {cols} from {view}")
        finally:
            raw.unregister(view)
    elif dialect(conn) == "postgresql":
        # pyarrow's CSV writer wrote NUL bytes (which COPY refuses) for the multi-chunk lake_people table of a
        # tenant without an HR directory (made from a pandas 3 frame, no hire date at all): written from one
        # chunk per column, and a column of the null type as empty text (NULL), it is exact
        data = data.combine_chunks()
        for i, f in enumerate(data.schema):
            if pa.types.is_null(f.type):
                data = data.set_column(i, f.name, pa.nulls(data.num_rows, pa.string()))
        buf = io.BytesIO()
        pacsv.write_csv(data, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        with raw.cursor() as cur, cur.copy(f"copy {table} ({cols}) from stdin with (format csv)") as copy:
            copy.write(buf.getvalue())
    else:  # any other SQLAlchemy warehouse: portable, slower
        rows = data.to_pylist()
        conn.execute(sa.table(table, *[sa.column(c) for c in data.column_names]).insert(), rows)
    return data.num_rows


def replace_activity_days(conn: Connection, sources: Sequence[str], days: Sequence[dt.date],
                          files: Sequence[Path]) -> int:
    """Idempotent load: the given days of the given sources are deleted, then the canonical partition
    files (`.../date=YYYY-MM-DD/part-0.parquet`) are inserted. DuckDB reads the files itself; other
    engines get them one file at a time, so memory stays at one day's partition."""
    if days:
        conn.execute(sa.text("delete from lake_activities where activity_date between :s and :e "
                             "and source in :src").bindparams(sa.bindparam("src", expanding=True)),
                     {"s": min(days), "e": max(days), "src": list(sources)})
    if not files:
        return 0
    from pipelines.model import ACTIVITIES, conform

    # synthetic activities an aggregate usage report made before the usage table (event ids 'agg:...')
    # are never loaded: a lake still holding them is migrated by its source (usage_reports.migrate_lake)
    if dialect(conn) == "duckdb":
        cols = ", ".join(ACTIVITIES.names)
        raw: Any = conn.connection.driver_connection
        before = raw.execute("select count(*) from lake_activities").fetchone()[0]
        # partitions landed before a column was added to the model lack it: read per group of files
        # with the same columns, the missing ones as the model's default (false for a flag, else null)
        groups: dict[tuple[str, ...], list[str]] = {}
        for f in files:
            missing = tuple(c for c in ACTIVITIES.names if c not in set(pq.read_schema(f).names))
            groups.setdefault(missing, []).append(str(f))
        for missing, group in groups.items():
            select = ", ".join(
                (("false" if pa.types.is_boolean(ACTIVITIES.field(c).type) else "null") + f" as {c}")
                if c in missing else c for c in ACTIVITIES.names)
            raw.execute(
                f"insert into lake_activities ({cols}, activity_date) "
                f"select {select}, "
                f"cast(regexp_extract(filename, 'date=([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})', 1) as date) "
                f"from read_parquet(?, filename = true) where not starts_with(event_id, ?)",
                [group, LEGACY_AGGREGATE_PREFIX])
        return raw.execute("select count(*) from lake_activities").fetchone()[0] - before
    n = 0
    for f in files:
        t = conform(pq.read_table(f), ACTIVITIES)
        t = t.filter(pc.invert(pc.starts_with(t.column("event_id"), LEGACY_AGGREGATE_PREFIX)))
        day = dt.date.fromisoformat(Path(f).parent.name.removeprefix("date="))
        n += insert_arrow(conn, "lake_activities", t.append_column(
            "activity_date", pa.array([day] * t.num_rows, pa.date32())))
    return n


def replace_usage_days(conn: Connection, sources: Sequence[str], days: Sequence[dt.date],
                       files: Sequence[Path]) -> int:
    """Idempotent load of the canonical usage partitions (`.../usage/source=<s>/date=D/part-0.parquet`)
    into lake_usage_daily: the given days of the given sources are deleted, then the files inserted (a
    usage day is one row per person and product: small)."""
    if days:
        conn.execute(sa.text("delete from lake_usage_daily where usage_date between :s and :e "
                             "and source in :src").bindparams(sa.bindparam("src", expanding=True)),
                     {"s": min(days), "e": max(days), "src": list(sources)})
    from pipelines.model import USAGE

    return sum(insert_arrow(conn, "lake_usage_daily", pq.read_table(f).select(USAGE.names)) for f in files)


#: the PostgreSQL advisory lock key of the publication (any constant; "esn-publish" as a number)
PUBLICATION_LOCK_KEY = 0x65736E7075626C


@contextlib.contextmanager
def publication_lock(engine: Engine) -> Iterator[None]:
    """Serialise publications on the warehouse, across machines, for the whole publish (lake load, dbt,
    publication): on PostgreSQL a session-level advisory lock held by a connection of its own (released
    at the end, or when the session dies). A DuckDB file has one writer process at a time anyway, and the
    lake's publish lock (runlock) serialises the processes of one machine."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": PUBLICATION_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": PUBLICATION_LOCK_KEY})
            conn.commit()


def replace_table(conn: Connection, table: str, data: pa.Table) -> int:
    """Replace a table's rows inside the caller's transaction (publications are serialised by
    `lock_publication`, so two publishes never interleave their delete and insert)."""
    conn.exec_driver_sql(f"delete from {_check_name(table)}")
    return insert_arrow(conn, table, data)


# ------------------------------------------------------------------------------------------ SQL models
@dataclass
class Model:
    name: str
    layer: str
    path: Path
    sql: str
    materialized: str  # view | table | incremental
    partition_by: str | None
    key: list[str]
    depends_on: list[str]
    meta: dict[str, str] = field(default_factory=dict)


def audit(conn: Connection, build: str, model_name: str, key: list[str], extra_not_null: list[str]) -> int:
    rows = conn.exec_driver_sql(f"select count(*) from {build}").scalar_one()
    if key:
        cols = ", ".join(_check_ident(c) for c in key)
        dups = conn.exec_driver_sql(
            f"select count(*) from (select {cols} from {build} group by {cols} having count(*) > 1) d").scalar_one()
        if dups:
            sample = conn.exec_driver_sql(
                f"select {cols}, count(*) from {build} group by {cols} having count(*) > 1 limit 3").fetchall()
            raise AuditError(f"audit of {model_name}: {dups} duplicated key(s) ({cols}), e.g. {sample}")
    for col in key + extra_not_null:
        nulls = conn.exec_driver_sql(f"select count(*) from {build} where {_check_ident(col)} is null").scalar_one()
        if nulls:
            raise AuditError(f"audit of {model_name}: {nulls} row(s) with a null {col}")
    return int(rows)


def publish_frame(conn: Connection, name: str, frame: pd.DataFrame, *, key: list[str],
                  partition_by: str | None = None, start: dt.date | None = None,
                  end: dt.date | None = None, not_null: Sequence[str] = ()) -> int:
    """Write-audit-publish for a table computed in Python (graph metrics, bootstrap intervals), in its
    schema (`Schemas.of_table`: a mart_ table in the published marts, any other in internal): the rows are
    written to a build table, audited (key unique, key and `not_null` columns not NULL), then put in place
    (`publication.replace_rows`: the published table is never dropped, so that grants, comments and
    users' views on it survive). Returns the rows written."""
    from pipelines import publication

    _check_ident(name)
    schemas = schemas_of(conn)
    audited: list[int] = []
    publication.replace_rows(conn, schemas, name, frame, partition_by=partition_by, start=start, end=end,
                             target_schema=schemas.of_table(name),
                             check=lambda build: audited.append(audit(conn, build, name, key, list(not_null))))
    return audited[0]


_ARROW_SQL = [
    (pa.types.is_boolean, "boolean"), (pa.types.is_integer, "bigint"), (pa.types.is_floating, "double precision"),
    (pa.types.is_date, "date"), (pa.types.is_timestamp, "timestamp with time zone"),
]


def _duckdb_execute(conn: Connection, sql: str, params: dict[str, Any] | None) -> Any:
    """`sql` (with `:name` parameters) run on the DuckDB driver's own connection, its errors raised as
    SQLAlchemy's (a missing table is the same `ProgrammingError` whichever way a table is read)."""
    import duckdb

    raw: Any = conn.connection.driver_connection
    try:
        return raw.execute(re.sub(r"(?<!:):([a-z_][a-z0-9_]*)", r"$\1", sql), params or {})
    except duckdb.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, duckdb.Error) from exc


def read_frame(conn: Connection | Engine, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return read_frame(c, sql, params)
    if dialect(conn) == "duckdb":
        # the driver's own tuples (the same Python values SQLAlchemy's rows hold, without building a Row
        # per row): a third of the time of the Python metrics' reads at 20k people
        cur = _duckdb_execute(conn, sql, params)
        names = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)
    result = conn.execute(sa.text(sql), params or {})
    # plain tuples: pandas probes each SQLAlchemy Row for named-tuple attributes (a failed key lookup per
    # row and column), which made reading 300k rows take seconds; the values and dtypes are the same
    return pd.DataFrame([tuple(r) for r in result.fetchall()], columns=list(result.keys()))


def read_bulk(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Like `read_frame` for millions of rows: DuckDB fetches columns natively (dates come back as
    numpy datetimes, not `datetime.date`), other engines go through pandas."""
    if dialect(conn) == "duckdb":
        return _duckdb_execute(conn, sql, params).df()
    return pd.read_sql_query(sa.text(sql), conn, params=params or {})


def record_rows(conn: Connection, table: str, records: list[dict[str, Any]], ddl: str) -> None:
    """Append small bookkeeping records (validation results, run log) to a table it creates if needed."""
    conn.exec_driver_sql(f"create table if not exists {_check_ident(table)} ({ddl})")
    if records:
        cols = list(records[0])
        conn.execute(sa.table(table, *[sa.column(c) for c in cols]).insert(), records)
