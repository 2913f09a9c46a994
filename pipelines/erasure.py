"""Opt-out and erasure: remove a person from everything the pipeline has written.

The opt-out list (`privacy.opt_out_file`: emails or person keys, one a line) is applied at staging, so
new data never carries an opted-out person. `erase` handles what was written before the request:
every Parquet file of the lake (raw, canonical, staging, quarantine) is rewritten without the person's
events and with their key removed where it appears as someone else's target or manager; the
warehouse's lake tables lose the same rows; and the published models are rebuilt for the whole
history so that no aggregate still counts them. Files are rewritten atomically (temp file + rename).
This module never logs an identifier in clear: it works on keyed hashes only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.config import Settings
from pipelines.privacy import Pseudonymiser

log = logging.getLogger(__name__)

#: columns whose row belongs to the person (the row goes) and columns that merely point at them (nulled)
OWNER_COLUMNS = ("actor_key", "person_key")
POINTER_COLUMNS = ("target_key", "manager_key")


def keys_for(identifiers: list[str], ps: Pseudonymiser) -> set[str]:
    """Person keys for a list of emails or keys (anything with an '@' is taken as an email)."""
    return {ps.email(i) if "@" in i else i.strip() for i in identifiers if i.strip()}


def _scrub(table: pa.Table, keys: pa.Array) -> tuple[pa.Table, int]:
    mask = None
    for col in OWNER_COLUMNS:
        if col in table.column_names:
            hit = pc.fill_null(pc.is_in(table.column(col), value_set=keys), False)
            mask = hit if mask is None else pc.or_(mask, hit)
    removed = 0
    if mask is not None:
        removed = pc.sum(mask).as_py() or 0
        table = table.filter(pc.invert(mask))
    for col in POINTER_COLUMNS:
        if col in table.column_names:
            column = table.column(col)
            hit = pc.fill_null(pc.is_in(column, value_set=keys), False)
            if pc.any(hit).as_py():
                idx = table.column_names.index(col)
                table = table.set_column(idx, col, pc.if_else(hit, pa.scalar(None, column.type), column))
    return table, int(removed)


def erase_lake(lake_dir: Path, keys: set[str]) -> dict[str, int]:
    value_set = pa.array(sorted(keys), pa.string())
    files = rows = 0
    for path in sorted(lake_dir.rglob("*.parquet")):
        table = pq.read_table(path)
        if not any(c in table.column_names for c in OWNER_COLUMNS + POINTER_COLUMNS):
            continue
        scrubbed, removed = _scrub(table, value_set)
        if scrubbed.equals(table):
            continue
        tmp = path.with_name(f".{path.name}.erasing")
        pq.write_table(scrubbed, tmp, compression="zstd")
        os.replace(tmp, path)
        files += 1
        rows += removed
    return {"files_rewritten": files, "rows_removed": rows}


@warehouse.with_engine
def erase(settings: Settings, identifiers: list[str], key: bytes, *,
          engine: sa.Engine | None = None) -> dict[str, Any]:
    """Erase people everywhere and rebuild the published tables. Returns counts, never identifiers."""
    from pipelines import jobs

    keys = keys_for(identifiers, Pseudonymiser(key))
    if not keys:
        raise ValueError("nothing to erase: give at least one email or person key")
    report: dict[str, Any] = {"people": len(keys), "lake": erase_lake(settings.lake_dir, keys)}
    engine = engine or warehouse.make_engine(settings.warehouse_url)
    with engine.begin() as conn:
        warehouse.ensure_lake_tables(conn)
        expanding: sa.BindParameter[Any] = sa.bindparam("keys", expanding=True)
        removed = conn.execute(sa.text("delete from lake_activities where actor_key in :keys").bindparams(expanding),
                               {"keys": sorted(keys)}).rowcount
        conn.execute(sa.text("update lake_activities set target_key = null where target_key in :keys")
                     .bindparams(expanding), {"keys": sorted(keys)})
        conn.execute(sa.text("delete from lake_people where person_key in :keys").bindparams(expanding),
                     {"keys": sorted(keys)})
        conn.execute(sa.text("update lake_people set manager_key = null where manager_key in :keys")
                     .bindparams(expanding), {"keys": sorted(keys)})
        span = conn.execute(sa.text("select min(activity_date), max(activity_date) from lake_activities")).one()
    report["warehouse_rows_removed"] = removed
    if span[0] is not None:
        first, last = (d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in span)
        # the whole history is rebuilt from the (already scrubbed) canonical lake
        report["republished"] = jobs.publish(settings, jobs.Interval(first, last), engine=engine)["interval"]
    return report
