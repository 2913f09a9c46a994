"""The network stage: organisational network analysis on the published interactions, per window.

Reads `int_interactions`, `stg_people` (with each person's department as of the window's end from
`int_people_history`) and `fct_person_daily_activity` from the warehouse, computes
the tables of `pipelines.network` for the rolling 28- and 90-day windows ending on the run's date and
for the calendar month when the date is a month end (the monthly snapshots kept over time), and
publishes them by write-audit-publish in one transaction. The previous window of the same length is
recomputed from the interactions rather than read back, so a rerun of a date gives the same tables
whatever ran before. Person-level tables (`fct_`) are internal; `mart_` tables are privacy-safe.

The rules are the configuration's `network:` section (`stage_rules`); an interaction weighs its type's
`interactions.weights` of the run, applied once, here, and the audience cap groups the interactions of
one message (int_interactions.audience_id). Every read is ordered and the library
orders its inputs again, so the tables never depend on the order rows come back in. A window without
any interaction publishes the tables of an organisation without ties.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.config import InteractionRules, Settings
from pipelines.network import TABLES, NetworkRules, compute_network, previous_period

log = logging.getLogger(__name__)

ROLLING_WINDOWS = (28, 90)
#: columns the stage adds to every network table, in front
WINDOW_COLUMNS = {
    "window_name": "which window the row describes: rolling_28d, rolling_90d or month (calendar month snapshot)",
    "window_start": "first day of the window (UTC dates, inclusive)",
    "window_end": "last day of the window; the run's logical date for rolling windows",
}


def windows_for(end: dt.date, *, rolling: bool = True) -> list[tuple[str, dt.date, dt.date]]:
    out = [(f"rolling_{n}d", end - dt.timedelta(days=n - 1), end) for n in ROLLING_WINDOWS] if rolling else []
    if end.day == calendar.monthrange(end.year, end.month)[1]:
        out.append(("month", end.replace(day=1), end))
    return out


def _previous(kind: str, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    if kind == "month":
        prev_end = start - dt.timedelta(days=1)
        return prev_end.replace(day=1), prev_end
    length = (end - start).days + 1
    return start - dt.timedelta(days=length), start - dt.timedelta(days=1)


def stage_rules(settings: Settings, rules: NetworkRules | None = None) -> NetworkRules:
    """The configuration's network rules (or `rules`) as the pipeline applies them: each interaction
    weighs its type's interactions.weights of this run, applied once here (not int_interactions.weight,
    which holds the weights of the day's publish, so a change of weights would apply to some days of a
    window and not others), the audience cap counts the distinct targets of one message (audience_id),
    and aggregates are suppressed below privacy.min_group_size."""
    rules = rules or settings.network
    weights = {**InteractionRules.model_validate({}).weights, **settings.interactions.weights}
    edges = rules.edges.model_copy(update={"type_weights": weights, "use_input_weight": False,
                                           "audience_key": "audience_id"})
    return rules.model_copy(update={"edges": edges, "min_group_size": settings.privacy.min_group_size})


#: the interaction columns the network reads, in a canonical read order (the library orders them again)
_INTERACTIONS_SQL = (
    # audience_id is NULL on the days an older warehouse has not rebuilt since it was added: each
    # of those interactions is its own message (uncapped) until the day is republished
    "select source, event_id, coalesce(audience_id, source || ':' || event_id) as audience_id, "
    "source_key, target_key, interaction_type, activity_date, container_id "
    "from int_interactions where activity_date between :s and :e "
    "order by source, event_id, source_key, target_key")


@dataclass
class _Span:
    """The interactions and daily posts of every window of a run (and of their previous windows), read
    once: the 28-day window, the month and all the previous windows lie inside the span from the earliest
    previous window's start to the run's date, so each window is a filter on dates, not another query."""

    edges: pd.DataFrame
    posts: pd.DataFrame  # person_key, activity_date, posts (per person and day)
    _days: Any = None  # activity_date of each interaction as numpy datetime64[D], for the window filters

    def __post_init__(self) -> None:
        self._days = pd.to_datetime(self.edges["activity_date"]).to_numpy().astype("datetime64[D]")
        self._post_days = pd.to_datetime(self.posts["activity_date"]).to_numpy().astype("datetime64[D]")

    def edges_of(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        keep = (self._days >= np.datetime64(start, "D")) & (self._days <= np.datetime64(end, "D"))
        return self.edges[keep].reset_index(drop=True)

    def posts_of(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        keep = (self._post_days >= np.datetime64(start, "D")) & (self._post_days <= np.datetime64(end, "D"))
        posts = (self.posts[keep].groupby("person_key", sort=True)["posts"].sum().astype("int64")
                 .reset_index())
        return posts


def _read_span(conn: sa.Connection, start: dt.date, end: dt.date) -> _Span:
    edges = warehouse.read_bulk(conn, _INTERACTIONS_SQL, {"s": start, "e": end})
    posts = warehouse.read_bulk(
        conn, "select person_key, activity_date, sum(posts) as posts from fct_person_daily_activity "
              "where activity_date between :s and :e group by person_key, activity_date "
              "order by person_key, activity_date", {"s": start, "e": end})
    posts["posts"] = posts["posts"].fillna(0).astype("int64")
    return _Span(edges, posts)


def _inputs(conn: sa.Connection, start: dt.date, end: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One window's interactions and posts per person (what `compute_network` reads)."""
    span = _read_span(conn, start, end)
    return span.edges, span.posts_of(start, end)


