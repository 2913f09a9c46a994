"""Helpers shared by the vendor tests: a source context, canonical activities of a landing, and a
privacy scan of every file a run wrote (Parquet cells, text files, warehouse tables)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import lake
from tests.connectors.conftest import KEY, make_ctx

__all__ = ["KEY", "activities", "leaks", "make_ctx"]


def activities(canonicalise: Callable[[Any, dt.date], dict[str, pd.DataFrame]], ctx: Any,
               start: dt.date, end: dt.date) -> pd.DataFrame:
    frames = [canonicalise(ctx, d).get("activities") for d in lake.days_between(start, end)]
    df = pd.concat([f for f in frames if f is not None], ignore_index=True)
    return df.sort_values("event_id").reset_index(drop=True)


def leaks(root: Path, needles: Iterable[str]) -> list[str]:
    """The needles (raw ids, emails, texts) found in anything written under `root`."""
    cells: list[str] = []
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing written under {root}"
    for p in files:
        if p.suffix == ".parquet":
            table = pq.read_table(p)
            cells += [str(v) for col in table.columns for v in col.to_pylist()]
            cells += table.column_names
        elif p.suffix == ".duckdb":
            engine = sa.create_engine(f"duckdb:///{p}")
            with engine.connect() as conn:
                for schema, table in conn.execute(sa.text("select table_schema, table_name from information_schema.tables")).all():
                    for row in conn.execute(sa.text(f'select * from "{schema}"."{table}"')).all():  # noqa: S608
                        cells += [str(v) for v in row]
            engine.dispose()
        elif not p.name.endswith(".wal"):
            cells.append(p.read_bytes().decode(errors="replace"))
    blob = "\n".join(cells).lower()
    return [n for n in needles if n and n.lower() in blob]
