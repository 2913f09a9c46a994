"""Regenerates tests/dbt/expected/ from the OLD SQL runner of git history (commit 3d61d4b), the reference
the dbt project of sql/ was proven equal to, table for table, before that runner was removed (d662a50).

    ESN_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m tests.dbt.regenerate_expected            # needs the git history (3d61d4b)

It extracts `pipelines/warehouse.py` (the old runner: `discover_models`, `parse_model`, `run_model`) and
`sql/staging|intermediate|marts/*.sql` of that commit into a temporary directory, loads the module under
another name beside today's `pipelines`, and writes:

- `expected/equivalence.json`: on the demo lake of `tests/dbt/conftest.py` (DEMO, pseudonym key
  PSEUDONYM_KEY), loaded as today's publication loads it (`load_lake`), the old runner runs every model
  (one transaction, tables and views in the internal schema) for each of the RUNS (30 days, then two
  single days, the incremental models appending), on DuckDB and on PostgreSQL (a scratch database, dropped
  afterwards); after each run, every model's digest (`compare.digest`: row count, columns and types, sha256
  of the canonical sorted rows, floats to 1e-12 relative), per backend, per run, per model.
- `expected/models.json`: the old headers of the models: layer, materialisation, key, partition column,
  declared dependencies, description and the meta keys suppression and the catalogue read.

`test_equivalence.py` builds the same runs with dbt and compares each table to these digests;
`test_project.py` compares the dbt project's models to models.json. Regenerate only if the demo generator,
the lake load or the canonical form change (then the expectation says what the OLD runner makes of them);
a change of a model's result is exactly what these files are there to catch.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from pipelines import jobs, warehouse
from tests.conftest import PG_ADMIN_URL, REPO, demo_settings
from tests.dbt import compare
from tests.dbt.conftest import DEMO, PSEUDONYM_KEY, RUNS, START, land, load_lake

OLD_COMMIT = "3d61d4b"
EXPECTED = Path(__file__).resolve().parent / "expected"
#: header keys suppression and the catalogue read (kept under their names in the dbt YAML meta)
META_KEYS = ("grain", "key", "partition_by", "owner", "families", "family_total", "group_size", "shared_people",
             "labels", "sub_suppression", "not_null")


def old_runner(tmp: Path) -> tuple[ModuleType, Path]:
    """The old warehouse module (loaded as `esn_old_warehouse`) and the directory of the old SQL models."""
    tmp.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(REPO)]
    source = subprocess.run([*git, "show", f"{OLD_COMMIT}:pipelines/warehouse.py"], check=True,
                            capture_output=True).stdout
    (tmp / "esn_old_warehouse.py").write_bytes(source)
    archive = subprocess.run([*git, "archive", "--format=tar", OLD_COMMIT, "sql/staging", "sql/intermediate",
                              "sql/marts"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp, filter="data")
    spec = importlib.util.spec_from_file_location("esn_old_warehouse", tmp / "esn_old_warehouse.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module, tmp / "sql"


def run_old(old: ModuleType, sql_dir: Path, settings: Any, interval: jobs.Interval, engine: sa.Engine) -> None:
    """The old runner as the old publication ran it: every model, in dependency order, one transaction."""
    params = jobs.model_params(settings, interval)
    with engine.begin() as conn:
        for model in old.discover_models(sql_dir):
            old.run_model(conn, model, params)


def digests(old: ModuleType, sql_dir: Path, url: str | None, tmp: Path) -> dict[str, Any]:
    settings = demo_settings(tmp, warehouse_url=url, **DEMO, start=START)
    engine = warehouse.engine_for(settings)
    names = [m.name for m in old.discover_models(sql_dir)]
    runs: dict[str, Any] = {}
    try:
        for interval in RUNS:
            t0 = time.perf_counter()
            land(settings, interval, engine)
            load_lake(settings, interval, engine)
            run_old(old, sql_dir, settings, interval, engine)
            with engine.connect() as conn:
                schema = warehouse.schemas_of(conn).internal  # the old runner's tables and views
                runs[interval.batch] = {n: compare.digest(compare.snapshot(conn, schema, n)) for n in names}
            print(f"  {interval.batch}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    finally:
        engine.dispose()
    return compare.pack(runs)


def models(old: ModuleType, sql_dir: Path) -> list[dict[str, Any]]:
    return [{"name": m.name, "layer": m.layer, "materialized": m.materialized, "partition_by": m.partition_by,
             "key": m.key, "depends_on": m.depends_on, "description": m.meta.get("description", ""),
             "meta": {k: m.meta[k] for k in META_KEYS if k in m.meta}}
            for m in old.discover_models(sql_dir)]


def main() -> None:
    os.environ["ESN_PSEUDONYM_KEY"] = PSEUDONYM_KEY
    EXPECTED.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="esn_old_runner_") as tmp_dir:
        tmp = Path(tmp_dir)
        old, sql_dir = old_runner(tmp / "old")
        (EXPECTED / "models.json").write_text(json.dumps(models(old, sql_dir), indent=1) + "\n")
        out: dict[str, Any] = {"_about": {
            "produced_by": "python -m tests.dbt.regenerate_expected (the old runner of commit "
                           f"{OLD_COMMIT}: pipelines/warehouse.py and sql/<layer>/*.sql)",
            "demo": {**DEMO, "start": START.isoformat()}, "runs": [i.batch for i in RUNS],
            "pseudonym_key": PSEUDONYM_KEY,
            "digest": "per backend: each table's columns and types (in table order), and per run and table "
                      "[rows, sha256 of the rows: columns by name, rows sorted, floats to 1e-12 relative] "
                      "(tests/dbt/compare.py: digest, pack)"}}
        print("duckdb", file=sys.stderr)
        out["duckdb"] = digests(old, sql_dir, None, tmp / "duckdb")
        name = f"esn_h_a_regen_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'create database "{name}"')
        try:
            print("postgresql", file=sys.stderr)
            out["postgresql"] = digests(old, sql_dir, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", tmp / "pg")
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
            admin.dispose()
    (EXPECTED / "equivalence.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED / 'models.json'} and {EXPECTED / 'equivalence.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
