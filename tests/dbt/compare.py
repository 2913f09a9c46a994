"""Table comparison of the dbt equivalence tests: a table's rows as a canonical, sorted list (every column,
floats rounded to 1e-12 relative), and the differences of two such snapshots, for the tables of the old
runner against dbt's, or for a stored expectation against dbt's once the old runner is gone."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class Snapshot:
    """A table's column names and types and its sorted rows."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan",)
        return float(f"{value:.12e}") if value else 0.0
    if isinstance(value, decimal.Decimal):
        return ("decimal", str(value))
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value
    return value


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, str(type(v).__name__), v if v is not None else 0) for v in row)


def column_types(conn: sa.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(sa.text(
        "select column_name, data_type from information_schema.columns where table_schema = :s "
        "and table_name = :t order by ordinal_position"), {"s": schema, "t": table}).fetchall()
    return [(str(c).lower(), str(t).lower()) for c, t in rows]


def snapshot(conn: sa.Connection, schema: str, table: str, exclude: tuple[str, ...] = ()) -> Snapshot:
    """The table's columns, types and sorted rows; `exclude`: columns left out (each must exist)."""
    cols = column_types(conn, schema, table)
    if not cols:
        raise LookupError(f"no table {schema}.{table}")
    missing = set(exclude) - {c for c, _ in cols}
    if missing:
        raise LookupError(f"{schema}.{table} has no column {sorted(missing)} to leave out")
    cols = [(c, t) for c, t in cols if c not in exclude]
    names = [c for c, _ in cols]
    result = conn.exec_driver_sql(f"select {', '.join(names)} from {schema}.{table}")
    rows = [tuple(_canonical(v) for v in r) for r in result.fetchall()]
    return Snapshot(tuple(names), tuple(t for _, t in cols), tuple(sorted(rows, key=_sort_key)))


def differences(name: str, expected: Snapshot, actual: Snapshot, *, compare_order: bool = False) -> list[str]:
    """What differs between two snapshots of a table (empty when identical): columns (as a set, or in
    order), types, row counts and the first differing rows."""
    out: list[str] = []
    if (expected.columns if compare_order else set(expected.columns)) != (
            actual.columns if compare_order else set(actual.columns)):
        return [f"{name}: columns {expected.columns} != {actual.columns}"]
    # the same columns in the expected order
    idx = [actual.columns.index(c) for c in expected.columns]
    types = tuple(actual.types[i] for i in idx)
    if types != expected.types:
        out.append(f"{name}: types {dict(zip(expected.columns, expected.types, strict=True))} != "
                   f"{dict(zip(expected.columns, types, strict=True))}")
    rows = sorted((tuple(r[i] for i in idx) for r in actual.rows), key=_sort_key)
    if len(rows) != len(expected.rows):
        out.append(f"{name}: {len(expected.rows)} rows expected, {len(rows)} found")
    bad = [(e, a) for e, a in zip(expected.rows, rows, strict=False) if e != a]
    if bad:
        e, a = bad[0]
        cells = {c: (x, y) for c, x, y in zip(expected.columns, e, a, strict=True) if x != y}
        out.append(f"{name}: {len(bad)} differing row(s), first: {cells}")
    return out


# ------------------------------------------------------------------- stored expectations (JSON files)
def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "datetime" in value:
            return dt.datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return dt.date.fromisoformat(value["date"])
        return tuple(_decode(v) for v in value["tuple"])
    return value


def to_json(snapshots: dict[str, Snapshot]) -> str:
    """Snapshots as a JSON text, to store as the expectation of a dbt build once the old runner is gone."""
    return json.dumps({name: {"columns": list(s.columns), "types": list(s.types),
                              "rows": [[_encode(v) for v in r] for r in s.rows]}
                       for name, s in sorted(snapshots.items())}, indent=0, sort_keys=True)


def from_json(text: str) -> dict[str, Snapshot]:
    return {name: Snapshot(tuple(d["columns"]), tuple(d["types"]),
                           tuple(tuple(_decode(v) for v in r) for r in d["rows"]))
            for name, d in json.loads(text).items()}


# ------------------------------------------------- digests (the stored expectation of tests/dbt/expected)
def digest(snap: Snapshot) -> dict[str, Any]:
    """A table's compact, exact-enough fingerprint: its row count, its columns with their types (in the
    table's order) and the sha256 of its canonical rows (columns by name, floats to 1e-12 relative as in
    `snapshot`, rows sorted), so that column order does not count, as in `differences`."""
    order = sorted(range(len(snap.columns)), key=lambda i: snap.columns[i])
    rows = sorted((tuple(r[i] for i in order) for r in snap.rows), key=_sort_key)
    sha = hashlib.sha256()
    for row in rows:
        sha.update(json.dumps([_encode(v) for v in row], separators=(",", ":"), sort_keys=True,
                              default=repr).encode())
        sha.update(b"\n")
    return {"rows": len(rows), "columns": [[c, t] for c, t in zip(snap.columns, snap.types, strict=True)],
            "sha256": sha.hexdigest()}


def digest_differences(name: str, expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs between a stored digest and a table's (empty when equal): the columns (missing,
    unexpected, retyped), the row count, or, with the same columns and count, the rows' digest."""
    want, have = dict(map(tuple, expected["columns"])), dict(map(tuple, actual["columns"]))
    out: list[str] = []
    if set(want) != set(have):
        out.append(f"{name}: columns missing {sorted(set(want) - set(have))}, "
                   f"unexpected {sorted(set(have) - set(want))}")
    retyped = {c: (want[c], have[c]) for c in want if c in have and want[c] != have[c]}
    if retyped:
        out.append(f"{name}: types (expected, found) {retyped}")
    if expected["rows"] != actual["rows"]:
        out.append(f"{name}: {expected['rows']} rows expected, {actual['rows']} found")
    if not out and expected["sha256"] != actual["sha256"]:
        out.append(f"{name}: same columns and {actual['rows']} rows, but their values differ "
                   f"(sha256 {actual['sha256'][:12]}..., expected {expected['sha256'][:12]}...)")
    return out


def pack(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Digests per run and table as stored: each table's columns once ("name type; ..."), then per run and
    table [rows, sha256]. The columns must be the same in every run."""
    columns: dict[str, str] = {}
    for run, tables in runs.items():
        for table, d in tables.items():
            text = "; ".join(f"{c} {t}" for c, t in d["columns"])
            if columns.setdefault(table, text) != text:
                raise ValueError(f"{table}: other columns in run {run}: {text} (before: {columns[table]})")
    return {"columns": dict(sorted(columns.items())),
            "runs": {run: {t: [d["rows"], d["sha256"]] for t, d in sorted(tables.items())}
                     for run, tables in runs.items()}}


def unpack(stored: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The digests per run and table of `pack`'s form."""
    columns = {t: [c.split(" ", 1) for c in text.split("; ")] for t, text in stored["columns"].items()}
    return {run: {t: {"rows": n, "columns": columns[t], "sha256": sha} for t, (n, sha) in tables.items()}
            for run, tables in stored["runs"].items()}
