"""Two runs of the same data with the same configuration publish byte-identical tables.

Every table of the warehouse is compared (marts, the internal fct_/int_ tables, the network and impact
tables), serialised to text with every float written in full (`repr`, which round-trips): a last-bit
difference of one sum is a failure. The second run is made as different as the engine allows without
changing the data or the configuration: DuckDB on one thread instead of several, PostgreSQL without parallel
plans or hash aggregation, so that an aggregate whose result depends on the order rows arrive in (a float
sum, a node numbering, a community detection seeded by order) shows up here. Then the second warehouse
reruns the last day and must still be identical, and its published tables equal the record of
tests/golden_results.py (tests/data/golden/demo_results.json).

Only the run logs (`dq_validation_results`, `dq_reply_completeness`, `dq_revisit_tiers`, `dq_source_days`)
are left out: they record each run (its id and times), not a published figure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import warehouse
from tests import golden_results
from tests.conftest import demo_settings

PER_RUN = golden_results.RUN_LOGS


def table_names(engine: sa.Engine) -> list[str]:
    """`schema.table` of every base table of every warehouse schema (run logs aside)."""
    with engine.connect() as conn:
        names = warehouse.base_tables(conn)
    return [n for n in names if n.rsplit(".", 1)[-1] not in PER_RUN and not n.endswith("__build")]


def dump(engine: sa.Engine) -> dict[str, bytes]:
    """Each table as text: rows sorted on every column, floats in full."""
    out = {}
    for name in table_names(engine):
        df = warehouse.read_frame(engine, f"select * from {name}")
        df = df[sorted(df.columns)]
        if len(df):
            df = df.sort_values(list(df.columns), na_position="first", kind="mergesort").reset_index(drop=True)
        out[name] = df.to_csv(index=False, float_format=None).encode()
    return out


def differences(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    problems = [f"{n}: only in one warehouse" for n in sorted(set(a) ^ set(b))]
    for name in sorted(set(a) & set(b)):
        if a[name] != b[name]:
            left, right = a[name].decode().splitlines(), b[name].decode().splitlines()
            first = next((i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y),
                         min(len(left), len(right)))
            problems.append(f"{name}: {len(left) - 1} vs {len(right) - 1} rows, first difference at line "
                            f"{first}: {left[first] if first < len(left) else '<end>'!r} vs "
                            f"{right[first] if first < len(right) else '<end>'!r} "
                            f"(sha256 {hashlib.sha256(a[name]).hexdigest()[:12]} vs "
                            f"{hashlib.sha256(b[name]).hexdigest()[:12]})")
    return problems


def publish_all(root: Path, warehouse_url: str | None, on_connect: Callable[[object], None] | None,
                *, rerun_last_day: bool = False, golden: dict[str, str] | None = None) -> dict[str, bytes]:
    """The demo published (golden_results.publish_demo) into a new warehouse, dumped; `golden`, when given,
    receives the tables as tests/golden_results.py normalises them."""
    settings = demo_settings(root, warehouse_url=warehouse_url)
    engine = warehouse.make_engine(settings.warehouse_url)
    if on_connect is not None:
        sa.event.listen(engine, "connect", lambda conn, _record: on_connect(conn))
    try:
        golden_results.publish_demo(settings, engine, rerun_last_day=rerun_last_day)
        if golden is not None:
            golden.update(golden_results.tables_of(engine))
        return dump(engine)
    finally:
        engine.dispose()


def _duckdb_one_thread(conn) -> None:
    conn.execute("SET threads = 1")


def test_two_duckdb_runs_publish_byte_identical_tables(tmp_path):
    """... and the second run's published tables equal the record of tests/golden_results.py (issue 15:
    speed work must not move a published figure; an intended change is recorded again in its commit)."""
    first = publish_all(tmp_path / "a", None, None)
    golden: dict[str, str] = {}
    second = publish_all(tmp_path / "b", None, _duckdb_one_thread, rerun_last_day=True, golden=golden)
    assert len(first) > 30  # every model, the network and the impact tables
    assert not differences(first, second), "\n".join(differences(first, second))

    recorded = json.loads(golden_results.RECORD.read_text())
    assert len(recorded) > 20 and sum(t["rows"] for t in recorded.values()) > 1000
    moved = golden_results.differences(recorded, golden_results.record_of(golden))
    assert not moved, "published results moved from tests/data/golden/demo_results.json:\n" + "\n".join(moved)


@pytest.mark.postgres
def test_two_postgres_runs_publish_byte_identical_tables(tmp_path, pg_url, pg_server):
    import uuid

    first = publish_all(tmp_path / "a", pg_url, None)
    # a second database on the same server, planned differently: no parallel plans, no hash aggregates
    name = f"esn_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
        conn.exec_driver_sql(f'alter database "{name}" set max_parallel_workers_per_gather = 0')
        conn.exec_driver_sql(f'alter database "{name}" set enable_hashagg = off')
    try:
        second = publish_all(tmp_path / "b", pg_server.rsplit("/", 1)[0] + f"/{name}", None,
                             rerun_last_day=True)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()
    assert len(first) > 30
    assert not differences(first, second), "\n".join(differences(first, second))
