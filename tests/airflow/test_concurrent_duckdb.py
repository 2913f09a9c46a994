"""A REAL Airflow (scheduler, DAG processor, execution API, LocalExecutor, PostgreSQL metadata DB) runs
esn_daily with two mapped Slack sources extracting at the same time, and esn_network at the same time,
on the DuckDB default warehouse: every task succeeds, no task log says `Could not set lock`, and the
task instances' start and end times in the metadata DB prove the overlap.

The two Slack sources are two local Slack API emulators (two demo organisations) served from this
process; their extractions are paced (one history request per second or so) so that they last long
enough to overlap each other and the network stage. The first run (2026-05-06) publishes a day, so that
the network stage has something to compute; the second run (2026-05-07) extracts while esn_network
computes the windows ending 2026-05-06. Both warehouse writers (publish_warehouse, compute_network) run
in the one-slot pool `esn_warehouse`, so they never overlap each other.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.airflow.real_airflow import RealAirflow, TaskRun, metadata_database

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

START = dt.date(2026, 5, 1)
DAY_1, DAY_2 = dt.date(2026, 5, 6), dt.date(2026, 5, 7)  # weekdays: the demo organisations are active
TOKENS = {"slack_a": "xoxb-emulator-a", "slack_b": "xoxb-emulator-b"}
KEY = "test-key-not-a-secret-for-airflow"
POOL = "esn_warehouse"


def _next_midnight(day: dt.date) -> str:
    # the run is due once the day is over; the day itself is the `date` param (esn_daily's days: a
    # manual run's param wins over its logical date)
    return f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00+00:00"


@pytest.fixture
def metadata_db() -> Iterator[str]:
    with metadata_database("esn_h_b_airflow") as url:
        yield url


def test_two_mapped_sources_and_the_network_stage_share_the_duckdb_warehouse(
        metadata_db: str, tmp_path: Path) -> None:
    from pipelines.emulators.slack import SlackEmulator
    from pipelines.sources.demo_org import build_org

    t_start = time.perf_counter()
    orgs = {"slack_a": build_org(60, 10, START, 1), "slack_b": build_org(60, 10, START, 2)}
    with SlackEmulator(orgs["slack_a"], token=TOKENS["slack_a"], period_s=1.0) as emu_a, \
            SlackEmulator(orgs["slack_b"], token=TOKENS["slack_b"], period_s=1.0) as emu_b:
        emulators = {"slack_a": emu_a, "slack_b": emu_b}
        for emu in emulators.values():
            emu.advance_to(DAY_2)
        config = tmp_path / "esn.yaml"
        config.write_text(yaml.safe_dump({
            "lake_dir": str(tmp_path / "lake"),
            "warehouse_url": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
            "sources": [{"name": name, "kind": "slack", "options": {
                "base_url": emulators[name].url, "token_env": f"ESN_TEST_{name.upper()}_TOKEN",
                "rate_period_s": 1.0, "backoff_base_s": 0.05,
                # paced: ~10 s per day's extraction, long enough to overlap
                "rate_limits_per_minute": {"conversations.history": 1.5}}} for name in TOKENS],
        }))
        airflow = RealAirflow(tmp_path / "airflow_home", metadata_db, extra_env={
            "ESN_CONFIG": str(config), "ESN_PSEUDONYM_KEY": KEY,
            **{f"ESN_TEST_{n.upper()}_TOKEN": t for n, t in TOKENS.items()}})
        airflow.cli("db", "migrate", timeout=600)
        airflow.cli("pools", "set", POOL, "1", "esn-metrics warehouse writers")
        airflow.cli("pools", "set", "esn_extract", "4", "esn-metrics source extractions")
        t_ready = time.perf_counter()
        airflow.start()
        try:
            airflow.wait_parsed(["esn_daily", "esn_network"])
            t_parsed = time.perf_counter()

            run_1 = airflow.trigger("esn_daily", "day-1", logical_date=_next_midnight(DAY_1),
                                    conf={"date": DAY_1.isoformat()})
            assert airflow.wait_finished([("esn_daily", run_1)], 600) == {("esn_daily", run_1): "success"}
            t_day_1 = time.perf_counter()

            run_2 = airflow.trigger("esn_daily", "day-2", logical_date=_next_midnight(DAY_2),
                                    conf={"date": DAY_2.isoformat()})
            # the network stage starts while day 2's sources extract
            airflow._wait(lambda: any(t.state == "running" for k, t in airflow.task_runs("esn_daily", run_2).items()
                                      if k.startswith("extract_source")), 300, "day 2's extractions to start", 0.5)
            net = airflow.trigger("esn_network", "network-day-1", conf={"end_date": DAY_1.isoformat()})
            states = airflow.wait_finished([("esn_daily", run_2), ("esn_network", net)], 900)
            t_day_2 = time.perf_counter()
        finally:
            airflow.stop()

    assert states == {("esn_daily", run_2): "success", ("esn_network", net): "success"}
    tasks_1, tasks_2 = airflow.task_runs("esn_daily", run_1), airflow.task_runs("esn_daily", run_2)
    network = airflow.task_runs("esn_network", net)
    every = {**{f"1:{k}": t for k, t in tasks_1.items()}, **{f"2:{k}": t for k, t in tasks_2.items()},
             **{f"n:{k}": t for k, t in network.items()}}
    assert {k: t.state for k, t in every.items()} == {k: "success" for k in every}
    assert all(t.try_number == 1 for t in every.values()), {k: t.try_number for k, t in every.items()}
    assert {"extract_source[0]", "extract_source[1]", "publish_warehouse"} <= set(tasks_2)

    # no task met a lock it could not wait for
    logs = airflow.task_log_files()
    assert len(logs) >= len(every), [str(p) for p in logs]
    text = airflow.task_logs_text()
    assert "Could not set lock" not in text
    assert "DuckDBLockTimeout" not in text

    # the overlap, from the metadata DB: the two sources extracted at the same time (both days) ...
    for tasks in (tasks_1, tasks_2):
        assert tasks["extract_source[0]"].overlaps(tasks["extract_source[1]"]), _times(tasks)
    # ... and the network stage ran while day 2's sources were being extracted, staged, validated or landed
    compute = network["compute_network"]
    ingest = [t for k, t in tasks_2.items() if re.match(r"(extract|stage|validate|land)_source\[", k)]
    concurrent = [t.key for t in ingest if compute.overlaps(t)]
    assert any(k.startswith("extract_source") for k in concurrent), (_times(tasks_2), _times(network))
    # the warehouse writers share the one-slot pool: never at the same time
    assert compute.pool == POOL and tasks_2["publish_warehouse"].pool == POOL
    assert tasks_1["publish_warehouse"].pool == POOL
    assert not compute.overlaps(tasks_2["publish_warehouse"])

    waits = len(re.findall(r"is locked by PID \d+", text))
    print(f"\nreal Airflow: migrate+pool {t_ready - t_start:.0f} s, start+parse {t_parsed - t_ready:.0f} s, "
          f"day 1 {t_day_1 - t_parsed:.0f} s, day 2 + network {t_day_2 - t_day_1:.0f} s; "
          f"network overlapped {concurrent}; lock waits logged: {waits}\n{_times(tasks_2)}\n{_times(network)}")


def _times(tasks: dict[str, TaskRun]) -> str:
    return "; ".join(f"{k} {t.start:%H:%M:%S.%f}-{t.end:%H:%M:%S.%f}" for k, t in sorted(tasks.items())
                     if t.start and t.end)
