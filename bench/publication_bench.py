"""Cost of an in-place refresh (pipelines.publication.refresh_in_place) of a mart of N rows.

    .venv/bin/python -m bench.publication_bench [--rows 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1/postgres]

Builds a mart-like table (date, two segment columns, six figures, a flag) in the build schema, publishes
it (create), then refreshes it twice in place (delete all + insert, the steady state), and once more with
a column added by the build. PostgreSQL: a scratch database esn_bench_pub_*, dropped after. Prints seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from pipelines import publication, warehouse
from pipelines.warehouse import DEFAULT_SCHEMAS as S

SELECT = {
    "duckdb": "select date '2026-01-01' + (i % 365)::int as as_of_date, 'dept_' || (i % 40) as segment_value, "
              "'department' as segment_type, i::bigint as n, (i % 97)::bigint as active, i / 3.0 as share, "
              "(i % 7)::double as ci_low, (i % 11)::double as ci_high, i * 2 as total, i % 2 = 0 as suppressed "
              "from range({n}) t(i)",
    "postgresql": "select date '2026-01-01' + (i %% 365)::int as as_of_date, 'dept_' || (i %% 40) as segment_value, "
                  "'department'::text as segment_type, i::bigint as n, (i %% 97)::bigint as active, "
                  "i / 3.0::float8 as share, (i %% 7)::float8 as ci_low, (i %% 11)::float8 as ci_high, "
                  "i::bigint * 2 as total, i %% 2 = 0 as suppressed from generate_series(1, {n}) i",
}


def run(url: str, n: int) -> dict[str, float]:
    engine = warehouse.make_engine(url)
    kind = engine.dialect.name
    out: dict[str, float] = {}
    try:
        with engine.begin() as conn:
            warehouse.ensure_schemas(conn)
            conn.exec_driver_sql(f"drop table if exists {S.build}.mart_bench")
            conn.exec_driver_sql(f"drop table if exists {S.marts}.mart_bench")
            conn.exec_driver_sql(f"create table {S.build}.mart_bench as {SELECT[kind].format(n=n)}")
        for label in ("create", "refresh 1", "refresh 2"):
            t = time.perf_counter()
            with engine.begin() as conn:
                assert publication.refresh_in_place(conn, S, "mart_bench") == n
            out[label] = time.perf_counter() - t
        if kind == "postgresql":  # what autovacuum does after a delete-all (outside the publish transaction)
            t = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"vacuum {S.marts}.mart_bench")
            out["vacuum after"] = time.perf_counter() - t
        with engine.begin() as conn:
            conn.exec_driver_sql(f"alter table {S.build}.mart_bench add column extra bigint")
        t = time.perf_counter()
        with engine.begin() as conn:
            publication.refresh_in_place(conn, S, "mart_bench")
        out["refresh, column added"] = time.perf_counter() - t
        t = time.perf_counter()
        with engine.begin() as conn:
            publication.apply_descriptions(conn, S.marts, "mart_bench", "bench", {"n": "observations"})
            publication.apply_descriptions(conn, S.marts, "mart_bench", "bench", {"n": "observations"})
        out["descriptions (write + unchanged)"] = time.perf_counter() - t
    finally:
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, secs in run(f"duckdb:///{Path(tmp) / 'bench.duckdb'}", args.rows).items():
            print(f"duckdb      {args.rows:>9} rows  {label:<34} {secs:7.2f} s")
    if args.skip_pg:
        return
    name = f"esn_bench_pub_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
    try:
        for label, secs in run(args.pg.rsplit("/", 1)[0] + f"/{name}", args.rows).items():
            print(f"postgresql  {args.rows:>9} rows  {label:<34} {secs:7.2f} s")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()


if __name__ == "__main__":
    main()
