"""The Parquet lake: raw landing and canonical tables, Hive-partitioned by date, written atomically.

Layout under `lake_dir`:
  raw/source=<s>/stream=<stream>/date=<YYYY-MM-DD>/part-0.parquet      as landed (already pseudonymised)
  canonical/<table>/date=<YYYY-MM-DD>/part-0.parquet                    canonical model (pipelines.model)
  quarantine/<table>/date=<YYYY-MM-DD>/<run>/...                        batches that failed validation
A partition is written to a temporary sibling directory and swapped in with renames, so a reader sees
the old partition or the new one, never half of one, and a rerun of a date replaces exactly that date.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"


def partition_dir(base: Path, day: dt.date) -> Path:
    return base / f"date={day.isoformat()}"


def raw_dir(lake_dir: Path, source: str, stream: str) -> Path:
    return lake_dir / "raw" / f"source={source}" / f"stream={stream}"


def canonical_dir(lake_dir: Path, table: str) -> Path:
    return lake_dir / "canonical" / table


def write_partition(base: Path, day: dt.date, table: pa.Table, *, extra_files: dict[str, bytes] | None = None) -> Path:
    """Atomically replace the partition `base/date=day` with `table` (one Parquet file)."""
    target = partition_dir(base, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        pq.write_table(table, tmp / "part-0.parquet", compression=COMPRESSION)
        for name, content in (extra_files or {}).items():
            (tmp / name).write_bytes(content)
        _swap(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _swap(new: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".old-{target.name}-{uuid.uuid4().hex}"
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def partition_files(base: Path, days: Iterable[dt.date]) -> list[Path]:
    files = []
    for day in days:
        f = partition_dir(base, day) / "part-0.parquet"
        if f.exists():
            files.append(f)
    return files


def read_partition(base: Path, day: dt.date) -> pa.Table | None:
    f = partition_dir(base, day) / "part-0.parquet"
    return pq.read_table(f) if f.exists() else None


def partition_days(base: Path) -> list[dt.date]:
    if not base.exists():
        return []
    out = []
    for p in base.iterdir():
        if p.is_dir() and p.name.startswith("date=") and (p / "part-0.parquet").exists():
            out.append(dt.date.fromisoformat(p.name[5:]))
    return sorted(out)


def latest_on_or_before(base: Path, day: dt.date) -> dt.date | None:
    days = [d for d in partition_days(base) if d <= day]
    return days[-1] if days else None


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
