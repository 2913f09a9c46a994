"""The published DuckDB file: the marts alone, in a storage version DuckDB 1.x tools open, replaced atomically.

BI tools (and anyone reading the DuckDB default) never open the warehouse file itself: its writer locks it,
and DuckDB 2.0 writes a storage version (69) that DuckDB 1.x refuses. After each publish commit the
publication calls `write_published`, which copies every base table of the marts schema into a new file
beside the target (`<target>.tmp-<pid>`, written with `STORAGE_VERSION 'v1.0.0'` by default: readable by
DuckDB 1.0 and later), with the tables' and columns' comments and a one-row `_published` table, then
fsyncs it and `os.replace`s it onto the target. A reader holding the old file keeps reading the old inode
(its lock is on that inode, so the publish neither waits for it nor fails); a connection opened afterwards
sees the new marts; nobody ever sees a mix.

The call, in `jobs.publish` after the marts transaction has committed (DuckDB warehouses only):

    target = settings.published_duckdb()
    if target is not None:
        snapshot.write_published(engine, settings.schemas(), target,
                                 storage_version=settings.warehouse.duckdb_storage_version,
                                 meta={"published_at": <the run's stamp>, "start_date": interval.start,
                                       "end_date": interval.end})
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines import lake

log = logging.getLogger(__name__)

ALIAS = "esn_published_snapshot"
PUBLISHED_TABLE = "_published"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe identifier: {name!r}")
    return name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dt.datetime):
        return "timestamp with time zone" if value.tzinfo else "timestamp"
    if isinstance(value, dt.date):
        return "date"
    return "varchar"


def tmp_path_for(target: Path) -> Path:
    return target.with_name(f"{target.name}.tmp-{os.getpid()}")


def write_published(engine: sa.Engine, schemas: Any, target: Path, *, storage_version: str = "v1.0.0",
                    meta: dict[str, Any]) -> Path:
    """Write the published snapshot of `schemas.marts` to `target` (see the module doc); returns target.

    `meta` becomes the one row of `_published` (one column per key, typed by its value); it must hold
    `published_at`, given by the caller (not now(): a rerun of the same publish writes the same rows), and
    should hold the published interval. Tables are copied in a sorted row order, so a rerun holds the same
    rows in the same order (DuckDB's block layout is not byte-for-byte reproducible). On any error the temporary file is removed and the target left as it was."""
    if engine.dialect.name != "duckdb":
        raise ValueError("the published DuckDB snapshot is written from a DuckDB warehouse only")
    if not _VERSION.match(storage_version):
        raise ValueError(f"storage_version must look like 'v1.0.0', got {storage_version!r}")
    if "published_at" not in meta:
        raise ValueError("meta must give published_at (the caller's stamp of the publish)")
    for key in meta:
        _ident(key)
    marts = _ident(schemas.marts)
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(target)
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)

    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        source_db = raw.execute("select current_database()").fetchone()[0]
        tables = [r[0] for r in raw.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = ? "
            "and not temporary order by table_name", [source_db, marts]).fetchall()]
        raw.execute(f"attach {_literal(str(tmp))} as {ALIAS} (storage_version {_literal(storage_version)})")
        attached = True
        try:
            raw.execute("begin transaction")
            try:
                for name in tables:
                    _copy_table(raw, source_db, marts, _ident(name))
                _write_meta(raw, meta, tables)
                raw.execute("commit")
            except BaseException:
                raw.execute("rollback")
                raise
            raw.execute(f"checkpoint {ALIAS}")
            raw.execute(f"detach {ALIAS}")
            attached = False
        except BaseException:
            if attached:
                try:
                    raw.execute(f"detach {ALIAS}")
                except Exception:  # noqa: BLE001 - the original error matters, not this one
                    log.warning("could not detach %s after a failed snapshot", tmp)
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
            raise
    lake.fsync_path(tmp)
    os.replace(tmp, target)
    lake.fsync_path(target.parent)
    log.info("published %d mart table(s) to %s (storage %s)", len(tables), target, storage_version)
    return target


def _copy_table(raw: Any, source_db: str, marts: str, name: str) -> None:
    src = f'"{source_db}".{marts}.{name}'
    dst = f"{ALIAS}.main.{name}"
    raw.execute(f"create table {dst} as select * from {src} order by all")
    (comment,) = raw.execute("select comment from duckdb_tables() where database_name = ? and schema_name = ? "
                             "and table_name = ?", [source_db, marts, name]).fetchone()
    if comment:
        raw.execute(f"comment on table {dst} is {_literal(comment)}")
    for column, col_comment in raw.execute(
            "select column_name, comment from duckdb_columns() where database_name = ? and schema_name = ? "
            "and table_name = ? and comment is not null order by column_index", [source_db, marts, name]).fetchall():
        raw.execute(f'comment on column {dst}."{column.replace(chr(34), chr(34) * 2)}" is {_literal(col_comment)}')


def _write_meta(raw: Any, meta: dict[str, Any], tables: list[str]) -> None:
    row = {**meta, "tables": ",".join(tables)}
    cols = ", ".join(f"{k} {_sql_type(v)}" for k, v in row.items())
    raw.execute(f"create table {ALIAS}.main.{PUBLISHED_TABLE} ({cols})")
    values = [v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for v in row.values()]
    raw.execute(f"insert into {ALIAS}.main.{PUBLISHED_TABLE} values ({', '.join('?' * len(values))})", values)
    raw.execute(f"comment on table {ALIAS}.main.{PUBLISHED_TABLE} is "
                f"{_literal('when these marts were published, the interval of that publish and the tables it holds')}")
