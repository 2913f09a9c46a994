"""The pipeline's steps as plain functions: what the CLI and the Airflow tasks call.

Each step takes explicit inputs (settings, the run interval, a source name) and returns a small
summary dict; none passes data frames between steps. Data moves through the lake:
  extract  -> raw/                         (source I/O, pseudonymised at the boundary)
  stage    -> staging/<source>/<batch>/    (canonical tables of the batch; malformed records quarantined)
  validate -> evidence + pass/fail         (GX; a blocking failure quarantines the batch and raises)
  land     -> canonical/                   (atomic per-day partitions; a rerun replaces exactly its days)
  publish  -> warehouse                    (load + SQL models, write-audit-publish in one transaction)
A failing step leaves what was published before untouched, and rerunning an interval gives the same result.
No step reads the wall clock: the interval is always given.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import canonical, lake, quality, sources, warehouse
from pipelines.config import Settings
from pipelines.privacy import Pseudonymiser, resolve_key

log = logging.getLogger(__name__)

STAGED_TABLES = ("activities", "people", "containers")
RUN_LOG_DDL = ("run_id varchar, step varchar, source varchar, start_date date, end_date date, "
               "status varchar, detail varchar, seconds double precision")
DQ_DDL = ("run_id varchar, suite varchar, batch varchar, rows_checked bigint, expectation varchar, "
          "column_name varchar, severity varchar, success boolean, unexpected_count bigint, "
          "unexpected_sample varchar")


class BatchRejected(RuntimeError):
    """A batch failed a blocking expectation: it is quarantined and nothing of it is published."""


@dataclass(frozen=True)
class Interval:
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"interval ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> list[dt.date]:
        return lake.days_between(self.start, self.end)

    @property
    def batch(self) -> str:
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def _context(settings: Settings, source_name: str, key: str | None, allow_demo_key: bool) -> sources.SourceContext:
    cfg = settings.source(source_name)
    # the demo organisation is fictitious: it may use the published demo key; real sources may not
    secret = resolve_key(key, env_var=settings.privacy.pseudonym_key_env,
                         allow_demo=allow_demo_key or cfg.kind == "demo")
    return sources.SourceContext(settings=settings, source=cfg, pseudonymiser=Pseudonymiser(secret))


def _staging_dir(settings: Settings, source: str, interval: Interval) -> Path:
    return settings.lake_dir / "staging" / f"source={source}" / f"batch={interval.batch}"


# ----------------------------------------------------------------------------------------------- steps
def extract(settings: Settings, source_name: str, interval: Interval, *, key: str | None = None,
            allow_demo_key: bool = False, credentials: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the source and land its raw data for the interval. `credentials` (from an Airflow
    connection, see `sources.credentials_from_connection`) go to the source's `extract`."""
    ctx = _context(settings, source_name, key, allow_demo_key)
    module = sources.load(ctx.source.kind)
    t0 = time.perf_counter()
    extra = {k: v for k, v in (credentials or {}).items() if v is not None}
    report = module.extract(ctx, interval.start, interval.end, **extra)
    # a source may rewrite raw days before the interval (edits, reactions, late thread replies on
    # older messages): remember them so that stage, validate, land and publish cover those days too
    rewritten = sorted(dt.date.fromisoformat(d) for d in report.details.get("days_rewritten_before_start", []))
    marker = _rewrite_marker(settings, source_name, interval)
    if rewritten:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps([d.isoformat() for d in rewritten]))
    elif marker.exists():
        marker.unlink()
    return {"source": source_name, "rows": report.rows, "days": len(report.days),
            "details": report.details, "seconds": round(time.perf_counter() - t0, 2),
            "covered": effective_interval(settings, source_name, interval).batch}


def _rewrite_marker(settings: Settings, source: str, interval: Interval) -> Path:
    return settings.lake_dir / "staging" / f"source={source}" / f"rewrites-{interval.batch}.json"


def effective_interval(settings: Settings, source: str, interval: Interval) -> Interval:
    """The run's interval, extended back to the earliest raw day the extraction rewrote."""
    marker = _rewrite_marker(settings, source, interval)
    if not marker.exists():
        return interval
    days = [dt.date.fromisoformat(d) for d in json.loads(marker.read_text())]
    return Interval(min(days + [interval.start]), interval.end)


