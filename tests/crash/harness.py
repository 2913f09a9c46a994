"""The crash harness: run the daily job in a child process that SIGKILLs itself at a named crash point
(`pipelines.crashpoints`), then compare what is left with what should be.

Children are forked from a forkserver that has already imported the pipeline (pandas, pyarrow, GX,
DuckDB, SQLAlchemy), so a kill case costs the run, not ten seconds of imports; the forkserver is a fresh
single-threaded process, so no lock of the test process (emulator threads) is inherited.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa

#: bookkeeping tables, not published figures: DQ results carry run ids (the validation results, the
#: completeness records of each run, pipelines/completeness.py, and the delivery status of each source
#: day), and the extraction state moves forward when the extraction commits (on purpose: it is the
#: connector's cursor)
BOOKKEEPING = {"dq_validation_results", "dq_reply_completeness", "dq_revisit_tiers", "dq_source_days"}

_ctx: Any = None


def _context() -> Any:
    global _ctx
    if _ctx is None:
        _ctx = mp.get_context("forkserver")
        _ctx.set_forkserver_preload(["pipelines.jobs", "pipelines.sources.slack", "pipelines.sources.demo",
                                     "pipelines.metrics", "great_expectations", "duckdb", "psycopg"])
    return _ctx


def _child(settings_json: str, start: str, end: str, env: dict[str, str]) -> None:
    os.environ.update(env)
    from pipelines import jobs
    from pipelines.config import Settings

    settings = Settings.model_validate(json.loads(settings_json))
    jobs.run(settings, jobs.Interval(dt.date.fromisoformat(start), dt.date.fromisoformat(end)))


def run_in_child(settings: Any, start: dt.date, end: dt.date, env: dict[str, str], timeout_s: float = 300) -> int:
    """Run `jobs.run` in a forked child with `env`; returns its exit code (-9 when it killed itself)."""
    proc = _context().Process(target=_child, args=(settings.model_dump_json(exclude_defaults=True), start.isoformat(),
                                                   end.isoformat(), env))
    proc.start()
    proc.join(timeout_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError(f"the child run did not finish in {timeout_s} s")
    return int(proc.exitcode or 0)


# ------------------------------------------------------------------------------------------ snapshots
def lake_files(lake_dir: Path) -> dict[str, bytes]:
    """Every data file of the raw and canonical lake, by relative path, with its bytes."""
    out = {}
    for area in ("raw", "canonical"):
        root = lake_dir / area
        for f in sorted(root.rglob("*")) if root.exists() else []:
            if f.is_file():
                out[str(f.relative_to(lake_dir))] = f.read_bytes()
    return out


def leftovers(lake_dir: Path) -> list[str]:
    """Temporary files and folders of an interrupted write still in the lake."""
    return sorted(str(p.relative_to(lake_dir)) for p in lake_dir.rglob("*")
                  if ".tmp-" in p.name or p.name.startswith(".old-"))


def pending(lake_dir: Path) -> dict[str, list[str]]:
    out = {}
    for f in sorted((lake_dir / "_state" / "pending").rglob("*.json")):
        days = sorted(pd.read_json(f, typ="series").index.astype(str)) if f.stat().st_size > 2 else []
        if days:
            out[str(f.relative_to(lake_dir))] = days
    return out


def warehouse_tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    """Every base table of the warehouse (bookkeeping aside), rows in a canonical order."""
    from pipelines import warehouse

    with engine.connect() as conn:
        names = warehouse.base_tables(conn)  # `schema.table`, every schema of the warehouse
        out = {}
        for name in names:
            if name.rsplit(".", 1)[-1] in BOOKKEEPING:
                continue
            df = pd.read_sql_query(sa.text(f"select * from {name}"), conn)
            df = df.reindex(sorted(df.columns), axis=1)
            if len(df):
                df = df.sort_values(list(df.columns), kind="stable", na_position="first").reset_index(drop=True)
            out[name] = df
    return out


def assert_same_tables(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame], what: str) -> None:
    assert sorted(got) == sorted(want), f"{what}: tables differ: {sorted(set(got) ^ set(want))}"
    for name in want:
        try:
            pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False, check_exact=False,
                                          rtol=1e-12, atol=1e-12)
        except AssertionError as exc:
            raise AssertionError(f"{what}: table {name} differs ({len(got[name])} vs {len(want[name])} "
                                 f"rows): {str(exc)[:800]}") from None


def assert_same_lake(got: dict[str, bytes], want: dict[str, bytes], what: str) -> None:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"{what}: files missing {missing[:5]}, extra {extra[:5]}"
    differ = []
    for path, content in want.items():
        if got[path] != content:
            a, b = pq.read_table(pa_buffer(got[path])), pq.read_table(pa_buffer(content))
            differ.append(f"{path} ({a.num_rows} vs {b.num_rows} rows, equal content: {a.equals(b)})")
    assert not differ, f"{what}: {len(differ)} lake file(s) differ byte for byte: {differ[:5]}"


def pa_buffer(content: bytes) -> Any:
    import pyarrow as pa

    return pa.BufferReader(content)


def copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


def _child_steps(settings_json: str, start: str, end: str, env: dict[str, str]) -> None:
    """The steps one by one, as the Airflow tasks call them (each takes its own lock, no run lock)."""
    os.environ.update(env)
    from pipelines import jobs
    from pipelines.config import Settings

    settings = Settings.model_validate(json.loads(settings_json))
    interval = jobs.Interval(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    for src in settings.sources:
        jobs.extract(settings, src.name, interval)
        jobs.stage(settings, src.name, interval)
        jobs.validate(settings, src.name, interval)
        jobs.land(settings, src.name, interval)
    jobs.publish(settings, interval)


def start_steps_in_child(settings: Any, start: dt.date, end: dt.date, env: dict[str, str]) -> Any:
    """Start the steps of a run in a forked child; the caller joins it."""
    proc = _context().Process(target=_child_steps, args=(settings.model_dump_json(exclude_defaults=True),
                                                         start.isoformat(), end.isoformat(), env))
    proc.start()
    return proc