#: bump when the computation of the network tables changes, so that windows whose inputs did not change
#: are recomputed once with the new code rather than kept
DIGEST_VERSION = "1"
#: the digest of each published window's inputs (internal bookkeeping, one row per window)
DIGESTS_TABLE = "network_window_inputs"


def _digest(kind: str, start: dt.date, stop: dt.date, rules: NetworkRules, people: pd.DataFrame,
            directory: set[str], frames: list[pd.DataFrame]) -> str:
    """A digest of everything a window's tables depend on: the code's version, the rules (weights, caps,
    thresholds, seed), the window, its people (department, location, level, leader flag, directory
    membership), its and its previous window's interactions and its posts. Equal digests give equal
    tables, so a window whose digest is published is not recomputed."""
    h = hashlib.sha256()
    h.update(f"{DIGEST_VERSION}|{kind}|{start}|{stop}|".encode())
    h.update(rules.model_dump_json().encode())
    h.update(",".join(sorted(directory)).encode())
    for frame in (people, *frames):
        h.update(f"|{len(frame)}|{','.join(map(str, frame.columns))}|".encode())
        if len(frame):
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _published_digests(conn: sa.Connection, end: dt.date) -> dict[str, str]:
    if not (warehouse.table_exists(conn, DIGESTS_TABLE) and warehouse.table_exists(conn, "mart_network_org")):
        return {}
    schemas = warehouse.schemas_of(conn)
    # only the windows whose rows are still published (a warehouse rebuilt without its network tables
    # recomputes them)
    rows = warehouse.read_frame(
        conn, f"select d.window_name, d.input_digest from {schemas.qualified(DIGESTS_TABLE)} d "
              f"where d.window_end = :e and exists (select 1 from {schemas.qualified('mart_network_org')} o "
              "where o.window_name = d.window_name and o.window_end = d.window_end)", {"e": end})
    return dict(zip(rows["window_name"], rows["input_digest"], strict=True))


#: the people of the network, one row per person, ordered (node ids follow this order), with their
#: department, location, level and leader flag as of the window's end (int_people_history: a range of
#: every person covers every day, so the left join finds exactly one), so that a reorganisation moves
#: people in the windows ending on or after the day it takes effect and never in earlier ones; in the
#: directory when a directory row is theirs and the snapshots listed them on that day
PEOPLE_SQL = ("select p.person_key, h.department, h.location, h.level, coalesce(h.is_leader, false) as is_leader, "
              "p.hire_date, p.termination_date, p.in_directory and coalesce(h.listed, true) as in_directory, "
              "p.is_deactivated "
              "from stg_people p left join int_people_history h on h.person_key = p.person_key "
              "and cast(:end as date) between h.valid_from and h.valid_to order by p.person_key")