def _opt_out_keys(settings: Settings, ps: Pseudonymiser) -> set[str]:
    path = settings.privacy.opt_out_file
    if not path:
        return set()
    keys = set()
    for line in Path(path).read_text().splitlines():
        value = line.strip()
        if value and not value.startswith("#"):
            keys.add(ps.email(value) if "@" in value else value)
    return keys


def stage(settings: Settings, source_name: str, interval: Interval, *, key: str | None = None,
          allow_demo_key: bool = False) -> dict[str, Any]:
    """Canonicalise the raw landing of the interval into a staged batch; quarantine malformed records."""
    interval = effective_interval(settings, source_name, interval)
    ctx = _context(settings, source_name, key, allow_demo_key)
    module = sources.load(ctx.source.kind)
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in STAGED_TABLES}
    for day in interval.days:
        for table, df in module.canonicalise(ctx, day).items():
            frames[table].append(df)
    out = _staging_dir(settings, source_name, interval)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    opted_out = _opt_out_keys(settings, ctx.pseudonymiser)
    summary: dict[str, Any] = {"source": source_name, "batch": interval.batch, "rows": {}, "quarantined": {}}
    acts = pd.concat(frames["activities"], ignore_index=True) if frames["activities"] else \
        pd.DataFrame(columns=list(canonical.ACTIVITIES.names))
    split = canonical.split_malformed_activities(acts)
    good, dropped = canonical.drop_opted_out(split.good, opted_out, ("actor_key",))
    if opted_out and "target_key" in good.columns:
        good = good.assign(target_key=good["target_key"].where(~good["target_key"].isin(opted_out)))
    summary["opted_out_rows"] = dropped
    pq.write_table(canonical.activities_table(good), out / "activities.parquet")
    summary["rows"]["activities"] = len(good)
    if len(split.bad):
        qdir = settings.quarantine_dir / "records" / f"source={source_name}" / f"batch={interval.batch}"
        qdir.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(split.bad, preserve_index=False), qdir / "activities.parquet")
        (qdir / "reasons.json").write_text(json.dumps(split.reasons, indent=2))
        summary["quarantined"] = split.reasons
        log.warning("%s %s: %d malformed record(s) quarantined in %s: %s", source_name, interval.batch,
                    len(split.bad), qdir, split.reasons)
    if frames["people"]:
        people = frames["people"][-1]  # the latest snapshot of the interval
        people, _ = canonical.drop_opted_out(people, opted_out, ("person_key",))
        pq.write_table(canonical.people_table(people), out / "people.parquet")
        summary["rows"]["people"] = len(people)
    if frames["containers"]:
        containers = frames["containers"][-1]
        pq.write_table(canonical.containers_table(containers), out / "containers.parquet")
        summary["rows"]["containers"] = len(containers)
    return summary


