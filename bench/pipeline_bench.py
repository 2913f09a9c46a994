"""Benchmark of the whole pipeline on the demo organisation at a chosen size.

Generates the organisation (people, days, a target number of events), runs every step of the daily
job as one batch on the embedded default (DuckDB + local Parquet), then a one-day incremental run, and
writes the wall time and peak memory of each step to bench/results/pipeline.json and .md.

  python bench/pipeline_bench.py --people 20000 --events 10000000

Peak memory per step is the highest resident set size sampled every 20 ms while the step runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines import jobs, warehouse  # noqa: E402
from pipelines.config import SourceConfig, load_settings  # noqa: E402
from pipelines.network_stage import run_network  # noqa: E402

# events the demo generator produces per person-day at events_per_person_day=1 (measured on the default org)
EVENTS_PER_UNIT = 0.524


class PeakRSS:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(results: list[dict[str, Any]], name: str, fn: Callable[[], Any]) -> Any:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - t0
    results.append({"step": name, "seconds": round(seconds, 2), "peak_rss_gb": round(mem.peak / 1e9, 2)})
    print(f"{name:28s} {seconds:8.1f} s   peak RSS {mem.peak / 1e9:5.2f} GB", flush=True)
    return value


# keys of the publish report's "seconds" that are phases, not models
PHASES = ("load", "dbt", "refresh", "python_metrics")


class PublishProbe:
    """Times the phases of a publish from outside pipelines/ (the publish report gives load, dbt,
    refresh, python_metrics and per-model seconds): each dbt invocation (parse, models, tests, dbt's own
    overhead), the suppression of the build schema, the completeness scores, comments and grants, the
    DuckDB snapshot, each with its peak RSS. Wraps the module attributes the publish looks up at call
    time; the wrappers add microseconds."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def _wrap(self, module: Any, attr: str, phase: str, describe: Callable[[Any, dict[str, Any]], None] | None = None
              ) -> None:
        original = getattr(module, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                value = original(*args, **kwargs)
                seconds = time.perf_counter() - t0
            call = {"phase": phase, "seconds": round(seconds, 2), "peak_rss_gb": round(mem.peak / 1e9, 2)}
            if describe is not None:
                describe(value, call | {"kwargs": kwargs})
                call.update(self._last_detail)
            self.calls.append(call)
            return value

        self._undo.append((module, attr, original))
        setattr(module, attr, wrapper)

    def _dbt_detail(self, result: Any, call: dict[str, Any]) -> None:
        by_type: dict[str, dict[str, float]] = {}
        for n in result.nodes:
            t = by_type.setdefault(n.resource_type, {"nodes": 0, "seconds": 0.0})
            t["nodes"] += 1
            t["seconds"] += n.seconds
        nodes_s = sum(t["seconds"] for t in by_type.values())
        kw = call["kwargs"]
        self._last_detail = {
            "which": "readers of suppressed marts" if kw.get("select") else "main build",
            "select": list(kw.get("select") or []), "exclude": list(kw.get("exclude") or []),
            "dbt_seconds": round(result.seconds, 2), "parse_seconds": round(result.parse_seconds, 2),
            "manifest_cached": result.manifest_cached,
            "by_type": {k: {"nodes": v["nodes"], "seconds": round(v["seconds"], 2)} for k, v in by_type.items()},
            # the invocation's wall time not spent parsing nor inside a node: dbt's own per-node work
            # (graph, compilation, adapter cache, events, artifacts)
            "overhead_seconds": round(result.seconds - result.parse_seconds - nodes_s, 2),
            "tests": sorted(({"name": n.name, "seconds": round(n.seconds, 2)} for n in result.nodes
                             if n.resource_type == "test"), key=lambda t: -t["seconds"]),
        }

    def __enter__(self) -> PublishProbe:
        from pipelines import completeness, publication, suppression, transform
        from pipelines import metrics as metrics_pkg

        self._last_detail: dict[str, Any] = {}
        self._wrap(transform, "build", "dbt build", self._dbt_detail)
        self._wrap(suppression, "suppress_build", "suppression (build schema)")
        self._wrap(jobs, "refresh_marts", "refresh marts in place")
        self._wrap(metrics_pkg, "compute_python_metrics", "python metrics")
        self._wrap(completeness, "publish", "completeness")
        self._wrap(publication, "describe_and_grant", "comments + grants")
        self._wrap(publication, "publish_snapshot", "DuckDB snapshot")
        return self

    def __exit__(self, *exc: object) -> None:
        for module, attr, original in reversed(self._undo):
            setattr(module, attr, original)

    def breakdown(self, report: dict[str, Any], step_seconds: float) -> dict[str, Any]:
        """The publish's phases in order, with the residual (the transactions' commits, the lock, the
        lake journal) so the phases add up to the step's wall time."""
        phases: list[dict[str, Any]] = [{"phase": "lake load (staging, committed)",
                                         "seconds": report["seconds"].get("load", 0.0)}]
        for c in self.calls:
            if c["phase"] == "dbt build":
                label = "dbt build" + (" (mart_alerts, after suppression)" if c["select"] else "")
                phases.append({"phase": label + ": parse", "seconds": c["parse_seconds"]})
                for kind, v in sorted(c["by_type"].items()):
                    phases.append({"phase": f"{label}: {kind}s ({v['nodes']})", "seconds": v["seconds"]})
                phases.append({"phase": label + ": dbt overhead (invocation - parse - nodes)",
                               "seconds": c["overhead_seconds"]})
                phases.append({"phase": label + ": outside the invocation (dbt import on the first call, temp dirs)",
                               "seconds": round(c["seconds"] - c["dbt_seconds"], 2)})
            else:
                phases.append({"phase": c["phase"], "seconds": c["seconds"], "peak_rss_gb": c["peak_rss_gb"]})
        accounted = sum(p["seconds"] for p in phases)
        phases.append({"phase": "other (commits, lock, journal)", "seconds": round(step_seconds - accounted, 2)})
        return {"phases": phases, "calls": self.calls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--days", type=int, default=184)
    ap.add_argument("--events", type=int, default=10_000_000, help="approximate number of events to generate")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--warehouse-url", default=None, help="default: a DuckDB file in --work")
    ap.add_argument("--skip-network", action="store_true", help="no network stage between the full and the "
                    "incremental run (its marts then absent from the incremental publish)")
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    epd = args.events / (args.people * args.days * EVENTS_PER_UNIT)
    start = dt.date(2026, 5, 1)
    interval = jobs.Interval(start, start + dt.timedelta(days=args.days - 1))
    settings = load_settings(None, lake_dir=args.work / "lake",
                             warehouse_url=args.warehouse_url or f"duckdb:///{args.work / 'warehouse.duckdb'}",
                             sources=[SourceConfig(name="demo", kind="demo", options={
                                 "people": args.people, "days": args.days, "start": start,
                                 "events_per_person_day": epd})])
    engine = warehouse.make_engine(settings.warehouse_url)
    steps: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    ext = measure(steps, "extract (generate + land raw)", lambda: jobs.extract(settings, "demo", interval))
    measure(steps, "stage (canonicalise)", lambda: jobs.stage(settings, "demo", interval))
    measure(steps, "validate (GX)", lambda: jobs.validate(settings, "demo", interval, engine=engine))
    measure(steps, "land (canonical lake)", lambda: jobs.land(settings, "demo", interval))
    with PublishProbe() as probe:
        pub = measure(steps, "publish (load + models)", lambda: jobs.publish(settings, interval, engine=engine))
    pub_breakdown = probe.breakdown(pub, steps[-1]["seconds"])
    net = {"windows": {}} if args.skip_network else measure(
        steps, "network (28/90-day + month)", lambda: run_network(settings, interval.end, engine=engine))
    total = time.perf_counter() - t_all
    last = jobs.Interval(interval.end, interval.end)
    t_inc = time.perf_counter()
    measure(steps, "incremental day: extract", lambda: jobs.extract(settings, "demo", last))
    measure(steps, "incremental day: stage", lambda: jobs.stage(settings, "demo", last))
    measure(steps, "incremental day: validate", lambda: jobs.validate(settings, "demo", last, engine=engine))
    measure(steps, "incremental day: land", lambda: jobs.land(settings, "demo", last))
    with PublishProbe() as probe:
        inc_pub = measure(steps, "incremental day: publish", lambda: jobs.publish(settings, last, engine=engine))
    inc_breakdown = probe.breakdown(inc_pub, steps[-1]["seconds"])
    inc_total = time.perf_counter() - t_inc

    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
                    "python": platform.python_version(), "platform": platform.platform()},
        "size": {"people": args.people, "days": args.days, "events": ext["rows"]["activities"]},
        "warehouse": engine.dialect.name,
        "steps": steps,
        "full_run_seconds": round(total, 1),
        "publish_seconds_by_model": pub["seconds"],
        "publish_breakdown": pub_breakdown,
        "network_edges_by_window": {k: v["edges"] for k, v in net["windows"].items()},
        "network_seconds_by_window": {k: round(sum(v["seconds"].values()), 1) for k, v in net["windows"].items()},
        "incremental_day_seconds": round(inc_total, 1),
        "incremental_publish_seconds_by_model": inc_pub["seconds"],
        "incremental_publish_breakdown": inc_breakdown,
        "incremental_to_full_ratio": round(inc_total / total, 3),
        "peak_rss_gb": max(s["peak_rss_gb"] for s in steps),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    tag = f"{args.people}p_{ext['rows']['activities'] // 1_000_000}M"
    (args.results / f"pipeline_{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Pipeline benchmark: {args.people:,} people, {result['size']['events']:,} events, "
             f"{args.days} days ({result['warehouse']})", "",
             f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['memory_gb']} GB; {result['when']}", "",
             "| step | seconds | peak RSS (GB) |", "|---|---:|---:|"]
    lines += [f"| {s['step']} | {s['seconds']} | {s['peak_rss_gb']} |" for s in steps]
    lines += ["", f"Full run: {result['full_run_seconds']} s; one incremental day: "
              f"{result['incremental_day_seconds']} s ({result['incremental_to_full_ratio']:.1%} of the full run); "
              f"peak RSS {result['peak_rss_gb']} GB.", "",
              "Full publish, phases (s): " + _phases(pub_breakdown), "",
              "Slowest models of the full publish (s): " + _slowest(pub["seconds"]), "",
              "Incremental publish, phases (s): " + _phases(inc_breakdown), "",
              "Slowest models of the incremental publish (s): " + _slowest(inc_pub["seconds"])]
    lines += ["", "Network stage, interactions per window: " + ", ".join(
        f"{k} {v:,}" for k, v in result["network_edges_by_window"].items())]
    (args.results / f"pipeline_{tag}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: result[k] for k in ("size", "full_run_seconds", "incremental_day_seconds", "peak_rss_gb")}))
    engine.dispose()


def _slowest(seconds: dict[str, float], n: int = 8) -> str:
    models = {k: v for k, v in seconds.items() if k not in PHASES}
    return ", ".join(f"{k} {v}" for k, v in sorted(models.items(), key=lambda kv: -kv[1])[:n])


def _phases(breakdown: dict[str, Any]) -> str:
    return ", ".join(f"{p['phase']} {p['seconds']}" for p in breakdown["phases"])


if __name__ == "__main__":
    main()
