"""The same SQL on PostgreSQL: the published tables agree with DuckDB's."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import jobs, warehouse
from tests.conftest import demo_settings
from tests.pipeline.test_end_to_end import FULL, MARTS

pytestmark = pytest.mark.postgres


def _tables(engine) -> dict[str, pd.DataFrame]:
    out = {}
    for t in MARTS:
        df = warehouse.read_frame(engine, f"select * from {t}")
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].map(lambda v: float(v) if v is not None and type(v).__name__ == "Decimal" else v)
        out[t] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def test_postgres_and_duckdb_publish_the_same_tables(tmp_path, pg_url):
    duck = demo_settings(tmp_path / "duck")
    pg = demo_settings(tmp_path / "pg", warehouse_url=pg_url)
    duck_engine = warehouse.make_engine(duck.warehouse_url)
    pg_engine = warehouse.make_engine(pg.warehouse_url)
    jobs.run(duck, FULL, engine=duck_engine)
    jobs.run(pg, FULL, engine=pg_engine)
    a, b = _tables(duck_engine), _tables(pg_engine)
    for name in MARTS:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)
    # and a rerun on PostgreSQL is idempotent too
    jobs.run(pg, jobs.Interval(FULL.end, FULL.end), engine=pg_engine)
    c = _tables(pg_engine)
    for name in MARTS:
        pd.testing.assert_frame_equal(b[name], c[name], check_dtype=False, obj=name)
    pg_engine.dispose()
    duck_engine.dispose()