def _latest_canonical(settings: Settings, table: str, on_or_before: dt.date) -> pd.DataFrame | None:
    base = lake.canonical_dir(settings.lake_dir, table)
    frames = []
    if base.exists():
        for src_dir in sorted(base.glob("source=*")):
            day = lake.latest_on_or_before(src_dir, on_or_before)
            part = lake.read_partition(src_dir, day) if day is not None else None
            if part is not None:
                frames.append(part.to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else None


def validate(settings: Settings, source_name: str, interval: Interval, *, run_id: str | None = None,
             engine: sa.Engine | None = None) -> dict[str, Any]:
    """Run the GX suites on the staged batch. Blocking failure: quarantine the batch and raise."""
    run_id = run_id or quality.new_run_id()
    interval = effective_interval(settings, source_name, interval)
    staged = _staging_dir(settings, source_name, interval)
    if not (staged / "activities.parquet").exists():
        raise FileNotFoundError(f"no staged batch for {source_name} {interval.batch} in {staged}: run stage first")
    acts = pq.read_table(staged / "activities.parquet").to_pandas()
    people = (pq.read_table(staged / "people.parquet").to_pandas() if (staged / "people.parquet").exists()
              else _latest_canonical(settings, "people", interval.end))
    containers = (pq.read_table(staged / "containers.parquet").to_pandas()
                  if (staged / "containers.parquet").exists()
                  else _latest_canonical(settings, "containers", interval.end))
    person_keys = sorted(set(people["person_key"].dropna())) if people is not None else []
    container_ids = sorted(set(containers["container_id"].dropna())) if containers is not None else []

    validator = quality.Validator(settings.evidence_dir)
    batch = f"{source_name}/{interval.batch}"
    start_ts = pd.Timestamp(interval.start, tz="UTC")
    end_ts = pd.Timestamp(interval.end + dt.timedelta(days=1), tz="UTC") - pd.Timedelta(microseconds=1)
    outcomes = [validator.validate("activities", acts, batch, {
        "interval_start": start_ts, "interval_end": end_ts,
        "person_keys": person_keys, "container_ids": container_ids,
    })]
    history = _recent_volume(settings, source_name, interval, settings.quality.drift_window_days)
    volume = quality.daily_volume(acts, history, max(2, settings.quality.drift_window_days // 7))
    tol = settings.quality.drift_tolerance
    outcomes.append(validator.validate("activity_volume", volume, batch,
                                       {"drift_min": max(0.0, 1 - tol), "drift_max": 1 + tol * 2}))
    if (staged / "people.parquet").exists():
        outcomes.append(validator.validate("people", people, batch))
    if (staged / "containers.parquet").exists():
        outcomes.append(validator.validate("containers", containers, batch))
    docs = validator.build_docs()

    records = [r for o in outcomes for r in o.records(run_id)]
    evidence = settings.evidence_dir / "results" / f"source={source_name}" / f"batch={interval.batch}"
    evidence.mkdir(parents=True, exist_ok=True)
    (evidence / f"{run_id}.json").write_text(json.dumps(records, indent=2, default=str))
    if engine is not None:
        with engine.begin() as conn:
            warehouse.record_rows(conn, "dq_validation_results", records, DQ_DDL)

    failures = [r for o in outcomes for r in o.blocking_failures]
    warnings = [r for o in outcomes for r in o.warnings]
    for w in warnings:
        log.warning("validation warning for %s: %s", batch, w.describe())
    summary = {"source": source_name, "batch": interval.batch, "run_id": run_id,
               "checks": len(records), "blocking_failures": len(failures), "warnings": len(warnings),
               "evidence": str(evidence / f"{run_id}.json"), "data_docs": str(docs) if docs else None}
    if failures:
        target = settings.quarantine_dir / "batches" / f"source={source_name}" / f"batch={interval.batch}" / run_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(target))
        reasons = [f.describe() for f in failures]
        (target / "REJECTED.txt").write_text("\n".join(reasons) + "\n")
        raise BatchRejected(
            f"batch {batch} rejected by {len(failures)} blocking expectation(s); it is quarantined in "
            f"{target} and nothing was published:\n  " + "\n  ".join(reasons))
    return summary


def _recent_volume(settings: Settings, source: str, interval: Interval, window: int) -> dict[str, int]:
    base = lake.canonical_dir(settings.lake_dir, "activities") / f"source={source}"
    counts: dict[str, int] = {}
    for day in lake.days_between(interval.start - dt.timedelta(days=window), interval.start - dt.timedelta(days=1)):
        f = lake.partition_dir(base, day) / "part-0.parquet"
        if f.exists():
            counts[day.isoformat()] = pq.ParquetFile(f).metadata.num_rows
    return counts


def land(settings: Settings, source_name: str, interval: Interval) -> dict[str, Any]:
    """Move a validated batch into the canonical lake, one atomic partition per day."""
    interval = effective_interval(settings, source_name, interval)
    staged = _staging_dir(settings, source_name, interval)
    acts = pq.read_table(staged / "activities.parquet")
    # one sort, then a zero-copy slice per day (a mask per day would rescan the batch every day)
    acts = acts.sort_by([("occurred_at", "ascending"), ("event_id", "ascending")])
    epoch_days = pc.divide(pc.cast(pc.cast(acts.column("occurred_at"), pa.int64()), pa.int64()),
                           86_400_000_000).to_numpy(zero_copy_only=False)
    base = lake.canonical_dir(settings.lake_dir, "activities") / f"source={source_name}"
    written = 0
    for day in interval.days:
        n = (day - dt.date(1970, 1, 1)).days
        lo, hi = np.searchsorted(epoch_days, [n, n + 1])
        part = acts.slice(lo, hi - lo)
        lake.write_partition(base, day, part)
        written += part.num_rows
    for table in ("people", "containers"):
        f = staged / f"{table}.parquet"
        if f.exists():
            lake.write_partition(lake.canonical_dir(settings.lake_dir, table) / f"source={source_name}",
                                 interval.end, pq.read_table(f))
    shutil.rmtree(staged)
    return {"source": source_name, "batch": interval.batch, "activities": written}


def model_params(settings: Settings, interval: Interval) -> dict[str, Any]:
    from pipelines.metrics.thresholds import load_thresholds

    w = settings.interactions.weights
    return {**load_thresholds(overrides=settings.alert_thresholds),
            "start_date": interval.start, "end_date": interval.end,
            "min_group_size": settings.privacy.min_group_size,
            "w_reply": w.get("reply", 1.0), "w_reaction": w.get("reaction", 0.5),
            "w_mention": w.get("mention", 1.0), "w_share": w.get("share", 1.0)}


@warehouse.with_engine
def publish(settings: Settings, interval: Interval, *, engine: sa.Engine | None = None,
            source_names: list[str] | None = None,
            after_models: Callable[[sa.Connection], None] | None = None) -> dict[str, Any]:
    """Load the canonical lake of the interval into the warehouse and rebuild the models, atomically."""
    engine = engine or warehouse.make_engine(settings.warehouse_url)
    source_names = source_names or [s.name for s in settings.sources if s.enabled]
    requested = interval
    interval = Interval(min(effective_interval(settings, s, interval).start for s in source_names), interval.end)
    t0 = time.perf_counter()
    models = warehouse.discover_models()
    params = model_params(settings, interval)
    timings: dict[str, float] = {}
    with engine.begin() as conn:
        warehouse.ensure_lake_tables(conn)
        files = [f for src in source_names for f in lake.partition_files(
            lake.canonical_dir(settings.lake_dir, "activities") / f"source={src}", interval.days)]
        loaded = warehouse.replace_activity_days(conn, source_names, interval.days, files)
        people = _latest_canonical(settings, "people", interval.end)
        if people is not None:
            people = people.assign(snapshot_date=interval.end)
            warehouse.replace_table(conn, "lake_people", pa.Table.from_pandas(people, preserve_index=False))
        containers = _latest_canonical(settings, "containers", interval.end)
        if containers is not None:
            warehouse.replace_table(conn, "lake_containers", pa.Table.from_pandas(containers, preserve_index=False))
        if warehouse.dialect(conn) == "postgresql":  # fresh statistics, or the planner guesses badly
            for table in warehouse.LAKE_DDL:
                conn.exec_driver_sql(f"analyze {table}")
        timings["load"] = round(time.perf_counter() - t0, 2)
        rows: dict[str, int] = {}
        for model in models:
            t1 = time.perf_counter()
            rows[model.name] = warehouse.run_model(conn, model, params)
            timings[model.name] = round(time.perf_counter() - t1, 2)
        t1 = time.perf_counter()
        from pipelines.metrics import compute_python_metrics

        rows.update(compute_python_metrics(conn, settings, interval))
        timings["python_metrics"] = round(time.perf_counter() - t1, 2)
        if after_models is not None:
            after_models(conn)
    for src in source_names:  # the extended days are published: the next run starts afresh
        _rewrite_marker(settings, src, requested).unlink(missing_ok=True)
    return {"interval": interval.batch, "activities_loaded": loaded, "models": rows, "seconds": timings,
            "total_seconds": round(time.perf_counter() - t0, 2)}


@warehouse.with_engine
def run(settings: Settings, interval: Interval, *, key: str | None = None, allow_demo_key: bool = False,
        engine: sa.Engine | None = None, on_step: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The whole daily job for every enabled source: extract, stage, validate, land, publish."""
    engine = engine or warehouse.make_engine(settings.warehouse_url)
    run_id = quality.new_run_id()
    report: dict[str, Any] = {"run_id": run_id, "interval": interval.batch, "sources": {}}
    notify = on_step or (lambda step, info: None)
    for cfg in settings.sources:
        if not cfg.enabled:
            continue
        steps: dict[str, Any] = {}
        steps["extract"] = extract(settings, cfg.name, interval, key=key, allow_demo_key=allow_demo_key)
        notify("extract", steps["extract"])
        steps["stage"] = stage(settings, cfg.name, interval, key=key, allow_demo_key=allow_demo_key)
        notify("stage", steps["stage"])
        steps["validate"] = validate(settings, cfg.name, interval, run_id=run_id, engine=engine)
        notify("validate", steps["validate"])
        steps["land"] = land(settings, cfg.name, interval)
        notify("land", steps["land"])
        report["sources"][cfg.name] = steps
    report["publish"] = publish(settings, interval, engine=engine)
    notify("publish", report["publish"])
    return report
