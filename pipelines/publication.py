"""The publication's primitives: refresh the published marts in place, describe them, grant them.

The published tables of `Schemas.marts` are never dropped or renamed: a publish deletes their rows and
inserts the new ones (`refresh_in_place`, `replace_rows`) inside the caller's transaction, so what users
and administrators attached to them survives every run:

- privileges (a `GRANT SELECT` given to a BI role by hand or by `apply_grants`);
- users' views over a mart (PostgreSQL tracks them: a column one of them uses is never dropped, the
  refresh fails naming the view and the column instead of cascading the view away);
- comments (`apply_descriptions`, from the catalogue), indexes, row-level security.

On PostgreSQL a reader sees, by MVCC, every old row until the commit and every new row after it (a
DELETE + INSERT, never TRUNCATE, which is not MVCC-safe and locks readers out). A reader waits only when
the refresh changes a table's columns (ALTER TABLE takes an exclusive lock until the commit), i.e. when a
model gained or lost columns since the previous publish.

DuckDB has no roles: `apply_grants` does nothing there; the file BI tools open is the published snapshot,
which holds the marts only (pipelines.warehouse / the publish job). All functions take an SQLAlchemy 2
`Connection` and run inside the caller's transaction (they never commit).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipelines import warehouse
from pipelines.warehouse import _ARROW_SQL, Schemas, _check_ident, dialect, insert_arrow

log = logging.getLogger(__name__)


class PublicationError(RuntimeError):
    """A publication step that cannot proceed without losing something a user made (a view) or without
    a privilege setup the configuration asks for (a missing BI role)."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # as the engine spells it (format_type on PostgreSQL, duckdb_columns() on DuckDB)


# ------------------------------------------------------------------------------------------ catalogue
def table_columns(conn: Connection, schema: str, table: str) -> list[Column] | None:
    """The columns of `schema.table` in order with their exact types, or None when there is no such table."""
    _check_ident(schema), _check_ident(table)
    if dialect(conn) == "postgresql":
        rows = conn.execute(sa.text(
            "select a.attname, format_type(a.atttypid, a.atttypmod), c.relkind from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace "
            "left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
            "where n.nspname = :s and c.relname = :t and c.relkind in ('r', 'p', 'v', 'm', 'f') "
            "order by a.attnum"), {"s": schema, "t": table}).fetchall()
        if not rows:
            return None
        return [Column(str(r[0]), str(r[1])) for r in rows if r[0] is not None]
    if dialect(conn) == "duckdb":
        exists = conn.execute(sa.text(
            "select count(*) from duckdb_tables() where schema_name = :s and table_name = :t "
            "and database_name = current_database()"), {"s": schema, "t": table}).scalar_one()
        if not exists:
            return None
        rows = conn.execute(sa.text(
            "select column_name, data_type from duckdb_columns() where schema_name = :s and table_name = :t "
            "and database_name = current_database() order by column_index"), {"s": schema, "t": table}).fetchall()
        return [Column(str(r[0]), str(r[1])) for r in rows]
    rows = conn.execute(sa.text(
        "select column_name, data_type from information_schema.columns where table_schema = :s "
        "and table_name = :t order by ordinal_position"), {"s": schema, "t": table}).fetchall()
    return [Column(str(r[0]), str(r[1])) for r in rows] or None


