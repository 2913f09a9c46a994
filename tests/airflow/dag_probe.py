"""Run Airflow in a child process for the tests and report on it as one JSON line.

Airflow reads AIRFLOW_HOME and its configuration once, at import; other tests in the same pytest process
may import it first with other settings. So every test of this folder talks to Airflow through this
script in a fresh interpreter whose environment the test sets:

  python dag_probe.py describe              parse the DAG folder; the DAGs' policy-relevant attributes
  python dag_probe.py parse-time FILE       seconds to parse one DAG file (Airflow already imported)
  python dag_probe.py run DAG_ID LOGICAL_DATE [--no-retries] [--mark-success REGEX] [--conf JSON]
                                            dag.test() one run; its state, task instances, asset events

The last line of stdout is `ESN_PROBE_RESULT <json>`. This script must never be imported by a test
module (it would initialise Airflow in the pytest process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

MARKER = "ESN_PROBE_RESULT "
HEAVY_MODULES = ("pandas", "pyarrow", "great_expectations", "duckdb",
                 "networkit", "igraph", "pipelines.jobs")


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.flush()
    print(MARKER + json.dumps(result, default=str), flush=True)


def _callbacks(value: Any) -> list[Any]:
    return [] if not value else list(value) if isinstance(value, list | tuple) else [value]


def describe() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    dags: dict[str, Any] = {}
    for dag_id, dag in bag.dags.items():
        condition = getattr(dag.timetable, "asset_condition", None)
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "doc_md": dag.doc_md,
            "tags": sorted(dag.tags),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "timetable": repr(dag.timetable),
            "dagrun_timeout_s": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
            "params": {k: dag.params.get_param(k).schema for k in dag.params},
            "on_failure_callback": [type(c).__module__ + "." + type(c).__qualname__
                                    for c in _callbacks(dag.on_failure_callback)],
            "schedule_asset_uris": sorted(getattr(o, "uri", str(o)) for o in getattr(condition, "objects", ())),
            "tasks": {
                t.task_id: {
                    "owner": t.owner,
                    "retries": t.retries,
                    "retry_exponential_backoff": t.retry_exponential_backoff,
                    "outlets": [getattr(o, "uri", str(o)) for o in t.outlets],
                    "upstream": sorted(t.upstream_task_ids),
                    "pool": t.pool,
                    "execution_timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                    "on_failure_callback": [type(c).__module__ + "." + type(c).__qualname__
                                            for c in _callbacks(t.on_failure_callback)],
                }
                for t in dag.tasks
            },
        }
    return {"import_errors": bag.import_errors, "dags": dags,
            "heavy_modules_loaded": sorted(m for m in HEAVY_MODULES if m in sys.modules)}


def parse_time(path: str) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=path, collect_dags=False)
    t0 = time.perf_counter()
    found = bag.process_file(path, only_if_updated=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "dag_ids": [d.dag_id for d in found], "import_errors": bag.import_errors}


def run(dag_id: str, logical_date: str, no_retries: bool, mark_success: str | None,
        conf: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    bag = DagBag()
    if bag.import_errors:
        return {"error": "import errors", "import_errors": bag.import_errors}
    dag = bag.dags[dag_id]
    if no_retries:  # fail fast in tests; the rejection test keeps the real retries to prove none happen
        for t in dag.tasks:
            t.retries = 0
    when = dt.datetime.fromisoformat(logical_date)
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    t0 = time.perf_counter()
    dr = dag.test(logical_date=when, mark_success_pattern=mark_success, run_conf=conf)
    seconds = time.perf_counter() - t0
    with create_session() as session:
        tis = {}
        for ti in dr.get_task_instances(session=session):
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tis[key] = {"state": str(getattr(ti.state, "value", ti.state)), "try_number": ti.try_number}
        events = session.execute(
            select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_run_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == dr.run_id)
        ).all()
    return {
        "state": str(getattr(dr.state, "value", dr.state)),
        "run_id": dr.run_id,
        "data_interval_start": dr.data_interval_start,
        "data_interval_end": dr.data_interval_end,
        "task_instances": tis,
        "asset_events": [{"uri": uri, "extra": extra} for uri, extra, _ in events],
        "seconds": round(seconds, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("describe")
    p = sub.add_parser("parse-time")
    p.add_argument("path")
    r = sub.add_parser("run")
    r.add_argument("dag_id")
    r.add_argument("logical_date")
    r.add_argument("--no-retries", action="store_true")
    r.add_argument("--mark-success")
    r.add_argument("--conf", type=json.loads, default=None, help="the run's conf (params), as JSON")
    args = parser.parse_args(argv)
    if args.cmd == "describe":
        _emit(describe())
    elif args.cmd == "parse-time":
        _emit(parse_time(args.path))
    else:
        _emit(run(args.dag_id, args.logical_date, args.no_retries, args.mark_success, args.conf))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
