"""The dbt runner (pipelines.transform.build) on a tiny project, on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines import transform
from pipelines.transform import BuildResult, TransformError, build
from pipelines.warehouse import Schemas, make_engine
from tests.dbt_runner.conftest import MODELS, TESTS, write_project

REPO = Path(__file__).resolve().parents[2]
START = dt.date(2026, 5, 1)


@pytest.fixture(params=["duckdb", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_url")


def rows(url: str, sql: str, schemas: Schemas | None = None) -> list[tuple]:
    engine = make_engine(url, schemas)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def test_build_runs_vars_reach_the_sql_and_on_node_sees_every_node(url: str, project: Path) -> None:
    seen: list[tuple[str, str]] = []
    result = build(url, {"start": START, "factor": 1}, project_dir=project, on_node=lambda n, s: seen.append((n, s)))

    assert isinstance(result, BuildResult) and result.success
    assert {n.name: n.resource_type for n in result.nodes} == {**dict.fromkeys(MODELS, "model"),
                                                                **dict.fromkeys(TESTS, "test")}
    assert {n.name: n.status for n in result.nodes} == {**dict.fromkeys(MODELS, "success"),
                                                         **dict.fromkeys(TESTS, "pass")}
    assert all(n.seconds > 0 for n in result.nodes)
    assert {n.models for n in result.nodes if n.resource_type == "test"} == {("int_numbers",)}
    assert result.node("mart_numbers").path == "models/mart_numbers.sql"
    if url.startswith("postgresql"):
        assert result.node("int_numbers").rows_affected == 3
    # on_node: once per node, as it finishes, with its status
    assert sorted(seen) == sorted((n.name, n.status) for n in result.nodes)

    # the vars are in the data, each model in the schema of its layer, the session in UTC
    assert rows(url, "select n, start_date, scaled from esn_internal.int_numbers order by n") == [
        (1, START, 1), (2, START, 2), (3, START, 3)]
    assert rows(url, "select count(*) from esn_staging.stg_numbers") == [(3,)]
    assert rows(url, "select n_rows, total from esn_build.mart_numbers") == [(3, 6)]
    assert rows(url, "select tz from esn_internal.int_session")[0][0] in ("UTC", "Etc/UTC")

    # a second build in the process reuses the parsed manifest, and its new vars still reach the SQL
    again = build(url, {"start": START + dt.timedelta(days=7), "max_n": 2}, project_dir=project)
    assert again.manifest_cached and again.parse_seconds == 0 and not result.manifest_cached
    assert rows(url, "select n, start_date from esn_internal.int_numbers order by n") == [
        (1, START + dt.timedelta(days=7)), (2, START + dt.timedelta(days=7))]
    assert rows(url, "select n_rows, total from esn_build.mart_numbers") == [(2, 3)]


def test_a_failing_test_names_the_test_the_model_and_the_failing_rows(url: str, project: Path) -> None:
    build(url, {"start": START, "factor": 1}, project_dir=project)

    with pytest.raises(TransformError) as err:
        build(url, {"start": START, "factor": 2}, project_dir=project)  # scaled 2, 4, 6: two not accepted

    msg = str(err.value)
    assert "accepted_values_int_numbers_scaled__1__2__3" in msg
    assert "on int_numbers" in msg and "2 failing rows" in msg
    result = err.value.result
    assert result is not None and not result.success
    assert result.node("accepted_values_int_numbers_scaled__1__2__3").failures == 2
    assert [n.name for n in result.failed] == ["accepted_values_int_numbers_scaled__1__2__3"]
    # dbt's nature: the tested model is rebuilt before its tests, its dependants are skipped and keep
    # what the previous build made
    assert result.node("mart_numbers").status == "skipped" and "mart_numbers" in msg
    assert rows(url, "select scaled from esn_internal.int_numbers order by n") == [(2,), (4,), (6,)]
    assert rows(url, "select n_rows, total from esn_build.mart_numbers") == [(3, 6)]


@pytest.mark.parametrize(("sql", "kind"), [
    ("select * from {{ ref('stg_numbers' }}", "Compilation Error"),  # Jinja syntax: the parse fails
    ("select * from {{ ref('no_such_model') }}", "no_such_model"),  # a ref to nothing
    ("select no_such_column from {{ ref('stg_numbers') }}", "no_such_column"),  # the database refuses it
])
def test_a_broken_model_names_its_file(tmp_path: Path, sql: str, kind: str) -> None:
    project = write_project(tmp_path / "project", {"models/int_broken.sql": sql})
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with pytest.raises(TransformError) as err:
        build(url, {"start": START}, project_dir=project)
    assert "models/int_broken.sql" in str(err.value) and kind in str(err.value)


def test_on_node_exception_is_raised_after_dbt_returns(tmp_path: Path, project: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    finished: list[str] = []

    def crash(name: str, status: str) -> None:
        finished.append(name)
        if name == "stg_numbers":
            raise KeyboardInterrupt("crash point")

    with pytest.raises(KeyboardInterrupt, match="crash point"):
        build(url, {"start": START}, project_dir=project, on_node=crash)
    # dbt went on after the exception (it cannot be stopped inside a callback); raised once it returned
    assert "stg_numbers" in finished and len(finished) == len(MODELS) + len(TESTS)


def test_select_and_exclude(tmp_path: Path, project: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    result = build(url, {"start": START}, project_dir=project, select=["+int_numbers"], exclude=["int_session"])
    assert {n.name for n in result.nodes} == {"stg_numbers", "int_numbers", *TESTS}


def test_dbt_opens_a_duckdb_file_the_process_holds_open(tmp_path: Path, project: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    engine = make_engine(url)
    try:
        with engine.connect() as held:  # make_engine's settings applied, a transaction open on it
            held.exec_driver_sql("create table esn_internal.before_dbt as select 1 as x")
            held.commit()
            assert held.exec_driver_sql("select count(*) from esn_internal.before_dbt").scalar() == 1
            build(url, {"start": START}, project_dir=project)
            held.rollback()  # a new snapshot: dbt's tables are there
            assert held.exec_driver_sql("select total from esn_build.mart_numbers").scalar() == 6
            assert held.exec_driver_sql("select current_setting('memory_limit')").scalar()
    finally:
        engine.dispose()


def test_nothing_is_written_into_a_read_only_project(tmp_path: Path, project: Path) -> None:
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    for p in [project, *project.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        build(f"duckdb:///{tmp_path / 'w.duckdb'}", {"start": START}, project_dir=project)
        assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    finally:
        for p in [project, *project.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _schemas(tag: str) -> Schemas:
    return Schemas(staging=f"{tag}_staging", internal=f"{tag}_internal", marts=f"{tag}_marts",
                   build=f"{tag}_build")


_WORKER = """
import datetime as dt, json, sys
from pipelines.transform import build
from pipelines.warehouse import Schemas
url, project, schemas, start = sys.argv[1:5]
r = build(url, {"start": dt.date.fromisoformat(start), "factor": 1}, schemas=Schemas(**json.loads(schemas)),
          project_dir=project)
