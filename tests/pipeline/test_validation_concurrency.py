"""Runs that overlap (an Airflow 3 backfill runs its days in parallel): validation and extraction.

- Several processes validate batches of one source at the same time, with the GX folder the pipeline
  gives that source (`jobs.gx_dir`: results and data docs). With one GX file context per source they raced on its
  suite and validation-definition files (`ExpectationSuite() argument after ** must be a mapping`, a
  JSON file read half-written, "Store already has the following key"): 5 rounds of 4 processes failed in
  every round before each validation got its own ephemeral context. Each process must also get the
  outcome of its own data, not another's.
- Two runs extracting one source for different days never call the source at once (one workspace, one
  rate limit: connectors/budget.py); a run that waits longer than the lock allows is refused with a
  message naming the holder and why it waits.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import re
from pathlib import Path

import great_expectations  # noqa: F401 - imported before the forks, as a worker has it, so that they start fast
import pandas as pd
import pytest

from pipelines import crashpoints, jobs, quality, runlock
from tests.conftest import SMALL_DEMO, demo_settings

START = SMALL_DEMO["start"]
ROUNDS, PROCESSES = 3, 4


def _validate(gx: str, day: str, ratio: float, queue) -> None:
    try:
        validator = quality.Validator(Path(gx), severities={"quality.volume_drift": "blocking"},
                                      run_name=f"demo_{day}_{day}_r{os.getpid()}")
        volume = pd.DataFrame({"date": [day], "weekday": ["Friday"], "rows": [int(100 * ratio)], "baseline": [100.0],
                               "drift_ratio": [ratio], "weeks_known": [2], "weeks_active": [2], "delivered": [True]})
        outcome = validator.validate("activity_volume", volume, f"demo/{day}_{day}", {"drift_min": 0.4, "drift_max": 2.2})
        fresh = validator.validate("freshness", pd.DataFrame({"lag_hours": [10.0]}), f"demo/{day}_{day}",
                                   {"max_lag_hours": 36.0})
        docs_index = validator.build_docs()
        queue.put((day, len(outcome.blocking_failures), fresh.passed, str(docs_index)))
    except Exception as exc:  # the parent reports it with the day
        queue.put((day, f"{type(exc).__name__}: {exc}", None, None))


def test_validations_of_one_source_in_several_processes_at_once_each_get_their_own_result(tmp_path):
    settings = demo_settings(tmp_path)
    gx = jobs.gx_dir(settings, "demo")
    ctx = mp.get_context("fork")
    for round_ in range(ROUNDS):
        queue = ctx.Queue()
        days = {(START + dt.timedelta(days=round_ * PROCESSES + i)).isoformat(): (1.0 if i % 2 else 0.1)
                for i in range(PROCESSES)}
        procs = [ctx.Process(target=_validate, args=(str(gx), day, ratio, queue)) for day, ratio in days.items()]
        for p in procs:
            p.start()
        results = {r[0]: r[1:] for r in (queue.get(timeout=120) for _ in procs)}
        for p in procs:
            p.join(30)
        errors = {day: r[0] for day, r in results.items() if isinstance(r[0], str)}
        assert not errors, f"round {round_}: validations that overlapped failed: {errors}"
        # a drop (0.1 of the baseline) fails the blocking drift check of that process only
        assert {day: r[0] for day, r in results.items()} == {d: int(ratio < 1) for d, ratio in days.items()}
        assert all(r[1] is True for r in results.values())
    # the evidence of every validation is kept: its results, its data docs page, the index lists them all
    results = list((gx / "uncommitted" / "validations" / "activity_volume").rglob("*.json"))
    pages = list((gx / "uncommitted" / "data_docs" / "local_site" / "validations" / "activity_volume").rglob("*.html"))
    assert len(results) == len(pages) == ROUNDS * PROCESSES, (len(results), len(pages))
    index = (gx / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
    listed = set(re.findall(r"activity_volume/(demo_[^/\"]+)", index))
    assert len(listed) > (ROUNDS - 1) * PROCESSES, f"the index lists the validations of every round: {listed}"
    assert not (gx / "great_expectations.yml").exists(), "no GX file context (its stores are what raced)"


def _extract(settings, day: str, trace: str, queue) -> None:
    os.environ[crashpoints.TRACE_ENV] = trace
    d = dt.date.fromisoformat(day)
    try:
        queue.put((day, jobs.extract(settings, "demo", jobs.Interval(d, d))["rows"]["activities"]))
    except Exception as exc:  # the parent reports it with the day
        queue.put((day, f"{type(exc).__name__}: {exc}"))


def test_two_runs_extract_one_source_one_after_the_other(tmp_path):
    settings = demo_settings(tmp_path)
    trace = tmp_path / "trace.txt"
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    days = [(START + dt.timedelta(days=20 + i)).isoformat() for i in range(3)]
    procs = [ctx.Process(target=_extract, args=(settings, day, str(trace), queue)) for day in days]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    assert all(isinstance(n, int) and n > 0 for n in results.values()), results
    steps = [line for line in trace.read_text().splitlines() if line in ("extract.start", "extract.end")]
    assert steps == ["extract.start", "extract.end"] * len(days), f"extractions overlapped: {steps}"


def _hold(lake_dir: str, ready, release) -> None:
    with runlock.hold(Path(lake_dir), "source=demo", interval="2026-05-21_2026-05-21"):
        ready.set()
        release.wait(60)


def test_an_extraction_that_waits_too_long_is_refused_naming_the_holder(tmp_path, monkeypatch):
    settings = demo_settings(tmp_path)
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(settings.lake_dir), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        monkeypatch.setattr(runlock, "DEFAULT_WAIT_S", 0.5)  # $ESN_LOCK_WAIT_S
        day = START + dt.timedelta(days=22)
        with pytest.raises(runlock.RunLocked) as err:
            jobs.extract(settings, "demo", jobs.Interval(day, day))
        message = str(err.value)
        for part in (f"extraction of source demo for {day}_{day} not started", "one run at a time",
                     "connectors/budget.py", f"pid {holder.pid}", "for 2026-05-21_2026-05-21", "(waited"):
            assert part in message, f"{part!r} not in: {message}"
        assert not (settings.lake_dir / "raw").exists(), "nothing extracted while another run holds the source"
    finally:
        release.set()
        holder.join(30)
