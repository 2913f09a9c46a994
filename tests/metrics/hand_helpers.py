"""Helpers of the hand-computed tests: build a warehouse from a hand fixture and compare published rows."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse


def build(tmp: Path, acts: pd.DataFrame, people: pd.DataFrame, conts: pd.DataFrame | None,
          start: dt.date, end: dt.date) -> sa.Engine:
    from conftest import load_lake, run_models  # noqa: PLC0415  (tests/metrics/conftest.py)

    engine = warehouse.make_engine(f"duckdb:///{tmp / 'hand.duckdb'}")
    load_lake(engine, acts, people, conts)
    run_models(engine, start, end, min_group_size=1)
    return engine


def row(engine: sa.Engine, table: str, **where: Any) -> dict[str, Any]:
    cond = " and ".join(f"{k} = :{k}" for k in where)
    df = warehouse.read_frame(engine, f"select * from {table} where {cond}", where)
    assert len(df) == 1, f"{table} {where}: {len(df)} rows"
    return df.iloc[0].to_dict()


def check(engine: sa.Engine, table: str, expected: dict[str, Any], covered: set[str], **where: Any) -> None:
    """The one row of `table` at `where` has the expected values (floats to 1e-9; None means NULL)."""
    got = row(engine, table, **where)
    covered.update(f"{table}.{k}" for k in where)  # the row exists with exactly these key values
    wrong = {}
    for col, want in expected.items():
        covered.add(f"{table}.{col}")
        have = got[col]
        if want is None:
            ok = have is None or (isinstance(have, float) and math.isnan(have)) or pd.isna(have)
        elif isinstance(want, float):
            ok = have is not None and not pd.isna(have) and math.isclose(float(have), want, abs_tol=1e-9)
        else:
            ok = have == want
        if not ok:
            wrong[col] = (have, want)
    assert not wrong, f"{table} {where}: (got, expected) {wrong}"
