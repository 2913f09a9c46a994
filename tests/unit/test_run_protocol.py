"""The pieces of the run protocol: gapless partition commits, recovery of leftovers, pending journals
with tokens, run locks that name their holder."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import lake, runlock

D1, D2, D3 = dt.date(2026, 5, 1), dt.date(2026, 5, 2), dt.date(2026, 5, 3)


def test_a_reader_never_sees_a_partition_missing_while_it_is_rewritten(tmp_path):
    base = tmp_path / "t"
    lake.write_partition(base, D1, pa.table({"x": [0]}))
    stop, seen, missing = threading.Event(), set(), []

    def reader() -> None:
        while not stop.is_set():
            f = lake.partition_dir(base, D1) / lake.PART
            try:
                seen.add(pq.read_table(f).column("x")[0].as_py())
            except FileNotFoundError:
                missing.append(1)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(1, 200):
        lake.write_partition(base, D1, pa.table({"x": [i]}))
    stop.set()
    t.join()
    assert not missing, f"the partition was missing {len(missing)} time(s) during rewrites"
    assert len(seen) > 1 and lake.read_partition(base, D1).column("x").to_pylist() == [199]


def test_recover_removes_temporary_files_and_restores_the_old_two_rename_protocol(tmp_path):
    base = tmp_path / "raw" / "source=s" / "stream=m"
    lake.write_partition(base, D1, pa.table({"x": [1]}))
    (lake.partition_dir(base, D1) / f".{lake.PART}.tmp-abc").write_bytes(b"half a file")
    # a kill between the two renames of the earlier protocol: the old partition moved aside, no new one
    old = base / ".old-date=2026-05-02-0123456789abcdef"
    old.mkdir()
    pq.write_table(pa.table({"x": [2]}), old / lake.PART)
    (base / ".tmp-date=2026-05-02-fedcba").mkdir()
    # and one where the new partition made it: the old copy is only garbage
    lake.write_partition(base, D3, pa.table({"x": [3]}))
    (base / ".old-date=2026-05-03-00").mkdir()
    counts = lake.recover(tmp_path / "raw" / "source=s")
    assert counts == {"temporary_files": 1, "restored_partitions": 1, "stale_folders": 2}
    assert lake.read_partition(base, D2).column("x").to_pylist() == [2]
    assert lake.read_partition(base, D3).column("x").to_pylist() == [3]
    assert sorted(p.name for p in base.iterdir()) == ["date=2026-05-01", "date=2026-05-02", "date=2026-05-03"]
    assert os.listdir(lake.partition_dir(base, D1)) == [lake.PART]


def test_every_raw_write_is_journaled_before_the_file_lands(tmp_path, monkeypatch):
    lake_dir = tmp_path / "lake"
    base = lake.raw_dir(lake_dir, "slack", "messages")
    journal = lake.pending(lake_dir, "slack", "raw")
    seen_at_replace = []
    real_replace = os.replace

    def spy(src, dst):
        if str(dst).endswith(lake.PART):
            seen_at_replace.append(journal.days())
        return real_replace(src, dst)

    monkeypatch.setattr(lake.os, "replace", spy)
    lake.write_partition(base, D2, pa.table({"x": [1]}))
    assert seen_at_replace == [[D2]]
    lake.write_partition(lake.canonical_dir(lake_dir, "activities") / "source=slack", D3, pa.table({"x": [1]}))
    assert journal.days() == [D2], "canonical writes are not raw landings"


def test_pending_discard_keeps_a_day_added_again_meanwhile(tmp_path):
    journal = lake.pending(tmp_path, "s", "canonical")
    journal.add([D1, D2])
    snap = journal.snapshot()
    journal.add([D2])  # another run landed D2 again after the snapshot was taken
    assert journal.discard(snap) == 1
    assert journal.days() == [D2]
    assert journal.discard(journal.snapshot()) == 1 and journal.days() == []
    assert json.loads(journal.path.read_text()) == {}
    with pytest.raises(ValueError, match="unknown pending stage"):
        lake.pending(tmp_path, "s", "published")


def _hold_lock(lake_dir: str, ready, release) -> None:
    with runlock.hold(lake_dir, "run", interval="2026-05-01_2026-05-01"):
        ready.set()
        release.wait(30)


def test_a_second_holder_is_refused_with_who_holds_it_and_how_to_clear_it(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        t0 = time.monotonic()
        with pytest.raises(runlock.RunLocked) as err, runlock.hold(tmp_path, "run", wait_s=0.5):
            pass
        assert time.monotonic() - t0 >= 0.5
        message = str(err.value)
        assert f"pid {proc.pid}" in message and "2026-05-01_2026-05-01" in message
        assert "released when its process exits" in message and str(runlock.lock_dir(tmp_path)) in message
        with runlock.hold(tmp_path, "source=slack", wait_s=0):  # another scope is free
            pass
    finally:
        release.set()
        proc.join(30)
    with runlock.hold(tmp_path, "run", wait_s=0):  # released by the holder's exit
        pass


def test_a_killed_holder_releases_its_lock(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    proc.start()
    assert ready.wait(30)
    proc.kill()  # SIGKILL: no finally runs
    proc.join(30)
    with runlock.hold(tmp_path, "run", wait_s=5):
        pass
