"""Benchmark of complementary suppression (`suppression.suppress_build`) alone, on a built warehouse.

The step runs in the publish between dbt's build of the marts and their publication, on marts that carry
only the primary suppression. This script takes a DuckDB warehouse a publish has filled (e.g. the one
`bench/pipeline_bench.py --work DIR` leaves in DIR), copies it into --work, rebuilds the build schema's
marts with dbt (`dbt run` of models/marts, without the marts that read suppressed ones, as the publish
does: the ones there are already suppressed) once, keeping that copy as the pre-suppression snapshot for
later runs, then times `suppress_build`:

  - FULL: the whole interval (what a full recompute's publish does);
  - ONE DAY: the interval's last day (what a daily incremental publish does);

each in its own transaction rolled back afterwards, so that every repeat starts from the same marts. It
prints, and writes as JSON, the seconds, the peak resident memory above the process's baseline (sampled
every 20 ms), the cells hidden per table, and the machine's load.

  python bench/suppression_bench.py --warehouse /tmp/x/work/warehouse.duckdb --work /tmp/x/supp \\
      --start 2026-05-01 --days 184
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.peak_rss import PeakRSS  # noqa: E402
from pipelines import jobs, suppression, transform, warehouse  # noqa: E402
from pipelines.config import load_settings  # noqa: E402


def timed(engine: Any, settings: Any, interval: jobs.Interval) -> dict[str, Any]:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        conn = engine.connect()
        tx = conn.begin()
        try:
            hidden = suppression.suppress_build(conn, settings, interval)
        finally:
            tx.rollback()
            conn.close()
        seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "peak_rss_above_base_gb": round((mem.peak - mem.base) / 1e9, 3),
            "peak_rss_gb": round(mem.peak / 1e9, 3), "hidden": hidden}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", type=Path, required=True, help="a published DuckDB warehouse (read only)")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 5, 1))
    ap.add_argument("--days", type=int, default=184)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-full", action="store_true", help="time only the one-day run")
    ap.add_argument("--results", type=Path, default=None, help="a JSON file for the figures")
    args = ap.parse_args()
    os.environ.setdefault("ESN_PSEUDONYM_KEY", "bench-key-not-a-secret")
    interval = jobs.Interval(args.start, args.start + dt.timedelta(days=args.days - 1))
    args.work.mkdir(parents=True, exist_ok=True)
    snapshot = args.work / "pre_suppression.duckdb"
    db = args.work / "warehouse.duckdb"
    settings = load_settings(None, lake_dir=args.work / "lake", warehouse_url=f"duckdb:///{db}")
    if not snapshot.exists():
        shutil.copy(args.warehouse, db)
        t0 = time.perf_counter()
        readers = suppression.readers_of_suppressed()
        transform.build(settings.warehouse_url, jobs.model_params(settings, interval),
                        schemas=warehouse.schemas_of(warehouse.make_engine(settings.warehouse_url)),
                        select=["path:models/marts"], exclude=readers, command="run")
        print(f"marts rebuilt by dbt in {time.perf_counter() - t0:.1f} s", flush=True)
        shutil.copy(db, snapshot)
    else:
        shutil.copy(snapshot, db)
    engine = warehouse.make_engine(settings.warehouse_url)
    out: dict[str, Any] = {"interval": [str(interval.start), str(interval.end)], "load_before": os.getloadavg(),
                           "runs": []}
    for _ in range(args.repeat):
        for name, iv in ([] if args.skip_full else [("full", interval)]) + [
                ("one day", jobs.Interval(interval.end, interval.end))]:
            run = {"run": name, **timed(engine, settings, iv)}
            out["runs"].append(run)
            print(f"{name:8s} {run['seconds']:8.2f} s   peak RSS +{run['peak_rss_above_base_gb']:.3f} GB "
                  f"(of {run['peak_rss_gb']:.2f})   hidden {sum(run['hidden'].values())} cells", flush=True)
    out["load_after"] = os.getloadavg()
    engine.dispose()
    if args.results:
        args.results.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
