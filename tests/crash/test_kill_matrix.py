"""The kill matrix: a daily run SIGKILLed at every step boundary and inside every step, on DuckDB and (at
every point around a write to the warehouse) on PostgreSQL, must (1) leave the published tables exactly as they were before the run, and (2) after a plain
rerun, leave the lake (byte for byte) and every warehouse table equal to a run that was never killed.

The scenario is the one that used to lose data: a Slack workspace (the local emulator) where the day's
extraction also rewrites older days (late replies and reactions on earlier threads), with the HR
directory from a second source. Baseline: 14 days extracted and published. Then the emulator's clock
moves one day on and the run for that day is killed at each point of `pipelines.crashpoints.POINTS`.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines import crashpoints, jobs, warehouse
from pipelines.config import Settings, SourceConfig, load_settings
from pipelines.emulators.slack import SlackEmulator
from pipelines.sources.demo_org import build_org
from tests.conftest import PG_ADMIN_URL, _pg_reachable
from tests.crash import harness

START = dt.date(2026, 3, 2)
BASE_END = START + dt.timedelta(days=13)
DAY = BASE_END + dt.timedelta(days=1)
PEOPLE, SEED = 60, 3
TOKEN_ENV, TOKEN = "ESN_CRASH_SLACK_TOKEN", "xoxb-crash-matrix"
KEY = "crash-matrix-key-not-a-secret"
ENV = {TOKEN_ENV: TOKEN, "ESN_PSEUDONYM_KEY": KEY}

#: (point, n-th time it is reached). The Slack source comes first, so n=1 kills inside its steps (the
#: source that rewrites older days); n=2 of a step point kills inside the HR directory's step.
KILLS = [
    ("extract.start", 1), ("lake.raw.before_replace", 1), ("lake.raw.after_replace", 1),
    ("lake.raw.after_replace", 3), ("state.after_commit", 1), ("extract.end", 1),
    ("stage.start", 1), ("stage.written", 1), ("stage.end", 1),
    ("validate.start", 1), ("validate.suite", 1), ("validate.end", 1),
    ("land.start", 1), ("lake.canonical.before_replace", 1), ("lake.canonical.after_replace", 2),
    ("land.partitions", 1), ("land.journaled", 1), ("land.end", 1),
    ("extract.end", 2), ("land.partitions", 2),
    ("publish.start", 1), ("publish.loaded", 1), ("publish.model", 6), ("publish.before_commit", 1),
    ("publish.committed", 1), ("publish.end", 1),
]

#: the points between two writes to the warehouse (the source state's commit, the validation results, the
#: publish): a kill there leaves the same warehouse whichever engine it is, and the lake does not depend on
#: the engine, so they run on DuckDB only; every point around a warehouse write runs on both
LAKE_ONLY = {("lake.raw.before_replace", 1), ("lake.raw.after_replace", 1), ("lake.raw.after_replace", 3),
             ("stage.start", 1), ("stage.written", 1), ("stage.end", 1), ("validate.start", 1),
             ("land.start", 1), ("lake.canonical.before_replace", 1), ("lake.canonical.after_replace", 2),
             ("land.partitions", 1), ("land.journaled", 1), ("land.end", 1), ("land.partitions", 2)}
CASES = [(kind, point, nth) for point, nth in KILLS for kind in ("duckdb", "postgresql")
         if kind == "duckdb" or (point, nth) not in LAKE_ONLY]
AFTER_COMMIT = {"publish.committed", "publish.end"}
#: kill points after the publish committed the lake tables and before it committed the marts
WORKING_TABLES_AHEAD = {"publish.loaded", "publish.model", "publish.before_commit"}
MARTS = "esn_marts."


def _settings(root: Path, url: str, emu_url: str, *, directory_first: bool = False) -> Settings:
    """Slack first (the kill points' n=1 fall in its steps); the first baseline run needs the directory
    landed before the Slack batch is validated against it."""
    directory = {"people": PEOPLE, "days": 20, "start": START, "seed": SEED, "directory_only": True}
    sources = [
        SourceConfig(name="slack", kind="slack", options={
            "base_url": emu_url, "token_env": TOKEN_ENV, "rate_period_s": 0.01, "backoff_base_s": 0.01,
            "auto_join": True, "late_reply_horizon_days": 7}),
        SourceConfig(name="hr", kind="demo", options=directory),
    ]
    return load_settings(None, lake_dir=root / "lake", warehouse_url=url,
                         sources=sources[::-1] if directory_first else sources)


class Engine:
    """One warehouse kind: how to make, copy and open a warehouse."""

    def __init__(self, kind: str, root: Path):
        self.kind, self.root = kind, root
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT") if kind == "postgresql" else None
        self.databases: list[str] = []

    def url(self, name: str) -> str:
        if self.kind == "duckdb":
            return f"duckdb:///{self.root / name / 'warehouse.duckdb'}"
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.db(name)}"

    def db(self, name: str) -> str:
        return f"esn_crash_{self.tag}_{name}".replace("-", "_").replace(".", "_")[:63]

    @property
    def tag(self) -> str:
        if not hasattr(self, "_tag"):
            self._tag = uuid.uuid4().hex[:6]
        return self._tag

    def create(self, name: str, template: str | None = None) -> None:
        if self.kind == "duckdb":
            (self.root / name).mkdir(parents=True, exist_ok=True)
            if template:
                src = self.root / template / "warehouse.duckdb"
                (self.root / name / "warehouse.duckdb").write_bytes(src.read_bytes())
            return
        assert self.admin is not None
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{self.db(name)}" with (force)')
            conn.exec_driver_sql(f'create database "{self.db(name)}"'
                                 + (f' template "{self.db(template)}"' if template else ""))
        self.databases.append(self.db(name))

    def tables(self, name: str) -> dict[str, Any]:
        engine = warehouse.make_engine(self.url(name))
        try:
            return harness.warehouse_tables(engine)
        finally:
            engine.dispose()

    def close(self) -> None:
        if self.admin is not None:
            with self.admin.connect() as conn:
                for db in self.databases:
                    conn.exec_driver_sql(f'drop database if exists "{db}" with (force)')
            self.admin.dispose()


def _run_in_process(settings: Settings, start: dt.date, end: dt.date, trace: Path | None = None) -> dict[str, Any]:
    saved = {k: os.environ.get(k) for k in (*ENV, crashpoints.TRACE_ENV)}
    os.environ.update(ENV)
    if trace is not None:
        os.environ[crashpoints.TRACE_ENV] = str(trace)
    try:
        return jobs.run(settings, jobs.Interval(start, end))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    kinds = ["duckdb"]
    pg_reason = _pg_reachable()
    if pg_reason is None:
        kinds.append("postgresql")
    elif os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN_URL}: {pg_reason}")
    org = build_org(PEOPLE, 20, START, SEED, 1.0)
    engines = {k: Engine(k, root / k) for k in kinds}
    with SlackEmulator(org, token=TOKEN, period_s=0.01) as emu:
        emu.advance_to(BASE_END)
        out: dict[str, Any] = {"root": root, "emu": emu, "engines": engines, "pg_reason": pg_reason}
        for kind, eng in engines.items():  # every baseline first: the emulator's clock moves on after
            eng.create("baseline")
            settings = _settings(root / kind / "baseline", eng.url("baseline"), emu.url, directory_first=True)
            _run_in_process(settings, START, BASE_END)
            out[kind] = {"baseline_tables": eng.tables("baseline"),
                         "baseline_lake": harness.lake_files(settings.lake_dir)}
        emu.advance_to(DAY)
        for kind, eng in engines.items():
            eng.create("clean", template="baseline")
            settings = _settings(root / kind / "clean", eng.url("clean"), emu.url)
            harness.copy_tree(root / kind / "baseline" / "lake", settings.lake_dir)
            trace = root / kind / "trace.txt"
            report = _run_in_process(settings, DAY, DAY, trace=trace)
            out[kind].update(clean_report=report, clean_tables=eng.tables("clean"),
                             clean_lake=harness.lake_files(settings.lake_dir),
                             trace=trace.read_text().split())
        try:
            yield out
        finally:
            for eng in engines.values():
                eng.close()


def _engine(world: dict[str, Any], kind: str) -> Engine:
    if kind not in world["engines"]:
        pytest.skip(f"no PostgreSQL reachable at {PG_ADMIN_URL}: {world['pg_reason']}")
    return world["engines"][kind]


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_the_scenario_rewrites_older_days_and_reaches_every_crash_point(world, kind) -> None:
    _engine(world, kind)
    report = world[kind]["clean_report"]
    rewritten = report["sources"]["slack"]["extract"]["details"]["days_rewritten_before_start"]
    assert rewritten, "the day's extraction must rewrite older days, or the matrix proves little"
    assert report["publish"]["interval"].split("_")[0] == min(rewritten)  # they are published
    assert set(world[kind]["trace"]) == set(crashpoints.POINTS), "every named point is on the path"
    for point, nth in KILLS:
        assert world[kind]["trace"].count(point) >= nth, f"{point} is reached fewer than {nth} times"
    # the late updates changed published figures: a lost rewrite would show in the comparison
    lake_activities = "esn_staging.lake_activities"
    assert not world[kind]["clean_tables"][lake_activities].equals(world[kind]["baseline_tables"][lake_activities])


@pytest.mark.slow
@pytest.mark.parametrize("kind, point, nth", CASES, ids=[f"{p}:{n}-{k}" for k, p, n in CASES])
def test_a_kill_leaves_published_tables_and_a_rerun_equals_a_clean_run(world, kind, point, nth) -> None:
    eng = _engine(world, kind)
    case = f"{point}-{nth}"
    eng.create(case, template="baseline")
    settings = _settings(world["root"] / kind / case, eng.url(case), world["emu"].url)
    harness.copy_tree(world["root"] / kind / "baseline" / "lake", settings.lake_dir)

    code = harness.run_in_child(settings, DAY, DAY, {**ENV, crashpoints.CRASH_ENV: f"{point}:{nth}"})
    assert code == -9, f"the run should have been killed at {point}:{nth} (exit code {code})"
    # killed before the warehouse commit: the previous version; after it: the new one, whole
    # killed inside the publish once the lake tables were loaded (committed, as dbt's working tables are): the
    # published marts are the previous version; the lake, staging, internal and build tables are working
    # tables the rerun redoes
    version = "clean_tables" if point in AFTER_COMMIT else "baseline_tables"
    only = (lambda name: name.startswith(MARTS)) if point in WORKING_TABLES_AHEAD else (lambda name: True)
    published = {k: v for k, v in world[kind][version].items() if not k.endswith(".etl_source_state") and only(k)}
    after_kill = {k: v for k, v in eng.tables(case).items() if not k.endswith(".etl_source_state") and only(k)}
    assert any(k.startswith(MARTS) for k in published), "the comparison must hold the published marts"
    harness.assert_same_tables(after_kill, published, f"published tables right after the kill at {point}:{nth}")

    _run_in_process(settings, DAY, DAY)
    harness.assert_same_lake(harness.lake_files(settings.lake_dir), world[kind]["clean_lake"],
                             f"lake after the kill at {point}:{nth} and a rerun")
    harness.assert_same_tables(eng.tables(case), world[kind]["clean_tables"],
                               f"warehouse after the kill at {point}:{nth} and a rerun")
    assert harness.leftovers(settings.lake_dir) == []
    assert harness.pending(settings.lake_dir) == {}, "everything landed was published and consumed"