def _people(conn: sa.Connection, end: dt.date) -> pd.DataFrame:
    """The people of the windows ending on `end` (binds :end when PEOPLE_SQL uses it)."""
    return warehouse.read_frame(conn, PEOPLE_SQL, {"end": end} if ":end" in PEOPLE_SQL else None)


def compute_windows(conn: sa.Connection, settings: Settings, end: dt.date, rules: NetworkRules | None = None,
                    *, rolling: bool = True, published: dict[str, str] | None = None,
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The network tables of the windows ending on `end`, and per window its interactions, timings and
    input digest (`_digest`). When `published` (window name -> digest of the published rows) holds the
    digest of every window, nothing is computed: the tables come back empty and each window's info says
    `skipped` (the published rows already are these tables)."""
    rules = stage_rules(settings, rules)
    # department NULL (people outside the HR directory, gaps of the directory) stays NULL: the network
    # leaves ties to people without a department out of every department-based measure (E-I index,
    # cross-department ties, department tables); the segment cell 'unknown' is not a department here
    people = _people(conn, end)
    day = pd.Timestamp(end)  # compared as timestamps: an all-null date column has no `.dt.date` to compare
    hired = pd.to_datetime(people["hire_date"])
    left = pd.to_datetime(people["termination_date"])
    in_directory = people["in_directory"].fillna(True).astype(bool)
    # the people of the headcount (int_segment_headcount_daily): HR dates, or an active platform account
    employed = ((hired.isna() | (hired <= day)) & (left.isna() | (left > day))
                & (in_directory | ~people["is_deactivated"].fillna(False).astype(bool)))
    directory = set(people.loc[in_directory.to_numpy(), "person_key"])
    people = people[employed.to_numpy()].drop(columns=["hire_date", "termination_date", "in_directory",
                                                       "is_deactivated"]).reset_index(drop=True)
    windows = windows_for(end, rolling=rolling)
    out: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    info: dict[str, Any] = {}
    if not windows:
        return {name: pd.DataFrame() for name in TABLES}, info
    # one read for every window and its previous window: they all lie in [earliest start, end]
    spans = [(kind, start, stop, *_previous(kind, start, stop)) for kind, start, stop in windows]
    span = _read_span(conn, min(p_start for *_, p_start, _ in spans), end)
    inputs = []
    for kind, start, stop, p_start, p_end in spans:
        prev_edges, edges, posts = span.edges_of(p_start, p_end), span.edges_of(start, stop), span.posts_of(start, stop)
        digest = _digest(kind, start, stop, rules, people, directory, [edges, prev_edges, posts])
        inputs.append((kind, start, stop, prev_edges, edges, posts, digest))
    del span
    if published is not None and all(published.get(kind) == digest for kind, *_, digest in inputs):
        info = {kind: {"edges": len(edges), "seconds": {}, "digest": digest, "skipped": True}
                for kind, _, _, _, edges, _, digest in inputs}
        return {name: pd.DataFrame() for name in TABLES}, info
    for kind, start, stop, prev_edges, edges, posts, digest in inputs:
        previous = previous_period(prev_edges, people, rules=rules) if len(prev_edges) else None
        timings: dict[str, float] = {}
        tables = compute_network(edges, people, rules=rules, previous=previous, contributions=posts,
                                 timings=timings)
        person = tables["fct_person_network"]  # in the HR directory, not only in the people table
        person["in_directory"] = person["person_key"].isin(directory).to_numpy()
        info[kind] = {"edges": len(edges), "seconds": timings, "digest": digest, "skipped": False}
        for name, df in tables.items():
            df = df.copy()
            # typed columns, also on a table without rows (a window without ties): the warehouse creates
            # a table from the types of its first publish, and an untyped column would become text
            df.insert(0, "window_end", pd.array([stop] * len(df), dtype=pd.ArrowDtype(pa.date32())))
            df.insert(0, "window_start", pd.array([start] * len(df), dtype=pd.ArrowDtype(pa.date32())))
            df.insert(0, "window_name", pd.array([kind] * len(df), dtype=pd.ArrowDtype(pa.string())))
            out[name].append(df)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}, info


KEYS: dict[str, list[str]] = {
    "fct_person_network": ["window_name", "window_end", "person_key"],
    "fct_network_ties": ["window_name", "window_end", "source_key", "target_key"],
    "mart_network_department": ["window_name", "window_end", "department"],
    "mart_network_community": ["window_name", "window_end", "community_id"],
    "mart_network_org": ["window_name", "window_end"],
    "mart_network_influence_tiers": ["window_name", "window_end", "department", "influence_tier"],
}


@warehouse.with_engine
def run_network(settings: Settings, end: dt.date, *, engine: sa.Engine | None = None,
                rules: NetworkRules | None = None, rolling: bool = True) -> dict[str, Any]:
    """Compute and publish the network tables for the windows ending on `end` (the rolling windows
    unless `rolling` is false, and the calendar month when `end` is a month end)."""
    engine = engine or warehouse.engine_for(settings)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        # the windows published with these very inputs are not recomputed (a rerun of a day whose
        # interactions and people did not change, a month end of a range run that is already published);
        # only when every window of the run is unchanged, since the tables are replaced per window_end
        published = _published_digests(conn, end)
        tables, info = compute_windows(conn, settings, end, rules, rolling=rolling, published=published)
        if not info:
            return {"end": end.isoformat(), "rows": {}, "windows": {}, "seconds": 0.0}
        rows = {}
        if not all(w["skipped"] for w in info.values()):
            for name, df in tables.items():
                key = [k for k in KEYS[name] if k in df.columns]
                rows[name] = warehouse.publish_frame(conn, name, df, key=key if name != "mart_network_influence_tiers"
                                                     else [], partition_by="window_end", start=end, end=end)
            digests = pd.DataFrame({
                "window_name": pd.array(list(info), dtype=pd.ArrowDtype(pa.string())),
                "window_end": pd.array([end] * len(info), dtype=pd.ArrowDtype(pa.date32())),
                "input_digest": pd.array([w["digest"] for w in info.values()], dtype=pd.ArrowDtype(pa.string())),
            })
            warehouse.publish_frame(conn, DIGESTS_TABLE, digests, key=["window_name", "window_end"],
                                    partition_by="window_end", start=end, end=end)
        # the impact correlations read the month's influence: published again with this run's month snapshot
        from pipelines.metrics import impact_after_network

        rows.update(impact_after_network(conn, settings, end, windows=info))
        from pipelines import publication

        publication.describe_and_grant(conn, settings)  # the network marts' comments from their first run
    # the published snapshot file of a DuckDB warehouse holds the network marts too
    publication.publish_snapshot(settings, engine, _Through(end))
    return {"end": end.isoformat(), "rows": rows, "windows": info, "seconds": round(time.perf_counter() - t0, 2)}


@dataclass(frozen=True)
class _Through:
    """The span of a network run for the published snapshot's `_published` row."""

    end: dt.date

    @property
    def start(self) -> dt.date:
        return self.end


def network_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates a range run computes the network for: every month end in the range (the monthly
    snapshots) and the range's last day (the rolling windows)."""
    dates = []
    day = start
    while day <= end:
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        if last <= end:
            dates.append(last)
        day = last + dt.timedelta(days=1)
    if not dates or dates[-1] != end:
        dates.append(end)
    return dates


@warehouse.with_engine
def run_network_range(settings: Settings, start: dt.date, end: dt.date, *,
                      engine: sa.Engine | None = None) -> list[dict[str, Any]]:
    engine = engine or warehouse.engine_for(settings)
    dates = network_dates(start, end)
    return [run_network(settings, d, engine=engine, rolling=(d == end)) for d in dates]
