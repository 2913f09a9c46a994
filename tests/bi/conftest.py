"""Fixtures of the BI client tests: the demo published once per engine, a DuckDB 1.x client (helper B's)."""

from __future__ import annotations

import datetime as dt

from pipelines import catalogue, dbt_project
from pipelines.jobs import Interval
from tests.conftest import SMALL_DEMO
from tests.warehouse_sharing.conftest import duckdb_1x, duckdb_2x  # noqa: F401  (helper B's client fixtures)

# the smallest demo that fills the marts: 42 days from 2026-05-01 hold a month end (the monthly network
# snapshot and the impact months) and the rolling windows
FIRST = Interval(SMALL_DEMO["start"], SMALL_DEMO["start"] + dt.timedelta(days=SMALL_DEMO["days"] - 2))
LAST_DAY = FIRST.end + dt.timedelta(days=1)  # published the "next day", by a second run
# marts the demo source cannot fill: it sends no usage reports and has no Slack API replies to count
EMPTY_ON_THE_DEMO = frozenset({"mart_usage_daily", "mart_reply_completeness"})


def expected_marts() -> set[str]:
    """Every mart the publication publishes: dbt's marts and the Python ones (network, impact, scorecard,
    completeness), from the dbt project and the catalogue, not from the warehouse."""
    dbt_marts = {m.name for m in dbt_project.discover_models() if m.layer == "marts"}
    python_marts = {e.table for e in catalogue.load_entries() if e.table.startswith("mart_")} - dbt_marts
    assert dbt_marts and python_marts
    return dbt_marts | python_marts