def _dependents_pg(conn: Connection, schema: str, table: str, cols: Iterable[str]) -> list[tuple[str, str]]:
    """(column, object) pairs: the views, materialized views and other objects that depend on the given
    columns of a PostgreSQL table (pg_depend; a view's dependency is held by its _RETURN rule)."""
    cols = list(cols)
    if not cols:
        return []
    rows = conn.execute(sa.text(
        "select a.attname, "
        "  case when d.classid = 'pg_rewrite'::regclass then "
        "    (select case v.relkind when 'm' then 'materialized view ' else 'view ' end "
        "            || quote_ident(vn.nspname) || '.' || quote_ident(v.relname) "
        "     from pg_rewrite r join pg_class v on v.oid = r.ev_class "
        "     join pg_namespace vn on vn.oid = v.relnamespace where r.oid = d.objid) "
        "  else pg_describe_object(d.classid, d.objid, d.objsubid) end "
        "from pg_depend d "
        "join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid "
        "where d.refclassid = 'pg_class'::regclass and d.refobjid = cast(:q as regclass) "
        "and d.deptype = 'n' and a.attname in :cols "
        "and not (d.classid = 'pg_class'::regclass and d.objid = d.refobjid) "
        "order by 1, 2").bindparams(sa.bindparam("cols", expanding=True)),
        {"q": f"{schema}.{table}", "cols": cols}).fetchall()
    return sorted({(str(c), str(o)) for c, o in rows})


# ----------------------------------------------------------------------------------------- refreshing
def refresh_in_place(conn: Connection, schemas: Schemas, name: str) -> int:
    """Make `<schemas.marts>.<name>` hold exactly the rows of `<schemas.build>.<name>`, in place.

    The published table is created (same columns and types) when missing; otherwise it gains the
    columns the build gained, loses the ones the build lost and follows a changed type, then its rows are
    deleted and the build's inserted by column name. It is never dropped or renamed, so grants, comments,
    indexes and the views users built over it stay. On PostgreSQL, a column to drop or retype that a view
    (or any other object) depends on raises `PublicationError` naming them, before anything is changed.
    Returns the number of rows published."""
    return _refresh(conn, schemas.build, schemas.marts, _check_ident(name))


def refresh_range(conn: Connection, schemas: Schemas, name: str, column: str, start: dt.date,
                  end: dt.date) -> int:
    """Like `refresh_in_place` for an incremental mart: only the published rows whose `column` is between
    `start` and `end` (inclusive) are replaced, by the build's rows of that range; the others stay as
    they are (columns follow the build all the same). Returns the rows inserted."""
    return _refresh(conn, schemas.build, schemas.marts, _check_ident(name), between=(_check_ident(column), start, end))


def _refresh(conn: Connection, source_schema: str, target_schema: str, name: str,
             target_name: str | None = None, between: tuple[str, dt.date, dt.date] | None = None) -> int:
    target_name = target_name or name
    built = table_columns(conn, source_schema, name)
    if built is None:
        raise PublicationError(f"{source_schema}.{name} does not exist: nothing to publish {target_schema}."
                               f"{target_name} from (did the build produce it?)")
    for c in built:
        _check_ident(c.name)
    target = f"{target_schema}.{target_name}"
    source = f"{source_schema}.{name}"
    have = table_columns(conn, target_schema, target_name)
    if have is None:
        ddl = ", ".join(f"{c.name} {c.sql_type}" for c in built)
        conn.exec_driver_sql(f"create table {target} ({ddl})")
        log.info("%s: created (%d columns)", target, len(built))
    else:
        _follow_columns(conn, target_schema, target_name, have, built)
    cols = ", ".join(c.name for c in built)
    if between is None:
        conn.exec_driver_sql(f"delete from {target}")
        result = conn.exec_driver_sql(f"insert into {target} ({cols}) select {cols} from {source}")
        where, params = "", {}
    else:
        column, start, end = between
        if column not in {c.name for c in built}:
            raise PublicationError(f"{source} has no column {column} to refresh {target} by")
        where, params = f" where {column} between :s and :e", {"s": start, "e": end}
        conn.execute(sa.text(f"delete from {target}{where}"), params)
        result = conn.execute(sa.text(f"insert into {target} ({cols}) select {cols} from {source}{where}"), params)
    rows = result.rowcount
    if rows is None or rows < 0:  # a driver that does not report it
        rows = conn.execute(sa.text(f"select count(*) from {source}{where}"), params).scalar_one()
    return int(rows)


