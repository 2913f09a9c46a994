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
from pipelines.network import TABLES, NetworkRules, centrality
from pipelines.network.compute import canonical_people, network_tables, previous_of_graph, start_paths
from pipelines.network.graph import PersonGraph, graph_from_codes

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


#: the interactions of a span, in the order the network reads them: the person keys, interaction types
#: and messages (audience_id) coded as integers that sort like the text does (collation "C", the code
#: point order in which pandas sorted the keys before), so that the codes' order is the canonical order
#: of `compute.canonical_inputs` and no string of millions of rows is ever held in Python. audience_id is
#: NULL on the days an older warehouse has not rebuilt since it was added: each of those interactions is
#: its own message (uncapped) until the day is republished
_SPAN_CTE = (
    "with i as (select coalesce(audience_id, source || ':' || event_id) as audience_id, source_key, "
    "target_key, interaction_type, activity_date from int_interactions where activity_date between :s and :e), "
    "k as (select key, cast(row_number() over (order by key collate \"C\") - 1 as integer) as code from ("
    "select source_key as key from i union select target_key from i union select person_key from stg_people"
    ") u where key is not null), "
    "y as (select interaction_type, cast(row_number() over (order by interaction_type collate \"C\") - 1 "
    "as integer) as code from (select distinct interaction_type from i where interaction_type is not null) d) ")
_KEYS_SQL = _SPAN_CTE + "select key from k order by code"
_TYPES_SQL = _SPAN_CTE + "select interaction_type from y order by code"
_CODED_SQL = _SPAN_CTE + (
    ", a as (select audience_id, cast(row_number() over (order by audience_id collate \"C\") - 1 as integer) "
    "as code from (select distinct audience_id from i where audience_id is not null) d) "
    "select coalesce(ks.code, -1) as s, coalesce(kt.code, -1) as t, coalesce(y.code, -1) as ty, "
    "coalesce(a.code, -1) as aud, cast(i.activity_date - cast(:s as date) as integer) as day "
    "from i left join k ks on ks.key = i.source_key left join k kt on kt.key = i.target_key "
    "left join y on y.interaction_type = i.interaction_type left join a on a.audience_id = i.audience_id "
    "order by ks.code nulls last, kt.code nulls last, y.code nulls last, a.code nulls last")


@dataclass
class _Span:
    """The interactions of every window of a run (and of their previous windows), read once and coded:
    the 28-day window, the month and all the previous windows lie inside the span from the earliest
    previous window's start to the run's date, so each window is a filter on days, not another query.
    Rows are in the canonical order (source, target, type, message), so every window's rows are too."""

    start: dt.date
    keys: np.ndarray  # person key per code (object), sorted
    types: list[str]  # interaction type per code, sorted
    s: np.ndarray  # int32 per interaction: source key code (-1 NULL)
    t: np.ndarray  # target key code
    ty: np.ndarray  # type code
    aud: np.ndarray  # message code
    day: np.ndarray  # int32 days since `start`

    def mask(self, start: dt.date, end: dt.date) -> np.ndarray:
        return (self.day >= (start - self.start).days) & (self.day <= (end - self.start).days)

    def digest_bytes(self, mask: np.ndarray) -> list[bytes]:
        """What a window's tables read of these rows (the codes' order is the text's order, and the key
        and type codes are hashed with their texts by `_digest`)."""
        return [np.ascontiguousarray(col[mask]).tobytes() for col in (self.s, self.t, self.ty, self.aud)]


def _read_span(conn: sa.Connection, start: dt.date, end: dt.date) -> _Span:
    params = {"s": start, "e": end}
    keys = warehouse.read_frame(conn, _KEYS_SQL, params)["key"].to_numpy(dtype=object)
    if len(keys) > 1 and not bool((keys[1:] > keys[:-1]).all()):
        raise RuntimeError("the warehouse sorted the person keys out of code point order (collation \"C\")")
    types = [str(t) for t in warehouse.read_frame(conn, _TYPES_SQL, params)["interaction_type"]]
    rows = warehouse.read_bulk(conn, _CODED_SQL, params)
    cols = {c: rows[c].to_numpy(dtype=np.int32) for c in ("s", "t", "ty", "aud", "day")}
    del rows
    return _Span(start, keys, types, **cols)


def _posts(conn: sa.Connection, start: dt.date, end: dt.date) -> pd.DataFrame:
    """One window's original posts per person (what `compute_network` reads as contributions)."""
    posts = warehouse.read_frame(
        conn, "select person_key, coalesce(sum(posts), 0) as posts from fct_person_daily_activity "
              "where activity_date between :s and :e group by person_key order by person_key",
        {"s": start, "e": end})
    posts["posts"] = posts["posts"].astype("int64")
    return posts


