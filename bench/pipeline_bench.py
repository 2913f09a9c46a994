"""Benchmark of the whole pipeline on the demo organisation at a chosen size.

Generates the organisation (people, days, a target number of events), runs every step of the daily
job as one batch on the embedded default (DuckDB + local Parquet), then a one-day incremental run, and
writes the wall time and peak memory of each step to bench/results/pipeline_<size>.json and .md.

  python bench/pipeline_bench.py --size M            # 100k people, 10M events (S 20k/2M, L 300k/50M)
  python bench/pipeline_bench.py --people 20000 --events 2000000

The figures it reports (issue 15's targets):
- FULL RECOMPUTE: stage + validate + land + publish + network of the whole history. The demo source's
  extract is the demo generator making the organisation's events: its time is reported apart and kept out
  of the pipeline figures (a real source's extract is the platform's API, not measured here).
- ONE INCREMENTAL DAY: stage + validate + land + publish of one day (the history's last day delivered
  again, as a daily run does), generator excluded.
- REFERENCE: in the same process, after the full recompute, bare DuckDB on the same canonical lake
  (read_parquet of lake/canonical/activities and the latest people snapshot) computes the core figures
  (DAU/WAU/MAU by department, weekly cohorts, the weighted edge list, E-I index by department); the ratio
  of the project's like-for-like models (`LIKE_FOR_LIKE`, their seconds in the publish report) to it is
  the figure to track, the absolute times depending on the machine and its load.

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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.peak_rss import PeakRSS  # noqa: E402
from pipelines import jobs, warehouse  # noqa: E402
from pipelines.config import SourceConfig, load_settings  # noqa: E402
from pipelines.network_stage import run_network  # noqa: E402

# events the demo generator produces per person-day at events_per_person_day=1 (measured on the default org)
EVENTS_PER_UNIT = 0.524


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


#: --size presets: (people, events) of issue 15's sizes
SIZES = {"S": (20_000, 2_000_000), "M": (100_000, 10_000_000), "L": (300_000, 50_000_000)}

#: the project's models that compute what the bare-DuckDB reference computes: the person-day activity and
#: the point-in-time department membership under DAU/WAU/MAU by department (mart_engagement_daily), the
#: cohorts (mart_cohort_retention), the weighted interactions (int_interactions) and the cross-department
#: figures by department (mart_interactions_period, whose share is the E-I index's ingredients)
LIKE_FOR_LIKE = ("fct_person_daily_activity", "int_people_history", "int_segment_membership",
                 "int_segment_headcount_daily", "mart_engagement_daily", "mart_cohort_retention",
                 "int_interactions", "mart_interactions_period")


def reference_queries(lake_dir: Path) -> dict[str, str]:
    """The bare-DuckDB reference: the core engagement figures straight from the canonical lake's Parquet
    files, each query's result materialised (a temp table) so that DuckDB computes all of it."""
    acts = f"read_parquet('{lake_dir}/canonical/activities/source=*/date=*/*.parquet', hive_partitioning = true)"
    people_glob = f"{lake_dir}/canonical/people/source=*/date=*/*.parquet"
    return {
        # the latest people snapshot of each source, one row per person
        "people": f"""
            create or replace temp table ref_people as
            with p as (select *, cast(date as date) as snap from read_parquet('{people_glob}', hive_partitioning = true))
            select person_key, any_value(department) as department from p
            where snap = (select max(snap) from p p2 where p2.source = p.source)
            group by person_key""",
        # the activities as a view: each query reads the columns it needs from the Parquet files
        "events": f"""
            create or replace temp view ref_events as
            select source, event_id, actor_key, verb, parent_id, target_key, cast(date as date) as activity_date,
                   is_deleted
            from {acts}""",
        # who was active on which day (and in which department), for the engagement and the cohorts
        "active_days": """
            create or replace temp table ref_daily as
            select distinct e.activity_date as d, e.actor_key, coalesce(p.department, 'unknown') as department
            from ref_events e left join ref_people p on p.person_key = e.actor_key where not e.is_deleted""",
        # a person is in the 7- and 28-day windows from an active day until the window has passed it or the
        # next active day takes over: +1 / -1 at those days, summed in day order per department
        "dau_wau_mau_by_department": """
            create or replace temp table ref_engagement as
            with spans as (select *, lead(d) over (partition by actor_key order by d) as nxt from ref_daily),
            deltas as (
                select department, d, 1 as dau, 1 as wau, 1 as mau from spans
                union all select department, d + 1, -1, 0, 0 from spans
                union all select department, least(d + 7, coalesce(nxt, d + 7)), 0, -1, 0 from spans
                union all select department, least(d + 28, coalesce(nxt, d + 28)), 0, 0, -1 from spans),
            per_day as (select department, d, sum(dau) as dau, sum(wau) as wau, sum(mau) as mau
                        from deltas group by all),
            grid as (select * from (select distinct d from ref_daily) cross join
                     (select distinct department from ref_daily)),
            filled as (select g.department, g.d, coalesce(p.dau, 0) as dau, coalesce(p.wau, 0) as wau,
                              coalesce(p.mau, 0) as mau
                       from grid g left join per_day p on p.department = g.department and p.d = g.d)
            select department, d as activity_date,
                   sum(dau) over w as dau, sum(wau) over w as wau, sum(mau) over w as mau
            from filled
            window w as (partition by department order by d rows between unbounded preceding and current row)""",
        "weekly_cohorts": """
            create or replace temp table ref_cohorts as
            with weeks as (select distinct actor_key, date_trunc('week', d) as week from ref_daily),
            firsts as (select actor_key, min(week) as cohort from weeks group by actor_key)
            select f.cohort, w.week, count(*) as retained
            from firsts f join weeks w on w.actor_key = f.actor_key
            group by all""",
        # the target the source names, else the author of the parent message (looked up for those only)
        "weighted_edges": """
            create or replace temp table ref_edges as
            with e as (select source, actor_key, verb, parent_id, target_key from ref_events
                       where verb in ('reply', 'reaction', 'mention', 'share') and not is_deleted),
            unresolved as (select * from e where target_key is null and verb <> 'mention'),
            parents as (select source, event_id, actor_key from ref_events
                        where event_id in (select parent_id from unresolved)),
            resolved as (
                select actor_key as s, target_key as t, verb from e where target_key is not null or verb = 'mention'
                union all
                select u.actor_key, p.actor_key, u.verb
                from unresolved u join parents p on p.source = u.source and p.event_id = u.parent_id)
            select s, t, sum(case verb when 'reaction' then 0.5 else 1.0 end) as weight, count(*) as interactions
            from resolved where t is not null and t <> s
            group by s, t""",
        "ei_index_by_department": """
            create or replace temp table ref_ei as
            select ps.department,
                   (sum(case when ps.department <> pt.department then e.weight else 0 end)
                    - sum(case when ps.department = pt.department then e.weight else 0 end))
                   / sum(e.weight) as ei_index
            from ref_edges e join ref_people ps on ps.person_key = e.s join ref_people pt on pt.person_key = e.t
            where ps.department is not null and pt.department is not null
            group by ps.department""",
    }


