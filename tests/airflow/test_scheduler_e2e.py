"""End to end under a REAL scheduler, as an on-call data engineer runs the DAGs: the scheduler, DAG
processor and execution API (LocalExecutor, PostgreSQL metadata DB, loopback only) run as deployed, with
their own schedules on (`use_job_schedule`), and the runs are made through Airflow's CLI:

- `esn_daily` maps two demo sources (two organisations) in parallel; its runs are
  - a manual run for a given day (`airflow dags trigger --conf '{"date": D}'`),
  - a manual run with a logical date and no conf (`airflow dags trigger --logical-date D`): day D,
  - a 3-day backfill (`airflow backfill create`), WITHOUT --max-active-runs: its days run in parallel,
  - the scheduled run the scheduler makes itself (catchup off: the last complete day, yesterday);
- `esn_network` runs only from the asset events of `publish_warehouse` (never triggered here);
- `esn_reports` is triggered for a day and sends through the Airflow SMTP connection
  (`AIRFLOW_CONN_SMTP_DEFAULT`) to an SMTP server on loopback; the scheduler also makes its own run of
  the latest 07:00 UTC (catchup off), as of the day before, on which nothing is due here.

Every run must succeed at its first try, and process exactly the days asked for, read from what the runs
left: each task's return value (XCom), the warehouse's lake tables, the network tables, the emails.

All of it runs once for the module (one Airflow start); the tests below each check one aspect of it.
Measured on the 2-core development machine while other suites ran: 14.6 min at a load of ~11 (12 min of
it the esn_daily runs), 10.4 min at ~5 (8.8 min). The critical path is the three non-backfill runs, which the DAG's
max_active_runs=1 runs one after another; the backfill's three days run beside them. Every wait has a timeout whose message shows the runs' task states and the tail of
each Airflow process's log. The days are relative to today (the scheduled run's day is yesterday), inside
the demo organisations' history.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.airflow.conftest import REPO
from tests.airflow.real_airflow import DagRun, RealAirflow, TaskRun, metadata_database

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

KEY = "test-key-not-a-secret-for-the-scheduler-e2e"
SOURCES = {"demo_a": 1, "demo_b": 2}  # name -> seed: two different organisations
CEO, ONCALL = "ceo@demo-corp.example", "oncall@demo-corp.example"
DAGS = ["esn_daily", "esn_network", "esn_reports"]


@dataclass
class Days:
    """The days each kind of run is asked for, relative to the day the test starts."""

    today: dt.date

    def ago(self, n: int) -> dt.date:
        return self.today - dt.timedelta(days=n)

    @property
    def manual_date(self) -> dt.date:
        return self.ago(6)

    @property
    def manual_logical(self) -> dt.date:
        return self.ago(5)

    @property
    def backfill(self) -> list[dt.date]:
        return [self.ago(4), self.ago(3), self.ago(2)]

    @property
    def reports_as_of(self) -> dt.date:
        """A published day (a backfill day) the weekly period is made to close on: three days ago, so that
        the scheduler's own run of the daily esn_reports (as of yesterday, or of the day before when the
        test starts before 07:00 UTC) falls on another weekday and has nothing due."""
        return self.ago(3)


@dataclass
class Outcome:
    """What the module's Airflow did, collected before it was stopped."""

    days: Days
    airflow: RealAirflow
    runs: dict[str, list[DagRun]]
    tasks: dict[tuple[str, str], dict[str, TaskRun]]
    xcoms: dict[tuple[str, str, str], dict[int, Any]]
    expected: dict[str, dt.date]  # esn_daily run_id -> the day it must process
    told: dict[str, set[tuple[str, str, str]]]  # esn_daily run_id -> its tasks' "processes A .. B (from R)"
    lake_days: dict[str, set[dt.date]]  # the warehouse's lake_activities: source -> days
    network_days: dict[dt.date, int]  # fct_person_network: window_end -> people
    emails: list[tuple[list[str], Message]]
    logs: str
    seconds: dict[str, float] = field(default_factory=dict)