print(json.dumps({"ok": r.success, "nodes": len(r.nodes)}))
"""


def test_two_processes_build_at_once_on_postgresql(pg_url: str, project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = {tag: START + dt.timedelta(days=i) for i, tag in enumerate(("p1", "p2"))}
    procs = {tag: subprocess.Popen(
        [sys.executable, "-c", _WORKER, pg_url, str(project), json.dumps(_schemas(tag).__dict__), day.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for tag, day in runs.items()}
    for proc in procs.values():
        out, errors = proc.communicate(timeout=600)
        assert proc.returncode == 0, errors[-3000:]
        assert json.loads(out.strip().splitlines()[-1]) == {"ok": True, "nodes": len(MODELS) + len(TESTS)}
        assert "Running with dbt" not in out  # dbt's console output is silenced
    for tag, day in runs.items():
        assert rows(pg_url, f"select distinct start_date from {tag}_internal.int_numbers") == [(day,)]
        assert rows(pg_url, f"select total from {tag}_build.mart_numbers") == [(6,)]
    assert not list(project.rglob("target")) and not list(project.rglob("logs"))


def test_two_threads_build_at_once_on_postgresql(pg_url: str, project: Path) -> None:
    results: dict[str, BuildResult | BaseException] = {}
    runs = {tag: START + dt.timedelta(days=i) for i, tag in enumerate(("t1", "t2"))}

    def run(tag: str, day: dt.date) -> None:
        try:
            results[tag] = build(pg_url, {"start": day}, schemas=_schemas(tag), project_dir=project)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[tag] = exc

    threads = [threading.Thread(target=run, args=item) for item in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert all(isinstance(r, BuildResult) and r.success for r in results.values()), results
    for tag, day in runs.items():
        assert rows(pg_url, f"select distinct start_date from {tag}_internal.int_numbers") == [(day,)]


def test_settings_give_the_url_and_the_schemas(tmp_path: Path, project: Path) -> None:
    class FakeSettings:
        warehouse_url = f"duckdb:///{tmp_path / 'w.duckdb'}"

        def schemas(self) -> Schemas:
            return _schemas("cfg")

    build(FakeSettings(), {"start": START}, project_dir=project)
    assert rows(FakeSettings.warehouse_url, "select total from cfg_build.mart_numbers") == [(6,)]


def test_a_profiles_dir_of_the_deployment_is_used_as_is(tmp_path: Path, project: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "profiles"
    own.mkdir()
    db = tmp_path / "own.duckdb"
    (own / "profiles.yml").write_text(json.dumps(
        {"esn_metrics": {"target": "esn", "outputs": {"esn": {"type": "duckdb", "path": str(db),
                                                               "schema": "esn_internal"}}}}))
    monkeypatch.setenv(transform.PROFILES_DIR_ENV, str(own))
    # the URL is not one the runner makes profiles for: the given profile is used instead
    result = build("snowflake://someone@account/db", {"start": START}, project_dir=project)
    assert result.success
    assert rows(f"duckdb:///{db}", "select total from esn_build.mart_numbers") == [(6,)]
    assert sorted(p.name for p in own.iterdir()) == ["profiles.yml"]


def test_an_unsupported_url_is_refused_before_dbt_runs(tmp_path: Path, project: Path) -> None:
    with pytest.raises(TransformError, match="'snowflake'") as err:
        build("snowflake://someone:hunter2@account/db", {"start": START}, project_dir=project)
    assert "profiles.yml" in str(err.value) and "hunter2" not in str(err.value)


_CHILD = """
import json, sys, datetime as dt
from pipelines.transform import build
r = build(sys.argv[1], {"start": dt.date(2026, 5, 1)}, project_dir=sys.argv[2])
print("RESULT " + json.dumps({"parse_seconds": r.parse_seconds, "nodes": len(r.nodes)}))
"""


def test_a_second_process_reuses_the_parsed_project_from_the_disk_cache(tmp_path: Path, project: Path) -> None:
    """Each Airflow task and CLI run is a process of its own: the parse (seconds) is kept on disk, keyed by
    the project's files, the profile, the parse-time vars and dbt's version; a changed model parses again."""
    cache = tmp_path / "cache"
    env = {**os.environ, transform.MANIFEST_CACHE_ENV: str(cache), "PYTHONPATH": str(Path(transform.__file__).parents[1])}
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"

    def child() -> dict:
        proc = subprocess.run([sys.executable, "-c", _CHILD, url, str(project)], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        return json.loads(line.removeprefix("RESULT "))

    first = child()
    assert len(list(cache.glob("*.pickle"))) == 1 and stat.S_IMODE(cache.stat().st_mode) == 0o700
    second = child()
    assert first["nodes"] == second["nodes"] > 0
    assert first["parse_seconds"] > 0.5 > second["parse_seconds"]  # a parse vs a load of the cached one
    (project / "models" / "int_numbers.sql").write_text(
        (project / "models" / "int_numbers.sql").read_text() + "\n-- changed\n")
    child()
    assert len(list(cache.glob("*.pickle"))) == 2  # the changed project was parsed and kept under a new key


def test_warehouses_of_the_same_name_in_other_folders_share_the_parse(tmp_path: Path, project: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(transform.MANIFEST_CACHE_ENV, str(tmp_path / "cache"))
    transform._MANIFESTS.clear()
    a, b = tmp_path / "a" / "w.duckdb", tmp_path / "b" / "w.duckdb"
    first = build(f"duckdb:///{a}", {"start": START, "max_n": 2}, project_dir=project)
    second = build(f"duckdb:///{b}", {"start": START, "max_n": 3}, project_dir=project)
    assert not first.manifest_cached and second.manifest_cached
    # each build wrote its own file, with its own vars
    assert rows(f"duckdb:///{a}", "select total from esn_build.mart_numbers") == [(3,)]
    assert rows(f"duckdb:///{b}", "select total from esn_build.mart_numbers") == [(6,)]


def test_the_file_is_released_when_the_build_returns(tmp_path: Path, project: Path) -> None:
    """dbt keeps the DuckDB file open during the invocation only: right after build() returns, another
    process opens it for writing (DuckDB allows one writer process at a time)."""
    db = tmp_path / "w.duckdb"
    build(f"duckdb:///{db}", {"start": START}, project_dir=project)
    code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print(c.execute('select total from esn_build.mart_numbers').fetchone()[0]); c.close()")
    proc = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "6"