def run_reference(lake_dir: Path) -> dict[str, Any]:
    """The reference in this process: a fresh in-memory DuckDB with the project's memory budget, each
    query timed, the whole with its peak RSS."""
    import duckdb

    timings: dict[str, float] = {}
    rows: dict[str, int] = {}
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        con = duckdb.connect(":memory:", config={"memory_limit": warehouse._duckdb_memory_limit(),
                                                 "preserve_insertion_order": False})
        con.execute("set enable_progress_bar = false")
        for name, sql in reference_queries(lake_dir).items():
            t1 = time.perf_counter()
            con.execute(sql)
            timings[name] = round(time.perf_counter() - t1, 2)
            table = sql.split("temp ", 1)[1].split()[1]
            if "temp table" in sql:
                rows[name] = con.execute(f"select count(*) from {table}").fetchone()[0]
        con.close()
        seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(mem.peak / 1e9, 2), "queries": timings,
            "rows": rows, "memory_limit": warehouse._duckdb_memory_limit()}


def _sum_steps(steps: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    chosen = [s for s in steps if s["step"] in names]
    return {"steps": names, "seconds": round(sum(s["seconds"] for s in chosen), 1),
            "peak_rss_gb": max(s["peak_rss_gb"] for s in chosen)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default=None,
                    help="people and events of a preset: " + ", ".join(f"{k} {p:,}/{e:,}" for k, (p, e) in SIZES.items()))
    ap.add_argument("--people", type=int, default=None, help="default 20000, or the --size preset's")
    ap.add_argument("--days", type=int, default=184)
    ap.add_argument("--events", type=int, default=None,
                    help="approximate number of events to generate (default 10M, or the --size preset's)")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--warehouse-url", default=None, help="default: a DuckDB file in --work")
    ap.add_argument("--skip-network", action="store_true", help="no network stage between the full and the "
                    "incremental run (its marts then absent from the incremental publish)")
    ap.add_argument("--skip-reference", action="store_true", help="no bare-DuckDB reference run")
    args = ap.parse_args()
    preset = SIZES[args.size] if args.size else (20_000, 10_000_000)
    args.people = args.people or preset[0]
    args.events = args.events or preset[1]

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
    load_before = os.getloadavg()
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
    reference = None if args.skip_reference else run_reference(settings.lake_dir)
    if reference is not None:
        print(f"{'reference (bare DuckDB)':28s} {reference['seconds']:8.1f} s   peak RSS "
              f"{reference['peak_rss_gb']:5.2f} GB", flush=True)
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
    load_after = os.getloadavg()

    full = _sum_steps(steps, ["stage (canonicalise)", "validate (GX)", "land (canonical lake)",
                              "publish (load + models)"] + ([] if args.skip_network else ["network (28/90-day + month)"]))
    incremental = _sum_steps(steps, ["incremental day: stage", "incremental day: validate", "incremental day: land",
                                     "incremental day: publish"])
    like = {m: pub["seconds"][m] for m in LIKE_FOR_LIKE if m in pub["seconds"]}
    comparison = None
    if reference is not None:
        models_s = round(sum(like.values()), 2)
        comparison = {"like_for_like_models": like, "models_seconds": models_s,
                      "reference_seconds": reference["seconds"],
                      "ratio": round(models_s / reference["seconds"], 2) if reference["seconds"] else None,
                      "load_seconds": pub["seconds"].get("load", 0.0),
                      "ratio_with_load": round((models_s + pub["seconds"].get("load", 0.0)) / reference["seconds"], 2)
                      if reference["seconds"] else None}
    size_name = args.size or f"{args.people}p_{ext['rows']['activities'] // 1_000_000}M"
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
                    "python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after],
                    "duckdb_memory_limit": warehouse._duckdb_memory_limit()},
        "size": {"name": size_name, "people": args.people, "days": args.days, "events": ext["rows"]["activities"]},
        "warehouse": engine.dialect.name,
        "steps": steps,
        "demo_generator_seconds": {"full": _sum_steps(steps, ["extract (generate + land raw)"])["seconds"],
                                   "incremental_day": _sum_steps(steps, ["incremental day: extract"])["seconds"]},
        "full_recompute": full,
        "incremental_day": incremental,
        "reference": reference,
        "like_for_like": comparison,
        "full_run_seconds": round(total, 1),
        "publish_seconds_by_model": pub["seconds"],
        "publish_breakdown": pub_breakdown,
        "network_edges_by_window": {k: v["edges"] for k, v in net["windows"].items()},
        "network_seconds_by_window": {k: round(sum(v["seconds"].values()), 1) for k, v in net["windows"].items()},
        "incremental_day_seconds": round(inc_total, 1),
        "incremental_publish_seconds_by_model": inc_pub["seconds"],
        "incremental_publish_breakdown": inc_breakdown,
        "incremental_to_full_ratio": round(incremental["seconds"] / full["seconds"], 3) if full["seconds"] else None,
        "peak_rss_gb": max(s["peak_rss_gb"] for s in steps),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"pipeline_{size_name}.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    lines = [f"# Pipeline benchmark: {args.people:,} people, {result['size']['events']:,} events, "
             f"{args.days} days ({result['warehouse']})", "",
             f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['memory_gb']} GB, {m['platform']}, Python "
             f"{m['python']}; DuckDB memory_limit {m['duckdb_memory_limit']}; load average (1/5/15 min) "
             f"{m['load_average_before']} before, {m['load_average_after']} after; {result['when']}", "",
             "| figure | seconds | peak RSS (GB) |", "|---|---:|---:|",
             f"| FULL RECOMPUTE (stage + validate + land + publish + network) | {full['seconds']} | "
             f"{full['peak_rss_gb']} |",
             f"| ONE INCREMENTAL DAY (stage + validate + land + publish) | {incremental['seconds']} | "
             f"{incremental['peak_rss_gb']} |"]
    if reference is not None and comparison is not None:
        lines.append(f"| reference: bare DuckDB on the same lake | {reference['seconds']} | {reference['peak_rss_gb']} |")
    lines += [f"| demo generator (extract), full / incremental day, not in the figures above | "
              f"{result['demo_generator_seconds']['full']} / {result['demo_generator_seconds']['incremental_day']} | |"]
    if comparison is not None:
        lines += ["", f"Like-for-like models / reference: {comparison['models_seconds']} s / "
                  f"{comparison['reference_seconds']} s = **{comparison['ratio']}x** "
                  f"({comparison['ratio_with_load']}x with the lake load's {comparison['load_seconds']} s). Models: "
                  + ", ".join(f"{k} {v}" for k, v in comparison["like_for_like_models"].items())
                  + ". Reference queries (s): " + ", ".join(f"{k} {v}" for k, v in reference["queries"].items())]
    lines += ["", "| step | seconds | peak RSS (GB) |", "|---|---:|---:|"]
    lines += [f"| {s['step']} | {s['seconds']} | {s['peak_rss_gb']} |" for s in steps]
    lines += ["", f"Whole run incl. the generator: {result['full_run_seconds']} s; one incremental day incl. the "
              f"generator: {result['incremental_day_seconds']} s; the incremental day's pipeline work is "
              f"{result['incremental_to_full_ratio']:.1%} of the full recompute's; peak RSS {result['peak_rss_gb']} GB.", "",
              "Full publish, phases (s): " + _phases(pub_breakdown), "",
              "Slowest models of the full publish (s): " + _slowest(pub["seconds"]), "",
              "Incremental publish, phases (s): " + _phases(inc_breakdown), "",
              "Slowest models of the incremental publish (s): " + _slowest(inc_pub["seconds"])]
    lines += ["", "Network stage, interactions per window: " + ", ".join(
        f"{k} {v:,}" for k, v in result["network_edges_by_window"].items())]
    (args.results / f"pipeline_{size_name}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: result[k] for k in ("size", "full_recompute", "incremental_day", "like_for_like",
                                             "peak_rss_gb")}))
    engine.dispose()


def _slowest(seconds: dict[str, float], n: int = 8) -> str:
    models = {k: v for k, v in seconds.items() if k not in PHASES}
    return ", ".join(f"{k} {v}" for k, v in sorted(models.items(), key=lambda kv: -kv[1])[:n])


def _phases(breakdown: dict[str, Any]) -> str:
    return ", ".join(f"{p['phase']} {p['seconds']}" for p in breakdown["phases"])


if __name__ == "__main__":
    main()
