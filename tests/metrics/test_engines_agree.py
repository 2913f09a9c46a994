"""DuckDB and PostgreSQL publish the same metrics: the full model set plus the Python impact metrics (publish)
on a small demo organisation, every mart_ and fct_ table compared sorted, floats to a relative 1e-9."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, warehouse
from tests.conftest import demo_settings

pytestmark = pytest.mark.postgres
FULL = jobs.Interval(dt.date(2026, 5, 1), dt.date(2026, 6, 19))  # 50 days: every 28-day alert window is live


def _published(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    out = {}
    for t in sorted(sa.inspect(engine).get_table_names()):
        if t.startswith(("mart_", "fct_")) and not t.endswith("__build"):
            df = warehouse.read_frame(engine, f"select * from {t}")
            for c in df.columns:
                if df[c].dtype == object:
                    df[c] = df[c].map(lambda v: float(v) if isinstance(v, decimal.Decimal) else v)
            out[t] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def test_duckdb_and_postgres_publish_the_same_metrics(tmp_path: Path, pg_url: str) -> None:
    duck = demo_settings(tmp_path / "duck", people=150, days=FULL.days.__len__())
    pg = demo_settings(tmp_path / "pg", warehouse_url=pg_url, people=150, days=FULL.days.__len__())
    duck_engine, pg_engine = warehouse.make_engine(duck.warehouse_url), warehouse.make_engine(pg_url)
    try:
        jobs.run(duck, FULL, engine=duck_engine)
        jobs.run(pg, FULL, engine=pg_engine)
        a, b = _published(duck_engine), _published(pg_engine)
        assert set(a) == set(b) and "mart_alerts" in a and "mart_esn_scorecard" in a
        for name in a:
            assert list(a[name].columns) == list(b[name].columns), name
            pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, rtol=1e-9, obj=name)
    finally:
        pg_engine.dispose()
        duck_engine.dispose()