def _window_graph(span: _Span, mask: np.ndarray, people_codes: np.ndarray, rules: NetworkRules) -> PersonGraph:
    """The graph of the span's rows in `mask` (`build_graph` on the coded rows): the directory's people
    in their order, then the window's other people in key order."""
    s, t = span.s[mask], span.t[mask]
    n_keys = len(span.keys)
    key_to_node = np.full(n_keys, -1, dtype=np.int64)
    key_to_node[people_codes] = np.arange(len(people_codes))
    node_codes = people_codes
    if rules.edges.keep_unknown_people:
        ends = np.zeros(n_keys, dtype=bool)
        ends[s[s >= 0]] = True
        ends[t[t >= 0]] = True
        ends[people_codes] = False
        others = np.flatnonzero(ends)
        key_to_node[others] = len(people_codes) + np.arange(len(others))
        node_codes = np.concatenate([people_codes, others])
    return graph_from_codes(s, t, key_to_node, span.keys[node_codes], span.ty[mask], span.types, rules.edges,
                            events=span.aud[mask], key_codes=node_codes)


#: bump when the computation of the network tables changes, so that windows whose inputs did not change
#: are recomputed once with the new code rather than kept
DIGEST_VERSION = "2"
#: the digest of each published window's inputs (internal bookkeeping, one row per window)
DIGESTS_TABLE = "network_window_inputs"


def _digest(kind: str, start: dt.date, stop: dt.date, rules: NetworkRules, people: pd.DataFrame,
            directory: set[str], frames: list[pd.DataFrame], rows: list[bytes]) -> str:
    """A digest of everything a window's tables depend on: the code's version, the rules (weights, caps,
    thresholds, seed), the window, its people (department, location, level, leader flag, directory
    membership), its and its previous window's interactions (`rows`: their coded columns, and the texts
    of the codes in `frames`) and its posts. Equal digests give equal tables, so a window whose digest is
    published is not recomputed."""
    h = hashlib.sha256()
    h.update(f"{DIGEST_VERSION}|{kind}|{start}|{stop}|".encode())
    h.update(rules.model_dump_json().encode())
    h.update(",".join(sorted(directory)).encode())
    for frame in (people, *frames):
        h.update(f"|{len(frame)}|{','.join(map(str, frame.columns))}|".encode())
        if len(frame):
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    for part in rows:
        h.update(f"|{len(part)}|".encode())
        h.update(part)
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
    # the directory in the canonical order (node ids follow it), as codes of the span's keys
    people = canonical_people(people)
    people_codes = pd.Index(span.keys).get_indexer(people["person_key"])
    if (people_codes < 0).any():
        raise RuntimeError("a person of stg_people is missing from the network's person keys")
    texts = [pd.DataFrame({"key": span.keys}), pd.DataFrame({"interaction_type": span.types})]
    inputs = []
    for kind, start, stop, p_start, p_end in spans:
        mask, prev_mask = span.mask(start, stop), span.mask(p_start, p_end)
        posts = _posts(conn, start, stop)
        digest = _digest(kind, start, stop, rules, people, directory, [*texts, posts],
                         span.digest_bytes(mask) + span.digest_bytes(prev_mask))
        inputs.append((kind, start, stop, mask, prev_mask, posts, digest))
    if published is not None and all(published.get(kind) == digest for kind, *_, digest in inputs):
        info = {kind: {"edges": int(mask.sum()), "seconds": {}, "digest": digest, "skipped": True}
                for kind, _, _, mask, _, _, digest in inputs}
        return {name: pd.DataFrame() for name in TABLES}, info
    with centrality.paths_worker():
        # every window's graph first, and its betweenness started: the worker computes them one after the
        # other while this process computes the rest of each window's tables
        graphs = []
        for _kind, _start, _stop, mask, *_ in inputs:
            t0 = time.perf_counter()
            g = _window_graph(span, mask, people_codes, rules)
            graphs.append((g, start_paths(g, rules), time.perf_counter() - t0))
        for (kind, start, stop, mask, prev_mask, posts, digest), (g, paths, build_s) in zip(inputs, graphs,
                                                                                             strict=True):
            timings: dict[str, float] = {"build_graph": build_s}
            t0 = time.perf_counter()
            previous = (previous_of_graph(_window_graph(span, prev_mask, people_codes, rules), rules)
                        if prev_mask.any() else None)
            timings["previous_window"] = time.perf_counter() - t0
            tables = network_tables(g, people, rules=rules, previous=previous, contributions=posts,
                                    timings=timings, paths=paths)
            del previous
            person = tables["fct_person_network"]  # in the HR directory, not only in the people table
            person["in_directory"] = person["person_key"].isin(directory).to_numpy()
            info[kind] = {"edges": int(mask.sum()), "seconds": timings, "digest": digest, "skipped": False}
            for name, df in tables.items():
                # typed columns, also on a table without rows (a window without ties): the warehouse
                # creates a table from the types of its first publish, and an untyped column would be text
                n = len(df)
                for col, value, kind_type in (("window_end", stop, pa.date32()), ("window_start", start, pa.date32()),
                                              ("window_name", kind, pa.string())):
                    df.insert(0, col, pd.arrays.ArrowExtensionArray(pa.repeat(pa.scalar(value, kind_type), n)))
                out[name].append(df)
        del graphs
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