class _Inbox:
    """aiosmtpd's handler: every message it accepts, with its envelope recipients."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:  # aiosmtpd's own start-up check needs a real port
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, days: Days, as_of: dt.date) -> Path:
    # the organisations' history starts 30 days ago and goes on past today: every day asked has data
    demo = {"people": 60, "days": 45, "start": days.ago(30).isoformat()}
    config = root / "esn.yaml"
    config.write_text(yaml.safe_dump({
        "lake_dir": str(root / "lake"),
        "warehouse_url": f"duckdb:///{root / 'warehouse.duckdb'}",
        "sources": [{"name": name, "kind": "demo", "options": {**demo, "seed": seed}}
                    for name, seed in SOURCES.items()],
        "alerts": {"email_on_failure": [ONCALL]},
        "reports": {
            "organisation_name": "Demo Corp", "output_dir": str(root / "reports"),
            "catalogue_path": str(REPO / "catalogue" / "metrics.yaml"),
            "weekly_on": as_of.weekday(),  # the weekly period closes on the day the reports are asked for
            "audiences": [{"name": "leadership", "recipients": [CEO]}],
            # through the Airflow connection only: a missing connection fails instead of using smtplib
            "delivery": {"sender": "esn@demo-corp.example", "transport": "airflow", "backoff_seconds": 0}},
    }))
    return config


def _day(run: DagRun) -> dt.date:
    assert run.logical_date is not None, run
    return run.logical_date.astimezone(dt.UTC).date()


def _wait_daily(airflow: RealAirflow, count: int, timeout: float) -> list[DagRun]:
    """Wait until esn_daily has `count` runs, all finished; fails at once on a failed task."""
    def done() -> list[DagRun] | None:
        airflow.check_alive()
        runs = airflow.dag_runs("esn_daily")
        for run in runs:
            airflow.raise_on_failed_task("esn_daily", run.run_id)
        finished = len(runs) >= count and all(r.state in ("success", "failed") for r in runs)
        return runs if finished else None

    return airflow._wait(done, timeout, f"{count} esn_daily runs to finish", every=3.0,
                         detail=lambda: airflow.describe(DAGS))


def _network_end_dates(airflow: RealAirflow) -> set[dt.date]:
    found: set[dt.date] = set()
    for run in airflow.dag_runs("esn_network"):
        for value in airflow.xcoms("esn_network", run.run_id, "compute_network").values():
            found |= {dt.date.fromisoformat(k) for k in (value or {})}
    return found


def _wait_network(airflow: RealAirflow, days: set[dt.date], timeout: float) -> None:
    """Wait until the asset-triggered network runs have computed every published day and none is left
    queued or running."""
    def done() -> bool:
        airflow.check_alive()
        runs = airflow.dag_runs("esn_network")
        for run in runs:
            airflow.raise_on_failed_task("esn_network", run.run_id)
        queued = airflow.query("select count(*) from asset_dag_run_queue where target_dag_id = 'esn_network'")[0][0]
        return (not queued and all(r.state == "success" for r in runs)
                and days <= _network_end_dates(airflow))

    airflow._wait(done, timeout, f"esn_network to compute the windows ending {sorted(map(str, days))}",
                  every=3.0, detail=lambda: airflow.describe(["esn_daily", "esn_network"])
                  + f"\nnetwork end dates computed: {sorted(map(str, _network_end_dates(airflow)))}")


_PROCESSES = re.compile(r"esn_daily processes (\d{4}-\d\d-\d\d) \.\. (\d{4}-\d\d-\d\d) \(from ([^)]*)\)")


def _told(airflow: RealAirflow, run_id: str) -> set[tuple[str, str, str]]:
    """What the tasks of one esn_daily run logged as the days they process, and why (dags/esn_daily.py)."""
    return {m.groups() for path in airflow.task_log_files("esn_daily", run_id)
            for m in _PROCESSES.finditer(path.read_text(errors="replace"))}


def _trigger(airflow: RealAirflow, dag_id: str, run_id: str, *args: str) -> str:
    airflow.cli("dags", "trigger", dag_id, "--run-id", run_id, *args, timeout=180)
    return run_id


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    from aiosmtpd.controller import Controller

    root = tmp_path_factory.mktemp("scheduler_e2e")
    days = Days(dt.datetime.now(dt.UTC).date())
    as_of = days.reports_as_of
    config = _config(root, days, as_of)
    inbox = _Inbox()
    smtp_port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    t = {"start": time.perf_counter()}
    with metadata_database("esn_e2e_airflow") as db_url:
        airflow = RealAirflow(root / "airflow_home", db_url, schedule=True, extra_env={
            "ESN_CONFIG": str(config), "ESN_PSEUDONYM_KEY": KEY,
            # plain SMTP on loopback (no TLS, no login), as a deployment defines the connection
            "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://127.0.0.1:{smtp_port}?disable_tls=true&disable_ssl=true"
                                         "&timeout=10&retry_limit=1"})
        airflow.cli("db", "migrate", timeout=600)
        # the pools, created as a deployment creates them (the stack's init, docs/bi.md)
        airflow.cli("pools", "set", "esn_warehouse", "1", "esn-metrics warehouse writers")
        airflow.cli("pools", "set", "esn_extract", "4", "esn-metrics source extractions")
        t["migrated"] = time.perf_counter()
        controller.start()
        airflow.start()
        try:
            airflow.wait_parsed(DAGS)
            t["parsed"] = time.perf_counter()
            expected = {
                _trigger(airflow, "esn_daily", "manual-date", "--conf",
                         json.dumps({"date": days.manual_date.isoformat()})): days.manual_date,
                _trigger(airflow, "esn_daily", "manual-logical-date", "--logical-date",
                         f"{days.manual_logical.isoformat()}T00:00:00+00:00"): days.manual_logical,
            }
            # Airflow 3 runs a backfill's days in parallel (max_active_runs 10 unless given): left so
            airflow.cli("backfill", "create", "--dag-id", "esn_daily", "--from-date", days.backfill[0].isoformat(),
                        "--to-date", days.backfill[-1].isoformat(), timeout=180)
            # 2 manual runs, 3 backfill runs and the scheduled run of yesterday (catchup off)
            daily = _wait_daily(airflow, 6, timeout=1500)
            t["daily"] = time.perf_counter()
            for run in daily:
                if run.run_type in ("backfill", "scheduled"):  # the data interval: logical date D covers D
                    expected[run.run_id] = _day(run)
            _wait_network(airflow, set(expected.values()), timeout=600)
            t["network"] = time.perf_counter()
            reports = _trigger(airflow, "esn_reports", "reports-as-of", "--conf",
                               json.dumps({"as_of": as_of.isoformat()}))
            airflow.wait_finished([("esn_reports", reports)], 300)
            t["reports"] = time.perf_counter()
            runs = {d: airflow.dag_runs(d) for d in DAGS}
            tasks = {(d, r.run_id): airflow.task_runs(d, r.run_id) for d in DAGS for r in runs[d]}
            xcoms = {(d, r.run_id, task): airflow.xcoms(d, r.run_id, task)
                     for d in DAGS for r in runs[d] for task in {k.split("[")[0] for k in tasks[(d, r.run_id)]}}
        finally:
            airflow.stop()
            controller.stop()
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        con.execute("set search_path = 'esn_internal,esn_marts,esn_staging'")
        lake_days: dict[str, set[dt.date]] = {}
        for source, day in con.execute("select distinct source, activity_date from lake_activities").fetchall():
            lake_days.setdefault(source, set()).add(day)
        network_days = dict(con.execute("select window_end, count(*) from fct_person_network "
                                        "group by window_end").fetchall())
    emails = [(rcpt, message_from_bytes(content)) for rcpt, content in inbox.messages]
    seconds = {"migrate+pools": t["migrated"] - t["start"], "start+parse": t["parsed"] - t["migrated"],
               "esn_daily runs": t["daily"] - t["parsed"], "network after": t["network"] - t["daily"],
               "reports": t["reports"] - t["network"], "total": time.perf_counter() - t["start"]}
    print("\nscheduler e2e: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    told = {r.run_id: _told(airflow, r.run_id) for r in runs["esn_daily"]}
    yield Outcome(days, airflow, runs, tasks, xcoms, expected, told, lake_days, network_days, emails,
                  airflow.task_logs_text(), seconds)


def _states(outcome: Outcome) -> dict[str, str | None]:
    return {f"{d} {r.run_id}": r.state for d in DAGS for r in outcome.runs[d]}


def test_every_run_and_task_succeeds_at_its_first_try(outcome: Outcome) -> None:
    assert set(_states(outcome).values()) == {"success"}, _states(outcome)
    every = {f"{d} {run_id} {k}": t for (d, run_id), tasks in outcome.tasks.items() for k, t in tasks.items()}
    assert {k: t.state for k, t in every.items()} == {k: "success" for k in every}
    assert {k: t.try_number for k, t in every.items()} == {k: 1 for k in every}
    kinds = sorted(r.run_type for r in outcome.runs["esn_daily"])
    assert kinds == ["backfill"] * 3 + ["manual"] * 2 + ["scheduled"], kinds
    # esn_network was never triggered by hand: only publish_warehouse's asset events started it
    assert {r.run_type for r in outcome.runs["esn_network"]} == {"asset_triggered"}, outcome.runs["esn_network"]
    # the tasks ran where the deployment's pools say
    for (dag_id, _), tasks in outcome.tasks.items():
        for key, task in tasks.items():
            if key.startswith("extract_source"):
                assert task.pool == "esn_extract", (dag_id, key, task.pool)
            if key in ("publish_warehouse", "compute_network"):
                assert task.pool == "esn_warehouse", (dag_id, key, task.pool)
    # the warehouse writers of every DAG share the one-slot pool: never two at the same time
    writers = sorted((t.start, t.end, f"{d} {run_id} {k}") for (d, run_id), tasks in outcome.tasks.items()
                     for k, t in tasks.items() if t.pool == "esn_warehouse" and t.start and t.end)
    assert len(writers) >= 7, writers  # six publishes and at least one network run
    for before, after in zip(writers, writers[1:], strict=False):
        assert before[1] <= after[0], (before, after)
    for needle in ("Could not set lock", "DuckDBLockTimeout", "ExpectationSuite() argument after **"):
        assert needle not in outcome.logs, needle


def test_each_daily_run_processes_exactly_the_day_it_was_asked_for(outcome: Outcome) -> None:
    days = outcome.days
    by_id = {r.run_id: r for r in outcome.runs["esn_daily"]}
    backfill = sorted(_day(r) for r in by_id.values() if r.run_type == "backfill")
    assert backfill == days.backfill, backfill
    scheduled = [_day(r) for r in by_id.values() if r.run_type == "scheduled"]
    assert scheduled in ([days.ago(1)], [days.today]), scheduled  # yesterday (today if run past midnight)
    assert outcome.expected["manual-date"] == days.manual_date
    assert outcome.expected["manual-logical-date"] == days.manual_logical
    assert set(outcome.expected) == set(by_id), (outcome.expected, sorted(by_id))
    why = {"manual-date": "param 'date'", "manual-logical-date": "the manual run's logical date"}
    for run_id, day in outcome.expected.items():
        # every task of the run said it processes that day, for the reason its kind of run gives
        reason = why.get(run_id, "the run's data interval")
        assert outcome.told[run_id] == {(day.isoformat(), day.isoformat(), reason)}, (run_id, outcome.told[run_id])
        # each source was asked for that one day ...
        extracted = outcome.xcoms[("esn_daily", run_id, "extract_source")]
        assert sorted(v["source"] for v in extracted.values()) == sorted(SOURCES), (run_id, extracted)
        assert {v["days"] for v in extracted.values()} == {1}, (run_id, extracted)
        # ... and its batch ends on it; a batch also covers an earlier day another run extracted and had
        # not yet staged (the raw journal, jobs.covered_interval): the parallel backfill makes some
        for stage in ("land_source", "publish_warehouse"):
            for value in outcome.xcoms[("esn_daily", run_id, stage)].values():
                start, end = (dt.date.fromisoformat(d) for d in value.get("batch", value.get("interval")).split("_"))
                assert end == day and start <= day, (run_id, stage, day, value)
        landed = outcome.xcoms[("esn_daily", run_id, "land_source")]
        assert all(v["activities"] > 0 for v in landed.values()), (run_id, landed)
    # together the runs published exactly the days asked for: none missing, none extra, in both sources
    asked = set(outcome.expected.values())
    assert len(asked) == 6, outcome.expected
    assert outcome.lake_days == {s: asked for s in SOURCES}, (outcome.lake_days, sorted(asked))


def test_the_backfill_ran_its_days_at_the_same_time(outcome: Outcome) -> None:
    spans = []
    for run in outcome.runs["esn_daily"]:
        if run.run_type == "backfill":
            tasks = [t for t in outcome.tasks[("esn_daily", run.run_id)].values() if t.start and t.end]
            spans.append((min(t.start for t in tasks), max(t.end for t in tasks), run.run_id))
    overlapping = [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, spans


def test_the_network_stage_ran_from_the_asset_events_for_every_published_day(outcome: Outcome) -> None:
    asked = set(outcome.expected.values())
    computed: set[dt.date] = set()
    for run in outcome.runs["esn_network"]:
        for value in outcome.xcoms[("esn_network", run.run_id, "compute_network")].values():
            computed |= {dt.date.fromisoformat(k) for k in value}
    assert computed == asked, (sorted(map(str, computed)), sorted(map(str, asked)))
    assert set(outcome.network_days) == asked and all(n > 0 for n in outcome.network_days.values()), \
        outcome.network_days


def test_the_reports_went_out_through_the_airflow_smtp_connection(outcome: Outcome) -> None:
    summary = outcome.xcoms[("esn_reports", "reports-as-of", "send_stakeholder_reports")][-1]
    assert summary["as_of"] == outcome.days.reports_as_of.isoformat(), summary
    assert (summary["transport"], summary["delivered"], summary["failed"]) == ("airflow", 1, 0), summary
    # the scheduler's own run (the latest 07:00 UTC, as of the day before it): not due, nothing sent
    scheduled = [r for r in outcome.runs["esn_reports"] if r.run_type == "scheduled"]
    assert [r.run_type for r in outcome.runs["esn_reports"] if r not in scheduled] == ["manual"]
    for run in scheduled:
        quiet = outcome.xcoms[("esn_reports", run.run_id, "send_stakeholder_reports")][-1]
        assert dt.date.fromisoformat(quiet["as_of"]) in (outcome.days.ago(1), outcome.days.ago(2)), quiet
        assert quiet["delivered"] == 0, quiet
        assert "leadership" in quiet["skipped"], quiet
    # the one report email, and no failure alert (nothing failed)
    assert [rcpt for rcpt, _ in outcome.emails] == [[CEO]], [(r, m["Subject"]) for r, m in outcome.emails]
    message = outcome.emails[0][1]
    assert "Demo Corp" in message["Subject"] and message.is_multipart(), message["Subject"]
    assert message["From"] == "esn@demo-corp.example"
