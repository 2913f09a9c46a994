"""The Parquet lake: raw landing and canonical tables, Hive-partitioned by date, written atomically.

Layout under `lake_dir`:
  raw/source=<s>/stream=<stream>/date=<YYYY-MM-DD>/part-0.parquet      as landed (already pseudonymised)
  canonical/<table>/source=<s>/date=<YYYY-MM-DD>/part-0.parquet         canonical model (pipelines.model)
  quarantine/...                                                        batches/records that failed
  _state/pending/source=<s>/{raw,canonical}.json                        days not yet carried downstream
  _state/locks/                                                         run locks (pipelines.runlock)

Commit protocol of a partition: the new file is written beside the old one under a hidden temporary
name (`.part-0.parquet.tmp-<uuid>`), fsynced, then renamed over `part-0.parquet` with one `rename(2)`,
which is atomic: a reader, and a crash at any instant, sees the old file or the new one, never none and
never half of one. Leftover temporary files (a kill before the rename) are removed by `recover`, which
also repairs partitions left by the earlier two-rename protocol (`.old-date=…`, `.tmp-date=…`).

Nothing is forgotten between steps: every raw partition written is first recorded in the source's
pending journal (`pending(lake, source, "raw")`, fsynced before the file is renamed into place), so the
next stage covers that day even if the run is killed right after; `land` moves the days it landed to
the `canonical` journal, and publish consumes them only after the warehouse transaction committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import crashpoints

log = logging.getLogger(__name__)

COMPRESSION = "zstd"
PART = "part-0.parquet"
_TMP_PREFIX = f".{PART}.tmp-"


def partition_dir(base: Path, day: dt.date) -> Path:
    return base / f"date={day.isoformat()}"


def raw_dir(lake_dir: Path, source: str, stream: str) -> Path:
    return lake_dir / "raw" / f"source={source}" / f"stream={stream}"


def canonical_dir(lake_dir: Path, table: str) -> Path:
    return lake_dir / "canonical" / table


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a rename is durable once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _raw_owner(base: Path) -> tuple[Path, str] | None:
    """(lake_dir, source) when `base` is a raw stream folder `<lake>/raw/source=<s>/stream=<x>`."""
    src = base.parent
    if src.name.startswith("source=") and src.parent.name == "raw" and base.name.startswith("stream="):
        return src.parent.parent, src.name.removeprefix("source=")
    return None


def write_partition(base: Path, day: dt.date, table: pa.Table) -> Path:
    """Atomically replace the partition `base/date=day` with `table` (one Parquet file), durably."""
    target = partition_dir(base, day)
    new_dir = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    owner = _raw_owner(base)
    if owner is not None:  # intent first: a kill after the rename must not let the day be forgotten
        pending(owner[0], owner[1], "raw").add([day])
    kind = "raw" if owner is not None else "canonical"
    tmp = target / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        pq.write_table(table, tmp, compression=COMPRESSION)
        fsync_path(tmp)
        crashpoints.reached(f"lake.{kind}.before_replace")
        os.replace(tmp, target / PART)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_path(target)
    if new_dir:
        fsync_path(target.parent)
    crashpoints.reached(f"lake.{kind}.after_replace")
    return target


def recover(root: Path) -> dict[str, int]:
    """Clean what a killed writer left under `root` (a source's raw or canonical folders): temporary
    partition files are removed (the partition keeps its previous file), and partitions of the earlier
    two-rename protocol are restored (`.old-date=D-…` put back when `date=D` lost its file, else removed;
    `.tmp-date=…` removed). Call it under the lock of whoever writes `root`."""
    counts = {"temporary_files": 0, "restored_partitions": 0, "stale_folders": 0}
    if not root.exists():
        return counts
    for tmp in root.rglob(f"{_TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
        counts["temporary_files"] += 1
    for old in sorted(root.rglob(".old-date=*")):
        name = old.name.removeprefix(".old-")[: len("date=YYYY-MM-DD")]
        target = old.parent / name
        if not (target / PART).exists() and (old / PART).exists():
            if target.exists():
                shutil.rmtree(target)
            os.rename(old, target)
            counts["restored_partitions"] += 1
        else:
            shutil.rmtree(old, ignore_errors=True)
            counts["stale_folders"] += 1
    for tmp_dir in root.rglob(".tmp-date=*"):
        shutil.rmtree(tmp_dir, ignore_errors=True)
        counts["stale_folders"] += 1
    if any(counts.values()):
        log.warning("recovered the leftovers of an interrupted write under %s: %s", root, counts)
    return counts


def partition_files(base: Path, days: Iterable[dt.date]) -> list[Path]:
    files = []
    for day in days:
        f = partition_dir(base, day) / PART
        if f.exists():
            files.append(f)
    return files


def read_partition(base: Path, day: dt.date) -> pa.Table | None:
    f = partition_dir(base, day) / PART
    return pq.read_table(f) if f.exists() else None


def partition_days(base: Path) -> list[dt.date]:
    if not base.exists():
        return []
    out = []
    for p in base.iterdir():
        if p.is_dir() and p.name.startswith("date=") and (p / PART).exists():
            out.append(dt.date.fromisoformat(p.name[5:]))
    return sorted(out)


def latest_on_or_before(base: Path, day: dt.date) -> dt.date | None:
    days = [d for d in partition_days(base) if d <= day]
    return days[-1] if days else None


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# ------------------------------------------------------------------------------------ pending journals
class PendingDays:
    """A durable set of days of one source waiting for the next step (`raw`: landed by an extraction,
    not yet in the canonical lake; `canonical`: landed, not yet published). Each day carries a token
    renewed whenever the day is added again, so that a consumer discards only what it covered: a day
    re-added meanwhile (another run rewrote it) stays pending. Updates are read-modify-write under an
    flock of the journal, written to a temporary file, fsynced and renamed (never half a journal)."""

    def __init__(self, lake_dir: Path, source: str, stage: str):
        self.path = Path(lake_dir) / "_state" / "pending" / f"source={source}" / f"{stage}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def _write(self, entries: dict[str, str]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp-{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(dict(sorted(entries.items())), indent=0))
        fsync_path(tmp)
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)

    def snapshot(self) -> dict[str, str]:
        """ISO day -> token, as it is now."""
        with self._locked():
            return self._read()

    def days(self) -> list[dt.date]:
        return sorted(dt.date.fromisoformat(d) for d in self.snapshot())

    def add(self, days: Iterable[dt.date]) -> None:
        days = list(days)
        if not days:
            return
        with self._locked():
            entries = self._read()
            for d in days:
                entries[d.isoformat()] = uuid.uuid4().hex[:12]
            self._write(entries)

    def discard(self, covered: dict[str, str]) -> int:
        """Remove the days of `covered` (a snapshot) whose token did not change since; returns how many."""
        if not covered:
            return 0
        with self._locked():
            entries = self._read()
            gone = [d for d, token in covered.items() if entries.get(d) == token]
            for d in gone:
                del entries[d]
            if gone:
                self._write(entries)
            return len(gone)


def pending(lake_dir: Path, source: str, stage: str) -> PendingDays:
    if stage not in ("raw", "canonical"):
        raise ValueError(f"unknown pending stage {stage!r}")
    return PendingDays(lake_dir, source, stage)
