"""The demo source: the generated organisation of `demo_org`, landed exactly like a file-drop connector.

Raw streams (per logical date): `activities` (canonical columns, keys already hashed), `people`
(the HR directory snapshot) and `containers`. Identities are pseudonymised here, before landing.

By default the organisation lives `days` days from `start` and has nothing after them. With `rolling:
true` it goes on (`ROLLING_DAYS` from `start`), so that a scheduler asking for yesterday, or a backfill
of last week, gets data: the Compose stack and `scripts/airflow_local.sh` use it. The organisation is
the same whatever day is asked for (its horizon is fixed, never the requested day), and day k's events
do not depend on the end of the range (`demo_org.simulate`), so rerunning a day lands the same bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pipelines import lake
from pipelines.canonical import raw_activities_to_canonical
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.demo_org import DemoOrg, build_org, simulate

log = logging.getLogger(__name__)

#: the span of a rolling organisation (ten years from `start`): fixed, so a day's data never depends on the
#: day asked for; each extraction simulates from `start` (about 15 ms a day for 3000 people)
ROLLING_DAYS = 3653


class DemoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    people: int = Field(3000, ge=60)
    days: int = Field(184, ge=14)
    start: dt.date = dt.date(2026, 5, 1)
    seed: int = 7
    events_per_person_day: float = Field(1.0, gt=0)
    directory_only: bool = Field(False, description="land only the HR directory (when another source, "
                                 "such as the Slack emulator, carries the activity)")
    rolling: bool = Field(False, description="the organisation goes on for ten years from `start` instead of "
                          "`days` days (ignored then), so the days a scheduler asks for (yesterday, a "
                          "backfill) have data; deterministic per day: a rerun lands the same bytes")

    @property
    def span_days(self) -> int:
        return ROLLING_DAYS if self.rolling else self.days


@lru_cache(maxsize=2)
def _org(opts_json: str) -> DemoOrg:
    o = DemoOptions.model_validate_json(opts_json)
    return build_org(o.people, o.span_days, o.start, o.seed, o.events_per_person_day)


def lands_directory(cfg) -> bool:
    """The demo organisation always lands its HR directory."""
    return True


def options(ctx: SourceContext) -> DemoOptions:
    return DemoOptions.model_validate(ctx.source.options)


def org_for(ctx: SourceContext) -> DemoOrg:
    return _org(options(ctx).model_dump_json())


def directory(org: DemoOrg, ctx: SourceContext) -> pd.DataFrame:
    p = org.people
    ps = ctx.pseudonymiser
    return pd.DataFrame({
        "person_key": ps.series(p["email"]),
        "department": p["department"], "location": p["location"], "level": p["level"],
        "manager_key": ps.series(p["manager_email"]),
        "is_leader": p["is_leader"], "hire_date": p["hire_date"],
        "termination_date": p["termination_date"],
        "in_directory": True, "account_type": "member", "is_deactivated": False,
    })


def extract(ctx: SourceContext, start: dt.date, end: dt.date) -> ExtractReport:
    org = org_for(ctx)
    name = ctx.source.name
    report = ExtractReport(source=name, days=[])
    ps = ctx.pseudonymiser
    base = lake.raw_dir(ctx.lake_dir, name, "activities")
    rows = 0
    opts = options(ctx)
    if not opts.directory_only and (end > org.end or start < org.start):
        log.warning("the demo source %r has activity from %s to %s only; asked for %s..%s (days outside "
                    "are empty%s)", name, org.start, org.end, start, end,
                    "" if opts.rolling else ": set the option `rolling: true` to have every day")
    for day, events in ([] if opts.directory_only else simulate(org, until=end)):
        if day < start:
            continue
        events = events.assign(
            source=name,
            actor_key=ps.series(events["actor_email"]),
            target_key=ps.series(events["target_email"]),
        ).drop(columns=["actor_email", "target_email"])
        lake.write_partition(base, day, pa.Table.from_pandas(events, preserve_index=False))
        rows += len(events)
        report.days.append(day)
    # directory and containers as of the end of the extracted range
    people = directory(org, ctx)
    lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "people"), end,
                         pa.Table.from_pandas(people, preserve_index=False))
    report.rows = {"activities": rows, "people": len(people)}
    if not opts.directory_only:
        containers = org.containers.assign(source=name)
        lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "containers"), end,
                             pa.Table.from_pandas(containers, preserve_index=False))
        report.rows["containers"] = len(containers)
    return report


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    name = ctx.source.name
    out: dict[str, pd.DataFrame] = {}
    raw = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "activities"), day)
    if raw is not None:
        out["activities"] = raw_activities_to_canonical(raw.to_pandas(), name)
    for stream in ("people", "containers"):
        t = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, stream), day)
        if t is not None:
            out[stream] = t.to_pandas()
    return out
