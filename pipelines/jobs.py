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

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import canonical, completeness, crashpoints, lake, quality, runlock, sources, warehouse
from pipelines.config import Settings
from pipelines.model import USAGE, conform
from pipelines.privacy import Pseudonymiser, read_opt_out_file, resolve_key

log = logging.getLogger(__name__)

STAGED_TABLES = ("activities", "people", "containers", "usage")
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
                         allow_demo=allow_demo_key or cfg.kind == "demo",
                         conn_id=settings.privacy.pseudonym_key_conn_id)
    # long enough, never the demo key for real people, and the key the lake was written with
    from pipelines.privacy import check_key, key_origin

    check_key(settings.lake_dir, secret, source_kind=cfg.kind, allow_demo=allow_demo_key,
              where=key_origin(settings.privacy.pseudonym_key_env, settings.privacy.pseudonym_key_conn_id,
                               explicit=bool(key)))
    return sources.SourceContext(settings=settings, source=cfg, pseudonymiser=Pseudonymiser(secret))


def _staging_dir(settings: Settings, source: str, interval: Interval) -> Path:
    """The staged batch of a run, named by the interval the run was asked for (what it covers, which
    may start earlier, is in its `batch.json`)."""
    return settings.lake_dir / "staging" / f"source={source}" / f"batch={interval.batch}"


def _extract_notes(settings: Settings, source: str, interval: Interval) -> Path:
    return settings.lake_dir / "_state" / "extract" / f"source={source}" / f"batch={interval.batch}.json"


def _source_lock(settings: Settings, source: str, interval: Interval):
    """The lock of one source of the lake, whatever the interval (`source=<name>.lock`; the interval is only
    recorded, to name the holder): extract, stage, validate and land of two runs of one source never run
    at once, so parallel backfill days never call one workspace's API at once (connectors/budget.py: the
    rate limits are per workspace) nor write its raw landing together. Waits up to $ESN_LOCK_WAIT_S."""
    return runlock.hold(settings.lake_dir, f"source={source}", interval=interval.batch)


@contextlib.contextmanager
def _extraction_lock(settings: Settings, source: str, interval: Interval) -> Iterator[None]:
    """`_source_lock` for an extraction, whose refusal says why an extraction waits for another run."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_source_lock(settings, source, interval))
        except runlock.RunLocked as exc:
            raise runlock.RunLocked(
                f"extraction of source {source} for {interval.batch} not started: one source is extracted by "
                f"one run at a time (its API's rate limits are per workspace, pipelines/connectors/budget.py), "
                f"and {exc}") from None
        yield


# ---------------------------------------------------------------------------------- the run protocol
def covered_interval(settings: Settings, source: str, interval: Interval) -> tuple[Interval, dict[str, str]]:
    """The interval a stage of `source` must cover for a run of `interval`: the run's days, extended
    back to the earliest day whose raw landing changed and is not yet in the canonical lake (late
    replies, edits, reactions on older days; the days a failed or killed run should have carried on).
    Returns it with the pending tokens it covers (consumed by `land`)."""
    _migrate_rewrite_markers(settings, source)
    _migrate_source(settings, source)
    snap = lake.pending(settings.lake_dir, source, "raw").snapshot()
    end = interval.end.isoformat()
    start = min([interval.start] + [dt.date.fromisoformat(d) for d in snap if d <= end])
    covered = Interval(start, interval.end)
    return covered, {d: t for d, t in snap.items() if start.isoformat() <= d <= end}


def _migrate_rewrite_markers(settings: Settings, source: str) -> None:
    """Lakes written before the pending journals kept rewritten days in staging/.../rewrites-*.json."""
    for marker in sorted((settings.lake_dir / "staging" / f"source={source}").glob("rewrites-*.json")):
        days = [dt.date.fromisoformat(d) for d in json.loads(marker.read_text())]
        lake.pending(settings.lake_dir, source, "raw").add(days)
        marker.unlink()


def _migrate_source(settings: Settings, source: str) -> None:
    """A source module's own migration of what earlier versions landed (`migrate_lake(settings, source)`,
    e.g. the usage reports' synthetic activities), which hands the days to rebuild to the journals."""
    try:
        cfg = settings.source(source)
    except Exception:  # noqa: BLE001 - a source no longer configured has nothing to migrate
        return
    if cfg.kind in sources.REGISTRY:
        hook = getattr(sources.load(cfg.kind), "migrate_lake", None)
        if hook is not None:
            hook(settings, source)


def effective_interval(settings: Settings, source: str, interval: Interval) -> Interval:
    """The interval the next stage of `source` covers (see `covered_interval`)."""
    return covered_interval(settings, source, interval)[0]


def recover(settings: Settings, source: str) -> dict[str, int]:
    """Clean what a killed run left in the source's part of the lake (see `lake.recover`)."""
    totals: dict[str, int] = {}
    roots = [settings.raw_dir / f"source={source}"] + [
        lake.canonical_dir(settings.lake_dir, t) / f"source={source}" for t in STAGED_TABLES]
    staging = settings.lake_dir / "staging" / f"source={source}"
    for tmp in staging.glob(".batch=*.tmp-*") if staging.exists() else []:
        shutil.rmtree(tmp, ignore_errors=True)
        totals["temporary_batches"] = totals.get("temporary_batches", 0) + 1
    for root in roots:
        for k, v in lake.recover(root).items():
            totals[k] = totals.get(k, 0) + v
    return {k: v for k, v in totals.items() if v}


