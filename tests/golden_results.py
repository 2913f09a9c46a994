"""The published results of the small demo, kept so that a change made for speed can be checked against
what the code published before it (issue 15: "the results of every mart and network table unchanged").

`results()` runs the small demo (tests.conftest.SMALL_DEMO) as one batch, its network windows, then the
last day again as a daily run (the incremental path), and returns every table of the published schema
(marts, network and impact tables; the run logs aside) and the person-level network tables (internal),
normalised to text: columns sorted, rows sorted on every column, floats to 9 significant digits (a model rewritten for speed may sum in another order: the
last bits of a float may move, a published figure may not), NULL as an empty field.

    python -m tests.golden_results --write        # record the current code's results (after review)
    python -m tests.golden_results --dump DIR     # the tables as CSV files, to diff two trees

The record (tests/data/golden/demo_results.json) holds each table's row count, columns and sha256; the
test (tests/pipeline/test_repeatable.py, on its second DuckDB warehouse) names each table whose results moved. An intended change
of a figure (a new metric, a corrected formula) is recorded again with --write in the same commit, and the
commit message says which tables and why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import jobs, warehouse
from pipelines.network_stage import run_network_range
from tests.conftest import SMALL_DEMO, demo_settings

RECORD = Path(__file__).resolve().parent / "data" / "golden" / "demo_results.json"
#: the run logs: each run's ids and times, not a published figure
RUN_LOGS = {"dq_validation_results", "dq_reply_completeness", "dq_revisit_tiers", "dq_source_days"}
PER_RUN = RUN_LOGS | {"_published"}
#: the person-level network tables (internal): the centralities and ties the marts summarise
NETWORK_INTERNAL = ("fct_person_network", "fct_network_ties")
START = SMALL_DEMO["start"]
FULL = jobs.Interval(START, START + dt.timedelta(days=SMALL_DEMO["days"] - 1))


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return format(value, ".9g")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def normalise(df: pd.DataFrame) -> str:
    df = df[sorted(df.columns)]
    lines = [",".join(df.columns)]
    rows = sorted(",".join(_cell(v).replace("\n", "\\n").replace(",", "\\,") for v in row)
                  for row in df.itertuples(index=False, name=None))
    return "\n".join(lines + rows) + "\n"


def publish_demo(settings: Any, engine: Any, *, rerun_last_day: bool = True) -> None:
    """The small demo as one batch and its network windows, then (`rerun_last_day`) the last day again as
    a daily run: the sequence both this record and tests/pipeline/test_repeatable.py publish."""
    jobs.run(settings, FULL, engine=engine)
    run_network_range(settings, FULL.start, FULL.end, engine=engine)
    if rerun_last_day:
        last = jobs.Interval(FULL.end, FULL.end)
        jobs.run(settings, last, engine=engine)
        run_network_range(settings, last.start, last.end, engine=engine)


def tables_of(engine: Any) -> dict[str, str]:
    """Every published table (the marts schema, run logs aside) and the person-level network tables,
    normalised."""
    schemas = warehouse.schemas_of(engine)
    with engine.connect() as conn:
        names = [n for n in warehouse.base_tables(conn, [schemas.marts]) if n.rsplit(".", 1)[-1] not in PER_RUN]
        names += [f"{schemas.internal}.{t}" for t in NETWORK_INTERNAL]
        return {n.rsplit(".", 1)[-1]: normalise(warehouse.read_frame(conn, f"select * from {n}")) for n in names}


def results(root: Path) -> dict[str, str]:
    """The published tables of the small demo (batch, network, then the last day rerun), normalised."""
    settings = demo_settings(root)
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        publish_demo(settings, engine)
        return tables_of(engine)
    finally:
        engine.dispose()


def record_of(tables: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: {"rows": text.count("\n") - 1, "columns": text.split("\n", 1)[0].split(","),
                   "sha256": hashlib.sha256(text.encode()).hexdigest()}
            for name, text in sorted(tables.items())}


def differences(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"{n}: recorded, not published now" for n in sorted(set(expected) - set(actual))]
    out += [f"{n}: published now, not recorded" for n in sorted(set(actual) - set(expected))]
    for name in sorted(set(expected) & set(actual)):
        e, a = expected[name], actual[name]
        if e["columns"] != a["columns"]:
            out.append(f"{name}: columns {e['columns']} recorded, {a['columns']} now")
        elif e["rows"] != a["rows"]:
            out.append(f"{name}: {e['rows']} rows recorded, {a['rows']} now")
        elif e["sha256"] != a["sha256"]:
            out.append(f"{name}: same rows and columns, different values (python -m tests.golden_results "
                       "--dump DIR on both trees, then diff)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"record the results in {RECORD}")
    ap.add_argument("--dump", type=Path, help="write each table as DIR/<table>.csv")
    args = ap.parse_args()
    os.environ.setdefault("ESN_PSEUDONYM_KEY", "test-key-not-a-secret")  # the tests' key (scripts/test.sh)
    with tempfile.TemporaryDirectory() as tmp:
        tables = results(Path(tmp))
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for name, text in tables.items():
            (args.dump / f"{name}.csv").write_text(text)
    if args.write:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record_of(tables), indent=1) + "\n")
    if not args.write and not args.dump:
        problems = differences(json.loads(RECORD.read_text()), record_of(tables))
        print("\n".join(problems) or "unchanged")


if __name__ == "__main__":
    main()
