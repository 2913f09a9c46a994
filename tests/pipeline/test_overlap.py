"""Overlapping runs: a second `esn run` on the same lake is refused with a clear message naming the
holder; the steps of two runs interleaved (as Airflow's tasks may be) are serialised per source and
publication and give correct data; a batch staged before another run rewrote its raw days does not put
the older data over the newer."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines import jobs, lake, runlock, warehouse
from tests.conftest import REPO, SMALL_DEMO, demo_settings
from tests.crash import harness

START = SMALL_DEMO["start"]
D1 = START + dt.timedelta(days=20)
D2 = D1 + dt.timedelta(days=1)
PEOPLE = SMALL_DEMO["people"]


def _hold(lake_dir: str, ready, release) -> None:
    with runlock.hold(Path(lake_dir), "run", interval="2026-05-21_2026-05-21"):
        ready.set()
        release.wait(60)


def test_a_run_while_another_holds_the_lake_is_refused_naming_the_holder(tmp_path):
    settings = demo_settings(tmp_path)
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(settings.lake_dir), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(runlock.RunLocked) as err:
            jobs.run(settings, jobs.Interval(D1, D1))
        assert f"pid {holder.pid}" in str(err.value) and "2026-05-21" in str(err.value)
        assert not (settings.lake_dir / "raw").exists(), "a refused run writes nothing"
    finally:
        release.set()
        holder.join(30)


def _config(tmp_path: Path, url: str) -> Path:
    cfg = {"lake_dir": str(tmp_path / "lake"), "warehouse_url": url,
           "sources": [{"name": "demo", "kind": "demo", "options": {**SMALL_DEMO, "start": str(START)}}]}
    path = tmp_path / "esn.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.postgres
def test_two_cli_runs_at_once_on_postgres_one_is_refused_or_both_correct(tmp_path, pg_url):
    config = _config(tmp_path, pg_url)
    env = {**os.environ, "ESN_PSEUDONYM_KEY": os.environ.get("ESN_PSEUDONYM_KEY", "test-key-not-a-secret")}
    esn = [sys.executable, "-m", "pipelines.cli"]
    first = subprocess.Popen([*esn, "run", "-c", str(config), "--date", str(D1)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = runlock.lock_dir(tmp_path / "lake") / "run.lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (lock.exists() and lock.stat().st_size):
        time.sleep(0.05)
    second = subprocess.Popen([*esn, "run", "-c", str(config), "--date", str(D2)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(300), p.communicate()) for p in (first, second)]
    codes = [code for code, _ in results]
    assert codes[0] == 0, results[0][1][1][-2000:]
    if codes[1] != 0:  # refused: one clear line naming the lock and its holder, nothing changed
        err = " ".join(results[1][1][1].split())
        assert codes[1] == 2 and "run lock of the lake" in err and f"pid {first.pid}" in err, err
        rerun = subprocess.run([*esn, "run", "-c", str(config), "--date", str(D2)], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    engine = warehouse.make_engine(pg_url)
    try:
        people = warehouse.read_frame(engine, "select count(*) as n from lake_people").loc[0, "n"]
        days = warehouse.read_frame(engine, "select max(activity_date) as d from lake_activities").loc[0, "d"]
    finally:
        engine.dispose()
    assert people == PEOPLE and days == D2


@pytest.mark.postgres
def test_interleaved_steps_of_two_runs_are_serialised_and_correct(tmp_path, pg_url):
    settings = demo_settings(tmp_path, warehouse_url=pg_url)
    jobs.run(settings, jobs.Interval(START, D1 - dt.timedelta(days=1)))
    env = {"ESN_PSEUDONYM_KEY": os.environ.get("ESN_PSEUDONYM_KEY", "test-key-not-a-secret")}
    procs = [harness.start_steps_in_child(settings, d, d, env) for d in (D1, D2)]
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    engine = warehouse.make_engine(pg_url)
    try:
        people = warehouse.read_frame(engine, "select count(*) as n from lake_people").loc[0, "n"]
        loaded = warehouse.read_frame(engine, "select activity_date, count(*) as n from lake_activities "
                                              "group by activity_date")
    finally:
        engine.dispose()
    assert people == PEOPLE  # not twice: two publications never interleave their delete and insert
    base = lake.canonical_dir(settings.lake_dir, "activities") / "source=demo"
    in_lake = {d: lake.read_partition(base, d).num_rows for d in lake.partition_days(base)}
    assert dict(zip(pd.to_datetime(loaded["activity_date"]).dt.date, loaded["n"], strict=True)) == \
        {d: n for d, n in in_lake.items() if n}
    assert harness.pending(settings.lake_dir) == {} and harness.leftovers(settings.lake_dir) == []


def test_a_batch_staged_before_another_run_rewrote_its_days_leaves_them_to_that_run(tmp_path):
    settings = demo_settings(tmp_path / "overlap")
    clean = demo_settings(tmp_path / "clean")
    for s in (settings, clean):
        jobs.run(s, jobs.Interval(START, D1 - dt.timedelta(days=1)))
    a, b = jobs.Interval(D2, D2), jobs.Interval(D1, D2)
    jobs.extract(settings, "demo", a)
    jobs.stage(settings, "demo", a)
    jobs.extract(settings, "demo", b)  # another run rewrites D1 and D2 meanwhile
    jobs.validate(settings, "demo", a)
    landed_a = jobs.land(settings, "demo", a)
    assert landed_a["superseded_days"] == [D2.isoformat()] and landed_a["activities"] == 0
    assert lake.pending(settings.lake_dir, "demo", "raw").days() == [D1, D2]
    for step in (jobs.stage, jobs.validate, jobs.land):
        step(settings, "demo", b)
    jobs.publish(settings, a)
    jobs.run(clean, b)
    assert harness.lake_files(settings.lake_dir) == harness.lake_files(clean.lake_dir)
    tables = []
    for s in (settings, clean):
        engine = warehouse.make_engine(s.warehouse_url)
        # dq_source_days is a run log like dq_validation_results (each validation's run id and days)
        tables.append({k: v for k, v in harness.warehouse_tables(engine).items()
                       if k.rsplit(".", 1)[-1] != "dq_source_days"})
        engine.dispose()
    harness.assert_same_tables(tables[0], tables[1], "interleaved runs vs one clean run")
