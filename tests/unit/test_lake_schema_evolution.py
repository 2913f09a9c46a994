"""Columns added to the canonical activities after a lake's first landing (the idea columns `is_idea` and
`idea_status`, then `topic_ids`): partitions landed before them load with the model's defaults, next to partitions that have
them, on DuckDB and on PostgreSQL; a warehouse created before them gets them by ALTER."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.model import ACTIVITIES, conform

OLD_COLUMNS = [c for c in ACTIVITIES.names if c not in ("is_idea", "idea_status", "topic_ids")]


def _partition(root: Path, day: dt.date, rows: list[dict], *, old: bool) -> Path:
    table = conform(pa.Table.from_pylist(rows), ACTIVITIES)
    if old:  # as landed before the idea columns existed
        table = table.select(OLD_COLUMNS)
    path = root / f"date={day.isoformat()}" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    return path


def _row(event_id: str, day: dt.date, verb: str, **extra) -> dict:
    flags = {"is_question": False, "is_edited": False, "is_deleted": False, "is_idea": False, "idea_status": None,
             "parent_id": None}
    return {"source": "s", "event_id": event_id, "actor_key": "a", "verb": verb,
            "occurred_at": dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC), **flags, **extra}


def _load_and_read(url: str, tmp_path: Path) -> list[tuple]:
    old_day, new_day = dt.date(2026, 5, 1), dt.date(2026, 5, 2)
    files = [_partition(tmp_path / "lake", old_day, [_row("p1", old_day, "post")], old=True),
             _partition(tmp_path / "lake", new_day, [
                 _row("i1", new_day, "idea", is_idea=True, topic_ids="tag:0123456789abcdef tx:expenses"),
                 _row("s1", new_day, "status_change", parent_id="i1", idea_status="planned")], old=False)]
    engine = warehouse.make_engine(url)
    try:
        staging = warehouse.schemas_of(engine).staging
        with engine.begin() as conn:
            warehouse.ensure_schemas(conn)
            # a warehouse created before the idea columns
            cols = warehouse.LAKE_DDL["lake_activities"].split(", is_idea")[0]
            conn.exec_driver_sql(f"create table {staging}.lake_activities ({cols})")
            conn.exec_driver_sql(f"insert into {staging}.lake_activities (source, event_id, occurred_at, "
                                 "activity_date, actor_key, verb, is_question, is_edited, is_deleted) values "
                                 "('s', 'old', '2026-04-30 09:00:00+00', '2026-04-30', 'a', 'post', false, false, "
                                 "false)")
            warehouse.ensure_lake_tables(conn)
            n = warehouse.replace_activity_days(conn, ["s"], [old_day, new_day], files)
            assert n == 3
            rows = conn.execute(sa.text(f"select event_id, verb, is_idea, idea_status, topic_ids from {staging}.lake_activities "
                                        "order by event_id")).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


EXPECTED = [("i1", "idea", True, None, "tag:0123456789abcdef tx:expenses"), ("old", "post", False, None, None),
            ("p1", "post", False, None, None), ("s1", "status_change", False, "planned", None)]


def test_old_and_new_partitions_load_together_on_duckdb(tmp_path: Path) -> None:
    assert _load_and_read(f"duckdb:///{tmp_path / 'w.duckdb'}", tmp_path) == EXPECTED


def test_old_and_new_partitions_load_together_on_postgres(pg_url: str, tmp_path: Path) -> None:
    assert _load_and_read(pg_url, tmp_path) == EXPECTED
