"""Plausible business outcomes for the demo organisation, so the impact tables are not empty in the demo,
and its dated intervention (a campaign for the interrupted time series): the demo's only, never in the
production defaults, so that no organisation's tables show a fictitious campaign.

Monthly sales attainment for Sales people, weakly and positively associated with each person's latent
activity rate in the demo generator (plus a lot of noise), and a department-level monthly case resolution
time that is a little shorter where the department is more active. Written straight into the lake in the
pseudonymised form of an ingested drop (`outcomes.write_pseudonymised`: person keys, never the demo
emails), as if the organisation had dropped the files and the pipeline had ingested them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.metrics.config import Intervention
from pipelines.metrics.outcomes import OUTPUT_COLUMNS, write_pseudonymised
from pipelines.privacy import Pseudonymiser
from pipelines.sources.demo_org import build_org


def demo_interventions(start: dt.date, days: int) -> list[Intervention]:
    """The demo's dated intervention: a 'summer-campaign' on the first of the month a third into the demo's
    period (2026-07-01 for the CLI's default demo), tested on the weekly active users."""
    date = (start + dt.timedelta(days=days // 3)).replace(day=1)
    return [Intervention(name="summer-campaign", date=date, metric="wau")]


def demo_outcomes(people: int, days: int, start: dt.date, seed: int) -> pd.DataFrame:
    org = build_org(people, days, start, seed)
    rng = np.random.default_rng(seed + 101)
    months = pd.period_range(start, org.end, freq="M")
    p = org.people
    latent = np.log1p(org.rate)
    z = (latent - latent.mean()) / (latent.std() or 1.0)
    rows = []
    sales = np.flatnonzero((p["department"] == "Sales").to_numpy())
    for m in months:
        noise = rng.normal(0, 1, len(sales))
        attainment = 0.95 + 0.25 * (0.35 * z[sales] + np.sqrt(1 - 0.35**2) * noise)
        rows += [{"email": p["email"].iat[i], "period": str(m), "outcome": "sales_attainment", "value": round(v, 4)}
                 for i, v in zip(sales, attainment, strict=True)]
    dept_rate = pd.Series(org.rate).groupby(p["department"].to_numpy()).mean()
    for m in months:
        for dept, r in dept_rate.items():
            hours = 30 - 6 * np.log1p(r) + rng.normal(0, 2)
            rows.append({"department": dept, "period": str(m), "outcome": "case_resolution_hours",
                         "value": round(float(hours), 3)})
    return pd.DataFrame(rows)


def write_demo_outcomes(directory: Path, people: int, days: int, start: dt.date, seed: int,
                        pseudonymiser: Pseudonymiser, exclude: Iterable[str] = ()) -> list[Path]:
    """The demo's outcome files, pseudonymised (`demo_sales_attainment.parquet` by person key,
    `demo_case_resolution.parquet` by department), without the people of `exclude`."""
    df = demo_outcomes(people, days, start, seed)
    person = df[df["email"].notna()]
    person = person.assign(level="person", person_key=pseudonymiser.series(person["email"]), department=None,
                           period=pd.PeriodIndex(person["period"], freq="M").to_timestamp().date)
    group = df[df["department"].notna()]
    group = group.assign(level="department", person_key=None,
                         period=pd.PeriodIndex(group["period"], freq="M").to_timestamp().date)
    return [write_pseudonymised(person[OUTPUT_COLUMNS], "person_key", directory / "demo_sales_attainment.parquet",
                                exclude),
            write_pseudonymised(group[OUTPUT_COLUMNS], "department", directory / "demo_case_resolution.parquet")]
