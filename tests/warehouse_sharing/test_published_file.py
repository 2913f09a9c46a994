"""The published DuckDB file (pipelines.snapshot.write_published): the marts alone, in the main schema, with
their comments and a `_published` row, in a storage version a DuckDB 1.x client opens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines import snapshot
from pipelines.warehouse import DEFAULT_SCHEMAS
from tests.warehouse_sharing.conftest import DuckDBClient
from tests.warehouse_sharing.marts import META, fill, warehouse

DESCRIBE = r"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
out = {
  "version": duckdb.__version__,
  "tables": con.execute("select schema_name, table_name, comment from duckdb_tables() order by all").fetchall(),
  "views": con.execute("select view_name from duckdb_views() where not internal").fetchall(),
  "column_comments": con.execute("select table_name, column_name, comment from duckdb_columns() "
                                 "where comment is not null order by all").fetchall(),
  "engagement": con.execute("select activity_date::varchar, department, active_people, share, generation "
                            "from mart_engagement_daily order by active_people").fetchall(),
  "network": con.execute("select count(*), min(computed_at)::varchar from mart_network_summary").fetchall(),
  "published": con.execute("select published_at::varchar, start_date::varchar, end_date::varchar, tables "
                           "from _published").fetchall(),
}
print(json.dumps(out))
"""
OPEN = r"""
import duckdb, json, sys
try:
    duckdb.connect(sys.argv[1], read_only=True).execute("select 1")
    print(json.dumps("opened"))
except Exception as exc:
    print(json.dumps(f"{type(exc).__name__}: {exc}"))
"""


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    engine = warehouse(tmp_path / "warehouse.duckdb")
    fill(engine, "g1", 40)
    target = snapshot.write_published(engine, DEFAULT_SCHEMAS, tmp_path / "published" / "esn_marts.duckdb",
                                      meta=META)
    engine.dispose()
    return tmp_path / "warehouse.duckdb", target


def test_duckdb_1x_opens_the_published_file_with_the_marts_their_comments_and_rows(
        published: tuple[Path, Path], duckdb_1x: DuckDBClient, duckdb_2x: DuckDBClient) -> None:
    warehouse_file, target = published
    # the problem: DuckDB 1.x refuses the warehouse file DuckDB 2.0 writes
    refused = duckdb_1x.run(OPEN, str(warehouse_file))
    assert refused != "opened" and "version" in refused.lower(), refused

    seen = duckdb_1x.run(DESCRIBE, str(target))
    assert seen["version"] == duckdb_1x.version
    assert seen["tables"] == [
        ["main", "_published", seen["tables"][0][2]],
        ["main", "mart_engagement_daily", "Active people per department and day"],
        ["main", "mart_network_summary", "The network's density per window"],
    ]
    assert seen["tables"][0][2]  # _published says what it is
    assert seen["views"] == []  # users' views and every internal table stay in the warehouse
    assert seen["column_comments"] == [["mart_engagement_daily", "active_people", "people with one action or more"]]
    # the same rows as the warehouse's marts (read there with DuckDB 2.0)
    expected = duckdb_2x.run(DESCRIBE.replace("from mart_", "from esn_marts.mart_")
                             .replace("from _published", "from (select 1 published_at, 2 start_date, "
                                                         "3 end_date, 4 tables)"), str(warehouse_file))
    assert seen["engagement"] == expected["engagement"] and len(seen["engagement"]) == 40
    assert seen["network"] == expected["network"] == [[20, "2026-05-11 06:00:00+00"]]
    assert seen["published"] == [["2026-05-11 06:00:00+00", "2026-05-10", "2026-05-10",
                                  "mart_engagement_daily,mart_network_summary"]]


DUMP = r"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
names = [r[0] for r in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
print(json.dumps({n: [list(map(str, r)) for r in con.execute(f"select * from {n}").fetchall()] for n in names}))
"""


def test_a_rerun_of_the_same_publish_writes_the_same_rows_in_the_same_order(
        published: tuple[Path, Path], tmp_path: Path, duckdb_2x: DuckDBClient) -> None:
    # DuckDB's file layout is not byte-for-byte reproducible (block placement varies between runs), but
    # the content is: the same tables, the same rows in the same stored order, the same _published row
    warehouse_file, target = published
    first = duckdb_2x.run(DUMP, str(target))
    from pipelines.warehouse import make_engine

    engine = make_engine(f"duckdb:///{warehouse_file}")
    snapshot.write_published(engine, DEFAULT_SCHEMAS, target, meta=META)
    engine.dispose()
    again = duckdb_2x.run(DUMP, str(target))
    assert again == first and len(first["mart_engagement_daily"]) == 40
    assert sorted(os.listdir(target.parent)) == ["esn_marts.duckdb"]  # no temporary file left


def test_a_failed_snapshot_leaves_the_published_file_as_it_was(
        published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse_file, target = published
    before = target.read_bytes()
    inode = target.stat().st_ino
    from pipelines.warehouse import make_engine

    engine = make_engine(f"duckdb:///{warehouse_file}")
    fill(engine, "g2", 10)
    copied: list[str] = []
    real_copy = snapshot._copy_table

    def copy_then_fail(raw, db, marts, name):  # the second table fails half-way through the snapshot
        if copied:
            raise OSError("disk full")
        copied.append(name)
        real_copy(raw, db, marts, name)

    monkeypatch.setattr(snapshot, "_copy_table", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        snapshot.write_published(engine, DEFAULT_SCHEMAS, target, meta=META)
    engine.dispose()
    assert copied == ["mart_engagement_daily"]
    assert target.read_bytes() == before and target.stat().st_ino == inode
    assert sorted(os.listdir(target.parent)) == ["esn_marts.duckdb"]


def test_published_at_is_required_and_a_bad_storage_version_refused(published: tuple[Path, Path]) -> None:
    warehouse_file, target = published
    from pipelines.warehouse import make_engine

    engine = make_engine(f"duckdb:///{warehouse_file}")
    before = target.read_bytes()
    with pytest.raises(ValueError, match="published_at"):
        snapshot.write_published(engine, DEFAULT_SCHEMAS, target, meta={"start_date": "2026-05-10"})
    with pytest.raises(ValueError, match="storage_version"):
        snapshot.write_published(engine, DEFAULT_SCHEMAS, target, storage_version="v1'; drop", meta=META)
    engine.dispose()
    assert target.read_bytes() == before  # refused before anything is written
    assert sorted(os.listdir(target.parent)) == ["esn_marts.duckdb"]