# ----------------------------------------------------------------------------------------------- steps
def extract(settings: Settings, source_name: str, interval: Interval, *, key: str | None = None,
            allow_demo_key: bool = False, credentials: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the source and land its raw data for the interval. `credentials` (from an Airflow
    connection, see `sources.credentials_from_connection`) go to the source's `extract`. Every raw day
    it writes is journaled as pending (`lake.write_partition`), so the following steps cover it even
    when it lies before the interval or this run dies before them."""
    ctx = _context(settings, source_name, key, allow_demo_key)
    module = sources.load(ctx.source.kind)
    extra = {k: v for k, v in (credentials or {}).items() if v is not None}
    with _extraction_lock(settings, source_name, interval):
        recovered = recover(settings, source_name)
        crashpoints.reached("extract.start")
        t0 = time.perf_counter()
        report = module.extract(ctx, interval.start, interval.end, **extra)
        from pipelines import erasure, rotation

        opted_out = erasure.scrub_landed(settings, source_name, ctx.pseudonymiser)  # raw never keeps them
        rotation.record_identities(settings, source_name, ctx.pseudonymiser)  # for a key rotation
        seconds = round(time.perf_counter() - t0, 2)
        crashpoints.reached("extract.end")
        covered, _ = covered_interval(settings, source_name, interval)
        notes = {"outside_interval": report.details.get("outside_interval"),
                 "quarantined": report.details.get("quarantined"),
                 "quarantine_file": report.details.get("quarantine_file"),
                 "completeness": report.details.get("completeness")}
        path = _extract_notes(settings, source_name, interval)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notes, default=str, sort_keys=True))
    summary = {"source": source_name, "rows": report.rows, "days": len(report.days),
               "details": report.details, "seconds": seconds, "covered": covered.batch}
    incomplete = completeness.warning(report.details.get("completeness"), settings.quality.completeness_warn_below)
    if incomplete:  # also a failed warning record replies_complete at validation
        log.warning("%s %s: %s", source_name, interval.batch, incomplete)
        summary["warnings"] = [incomplete]
    if recovered:
        summary["recovered"] = recovered
    if opted_out:
        summary["opted_out_raw_rows"] = opted_out
    return summary


def _opt_out_keys(settings: Settings, ps: Pseudonymiser) -> set[str]:
    from pipelines.erasure import erased_keys

    keys = erased_keys(settings.lake_dir, ps)  # everyone `esn erase` removed: never brought back
    path = settings.privacy.opt_out_file
    if not path:
        return keys
    return keys | {ps.email(value) if kind == "email" else value for kind, value in read_opt_out_file(Path(path))}


def stage(settings: Settings, source_name: str, interval: Interval, *, key: str | None = None,
          allow_demo_key: bool = False) -> dict[str, Any]:
    """Canonicalise the raw landing of the interval (and of every earlier day still pending) into a
    staged batch; quarantine malformed records. The batch folder appears whole or not at all."""
    ctx = _context(settings, source_name, key, allow_demo_key)
    module = sources.load(ctx.source.kind)
    with _source_lock(settings, source_name, interval):
        crashpoints.reached("stage.start")
        covered, tokens = covered_interval(settings, source_name, interval)
        summary = _stage_batch(settings, ctx, module, source_name, interval, covered, tokens)
    return summary


def _stage_batch(settings: Settings, ctx: sources.SourceContext, module: Any, source_name: str,
                 requested: Interval, interval: Interval, tokens: dict[str, str]) -> dict[str, Any]:
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in STAGED_TABLES}
    for day in interval.days:
        for table, df in module.canonicalise(ctx, day).items():
            frames[table].append(df)
    out = _staging_dir(settings, source_name, requested)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    opted_out = _opt_out_keys(settings, ctx.pseudonymiser)
    summary: dict[str, Any] = {"source": source_name, "batch": interval.batch, "rows": {}, "quarantined": {}}
    acts = pd.concat(frames["activities"], ignore_index=True) if frames["activities"] else \
        pd.DataFrame(columns=list(canonical.ACTIVITIES.names))
    split = canonical.split_malformed_activities(acts)
    good, dropped = canonical.drop_opted_out(split.good, opted_out, ("actor_key",))
    if opted_out and "target_key" in good.columns:
        good = good.assign(target_key=good["target_key"].where(~good["target_key"].isin(opted_out)))
    summary["opted_out_rows"] = dropped
    people = _stage_people(ctx, frames["people"], opted_out, summary)
    # accounts of the types the configuration excludes (directory.guests / externals / bots), by the
    # source's own listing: dropped like opt-outs, and counted (batch.json -> the quality records)
    good, people, excluded = canonical.drop_excluded_accounts(good, people,
                                                              settings.directory.excluded_account_types())
    if excluded:
        summary["excluded_accounts"] = excluded
        log.info("%s %s: accounts excluded by the configuration (directory.*): %s", source_name,
                 interval.batch, excluded)
    pq.write_table(canonical.activities_table(good), tmp / "activities.parquet")
    summary["rows"]["activities"] = len(good)
    if len(split.bad):
        qdir = settings.quarantine_dir / "records" / f"source={source_name}" / f"batch={interval.batch}"
        qdir.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(split.bad, preserve_index=False), qdir / "activities.parquet")
        (qdir / "reasons.json").write_text(json.dumps(split.reasons, indent=2))
        summary["quarantined"] = split.reasons
        log.warning("%s %s: %d malformed record(s) quarantined in %s: %s", source_name, interval.batch,
                    len(split.bad), qdir, split.reasons)
    if people is not None:
        pq.write_table(canonical.people_table(people), tmp / "people.parquet")
        summary["rows"]["people"] = len(people)
    if frames["usage"]:  # aggregate-only sources (usage reports): counts per person and day, never activities
        usage, dropped_usage = canonical.drop_opted_out(pd.concat(frames["usage"], ignore_index=True), opted_out,
                                                        ("person_key",))
        pq.write_table(conform(pa.Table.from_pandas(usage, preserve_index=False), USAGE), tmp / "usage.parquet")
        summary["rows"]["usage"] = len(usage)
        summary["opted_out_rows"] += dropped_usage
    if frames["containers"]:
        containers = frames["containers"][-1]
        pq.write_table(canonical.containers_table(containers), tmp / "containers.parquet")
        summary["rows"]["containers"] = len(containers)
    (tmp / "batch.json").write_text(json.dumps({
        "requested": requested.batch, "covered": interval.batch, "raw_tokens": tokens,
        **{k: summary[k] for k in ("excluded_accounts", "people_accounts_merged", "people_listing_empty")
           if k in summary}},
        sort_keys=True))
    crashpoints.reached("stage.written")
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)
    crashpoints.reached("stage.end")
    return summary


def _stage_people(ctx: sources.SourceContext, frames: list[pd.DataFrame], opted_out: set[str],
                  summary: dict[str, Any]) -> pd.DataFrame | None:
    """The people the source knows as of the end of the batch (its latest snapshot of the interval),
    opted-out people removed, one row per person. None when the source landed no people; a platform
    whose listing is empty lands none either (the previous snapshot stays in force), an HR directory
    does, and the `people` suite rejects it."""
    if not frames:
        return None
    people = canonical.people_defaults(frames[-1])
    people, _ = canonical.drop_opted_out(people, opted_out, ("person_key",))
    people, merged = canonical.dedupe_people(people)
    if merged:  # two accounts of one platform with the same email: one person
        summary["people_accounts_merged"] = merged
    if people.empty and not sources.lands_directory(ctx.source):
        summary["people_listing_empty"] = True
        log.warning("%s: the platform's user listing is empty; its previous people snapshot stays in force",
                    ctx.source.name)
        return None
    return people


def _staged(settings: Settings, source_name: str, interval: Interval) -> tuple[Path, Interval, dict[str, str]]:
    staged = _staging_dir(settings, source_name, interval)
    meta_file = staged / "batch.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"no staged batch for {source_name} {interval.batch} in {staged}: run stage first")
    meta = json.loads(meta_file.read_text())
    start, end = (dt.date.fromisoformat(x) for x in meta["covered"].split("_"))
    return staged, Interval(start, end), dict(meta.get("raw_tokens") or {})


def _latest_by_source(settings: Settings, table: str, on_or_before: dt.date) -> dict[str, pd.DataFrame]:
    """{source: its latest snapshot of `table` (people, containers) on or before the day}."""
    base = lake.canonical_dir(settings.lake_dir, table)
    frames: dict[str, pd.DataFrame] = {}
    if base.exists():
        for src_dir in sorted(base.glob("source=*")):
            day = lake.latest_on_or_before(src_dir, on_or_before)
            part = lake.read_partition(src_dir, day) if day is not None else None
            if part is not None:
                frames[src_dir.name.removeprefix("source=")] = part.to_pandas()
    return frames


def _people_snapshots(settings: Settings, on_or_before: dt.date
                      ) -> Iterator[tuple[dt.date, pd.DataFrame, set[str] | None]]:
    """The merged people snapshot (`canonical.merge_people` of each source's latest people on the day) of
    every day on or before `on_or_before` on which a source landed people different from its previous
    ones, in day order, with the keys of the people whose rows changed (None for the first): an unchanged
    daily listing adds nothing to the history, so it is not merged again, and a changed one re-merges
    only the people whose rows changed (`canonical.remerge_people`)."""
    base = lake.canonical_dir(settings.lake_dir, "people")
    if not base.exists():
        return
    dirs = {d.name.removeprefix("source="): d for d in sorted(base.glob("source=*"))}
    by_day: dict[dt.date, list[str]] = {}
    for src, src_dir in dirs.items():
        for day in lake.partition_days(src_dir):
            if day <= on_or_before:
                by_day.setdefault(day, []).append(src)
    tables: dict[str, pa.Table] = {}
    frames: dict[str, pd.DataFrame] = {}
    merged: pd.DataFrame | None = None
    for day in sorted(by_day):
        changed: set[str] = set()
        for src in by_day[day]:
            part = lake.read_partition(dirs[src], day)
            if part is None or (src in tables and tables[src].equals(part)):
                continue
            frame = part.to_pandas()
            changed |= canonical.changed_people(frames[src], frame) if src in frames else \
                set(frame["person_key"].dropna().astype(object))
            tables[src], frames[src] = part, frame
        if merged is None:
            merged = canonical.merge_people(frames)
            yield day, merged, None
        elif changed:
            merged = canonical.remerge_people(merged, frames, changed)
            yield day, merged, changed


def _latest_canonical(settings: Settings, table: str, on_or_before: dt.date) -> pd.DataFrame | None:
    frames = list(_latest_by_source(settings, table, on_or_before).values())
    return pd.concat(frames, ignore_index=True) if frames else None


def _directory_keys(settings: Settings, source_name: str, staged: pd.DataFrame | None,
                    on_or_before: dt.date) -> set[str]:
    """The people an HR directory lists (rows with `in_directory`): the batch's own people when it has
    some, and the latest landed people of every other source."""
    frames = _latest_by_source(settings, "people", on_or_before)
    if staged is not None:
        frames[source_name] = staged
    keys: set[str] = set()
    for frame in frames.values():
        frame = canonical.people_defaults(frame)
        keys |= set(frame.loc[frame["in_directory"], "person_key"].dropna())
    return keys


def directory_sources(settings: Settings) -> list[str]:
    """The enabled sources that land an HR directory (`sources.lands_directory`)."""
    return [s.name for s in settings.sources if s.enabled and sources.lands_directory(s)]


def people_coverage(acts: pd.DataFrame, directory: set[str]) -> dict[str, Any]:
    """How much of a batch's activity comes from people no HR directory lists."""
    actors = acts["actor_key"].dropna()
    unknown = ~actors.isin(directory)
    n_actors = int(actors.nunique())
    n_unknown = int(actors[unknown].nunique())
    return {"actors": n_actors, "unknown_actors": n_unknown,
            "unknown_actor_share": round(n_unknown / n_actors, 6) if n_actors else 0.0,
            "activities": len(actors), "unknown_actor_activities": int(unknown.sum()),
            "unknown_activity_share": round(float(unknown.mean()), 6) if len(actors) else 0.0}


#: checks of membership in a set are run on a boolean column computed here (the set itself would be
#: embedded in every GX result and data docs page: megabytes of person keys per batch)
_MEMBERSHIP = {"actor_in_directory": "actor_key", "container_known": "container_id",
               "target_in_directory": "target_key"}


def _membership_columns(acts: pd.DataFrame, person_keys: set[str], container_ids: set[str]) -> pd.DataFrame:
    return acts.assign(
        actor_in_directory=acts["actor_key"].isna() | acts["actor_key"].isin(person_keys),
        container_known=acts["container_id"].isna() | acts["container_id"].isin(container_ids),
        target_in_directory=acts["target_key"].isna() | acts["target_key"].isin(person_keys),
    )


def validate(settings: Settings, source_name: str, interval: Interval, *, run_id: str | None = None,
             engine: sa.Engine | None = None) -> dict[str, Any]:
    """Run the GX suites on the staged batch. Blocking failure: quarantine the batch and raise."""
    run_id = run_id or quality.new_run_id()
    with _source_lock(settings, source_name, interval):
        crashpoints.reached("validate.start")
        return _validate(settings, source_name, interval, run_id, engine)


def _validate(settings: Settings, source_name: str, requested: Interval, run_id: str,
              engine: sa.Engine | None) -> dict[str, Any]:
    staged, interval, _ = _staged(settings, source_name, requested)
    acts = pq.read_table(staged / "activities.parquet").to_pandas()
    people = pq.read_table(staged / "people.parquet").to_pandas() if (staged / "people.parquet").exists() else None
    containers = (pq.read_table(staged / "containers.parquet").to_pandas()
                  if (staged / "containers.parquet").exists()
                  else _latest_canonical(settings, "containers", interval.end))
    # membership in the directory: the people of an HR directory, not every person a platform lists
    person_keys = _directory_keys(settings, source_name, people, interval.end)
    container_ids = set(containers["container_id"].dropna()) if containers is not None else set()

    q = settings.quality
    source_cfg = settings.source(source_name)
    severities = quality_severities(settings, source_name)
    validator = quality.Validator(gx_dir(settings, source_name),
                                  severities={k: v for k, (v, _) in severities.items()},
                                  run_name=f"{source_name}_{interval.batch}_{run_id}")
    batch = f"{source_name}/{interval.batch}"
    start_ts = pd.Timestamp(interval.start, tz="UTC")
    end_ts = pd.Timestamp(interval.end + dt.timedelta(days=1), tz="UTC") - pd.Timedelta(microseconds=1)
    checked = _membership_columns(acts, person_keys, container_ids)
    outcomes = [validator.validate("activities", checked, batch, {
        "interval_start": start_ts, "interval_end": end_ts})]
    for r in outcomes[0].results:  # report the checked column and its offending keys, not True/False
        if r.column in _MEMBERSHIP:
            if not r.success:
                bad = checked.loc[~checked[r.column], _MEMBERSHIP[r.column]].dropna().unique()[:10]
                r.unexpected_sample = [str(v) for v in bad]
            r.column = _MEMBERSHIP[r.column]
    crashpoints.reached("validate.suite")
    # people outside the directory are counted (a warning above); only a share of unknown actors beyond
    # directory.max_unknown_actor_share rejects the batch, and only when a source lands a directory
    coverage = people_coverage(acts, person_keys)
    directories = directory_sources(settings)
    max_share = settings.directory.max_unknown_actor_share if directories else 1.0
    outcomes.append(validator.validate("people_coverage", pd.DataFrame([coverage]), batch,
                                       {"max_unknown_actor_share": max_share}))
    for r in outcomes[-1].results:  # the figures, in the quality records
        r.unexpected_sample = [{**coverage, "max_unknown_actor_share": max_share, "directory_sources": directories}]
    # freshness and volume per day, against the same weekday's history: every day of the batch has a row
    # (a day without activity too); an aggregate-only source (usage reports) lands no activities at all
    aggregate = bool(getattr(sources.load(source_cfg.kind), "AGGREGATE_ONLY", False))
    history = _recent_volume(settings, source_name, interval, q.drift_window_days)
    drift_min, drift_max = max(0.0, 1 - q.drift_tolerance), 1 + q.drift_tolerance * 2
    volume = quality.daily_volume(acts, history, max(2, q.drift_window_days // 7), interval.days,
                                  min_weeks=None if aggregate else q.empty_day_min_weeks,
                                  min_events=q.empty_day_min_events)
    outcomes.append(validator.validate("activity_volume", volume.drop(columns=["prior"]), batch,
                                       {"drift_min": drift_min, "drift_max": drift_max}))
    max_lag = source_cfg.quality.freshness_max_lag_hours or q.freshness_max_lag_hours
    fresh = quality.batch_freshness(acts, volume, min_weeks=q.empty_day_min_weeks,
                                    evaluate=not aggregate and bool(history))
    outcomes.append(validator.validate("freshness", pd.DataFrame({"lag_hours": [fresh["lag_hours"]]}, dtype="float64"),
                                       batch, {"max_lag_hours": max_lag}))
    lag_setting = (f"sources[{source_name}].quality.freshness_max_lag_hours"
                   if source_cfg.quality.freshness_max_lag_hours else "quality.freshness_max_lag_hours")
    _explain_delivery(outcomes[-2:], source_name, volume, fresh, severities, drift_min, drift_max,
                      (max_lag, lag_setting), requested)
    stale = any(not r.success for r in outcomes[-1].results)
    source_days = quality.day_statuses(volume, fresh, stale=stale, drift_min=drift_min, drift_max=drift_max)
    if (staged / "people.parquet").exists():
        outcomes.append(validator.validate("people", people, batch))
    if (staged / "containers.parquet").exists():
        outcomes.append(validator.validate("containers", containers, batch))
    if (staged / "usage.parquet").exists():  # aggregate-only sources: their counts are validated like events
        usage = pq.read_table(staged / "usage.parquet").to_pandas()
        usage["usage_date"] = pd.to_datetime(usage["usage_date"])  # compared as timestamps, like occurred_at
        outcomes.append(validator.validate("usage", usage, batch, {
            "interval_start": pd.Timestamp(interval.start), "interval_end": pd.Timestamp(interval.end)}))
    docs = validator.build_docs()

    records = [r for o in outcomes for r in o.records(run_id)]
    extracted = _extract_records(settings, source_name, requested, run_id, batch)
    records += extracted
    records += _stage_records(staged, run_id, batch)
    evidence = settings.evidence_dir / "results" / f"source={source_name}" / f"batch={interval.batch}"
    evidence.mkdir(parents=True, exist_ok=True)
    (evidence / f"{run_id}.json").write_text(json.dumps(records, indent=2, default=str))
    # named by the extraction's interval (what it read), not the covered one: a rerun after a kill covers less
    threads, tiers = _completeness_records(settings, source_name, requested, run_id,
                                           f"{source_name}/{requested.batch}")
    failures = [r for o in outcomes for r in o.blocking_failures]
    warnings = [r for o in outcomes for r in o.warnings]
    day_rows = [{"source": source_name, **d, "run_id": run_id, "rejected": bool(failures)} for d in source_days]
    if engine is not None:
        with engine.begin() as conn:
            warehouse.record_rows(conn, "dq_validation_results", records, DQ_DDL)
            completeness.record(conn, threads, tiers, source_name)  # tables created even when empty
            record_source_days(conn, source_name, interval, day_rows)
    for w in warnings:
        log.warning("validation warning for %s: %s", batch, w.describe())
    incomplete = [e for e in extracted if e["expectation"] == "replies_complete" and not e["success"]]
    for e in incomplete:
        log.warning("validation warning for %s: %s", batch, json.loads(e["unexpected_sample"])["warning"])
    summary = {"source": source_name, "batch": interval.batch, "run_id": run_id,
               "checks": len(records), "blocking_failures": len(failures),
               "warnings": len(warnings) + len(incomplete),
               "evidence": str(evidence / f"{run_id}.json"), "data_docs": str(docs) if docs else None,
               "people_coverage": coverage}
    # the run summary says which days are not what the source usually delivers
    for key, statuses in (("not_delivered", ("empty", "stale")), ("volume_drift", ("low", "high"))):
        found = {d["day"].isoformat(): d["status"] for d in source_days if d["status"] in statuses}
        if found:
            summary[key] = found
    if failures:
        target = settings.quarantine_dir / "batches" / f"source={source_name}" / f"batch={interval.batch}" / run_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(target))
        reasons = [f.describe() for f in failures]
        if any(f.suite == "people_coverage" for f in failures):
            reasons.append(
                f"{coverage['unknown_actors']} of the batch's {coverage['actors']} actors "
                f"({coverage['unknown_actor_share']:.0%}, {coverage['unknown_activity_share']:.0%} of its activities) "
                f"are in no HR directory (directory sources: {', '.join(directories)}), more than "
                f"directory.max_unknown_actor_share ({max_share:g}): is the directory landed, current and keyed by "
                "the same email as the platform? Raise the setting if so many people outside it are expected")
        (target / "REJECTED.txt").write_text("\n".join(reasons) + "\n")
        raise BatchRejected(
            f"batch {batch} rejected by {len(failures)} blocking expectation(s); it is quarantined in "
            f"{target} and nothing was published:\n  " + "\n  ".join(reasons))
    crashpoints.reached("validate.end")
    return summary


def _extract_records(settings: Settings, source: str, requested: Interval, run_id: str,
                     batch: str) -> list[dict[str, Any]]:
    """Quality records of what the extraction set aside (events outside the interval, records it
    quarantined), so that they reach the quality table and not only a log line."""
    path = _extract_notes(settings, source, requested)
    if not path.exists():
        return []
    notes = json.loads(path.read_text())
    out = []
    outside = notes.get("outside_interval") or {}
    if outside:
        n = int(outside.get("before", 0)) + int(outside.get("after", 0))
        out.append({"run_id": run_id, "suite": "extract", "batch": batch, "rows_checked": None,
                    "expectation": "events_inside_interval", "column_name": "occurred_at",
                    "severity": "warning", "success": n == 0, "unexpected_count": n,
                    "unexpected_sample": json.dumps({k: v for k, v in outside.items() if k != "examples"},
                                                    default=str)})
    for reason, count in sorted((notes.get("quarantined") or {}).items()):
        out.append({"run_id": run_id, "suite": "extract", "batch": batch, "rows_checked": None,
                    "expectation": "records_parse", "column_name": None, "severity": "warning",
                    "success": False, "unexpected_count": int(count),
                    "unexpected_sample": json.dumps({"reason": reason, "file": notes.get("quarantine_file")})})
    found = notes.get("completeness")
    if found and found.get("threads"):
        warn_below = settings.quality.completeness_warn_below
        message = completeness.warning(found, warn_below)
        out.append({"run_id": run_id, "suite": "extract", "batch": batch, "rows_checked": int(found["threads"]),
                    "expectation": "replies_complete", "column_name": None, "severity": "warning",
                    "success": message is None,
                    "unexpected_count": int(found["replies_announced"]) - int(found["replies_fetched"]),
                    "unexpected_sample": json.dumps({k: found.get(k) for k in (
                        "announced_by", "replies_announced", "replies_fetched", "score", "threads",
                        "threads_incomplete", "by_tier")} | {"warn_below": warn_below, "warning": message},
                        default=str)})
    return out


def _completeness_records(settings: Settings, source: str, requested: Interval, run_id: str,
                          batch: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of dq_reply_completeness (per thread day and revisit tier) and dq_revisit_tiers (per tier)
    from the extraction's notes (`pipelines.completeness`)."""
    path = _extract_notes(settings, source, requested)
    found = json.loads(path.read_text()).get("completeness") if path.exists() else None
    if not found:
        return [], []
    return completeness.records(found, run_id=run_id, source=source, batch=batch,
                                warn_below=settings.quality.completeness_warn_below)


def _stage_records(staged: Path, run_id: str, batch: str) -> list[dict[str, Any]]:
    """Quality records of what the stage set aside on purpose (accounts of excluded types, duplicate
    accounts of one person), so that they are counted in the quality table."""
    meta = json.loads((staged / "batch.json").read_text())
    out = []
    for kind, counts in sorted((meta.get("excluded_accounts") or {}).items()):
        out.append({"run_id": run_id, "suite": "stage", "batch": batch, "rows_checked": None,
                    "expectation": "account_type_excluded", "column_name": "actor_key", "severity": "warning",
                    "success": True, "unexpected_count": int(counts.get("activities", 0)),
                    "unexpected_sample": json.dumps({"account_type": kind, **counts})})
    if meta.get("people_accounts_merged"):
        out.append({"run_id": run_id, "suite": "stage", "batch": batch, "rows_checked": None,
                    "expectation": "one_account_per_person", "column_name": "person_key", "severity": "warning",
                    "success": True, "unexpected_count": int(meta["people_accounts_merged"]),
                    "unexpected_sample": json.dumps({"merged_accounts": int(meta["people_accounts_merged"])})})
    if meta.get("people_listing_empty"):
        out.append({"run_id": run_id, "suite": "stage", "batch": batch, "rows_checked": None,
                    "expectation": "people_listed", "column_name": "person_key", "severity": "warning",
                    "success": False, "unexpected_count": None,
                    "unexpected_sample": json.dumps({"reason": "the platform's user listing is empty: its previous "
                                                               "people snapshot stays in force"})})
    return out


SOURCE_DAYS_DDL = ("source varchar, day date, rows bigint, baseline double precision, status varchar, "
                   "run_id varchar, rejected boolean")


def quality_severities(settings: Settings, source: str) -> dict[str, tuple[str, str]]:
    """{setting: (severity, the setting that decides it)} of the checks whose severity is configurable:
    the source's override (`sources[].quality`) or else the global `quality` setting."""
    own = settings.source(source).quality
    out = {}
    for name in ("volume_drift", "empty_day", "freshness"):
        value = getattr(own, name)
        out[f"quality.{name}"] = ((value, f"sources[{source}].quality.{name}") if value is not None
                                  else (getattr(settings.quality, name), f"quality.{name}"))
    return out


def gx_dir(settings: Settings, source: str) -> Path:
    """The GX folder of a source: its validation results and data docs (`quality.Validator`), written by
    each validation from its own ephemeral GX context."""
    return settings.evidence_dir / f"source={source}" / "gx"


def _history_text(prior: str) -> str:
    return ", ".join(f"{d}: {'not landed' if n is None else n}" for d, n in json.loads(prior).items())


def _explain_delivery(outcomes: list[quality.ValidationOutcome], source: str, volume: pd.DataFrame,
                      fresh: dict[str, Any], severities: dict[str, tuple[str, str]], drift_min: float,
                      drift_max: float, lag: tuple[float, str], requested: Interval) -> None:
    """Messages of the failed volume and freshness checks that say what and where: the source, each day
    and weekday with its history, the setting that decides blocking or warning, how to rerun a quiet day."""
    rerun = (f"`esn run --date {requested.start}`" if requested.start == requested.end else
             f"`esn run --start {requested.start} --end {requested.end}`") + \
        f" (Airflow: trigger esn_daily with params {{\"date\": \"{requested.start}\"" + \
        ("}" if requested.start == requested.end else f", \"end_date\": \"{requested.end}\"}}") + ")"

    def decided(setting: str) -> str:
        severity, where = severities[setting]
        return (f"{where} is {severity}: " + ("the batch is rejected and nothing of it is published"
                                             if severity == "blocking" else
                                             "the batch is landed and the days are recorded as not delivered "
                                             "(dq_source_days)"))

    for result in (r for o in outcomes for r in o.results if not r.success):
        if result.column == "delivered":
            empty = volume[~volume["delivered"]]
            days = "; ".join(
                f"{row.date} ({row.weekday}): no activity, although {row.weekday} had activity in "
                f"{row.weeks_active} of the previous {row.weeks_known} weeks ({_history_text(row.prior)}"
                + (f"; median {row.baseline:g}" if pd.notna(row.baseline) else "") + ")"
                for row in empty.itertuples(index=False))
            setting = severities["quality.empty_day"][1]
            result.message = (
                f"delivered: source {source} delivered nothing on {len(empty)} day(s) that usually have activity "
                f"(at least quality.empty_day_min_weeks weeks of the same weekday, with quality.empty_day_min_events "
                f"activities or more): {days}. "
                f"{decided('quality.empty_day')}. If the day was truly quiet (a holiday, a shutdown), set "
                f"{setting}: warning and rerun it with {rerun}: it is then landed and recorded as not "
                "delivered (dq_source_days status 'empty'), not as a quiet day")
            result.unexpected_sample = [
                {k: (json.loads(v) if k == "prior" else v) for k, v in row.items() if k != "drift_ratio"}
                for row in empty.to_dict("records")]
        elif result.column == "drift_ratio":
            low = "min_value" in result.kwargs
            bad = volume[volume["drift_ratio"] < drift_min] if low else volume[volume["drift_ratio"] > drift_max]
            limit = (f"below {drift_min:g} (1 - quality.drift_tolerance)" if low
                     else f"above {drift_max:g} (1 + 2 x quality.drift_tolerance)")
            days = "; ".join(
                f"{row.date} ({row.weekday}): {row.rows} activities, {row.drift_ratio:.2f} x the median "
                f"{row.baseline:g} of the same weekday ({_history_text(row.prior)})"
                for row in bad.itertuples(index=False))
            tail = (f"{decided('quality.volume_drift')}. If the drop is real (a holiday), set "
                    f"{severities['quality.volume_drift'][1]}: warning and rerun with {rerun}" if low
                    else "a surge is only reported")
            result.message = f"drift_ratio of source {source} {limit}: {days}. {tail}"
            result.unexpected_sample = [{"date": r["date"], "weekday": r["weekday"], "rows": r["rows"],
                                         "baseline": r["baseline"], "drift_ratio": r["drift_ratio"]}
                                        for r in bad.to_dict("records")]
        elif result.column == "lag_hours":
            quiet = fresh["quiet_days_not_counted"]
            max_lag, lag_setting = lag
            result.message = (
                f"lag_hours: the newest activity of source {source} in {requested.batch} is "
                f"{fresh['newest_activity']}, {fresh['lag_hours']:g} h before {fresh['counted_until']} (the end "
                "of the batch's last day with usual activity"
                + (f"; quiet days not counted: {', '.join(quiet)}" if quiet else "")
                + f"), more than {lag_setting} ({max_lag:g} h): did the source stop delivering? {decided('quality.freshness')}. "
                f"Rerun with {rerun} once the source has the data")
            result.unexpected_sample = [{**fresh, "max_lag_hours": max_lag}]


def record_source_days(conn: sa.Connection, source: str, interval: Interval, rows: list[dict[str, Any]]) -> None:
    """dq_source_days (internal schema): what each day of a source was at its latest validation
    (delivered, empty: not delivered, low, high, stale; with the run and whether the batch was rejected).
    The rows of the batch's days replace the earlier ones, so the table answers "which days did a source
    not deliver" without a window over runs; dq_validation_results keeps every run's records."""
    warehouse.record_rows(conn, "dq_source_days", [], SOURCE_DAYS_DDL)
    conn.execute(sa.text("delete from dq_source_days where source = :s and day between :a and :b"),
                 {"s": source, "a": interval.start, "b": interval.end})
    warehouse.record_rows(conn, "dq_source_days", rows, SOURCE_DAYS_DDL)


def _recent_volume(settings: Settings, source: str, interval: Interval, window: int) -> dict[str, int]:
    base = lake.canonical_dir(settings.lake_dir, "activities") / f"source={source}"
    counts: dict[str, int] = {}
    for day in lake.days_between(interval.start - dt.timedelta(days=window), interval.start - dt.timedelta(days=1)):
        f = lake.partition_dir(base, day) / lake.PART
        if f.exists():
            counts[day.isoformat()] = pq.ParquetFile(f).metadata.num_rows
    return counts


def land(settings: Settings, source_name: str, interval: Interval) -> dict[str, Any]:
    """Move a validated batch into the canonical lake, one atomic partition per day, and hand its days
    to the publication journal."""
    with _source_lock(settings, source_name, interval):
        return _land(settings, source_name, interval)


# the rows of the activities a land sorts at a time (a block of days; a larger day is a block of its own)
LAND_BLOCK_ROWS = 1_000_000


def _land(settings: Settings, source_name: str, requested: Interval) -> dict[str, Any]:
    staged, interval, tokens = _staged(settings, source_name, requested)
    raw_pending = lake.pending(settings.lake_dir, source_name, "raw")
    now = raw_pending.snapshot()
    # a day whose raw landing changed after this batch was staged (another run extracted the source
    # meanwhile) is not landed from this older batch: it stays pending, with the newer raw data, for the
    # stage that saw the change (that run's, or the next one's)
    superseded = sorted(d for d, t in now.items()
                        if interval.start.isoformat() <= d <= interval.end.isoformat() and tokens.get(d) != t)
    if superseded:
        log.warning("%s %s: the raw landing of %s changed after this batch was staged; those days are left "
                    "to the run that extracted them", source_name, interval.batch, ", ".join(superseded))
    crashpoints.reached("land.start")
    acts = pq.read_table(staged / "activities.parquet")
    # one sort of the row numbers, then the rows taken in that order a block of days at a time and each
    # day a zero-copy slice of its block (a mask per day would rescan the batch every day; a sorted copy
    # of the whole batch would double its memory; a take per day costs a pass over every column each)
    order = pc.sort_indices(acts, [("occurred_at", "ascending"), ("event_id", "ascending")])
    epoch_days = pc.divide(pc.cast(pc.cast(acts.column("occurred_at").take(order), pa.int64()), pa.int64()),
                           86_400_000_000).to_numpy(zero_copy_only=False)
    base = lake.canonical_dir(settings.lake_dir, "activities") / f"source={source_name}"
    written = 0
    landed = [d for d in interval.days if d.isoformat() not in superseded]
    bounds = {d: tuple(int(i) for i in np.searchsorted(epoch_days, [n, n + 1]))
              for d in landed for n in [(d - dt.date(1970, 1, 1)).days]}
    block: pa.Table | None = None
    block_lo = block_hi = 0
    for day in landed:
        lo, hi = bounds[day]
        if block is None or hi > block_hi:  # the next block: this day and the following ones up to LAND_BLOCK_ROWS
            block_lo, block_hi = lo, hi
            for later in landed[landed.index(day) + 1:]:
                if bounds[later][1] - lo > LAND_BLOCK_ROWS:
                    break
                block_hi = bounds[later][1]
            block = acts.take(order.slice(block_lo, block_hi - block_lo))
        part = block.slice(lo - block_lo, hi - lo)
        lake.write_partition(base, day, part)
        written += part.num_rows
    del block
    usage_file = staged / "usage.parquet"
    if usage_file.exists():  # one partition per day of usage_date, like the activities
        usage = pq.read_table(usage_file)
        usage_base = lake.canonical_dir(settings.lake_dir, "usage") / f"source={source_name}"
        for day in landed:
            lake.write_partition(usage_base, day, usage.filter(pc.equal(usage.column("usage_date"),
                                                                        pa.scalar(day, pa.date32()))))
    for table in ("people", "containers"):
        f = staged / f"{table}.parquet"
        if f.exists() and interval.end in landed:
            lake.write_partition(lake.canonical_dir(settings.lake_dir, table) / f"source={source_name}",
                                 interval.end, pq.read_table(f))
    crashpoints.reached("land.partitions")
    # publication first, then the raw journal: a kill in between re-lands (harmless), never forgets
    lake.pending(settings.lake_dir, source_name, "canonical").add(landed)
    raw_pending.discard({d: t for d, t in tokens.items() if d not in superseded})
    crashpoints.reached("land.journaled")
    shutil.rmtree(staged)
    _extract_notes(settings, source_name, requested).unlink(missing_ok=True)
    crashpoints.reached("land.end")
    return {"source": source_name, "batch": interval.batch, "activities": written,
            **({"superseded_days": superseded} if superseded else {})}


def model_params(settings: Settings, interval: Interval) -> dict[str, Any]:
    from pipelines.metrics.thresholds import load_thresholds
    from pipelines.sources import usage_reports

    w = settings.interactions.weights
    return {**load_thresholds(overrides=settings.alert_thresholds),
            "start_date": interval.start, "end_date": interval.end,
            "min_group_size": settings.privacy.min_group_size,
            "w_reply": w.get("reply", 1.0), "w_reaction": w.get("reaction", 0.5),
            "w_mention": w.get("mention", 1.0), "w_share": w.get("share", 1.0),
            **settings.usage_segments.params(), **usage_reports.report_products(settings)}


def publication_interval(settings: Settings, interval: Interval, source_names: list[str]
                         ) -> tuple[Interval, dict[str, dict[str, str]]]:
    """The interval a publish for `interval` covers: extended back to the earliest landed day not yet
    published (of any of the sources), with the journal entries it will consume."""
    snaps = {s: lake.pending(settings.lake_dir, s, "canonical").snapshot() for s in source_names}
    end = interval.end.isoformat()
    days = [dt.date.fromisoformat(d) for snap in snaps.values() for d in snap if d <= end]
    covered = Interval(min([interval.start] + days), interval.end)
    lo = covered.start.isoformat()
    return covered, {s: {d: t for d, t in snap.items() if lo <= d <= end} for s, snap in snaps.items()}


@warehouse.with_engine
def publish(settings: Settings, interval: Interval, *, engine: sa.Engine | None = None,
            source_names: list[str] | None = None,
            after_models: Callable[[sa.Connection], None] | None = None,
            key: str | None = None) -> dict[str, Any]:
    """Load the canonical lake of the interval (and of every landed day not yet published) into the
    warehouse and rebuild the models, in one transaction; then mark those days published. `key` is
    the pseudonymisation key (the DAG's, from its connection) for the business-outcome ingestion."""
    engine = engine or warehouse.engine_for(settings)
    source_names = source_names or [s.name for s in settings.sources if s.enabled]
    with runlock.hold(settings.lake_dir, "publish", interval=interval.batch):
        return _publish(settings, interval, engine, source_names, after_models, key)


def _publish(settings: Settings, requested: Interval, engine: sa.Engine, source_names: list[str],
             after_models: Callable[[sa.Connection], None] | None, key: str | None) -> dict[str, Any]:
    """The publication, in five steps (docs/warehouse.md):

    1. the lake of the interval into the staging schema's lake tables (one transaction, committed);
    2. `dbt build` of sql/ (pipelines.transform): staging views and internal models in place (incremental
       ones on the interval's partitions), the marts into the build schema, every dbt test; a failure
       stops here, the published marts untouched;
    3. complementary suppression of the build schema's marts, then dbt builds what reads them
       (mart_alerts) from the suppressed rows;
    4. ONE transaction publishes: every mart refreshed in place from the build schema (never dropped, so
       grants, comments and users' views survive), the Python metrics, the completeness scores, comments
       and grants; a reader sees all the old marts or all the new ones;
    5. on a DuckDB warehouse, the published snapshot file BI tools open, replaced atomically.

    The lake, staging and internal tables are working tables: a failure after step 1 leaves them ahead of
    the published marts until the next publish, which covers the same days again (the journal keeps them)
    and gives the same tables."""
    from pipelines import publication, suppression, transform

    crashpoints.reached("publish.start")
    interval, consumed = publication_interval(settings, requested, source_names)
    t0 = time.perf_counter()
    params = model_params(settings, interval)
    schemas = warehouse.schemas_of(engine)
    timings: dict[str, float] = {}
    rows: dict[str, int] = {}
    with warehouse.publication_lock(engine):
        with engine.begin() as conn:
            loaded, usage_loaded, people_counts = _load_lake(settings, conn, interval, source_names)
        timings["load"] = round(time.perf_counter() - t0, 2)
        crashpoints.reached("publish.loaded")

        def node_done(name: str, status: str) -> None:
            crashpoints.reached("publish.model")

        t1 = time.perf_counter()
        readers = suppression.readers_of_suppressed()
        built = transform.build(engine.url.render_as_string(hide_password=False), params, schemas=schemas,
                                exclude=readers, on_node=node_done)
        with engine.begin() as conn:
            hidden = suppression.suppress_build(conn, settings, interval)
        if readers:
            built.nodes += transform.build(engine.url.render_as_string(hide_password=False), params,
                                           schemas=schemas, select=readers, on_node=node_done).nodes
        timings["dbt"] = round(time.perf_counter() - t1, 2)
        from pipelines import dbt_project

        models = dbt_project.discover_models()
        for node in built.nodes:
            if node.resource_type == "model":
                timings[node.name] = round(node.seconds, 2)
        with engine.begin() as conn:
            t1 = time.perf_counter()
            rows.update(refresh_marts(conn, interval, models))
            timings["refresh"] = round(time.perf_counter() - t1, 2)
            t1 = time.perf_counter()
            from pipelines.metrics import compute_python_metrics

            # from the published (suppressed) marts: a batch run and the same days run one by one agree
            rows.update(compute_python_metrics(conn, settings, interval, key=key))
            timings["python_metrics"] = round(time.perf_counter() - t1, 2)
            rows[completeness.PUBLISHED] = completeness.publish(conn)  # the latest score per source and day
            if after_models is not None:
                after_models(conn)
            publication.describe_and_grant(conn, settings)
            crashpoints.reached("publish.before_commit")
        crashpoints.reached("publish.committed")
        snapshot = publication.publish_snapshot(settings, engine, interval)
    for src, entries in consumed.items():  # published: the next run starts afresh (a kill before: republished)
        lake.pending(settings.lake_dir, src, "canonical").discard(entries)
    crashpoints.reached("publish.end")
    return {"interval": interval.batch, "activities_loaded": loaded, "usage_loaded": usage_loaded,
            "people": people_counts, "models": rows, "suppressed_cells": hidden,
            **({"published_duckdb": str(snapshot)} if snapshot else {}),
            "seconds": timings, "total_seconds": round(time.perf_counter() - t0, 2)}


def refresh_marts(conn: sa.Connection, interval: Interval, models: list[warehouse.Model] | None = None
                  ) -> dict[str, int]:
    """Every dbt mart of the build schema published in place (the caller's transaction): an incremental
    mart on the interval's partitions, any other whole. Returns the rows written per mart."""
    from pipelines import dbt_project, publication

    schemas = warehouse.schemas_of(conn)
    rows: dict[str, int] = {}
    for model in models if models is not None else dbt_project.discover_models():
        if model.layer != "marts":
            continue
        if model.materialized == "incremental" and model.partition_by and warehouse.relation_exists(
                conn, f"{schemas.marts}.{model.name}"):
            rows[model.name] = publication.refresh_range(conn, schemas, model.name, model.partition_by,
                                                         interval.start, interval.end)
        else:
            rows[model.name] = publication.refresh_in_place(conn, schemas, model.name)
    return rows


def _load_lake(settings: Settings, conn: sa.Connection, interval: Interval, source_names: list[str]
               ) -> tuple[int, int, dict[str, int]]:
    """The canonical lake of the interval into the staging schema's lake tables (the caller's transaction)."""
    warehouse.ensure_lake_tables(conn)
    completeness.ensure_tables(conn)
    staging = warehouse.schemas_of(conn).staging
    files = [f for src in source_names for f in lake.partition_files(
        lake.canonical_dir(settings.lake_dir, "activities") / f"source={src}", interval.days)]
    loaded = warehouse.replace_activity_days(conn, source_names, interval.days, files)
    usage_files = [f for src in source_names for f in lake.partition_files(
        lake.canonical_dir(settings.lake_dir, "usage") / f"source={src}", interval.days)]
    usage_loaded = warehouse.replace_usage_days(conn, source_names, interval.days, usage_files)
    # one row per person of every source's latest people snapshot (canonical.merge_people: HR wins),
    # plus the people earlier snapshots listed and the latest no longer does (delisted_on); and the
    # effective-dated history of every snapshot up to the interval's end (canonical.people_over_time):
    # rebuilt from the lake each time, so erasure and key rotation of the lake carry over to it
    people, history = canonical.people_over_time(_people_snapshots(settings, interval.end))
    people_counts: dict[str, int] = {}
    if len(people):
        people = people.assign(snapshot_date=interval.end)
        warehouse.replace_table(conn, f"{staging}.lake_people", pa.Table.from_pandas(people, preserve_index=False))
        warehouse.replace_table(conn, f"{staging}.lake_people_history",
                                pa.Table.from_pandas(history, preserve_index=False))
        listed = people["delisted_on"].isna()
        people_counts = {"people": int(listed.sum()),
                         "in_directory": int((people["in_directory"] & listed).sum()),
                         "outside_directory": int((~people["in_directory"] & listed).sum())}
        if not listed.all():  # people no snapshot lists any more: their employment ended that day
            people_counts["delisted"] = int((~listed).sum())
    containers = _latest_canonical(settings, "containers", interval.end)
    if containers is not None:
        warehouse.replace_table(conn, f"{staging}.lake_containers",
                                pa.Table.from_pandas(containers, preserve_index=False))
    if warehouse.dialect(conn) == "postgresql":  # fresh statistics, or the planner guesses badly
        for table in warehouse.LAKE_DDL:
            conn.exec_driver_sql(f"analyze {staging}.{table}")
    return loaded, usage_loaded, people_counts


@warehouse.with_engine
def run(settings: Settings, interval: Interval, *, key: str | None = None, allow_demo_key: bool = False,
        engine: sa.Engine | None = None, on_step: Callable[[str, dict[str, Any]], None] | None = None,
        lock_wait_s: float = 0.0) -> dict[str, Any]:
    """The whole daily job for every enabled source: extract, stage, validate, land, publish.

    One run at a time per lake: a second run started meanwhile is refused (`runlock.RunLocked`, naming
    the holder) unless `lock_wait_s` lets it wait."""
    engine = engine or warehouse.engine_for(settings)
    run_id = quality.new_run_id()
    report: dict[str, Any] = {"run_id": run_id, "interval": interval.batch, "sources": {}}
    notify = on_step or (lambda step, info: None)
    with runlock.hold(settings.lake_dir, "run", interval=interval.batch, wait_s=lock_wait_s):
        report["config_warnings"] = settings.check_runtime()  # bad files named now, not mid-run
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
        report["publish"] = publish(settings, interval, engine=engine, key=key)
        notify("publish", report["publish"])
    return report
