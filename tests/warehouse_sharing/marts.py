"""A small DuckDB warehouse whose marts carry comments, and a generation tag in every mart row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from pipelines.warehouse import DEFAULT_SCHEMAS, make_engine

MARTS = DEFAULT_SCHEMAS.marts
META = {"published_at": dt.datetime(2026, 5, 11, 6, 0, tzinfo=dt.UTC),
        "start_date": dt.date(2026, 5, 10), "end_date": dt.date(2026, 5, 10)}


def warehouse(path: Path) -> sa.Engine:
    engine = make_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"""
            create table {MARTS}.mart_engagement_daily (activity_date date not null, department varchar,
                active_people bigint, share double, generation varchar not null);
            comment on table {MARTS}.mart_engagement_daily is 'Active people per department and day';
            comment on column {MARTS}.mart_engagement_daily.active_people is 'people with one action or more';
            create table {MARTS}.mart_network_summary (window_end date not null, density double,
                computed_at timestamp with time zone, generation varchar not null);
            comment on table {MARTS}.mart_network_summary is 'The network''s density per window';
            create view {MARTS}.mart_a_users_view as select * from {MARTS}.mart_engagement_daily;
            create table {DEFAULT_SCHEMAS.internal}.int_people (person_key varchar);
            insert into {DEFAULT_SCHEMAS.internal}.int_people values ('secret-person-key');
        """)
    return engine


def fill(engine: sa.Engine, generation: str, rows: int) -> None:
    """Replace every mart's rows by `rows` rows tagged `generation`, in one transaction."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"delete from {MARTS}.mart_engagement_daily")
        conn.exec_driver_sql(f"delete from {MARTS}.mart_network_summary")
        conn.execute(sa.text(
            f"insert into {MARTS}.mart_engagement_daily select date '2026-05-01' + cast(i % 10 as integer), "
            "'dept-' || (i % 3), i, i / 7.0, :g from range(:n) t(i)"), {"g": generation, "n": rows})
        conn.execute(sa.text(
            f"insert into {MARTS}.mart_network_summary select date '2026-05-01' + cast(i as integer), "
            "i / 100.0, timestamptz '2026-05-11 06:00:00+00', :g from range(:n) t(i)"),
            {"g": generation, "n": rows // 2})