def _follow_columns(conn: Connection, schema: str, table: str, have: list[Column], built: list[Column]) -> None:
    target = f"{schema}.{table}"
    have_by = {c.name: c for c in have}
    built_by = {c.name: c for c in built}
    added = [c for c in built if c.name not in have_by]
    dropped = [c.name for c in have if c.name not in built_by]
    retyped = [c for c in built if c.name in have_by and have_by[c.name].sql_type != c.sql_type]
    if dialect(conn) == "postgresql":
        blocking = _dependents_pg(conn, schema, table, dropped + [c.name for c in retyped])
        if blocking:
            what = "; ".join(f"column {c} is used by {o}" for c, o in blocking)
            raise PublicationError(
                f"cannot refresh {target}: its build no longer has, or changed the type of, columns other "
                f"objects use ({what}). Change or drop those objects first (or keep the columns in the model); "
                f"nothing was published")
    elif dialect(conn) == "duckdb":
        blocking = _dependents_duckdb(conn, schema, table, dropped + [c.name for c in retyped])
        if blocking:
            what = "; ".join(f"column {c} is used by view {o}" for c, o in blocking)
            raise PublicationError(
                f"cannot refresh {target}: its build no longer has, or changed the type of, columns views "
                f"use ({what}). Change or drop those views first (or keep the columns in the model); "
                f"nothing was published")
    if retyped:
        # the rows are replaced anyway: emptied first, and the retyped columns' values set to NULL, so that
        # any type change succeeds (DuckDB's ALTER still casts the rows deleted in the transaction)
        conn.exec_driver_sql(f"delete from {target}")
    for c in added:
        log.info("%s: column %s added (%s)", target, c.name, c.sql_type)
        conn.exec_driver_sql(f"alter table {target} add column {c.name} {c.sql_type}")
    for c in retyped:
        log.info("%s: column %s changes type %s -> %s", target, c.name, have_by[c.name].sql_type, c.sql_type)
        conn.exec_driver_sql(f"alter table {target} alter column {c.name} type {c.sql_type} "
                             f"using cast(null as {c.sql_type})")
    for col in dropped:
        log.info("%s: column %s is no longer produced by its model: dropped", target, col)
        conn.exec_driver_sql(f"alter table {target} drop column {col}")


_VIEW_QUERY = re.compile(r"(?is)^\s*create\s+(?:or\s+replace\s+)?(?:temp(?:orary)?\s+)?view\s+.+?\s+as\s+(.*?);?\s*$")


