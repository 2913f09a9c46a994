"""A real Airflow 3 for the tests: scheduler, DAG processor and execution API server, LocalExecutor, its
metadata DB in a PostgreSQL database of its own, in an isolated AIRFLOW_HOME.

Unlike `dag.test()` (one process running every task in turn), the scheduler hands the tasks to the
LocalExecutor's workers, each task runs in its own process through the task SDK's supervisor (which talks
to the execution API), so tasks of one or several DAG runs run at the same time, as in production.
By default the scheduler creates no runs of its own (`use_job_schedule=False`): only the runs a test
triggers exist. With `schedule=True` it runs as deployed: the DAGs' schedules, backfills and asset-triggered
runs (which Airflow only creates when `use_job_schedule` is on).

Every process is started by this module in a session of its own and stopped by its process group id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.airflow.conftest import base_env

PG_ADMIN = os.environ.get("ESN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FINISHED = {"success", "failed"}
_TRIGGER = """
import datetime as dt, json, sys
from airflow.api.common.trigger_dag import trigger_dag
from airflow.utils.types import DagRunTriggeredByType
dag_id, run_id, when, conf = sys.argv[1:5]
moment = dt.datetime.fromisoformat(when) if when else None
trigger_dag(dag_id, run_id=run_id, logical_date=moment, run_after=moment, conf=json.loads(conf) if conf else None,
            triggered_by=DagRunTriggeredByType.CLI)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def metadata_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one Airflow's metadata, dropped afterwards; skips the test when no
    server answers at PG_ADMIN (fails in CI, where one must)."""
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server here"
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN}: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN} ({type(exc).__name__}); set ESN_TEST_PG_URL or CI=1")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"create database {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"drop database if exists {name} with (force)")
        admin.dispose()


@dataclass
class DagRun:
    run_id: str
    run_type: str  # manual, scheduled, backfill, asset_triggered
    state: str | None
    logical_date: dt.datetime | None
    conf: dict[str, Any] | None


@dataclass
class TaskRun:
    task_id: str
    map_index: int
    state: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    try_number: int
    pool: str

    @property
    def key(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    def overlaps(self, other: TaskRun) -> bool:
        assert self.start and self.end and other.start and other.end, (self, other)
        return self.start < other.end and other.start < self.end


@dataclass
class RealAirflow:
    home: Path
    db_url: str  # SQLAlchemy URL of the metadata database (postgresql+psycopg://...)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 4
    schedule: bool = False  # True: the scheduler creates scheduled, backfill and asset-triggered runs
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = base_env(self.home)
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            # Airflow derives asyncpg from a postgresql URL; psycopg 3 (installed) is async too
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.db_url.replace("+psycopg:", "+psycopg_async:"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.schedule),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
        })
        env.update(self.extra_env)
        self.env = env
        self.engine = sa.create_engine(self.db_url, poolclass=sa.pool.NullPool)

    # ------------------------------------------------------------------------------------ processes
    def cli(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=str(self.home))
        assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    def start(self) -> None:
        commands = {
            "api-server": ["api-server", "--apps", "execution", "--host", "127.0.0.1", "--port", str(self.port),
                           "--workers", "1"],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
        }
        for name, args in commands.items():
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the process
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "airflow", *args], env=self.env,
                                                stdout=log, stderr=subprocess.STDOUT, cwd=str(self.home),
                                                start_new_session=True)
        self._wait(lambda: self._api_up(), 120, "the execution API server to answer")

    def _api_up(self) -> bool:
        self.check_alive()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/execution/health", timeout=2)
            return True
        except OSError as exc:  # HTTPError is an OSError: any answer means it is up
            return hasattr(exc, "code")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the group this module started (its own session)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.engine.dispose()

    def _wait(self, ready: Any, timeout: float, what: str, every: float = 1.0,
              detail: Callable[[], str] | None = None) -> Any:
        """Poll `ready` until it returns something true; on timeout fail with `detail()` (what the runs
        were doing) and the tail of each process's log."""
        deadline = time.monotonic() + timeout
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n"
                                     + (detail() + "\n" if detail else "")
                                     + "\n".join(f"--- {n}\n{self.log_tail(n, 30)}" for n in self.procs))
            time.sleep(every)

    # ------------------------------------------------------------------------------ metadata queries
    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).fetchall())

    def wait_parsed(self, dag_ids: list[str], timeout: float = 180) -> None:
        def parsed() -> bool:
            self.check_alive()
            have = {r[0] for r in self.query("select dag_id from serialized_dag")}
            return set(dag_ids) <= have

        self._wait(parsed, timeout, f"the DAG processor to serialise {dag_ids}")

    def trigger(self, dag_id: str, run_id: str, *, logical_date: str | None = None,
                conf: dict[str, Any] | None = None) -> str:
        """A manual run. With a logical date the run is also *due* at that date (run_after), as
        `dag.test(logical_date=...)` makes it, so its data interval is the last complete one before it
        (`airflow dags trigger -l` infers the interval from now instead)."""
        proc = subprocess.run([sys.executable, "-c", _TRIGGER, dag_id, run_id, logical_date or "",
                               json.dumps(conf) if conf is not None else ""],
                              env=self.env, capture_output=True, text=True, timeout=300, cwd=str(self.home))
        assert proc.returncode == 0, f"trigger {dag_id} {run_id} failed:\n{proc.stderr[-3000:]}"
        return run_id

    def dag_runs(self, dag_id: str) -> list[DagRun]:
        rows = self.query("select run_id, run_type, state, logical_date, conf from dag_run where dag_id = :d "
                          "order by id", d=dag_id)
        return [DagRun(r[0], str(r[1]), r[2], r[3], _json(r[4])) for r in rows]

    def xcoms(self, dag_id: str, run_id: str, task_id: str) -> dict[int, Any]:
        """The return values of one task of a run, by map index (-1 for an unmapped task)."""
        rows = self.query("select map_index, value from xcom where dag_id = :d and run_id = :r and task_id = :t "
                          "and key = 'return_value'", d=dag_id, r=run_id, t=task_id)
        return {int(m): _json(v) for m, v in rows}

    def describe(self, dag_ids: list[str]) -> str:
        """Every run of these DAGs with the state of each of its tasks, for failure messages."""
        lines = []
        for dag_id in dag_ids:
            for run in self.dag_runs(dag_id):
                tasks = ", ".join(f"{k}={t.state}" for k, t in sorted(self.task_runs(dag_id, run.run_id).items()))
                lines.append(f"{dag_id} {run.run_id} ({run.run_type}, {run.state}): {tasks or 'no task yet'}")
        return "\n".join(lines) or f"no run of {dag_ids}"

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("select state from dag_run where dag_id = :d and run_id = :r", d=dag_id, r=run_id)
        return str(rows[0][0]) if rows else None

    def task_runs(self, dag_id: str, run_id: str) -> dict[str, TaskRun]:
        rows = self.query("select task_id, map_index, state, start_date, end_date, try_number, pool "
                          "from task_instance where dag_id = :d and run_id = :r", d=dag_id, r=run_id)
        runs = [TaskRun(*r) for r in rows]
        return {t.key: t for t in runs}

    def wait_finished(self, runs: list[tuple[str, str]], timeout: float) -> dict[tuple[str, str], str]:
        """Wait for every (dag_id, run_id) to finish; fails at once on a task that failed or awaits a retry."""
        def finished() -> dict[tuple[str, str], str] | None:
            self.check_alive()
            for dag_id, run_id in runs:
                self.raise_on_failed_task(dag_id, run_id)
            states = {r: self.run_state(*r) for r in runs}
            return states if all(s in FINISHED for s in states.values()) else None

        return self._wait(finished, timeout, f"the runs {runs} to finish", every=2.0,
                          detail=lambda: self.describe(sorted({d for d, _ in runs})))

    def raise_on_failed_task(self, dag_id: str, run_id: str) -> None:
        """Fail with the failed tasks' log tails when a task of the run failed or awaits a retry (every run
        of these tests must succeed at its first try)."""
        tasks = self.task_runs(dag_id, run_id)
        bad = {k: t.state for k, t in tasks.items() if t.state in ("failed", "up_for_retry", "upstream_failed")}
        if bad:
            logs = "\n".join(self.task_log_tail(dag_id, run_id, tasks[k]) for k, s in bad.items() if s != "upstream_failed")
            raise AssertionError(f"{dag_id} {run_id}: {bad}\n{logs}")

    def task_log_tail(self, dag_id: str, run_id: str, task: TaskRun, lines: int = 40) -> str:
        """The last lines of one task's log (its latest try)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task.task_id}"
        if task.map_index >= 0:
            folder = folder / f"map_index={task.map_index}"
        files = sorted(folder.glob("attempt=*.log"))
        if not files:
            return f"=== {task.key}: no log in {folder}"
        text = files[-1].read_text(errors="replace").splitlines()[-lines:]
        return f"=== {files[-1]}\n" + "\n".join(text)

    def task_log_files(self, dag_id: str | None = None, run_id: str | None = None) -> list[Path]:
        """The task logs (logs/dag_id=*/run_id=*/task_id=*/...), of one DAG or run when given."""
        root = self.home / "logs"
        pattern = f"dag_id={dag_id or '*'}/run_id={run_id or '*'}/**/*.log"
        return sorted(p for p in root.glob(pattern) if p.is_file())

    def task_logs_text(self, dag_id: str | None = None, run_id: str | None = None) -> str:
        return "\n".join(f"=== {p}\n{p.read_text(errors='replace')}" for p in self.task_log_files(dag_id, run_id))


def _json(value: Any) -> Any:
    """A JSON column's value: psycopg decodes jsonb itself; a JSON text is decoded here."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
