"""The esn_partitions incremental strategy on a one-model project using sql/macros: a rerun replaces exactly
the partitions [start_date, end_date] (a day without rows any more loses its old rows, other days are kept)
and the table follows the model's columns (gained ones added, removed ones dropped)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb

from pipelines import warehouse
from tests.dbt.conftest import DBT, write_profile

V1 = """{{ config(materialized='incremental', incremental_strategy='esn_partitions', on_schema_change='sync_all_columns',
           meta={'partition_column': 'day'}) }}
select cast(d as date) as day, 1 as a, 'old' as b
from (values ('2026-05-01'), ('2026-05-02'), ('2026-05-03')) v(d)
where cast(d as date) between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}"""
V2 = """{{ config(materialized='incremental', incremental_strategy='esn_partitions', on_schema_change='sync_all_columns',
           meta={'partition_column': 'day'}) }}
select cast('2026-05-02' as date) as day, 2 as a, 'new' as c
where cast('2026-05-02' as date) between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}"""


def _run(project: Path, profiles: Path, start: str, end: str) -> None:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROFILES_DIR": str(profiles)}
    proc = subprocess.run([str(DBT), "run", "--project-dir", str(project), "--no-partial-parse", "--vars",
                           json.dumps({"start_date": start, "end_date": end})],
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_partitions_replaced_and_columns_followed(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "models").mkdir(parents=True)
    shutil.copytree(warehouse.SQL_DIR / "macros", project / "macros")
    (project / "dbt_project.yml").write_text(
        "name: esn_metrics\nversion: '1.0.0'\nconfig-version: 2\nprofile: esn_metrics\n")
    db = tmp_path / "w.duckdb"
    profiles = write_profile(tmp_path / "profiles", f"duckdb:///{db}")
    model = project / "models" / "inc.sql"
    model.write_text(V1)
    _run(project, profiles, "2026-05-01", "2026-05-03")  # first build: the interval's rows
    model.write_text(V2)
    _run(project, profiles, "2026-05-02", "2026-05-03")  # 05-03 has no rows now, 05-01 is outside
    con = duckdb.connect(str(db), read_only=True)
    cols = [r[0] for r in con.execute("select column_name from information_schema.columns where table_name = 'inc' "
                                      "order by ordinal_position").fetchall()]
    rows = con.execute("select day::varchar, a, c from esn_internal.inc order by day").fetchall()
    con.close()
    assert cols == ["day", "a", "c"]  # b dropped, c added
    assert rows == [("2026-05-01", 1, None), ("2026-05-02", 2, "new")]