def _dependents_duckdb(conn: Connection, schema: str, table: str, cols: Sequence[str]) -> list[tuple[str, str]]:
    """(column, view) pairs: the views of a DuckDB database that read the table and name one of the columns
    or select `*` (DuckDB does not track a view's dependencies: each view's query is parsed, never bound,
    by json_serialize_sql; binding a broken view would abort the transaction). Conservative: a view naming
    a column of that name from any table it reads counts, as PostgreSQL counts a `select *` view."""
    if not cols:
        return []
    wanted = {c.lower() for c in cols}
    found: set[tuple[str, str]] = set()
    views = conn.exec_driver_sql("select schema_name, view_name, sql from duckdb_views() where not internal "
                                 "and database_name = current_database()").fetchall()
    for view_schema, view, sql in views:
        m = _VIEW_QUERY.match(sql or "")
        if not m:
            continue
        value = conn.execute(sa.text("select json_serialize_sql(:q)"), {"q": m.group(1)}).scalar_one()
        tree = value if isinstance(value, dict) else json.loads(value)  # JSON comes back decoded or as text
        if tree.get("error"):
            log.warning("view %s.%s: cannot parse its query to check its columns", view_schema, view)
            continue
        tables: set[tuple[str, str]] = set()
        names: set[str] = set()
        star = False
        stack: list[Any] = [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                kind = node.get("type")
                if kind == "BASE_TABLE":
                    tables.add((str(node.get("schema_name") or "").lower(), str(node.get("table_name")).lower()))
                elif kind == "COLUMN_REF" and node.get("column_names"):
                    names.add(str(node["column_names"][-1]).lower())
                elif kind == "STAR":
                    star = True
                stack.extend(node.values())
        if not any(t == table and s in ("", schema) for s, t in tables):
            continue
        for col in sorted(wanted if star else wanted & names):
            found.add((col, f"{view_schema}.{view}"))
    return sorted(found)


def replace_rows(conn: Connection, schemas: Schemas, name: str, data: pd.DataFrame | pa.Table, *,
                 partition_by: str | None = None, start: dt.date | None = None, end: dt.date | None = None,
                 target_schema: str | None = None, check: Callable[[str], Any] | None = None) -> int:
    """In-place publication of a table computed in Python (graph metrics, bootstrap intervals): the frame
    is written to `<schemas.build>.<name>` (replaced there: the build schema is scratch space), `check`
    (an audit) called on it, then the table of `target_schema` (the marts by default) made to hold exactly
    its rows, or, with `partition_by`, its rows of `start`..`end` replaced only. A column without a type
    (an empty frame's object column) keeps the published column's type. A table published outside the
    marts (person-level: the network's) leaves no copy in the build schema. Returns the rows published."""
    _check_ident(name)
    target_schema = _check_ident(target_schema or schemas.marts)
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    build = f"{schemas.build}.{name}"
    conn.exec_driver_sql(f"drop table if exists {build}")
    published = {c.name: c.sql_type for c in table_columns(conn, target_schema, name) or []}
    ddl = []
    for f in table.schema:
        if pa.types.is_null(f.type) and f.name in published:
            sql_type = published[f.name]
        else:
            sql_type = next((t for test, t in _ARROW_SQL if test(f.type)), "varchar")
        ddl.append(f"{_check_ident(f.name)} {sql_type}")
    conn.exec_driver_sql(f"create table {build} ({', '.join(ddl)})")
    insert_arrow(conn, build, table)
    if check is not None:
        check(build)
    if partition_by is not None and (start is None or end is None):
        raise ValueError("replace_rows by partition needs start and end")
    between = (_check_ident(partition_by), start, end) if partition_by is not None else None
    rows = _refresh(conn, schemas.build, target_schema, name, between=between)  # type: ignore[arg-type]
    if target_schema != schemas.marts:
        conn.exec_driver_sql(f"drop table {build}")
    return rows


# --------------------------------------------------------------------------------------- descriptions
def _literal(conn: Connection, text: str) -> str:
    """A string literal safe for COMMENT (a utility statement takes no bound parameter): quotes doubled;
    on PostgreSQL an E'' literal with backslashes doubled too, right whatever standard_conforming_strings
    says. NUL characters, which neither engine stores in text, are removed."""
    text = text.replace("\x00", "")
    if dialect(conn) == "postgresql":
        return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + text.replace("'", "''") + "'"


def _exec_comment(conn: Connection, sql: str) -> None:
    """A COMMENT statement holding a literal: psycopg (paramstyle format) reads `%` as a placeholder in
    any statement SQLAlchemy sends (with an empty parameter list), so it is doubled there."""
    conn.exec_driver_sql(sql.replace("%", "%%") if conn.dialect.paramstyle in ("format", "pyformat") else sql)


def current_descriptions(conn: Connection, schema: str, table: str) -> tuple[str | None, dict[str, str | None]]:
    """The table's comment and its columns' comments (None where there is none)."""
    _check_ident(schema), _check_ident(table)
    if dialect(conn) == "postgresql":
        qualified = f"{schema}.{table}"
        desc = conn.execute(sa.text("select obj_description(cast(:q as regclass), 'pg_class')"),
                            {"q": qualified}).scalar_one()
        rows = conn.execute(sa.text(
            "select attname, col_description(attrelid, attnum) from pg_attribute "
            "where attrelid = cast(:q as regclass) and attnum > 0 and not attisdropped"), {"q": qualified}).fetchall()
    elif dialect(conn) == "duckdb":
        desc = conn.execute(sa.text(
            "select comment from duckdb_tables() where schema_name = :s and table_name = :t "
            "and database_name = current_database()"), {"s": schema, "t": table}).scalar_one_or_none()
        rows = conn.execute(sa.text(
            "select column_name, comment from duckdb_columns() where schema_name = :s and table_name = :t "
            "and database_name = current_database()"), {"s": schema, "t": table}).fetchall()
    else:
        raise NotImplementedError(f"comments on {dialect(conn)}")
    return (desc or None), {str(c): (d or None) for c, d in rows}


def apply_descriptions(conn: Connection, schema: str, table: str, description: str | None,
                       columns: Mapping[str, str]) -> int:
    """COMMENT ON the table and its columns (PostgreSQL, DuckDB), for the columns that exist.

    Idempotent and cheap: the current comments are read first and only those that differ are written
    (on PostgreSQL a COMMENT takes a lock on the table). A None description or a column not in `columns`
    leaves the existing comment as it is. Returns the number of comments written."""
    _check_ident(schema), _check_ident(table)
    for col in columns:
        _check_ident(col)
    if table_columns(conn, schema, table) is None:
        raise PublicationError(f"cannot describe {schema}.{table}: no such table")
    current, current_cols = current_descriptions(conn, schema, table)
    qualified = f"{schema}.{table}"
    written = 0
    if description is not None and description.replace("\x00", "") != (current or ""):
        _exec_comment(conn, f"comment on table {qualified} is {_literal(conn, description)}")
        written += 1
    for col, text in columns.items():
        if col not in current_cols:
            log.debug("%s: no column %s to describe", qualified, col)
            continue
        if text is None or text.replace("\x00", "") == (current_cols[col] or ""):
            continue
        _exec_comment(conn, f"comment on column {qualified}.{col} is {_literal(conn, text)}")
        written += 1
    return written


# ------------------------------------------------------------------------------------------ privileges
def _role_oid(conn: Connection, role: str) -> tuple[int, bool]:
    row = conn.execute(sa.text("select oid, rolsuper from pg_roles where rolname = :r"), {"r": role}).fetchone()
    if row is None:
        raise PublicationError(f"BI role {role} does not exist: create it (CREATE ROLE {role} LOGIN) "
                               f"or remove it from warehouse.bi_roles")
    return int(row[0]), bool(row[1])


def apply_grants(conn: Connection, schemas: Schemas, roles: Sequence[str]) -> list[str]:
    """Give the BI roles the published marts and nothing else (PostgreSQL); idempotent.

    Every role must exist (else `PublicationError`) and must not be a superuser. Each gets USAGE on the
    marts schema, SELECT on every table of it, and SELECT on the tables the publishing user creates there
    later (ALTER DEFAULT PRIVILEGES); any other privilege it holds directly on the marts (CREATE on the
    schema, INSERT, UPDATE, DELETE, TRUNCATE... on a table) is revoked. On the internal, staging and build
    schemas, and on `public` (which the warehouse does not use), whatever the roles or PUBLIC hold directly
    is revoked: schema privileges, table privileges, default privileges. PostgreSQL grants PUBLIC nothing on
    a schema made by CREATE SCHEMA, but USAGE (and, before 15, CREATE) on `public`: both are revoked there.
    Finally `has_schema_privilege` is checked for each role on each of those schemas: a privilege still held
    through a role membership raises `PublicationError` (it cannot be revoked here).

    Only what is missing or extra is changed (statements are skipped when the catalogue already says so:
    GRANT rewrites the catalogue row even when nothing changes). Returns the statements executed.

    DuckDB has no roles: nothing to grant, returns []. BI tools there open the published snapshot file,
    which holds the marts only."""
    if dialect(conn) != "postgresql":
        return []
    for role in roles:
        _check_ident(role)
    for s in schemas.all:
        _check_ident(s)
    done: list[str] = []

    def run(sql: str) -> None:
        conn.exec_driver_sql(sql)
        done.append(sql)

    oids: dict[str, int] = {}
    for role in roles:
        oid, superuser = _role_oid(conn, role)
        if superuser:
            raise PublicationError(f"BI role {role} is a superuser: it can read every schema; "
                                   f"give the BI tools an ordinary LOGIN role")
        oids[role] = oid
    marts = schemas.marts
    closed = [schemas.internal, schemas.staging, schemas.build]
    has_public = bool(conn.execute(sa.text("select count(*) from pg_namespace where nspname = 'public'")).scalar_one())

    for role, oid in oids.items():
        # ---- marts: usage on the schema, select on every table, nothing else
        if not _has_direct_schema_priv(conn, marts, oid, "USAGE"):
            run(f"grant usage on schema {marts} to {role}")
        for priv in _direct_schema_privs(conn, marts, oid) - {"USAGE"}:
            run(f"revoke {priv} on schema {marts} from {role}")
        missing = conn.execute(sa.text(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = :s and c.relkind in ('r', 'p', 'v', 'm', 'f') and not exists ("
            "  select 1 from aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a "
            "  where a.grantee = :g and a.privilege_type = 'SELECT') order by 1"),
            {"s": marts, "g": oid}).fetchall()
        if missing:
            run(f"grant select on all tables in schema {marts} to {role}")
        extra = conn.execute(sa.text(
            "select c.relname, a.privilege_type from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "cross join lateral aclexplode(c.relacl) a "
            "where n.nspname = :s and a.grantee = :g and a.privilege_type <> 'SELECT' order by 1, 2"),
            {"s": marts, "g": oid}).fetchall()
        for table, priv in extra:
            run(f"revoke {priv} on table {marts}.{_check_ident(str(table))} from {role}")
        have_default = conn.execute(sa.text(
            "select count(*) from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace "
            "cross join lateral aclexplode(d.defaclacl) a where n.nspname = :s and d.defaclobjtype = 'r' "
            "and d.defaclrole = (select oid from pg_roles where rolname = current_user) "
            "and a.grantee = :g and a.privilege_type = 'SELECT'"), {"s": marts, "g": oid}).scalar_one()
        if not have_default:
            run(f"alter default privileges in schema {marts} grant select on tables to {role}")

    # ---- the other schemas: nothing for the roles, nothing for PUBLIC
    grantees = {0: "public", **{oid: role for role, oid in oids.items()}}
    for schema in closed + (["public"] if has_public else []):
        for grantee_oid, grantee in grantees.items():
            if not _schema_exists(conn, schema):
                continue
            for priv in sorted(_direct_schema_privs(conn, schema, grantee_oid)):
                run(f"revoke {priv} on schema {schema} from {grantee}")
            tables = conn.execute(sa.text(
                "select distinct c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "cross join lateral aclexplode(c.relacl) a where n.nspname = :s and a.grantee = :g order by 1"),
                {"s": schema, "g": grantee_oid}).fetchall()
            for (table,) in tables:
                run(f"revoke all on table {schema}.{_check_ident(str(table))} from {grantee}")
            defaults = conn.execute(sa.text(
                "select distinct r.rolname, d.defaclobjtype from pg_default_acl d "
                "join pg_namespace n on n.oid = d.defaclnamespace join pg_roles r on r.oid = d.defaclrole "
                "cross join lateral aclexplode(d.defaclacl) a where n.nspname = :s and a.grantee = :g"),
                {"s": schema, "g": grantee_oid}).fetchall()
            kinds = {"r": "tables", "S": "sequences", "f": "functions", "T": "types"}
            for owner, kind in defaults:
                if kind in kinds:
                    run(f'alter default privileges for role "{owner}" in schema {schema} '
                        f"revoke all on {kinds[kind]} from {grantee}")

    # ---- what the roles can do in the end, memberships included
    for role in oids:
        for schema in closed:
            if not _schema_exists(conn, schema):
                continue
            held = [p for p in ("USAGE", "CREATE") if conn.execute(sa.text(
                "select has_schema_privilege(:r, :s, :p)"), {"r": role, "s": schema, "p": p}).scalar_one()]
            if held:
                raise PublicationError(
                    f"BI role {role} still has {', '.join(held)} on schema {schema} through a role it is a "
                    f"member of: revoke it there (the BI roles must see the {marts} schema only)")
        if has_public and conn.execute(sa.text("select has_schema_privilege(:r, 'public', 'USAGE')"),
                                       {"r": role}).scalar_one():
            log.warning("BI role %s still has USAGE on schema public (the publishing user may not own it); "
                        "the warehouse keeps nothing there", role)
    for sql in done:
        log.info("grants: %s", sql)
    return done


def _schema_exists(conn: Connection, schema: str) -> bool:
    return bool(conn.execute(sa.text("select count(*) from pg_namespace where nspname = :s"),
                             {"s": schema}).scalar_one())


def _direct_schema_privs(conn: Connection, schema: str, grantee_oid: int) -> set[str]:
    rows = conn.execute(sa.text(
        "select a.privilege_type from pg_namespace n cross join lateral "
        "aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a where n.nspname = :s and a.grantee = :g"),
        {"s": schema, "g": grantee_oid}).fetchall()
    return {str(r[0]) for r in rows}


def _has_direct_schema_priv(conn: Connection, schema: str, grantee_oid: int, priv: str) -> bool:
    return priv in _direct_schema_privs(conn, schema, grantee_oid)


# ------------------------------------------------------------------------- what the publish applies
def describe_and_grant(conn: Connection, settings: Any) -> None:
    """Table and column comments of every published mart from the catalogue (via the dbt properties,
    `dbt_project.model_descriptions`, and the Python tables' catalogue entries), and the BI roles'
    grants (PostgreSQL), inside the publish transaction: they hold from the first publish on and are
    never lost, the tables being refreshed in place."""
    schemas = warehouse.schemas_of(conn)
    described = _published_descriptions()
    for table in warehouse.base_tables(conn, [schemas.marts]):
        name = table.rsplit(".", 1)[-1]
        if name in described:
            description, cols = described[name]
            apply_descriptions(conn, schemas.marts, name, description, cols)
    apply_grants(conn, schemas, settings.warehouse.bi_roles)


def _published_descriptions() -> dict[str, tuple[str | None, dict[str, str]]]:
    """table -> (description, {column: description}) of every published table: the dbt marts' properties
    (their columns generated from the catalogue), and for the tables Python publishes (network, impact,
    scorecard, completeness) the catalogue's entries, their grain as the table's description."""
    from pipelines import catalogue, dbt_project

    out: dict[str, tuple[str | None, dict[str, str]]] = dict(dbt_project.model_descriptions())
    python: dict[str, tuple[str | None, dict[str, str]]] = {}
    from pipelines.network.catalogue import GRAIN as NETWORK_GRAIN
    from pipelines.network_stage import WINDOW_COLUMNS

    for entry in catalogue.load_entries():
        if entry.table in out or not entry.table.startswith("mart_"):
            continue
        grain, cols = python.setdefault(entry.table, (entry.grain or NETWORK_GRAIN.get(entry.table), {}))
        cols[entry.column] = entry.definition
        if entry.table.startswith("mart_network_"):  # the columns the network stage adds to its tables
            cols.update({c: d for c, d in WINDOW_COLUMNS.items() if c not in cols})
    return {**out, **python}


def publish_snapshot(settings: Any, engine: sa.Engine, interval: Any) -> Path | None:
    """On a DuckDB warehouse, the published marts copied into the file BI tools open
    (`settings.published_duckdb()`, replaced atomically: a reader holding the old file keeps it)."""
    target = settings.published_duckdb()
    if target is None or engine.dialect.name != "duckdb":
        return None
    from pipelines import snapshot

    return snapshot.write_published(
        engine, warehouse.schemas_of(engine), target, storage_version=settings.warehouse.duckdb_storage_version,
        meta={"published_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
              "data_from": interval.start, "data_through": interval.end})
