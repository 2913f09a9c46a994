"""A BI client on the DuckDB default (issue 13's acceptance, on the real demo): the demo job and the network
stage publish; DuckDB 1.5.6, the library BI tools embed, opens the published snapshot file
(`settings.published_duckdb()`) read-only and finds the marts alone, each table and column with its
comment; the same client refuses the warehouse file itself (DuckDB 2.0's storage), which is why the
snapshot exists."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines import jobs, warehouse
from pipelines.config import Settings
from pipelines.network_stage import run_network_range
from tests.bi.conftest import EMPTY_ON_THE_DEMO, expected_marts
from tests.conftest import SMALL_DEMO, demo_settings
from tests.warehouse_sharing.conftest import DUCKDB_1X, DuckDBClient

pytestmark = pytest.mark.slow

INTERVAL = jobs.Interval(SMALL_DEMO["start"], SMALL_DEMO["start"] + dt.timedelta(days=SMALL_DEMO["days"] - 1))

LIST_SCRIPT = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
tables = con.execute("select schema_name, table_name, comment, estimated_size from duckdb_tables() where not internal").fetchall()
columns = con.execute("select table_name, column_name, comment from duckdb_columns() where not internal").fetchall()
counts = {t: con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t, _, _ in tables}
print(json.dumps({"version": duckdb.__version__, "tables": [[s, t, c] for s, t, c, _ in tables],
                  "columns": columns, "counts": counts}))
"""

OPEN_SCRIPT = """
import duckdb, json, sys
try:
    duckdb.connect(sys.argv[1], read_only=True).execute("select 1").fetchall()
    print(json.dumps({"opened": True, "error": None}))
except Exception as exc:
    print(json.dumps({"opened": False, "error": f"{type(exc).__name__}: {exc}"}))
"""


@dataclass
class Published:
    settings: Settings
    snapshot: Path
    warehouse_file: Path
    warehouse_marts: dict[str, int]  # rows per table of the warehouse's esn_marts


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    settings = demo_settings(tmp_path_factory.mktemp("bi_duckdb"))
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        jobs.run(settings, INTERVAL, engine=engine)
        run_network_range(settings, INTERVAL.start, INTERVAL.end, engine=engine)
        with engine.connect() as conn:
            marts = [t.rsplit(".", 1)[-1] for t in warehouse.base_tables(conn, ["esn_marts"])]
            counts = {t: int(conn.exec_driver_sql(f"select count(*) from esn_marts.{t}").scalar_one())
                      for t in marts}
    finally:
        engine.dispose()  # the warehouse file unlocked, as between two runs
    snapshot = settings.published_duckdb()
    assert snapshot is not None and snapshot.exists()
    return Published(settings, snapshot, Path(settings.warehouse_url.removeprefix("duckdb:///")), counts)


@pytest.fixture(scope="module")
def listing(published: Published, duckdb_1x: DuckDBClient) -> dict:
    return duckdb_1x.run(LIST_SCRIPT, str(published.snapshot))


def test_the_warehouse_publishes_every_mart(published: Published) -> None:
    assert set(published.warehouse_marts) == expected_marts()


def test_duckdb_1x_lists_only_the_marts_in_the_snapshot(listing: dict, published: Published) -> None:
    assert listing["version"] == DUCKDB_1X
    names = {t for _, t, _ in listing["tables"]}
    assert names == expected_marts() | {"_published"}
    assert {s for s, _, _ in listing["tables"]} == {"main"}
    assert {t: n for t, n in listing["counts"].items() if t != "_published"} == published.warehouse_marts
    assert listing["counts"]["_published"] == 1
    empty = {t for t, n in listing["counts"].items() if n == 0}
    assert empty <= EMPTY_ON_THE_DEMO, f"marts the demo should fill are empty: {empty - EMPTY_ON_THE_DEMO}"


def test_duckdb_1x_sees_every_mart_described(listing: dict) -> None:
    undescribed = sorted(t for _, t, c in listing["tables"] if t != "_published" and not (c or "").strip())
    assert not undescribed, f"marts without a comment: {undescribed}"


def test_duckdb_1x_sees_every_column_described(listing: dict) -> None:
    columns = [(t, c, d) for t, c, d in listing["columns"] if t != "_published"]
    assert {t for t, _, _ in columns} == expected_marts()
    undescribed = [f"{t}.{c}" for t, c, d in columns if not (d or "").strip()]
    assert not undescribed, f"columns without a comment: {undescribed}"


def test_duckdb_1x_refuses_the_warehouse_file(published: Published, duckdb_1x: DuckDBClient,
                                              duckdb_2x: DuckDBClient) -> None:
    assert duckdb_2x.run(OPEN_SCRIPT, str(published.warehouse_file)) == {"opened": True, "error": None}
    refused = duckdb_1x.run(OPEN_SCRIPT, str(published.warehouse_file))
    assert refused["opened"] is False
    assert "version number" in refused["error"] and "newer version of DuckDB" in refused["error"], refused
