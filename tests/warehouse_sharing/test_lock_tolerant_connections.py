"""The warehouse holds a DuckDB file only while it uses it, and waits for another process's lock.

`make_engine` gives a DuckDB file a NullPool (a released connection closes the file: another process can
open it at once) and opens each connection through `duckdb_access.retry_locked`: while another process
holds the file, it waits with back-off up to $ESN_DUCKDB_LOCK_WAIT_S, logging the holder's PID; the state
store reads at the start and commits at the end, holding nothing in between.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import duckdb_access
from pipelines.connectors.state import open_state
from pipelines.warehouse import make_engine

HOLD = r"""
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists held (a integer)")
print("HELD", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""
WRITE = r"""
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists other_process (a integer)")
con.close()
print("WROTE")
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "HELD", proc.stderr
    return proc


def _other_process_writes(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WRITE, str(path)], capture_output=True, text=True, timeout=60)


def test_a_released_connection_frees_the_file_for_another_process(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("create table t as select 1 a")
    # the engine is not disposed: with a pool keeping its connection, this would fail on the lock
    done = _other_process_writes(path)
    assert done.returncode == 0 and "WROTE" in done.stdout, done.stderr[-2000:]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from other_process").scalar_one() == 0
    engine.dispose()


def test_a_connection_waits_for_the_holder_and_logs_its_pid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv(duckdb_access.LOCK_WAIT_ENV, "60")
    holder = _hold(path, 1.5)
    engine = make_engine(f"duckdb:///{path}")
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="pipelines.duckdb_access"), engine.connect() as conn:
        waited = time.perf_counter() - t0
        assert conn.exec_driver_sql("select count(*) from held").scalar_one() == 0
    engine.dispose()
    holder.wait(timeout=30)
    assert 0.5 < waited < 30, waited
    assert f"PID {holder.pid}" in caplog.text and "locked" in caplog.text


def test_the_wait_is_bounded_by_the_setting_and_names_the_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv(duckdb_access.LOCK_WAIT_ENV, "0.5")
    holder = _hold(path, 20)
    try:
        engine = make_engine(f"duckdb:///{path}")
        t0 = time.perf_counter()
        with pytest.raises(duckdb_access.DuckDBLockTimeout, match=f"PID {holder.pid}"), engine.connect():
            pass
        assert time.perf_counter() - t0 < 10
        engine.dispose()
    finally:
        holder.kill()
        holder.wait()


def test_retry_locked_backs_off_then_succeeds_and_raises_other_errors_at_once() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    calls = [0]

    def open_() -> str:
        calls[0] += 1
        if calls[0] <= 5:
            raise OSError('IO Error: Could not set lock on file "/w.duckdb": Conflicting lock is held in '
                          "/usr/bin/python3 (PID 4242). See also https://duckdb.org/docs")
        return "connection"

    assert duckdb_access.retry_locked(open_, what="w", wait_s=10, sleep=sleep, clock=lambda: now[0]) == "connection"
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]
    with pytest.raises(ValueError, match="boom"):
        duckdb_access.retry_locked(lambda: (_ for _ in ()).throw(ValueError("boom")), what="w", wait_s=10,
                                   sleep=sleep, clock=lambda: now[0])
    assert duckdb_access.lock_holder(OSError("... Conflicting lock is held in /usr/bin/python3 (PID 4242). ...")) \
        == "PID 4242 (/usr/bin/python3)"


def test_the_lock_wait_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(duckdb_access.LOCK_WAIT_ENV, raising=False)
    assert duckdb_access.lock_wait_seconds() == 600
    monkeypatch.setenv(duckdb_access.LOCK_WAIT_ENV, "soon")
    with pytest.raises(ValueError, match=duckdb_access.LOCK_WAIT_ENV):
        duckdb_access.lock_wait_seconds()


def test_the_state_store_holds_no_connection_during_the_extraction(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    url = f"duckdb:///{path}"
    with open_state(url, "slack") as store:
        store.commit({("history", "first_day"): "2026-05-01"}, stamp="r1")
    with open_state(url, "slack") as store:
        assert store.get("history", "first_day") == "2026-05-01"
        # mid-extraction: another process (a parallel task, the network stage, a reader) opens the file
        done = _other_process_writes(path)
        assert done.returncode == 0 and "WROTE" in done.stdout, done.stderr[-2000:]
        assert store.load("threads") == {}
        store.commit({("threads", "C1:1.0"): {"reply_count": 2}, ("history", "first_day"): None}, stamp="r2")
        assert store.load("threads") == {"C1:1.0": {"reply_count": 2}}
        assert store.get("history", "first_day", "gone") == "gone"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("select stream, state_key, value, updated_at from esn_internal.etl_source_state "
                                    "order by all").fetchall()
        assert conn.exec_driver_sql("select count(*) from other_process").scalar_one() == 0
    engine.dispose()
    assert [tuple(r) for r in rows] == [("threads", "C1:1.0", '{"reply_count": 2}', "r2")]
