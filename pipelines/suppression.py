"""Complementary (secondary) suppression: what keeps a suppressed group suppressed against subtraction.

Primary suppression (in each mart) NULLs every figure of a group smaller than `privacy.min_group_size`.
That is not enough when the visible cells of a *family* add up to a published total: the total minus the
visible cells gives back the hidden ones. The rule applied here to every published table and every table
a report builds itself:

  Within each family of cells that add up to a published total (the segments of one segment type on one
  day and period, the departments of one network window, the departments of one outcome...), the hidden
  cells together, plus the people of the total who are in no cell at all, are what a reader can compute
  by subtraction. When they are fewer than min_group_size people (and more than none), further cells are
  hidden, the smallest group first (ties broken by the cell's key, so that a rerun hides the same cells),
  until they are at least min_group_size people. Hiding every cell always ends it: the total itself is
  published only for a group of at least min_group_size.

Variants, each declared with the family (`Family`):
  - cells that share people (`shared_people`: containers, where one person asks in several): sizes do not
    add up, so the hidden cells must include one cell known to hold min_group_size people;
  - counts of people by category (`categories`: influence tiers, engaged / not engaged): every category is
    a family of its own, and the hidden cells must hold min_group_size people of it, or all of the
    organisation's when it has fewer: so the residual never says "all the hidden people are Observers";
  - flag layers (`Layer`): a table can withhold a subset of its measures on a second flag and size
    (mart_leader_engagement: `leaders_suppressed` by the number of leaders); a cell hidden by the main
    flag is hidden in every layer;
  - overlapping families (`overlap_audit`): the segment types of one day together, as sets of the
    people of the directory, so that no small group comes back from several families at once (the
    leader flag minus the VP and Director levels is the C-level).

Hiding a cell means what the marts already do: its `suppressed` flag (or the layer's flag) true and every
measure of the layer NULL. The families of a SQL mart are declared in its dbt `meta` (`families`,
`family_total`, `group_size`, `shared_people`, `labels`, `sub_suppression`; see `sql_family`); the tables
Python builds declare theirs in `PYTHON_FAMILIES` and call `complementary` on the frame they publish.
`suppress_build` runs on the build schema's marts after dbt built them, before their publication, on the
partitions the run wrote (once per build: it reads the sizes of the cells it hides before NULLing them);
what reads published marts is built from the suppressed rows after it (mart_alerts by dbt,
`readers_of_suppressed`; the Python metrics from the published marts). Deterministic: the
same rows give the same cells hidden, so a rerun publishes the same tables.

This module must never widen what is published: it only ever hides more.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pipelines import warehouse

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


# ----------------------------------------------------------------------------------------- the rule
def complete(sizes: np.ndarray, hidden: np.ndarray, total: np.ndarray | None, *, k: int,
             shared_people: bool = False, categories: bool = False,
             order: Sequence[Any] | None = None) -> np.ndarray:
    """The cells of ONE family to hide, given those already hidden.

    sizes: (cells x measures) people per cell (one column, or one per category); NaN where unknown (a cell
        already hidden does not need a size). total: the family total's sizes, or None when the total is
        not published (then subtraction gives nothing back). order: tie-break keys (default: position).
    Returns the new hidden mask (a superset of `hidden`).
    """
    hidden = np.asarray(hidden, dtype=bool).copy()
    sizes = np.asarray(sizes, dtype=float).reshape(len(hidden), -1)
    n = len(hidden)
    if n == 0:
        return hidden
    keys = list(order) if order is not None else list(range(n))
    people = np.nansum(np.where(np.isnan(sizes), 0.0, sizes), axis=1)

    def smallest(candidates: np.ndarray) -> int | None:
        idx = np.flatnonzero(candidates)
        if not len(idx):
            return None
        return int(min(idx, key=lambda i: (people[i], _sortable(keys[i]))))

    if shared_people:
        # sizes do not add up: what a subtraction gives back is about the union of the hidden cells, which
        # is at least its largest cell; make that one known to hold k people
        while hidden.any() and not (np.nan_to_num(people[hidden], nan=0.0) >= k).any():
            pick = smallest(~hidden)
            if pick is None:
                break
            hidden[pick] = True
        return hidden
    if total is None:
        return hidden
    total = np.asarray(total, dtype=float).reshape(-1)
    if np.isnan(total).any():
        return hidden
    floor = np.minimum(float(k), total)
    while True:
        visible = ~hidden
        known = np.where(np.isnan(sizes[visible]), 0.0, sizes[visible])
        residual = total - known.sum(axis=0)
        if categories:
            anything = hidden.any() or bool((residual > 0).any())
            need = anything & (total > 0) & (residual < floor)
        else:
            need = (residual > 0) & (residual < floor)
        if not need.any():
            return hidden
        helps = visible & (np.nan_to_num(sizes[:, need], nan=0.0) > 0).any(axis=1)
        pick = smallest(helps)
        if pick is None:  # nothing visible holds what is missing: nothing more to give back
            return hidden
        hidden[pick] = True


def _sortable(value: Any) -> tuple:
    if isinstance(value, tuple):
        return tuple(_sortable(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return (0, "")
    return (1, str(value))


def complementary(cells: pd.DataFrame, *, family: Sequence[str], cell: Sequence[str], size: Sequence[str] | str,
                  hidden: str, k: int, totals: pd.DataFrame | None = None, total_on: Sequence[str] = (),
                  shared_people: pd.Series | bool = False, category: str | None = None,
                  categories: bool = False) -> pd.Series:
    """The rule over a frame of cells: returns the row mask of what to hide (a superset of `hidden`).

    cells: one row per cell (per cell and category when `category` is given: its rows are hidden together);
        `family` columns identify a family, `cell` columns a cell within it, `size` the people it holds
        (several columns: one per category of people, like `category` in a wide layout).
    totals: one row per family total, keyed by `total_on` (a subset of `family`), with the size columns
        (per category: one row per category) and the `hidden` flag; a family without a visible total
        gives nothing back by subtraction (unless its cells share people, which needs no total).
    shared_people: per row (or for all): the family's cells share people.
    """
    sizes = [size] if isinstance(size, str) else list(size)
    out = cells[hidden].fillna(False).astype(bool).to_numpy().copy()
    if cells.empty:
        return pd.Series(out, index=cells.index)
    shared = (shared_people if isinstance(shared_people, pd.Series)
              else pd.Series(bool(shared_people), index=cells.index)).fillna(False).astype(bool).to_numpy()
    frame = cells.reset_index(drop=True)
    fam_id = frame.groupby(list(family), dropna=False, sort=True).ngroup().to_numpy()
    n_fam = int(fam_id.max()) + 1
    total_index = _totals(totals, total_on, sizes, hidden, category)
    firsts = frame.assign(_fam=fam_id).drop_duplicates("_fam").sort_values("_fam")
    fam_keys = [_norm(tuple(r)) for r in firsts[list(total_on)].itertuples(index=False, name=None)] \
        if total_on else [()] * n_fam
    todo: Sequence[int]
    if category:
        todo = range(n_fam)  # counts by category (small tables): every family through the full rule
    else:
        todo = _violations(frame, sizes, out, shared, fam_id, n_fam, fam_keys, total_index, k, categories)
    by_family = _groups(fam_id, n_fam)
    sizes_all = frame[sizes].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    keys_all = list(frame[list(cell)].itertuples(index=False, name=None))
    for f in todo:
        row_ids = by_family[f]
        if category:
            rows = frame.iloc[row_ids]
            cats = sorted(frame[category].dropna().unique(), key=str)
            grouped = rows.assign(_row=row_ids).groupby(list(cell), dropna=False, sort=True)
            cell_keys = list(grouped.groups)
            mat = np.full((len(cell_keys), len(cats)), np.nan)
            hid = np.zeros(len(cell_keys), dtype=bool)
            members: list[np.ndarray] = []
            for i, (_, g) in enumerate(grouped):
                by_cat = dict(zip(g[category], pd.to_numeric(g[sizes[0]], errors="coerce").astype(float),
                                  strict=True))
                mat[i] = [by_cat.get(c, 0.0) for c in cats]
                hid[i] = bool(out[g["_row"].to_numpy()].any())
                members.append(g["_row"].to_numpy())
        else:
            cell_keys = [tuple(keys_all[r]) for r in row_ids]
            mat = sizes_all[row_ids]
            hid = out[row_ids]
            members = [np.array([r]) for r in row_ids]
            cats = sizes
        total = None
        entry = total_index.get(fam_keys[f])
        if entry is not None and not entry[1]:
            vec = entry[0]
            total = np.array([vec.get(c, 0.0) for c in cats], float) if category else \
                np.array([vec.get(c, np.nan) for c in sizes], float)
        new = complete(mat, hid, total, k=k, shared_people=bool(shared[row_ids].any()),
                       categories=categories, order=cell_keys)
        for j in np.flatnonzero(new & ~hid):
            out[members[int(j)]] = True
    return pd.Series(out, index=cells.index)


def _groups(ids: np.ndarray, n: int) -> list[np.ndarray]:
    """Row positions per group id (ids 0..n-1), each in row order."""
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(n + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n)]


def _violations(frame: pd.DataFrame, sizes: list[str], hidden: np.ndarray, shared: np.ndarray,
                fam_id: np.ndarray, n_fam: int, fam_keys: list[tuple],
                total_index: dict[tuple, tuple[dict[Any, float], bool]], k: int, categories: bool) -> list[int]:
    """The families that break the rule as they stand (vectorised: most families need nothing)."""
    mat = frame[sizes].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    visible_sizes = np.where(hidden[:, None] | np.isnan(mat), 0.0, mat)
    vis_sum = np.zeros((n_fam, len(sizes)))
    np.add.at(vis_sum, fam_id, visible_sizes)
    any_hidden = np.bincount(fam_id, weights=hidden.astype(float), minlength=n_fam) > 0
    any_shared = np.bincount(fam_id, weights=shared.astype(float), minlength=n_fam) > 0
    big_hidden = np.bincount(fam_id, weights=(hidden & (np.nan_to_num(mat, nan=0.0).sum(axis=1) >= k))
                             .astype(float), minlength=n_fam) > 0
    todo = []
    for f in range(n_fam):
        if any_shared[f]:
            if any_hidden[f] and not big_hidden[f]:
                todo.append(f)
            continue
        entry = total_index.get(fam_keys[f])
        if entry is None or entry[1]:
            continue
        total = np.array([entry[0].get(c, np.nan) for c in sizes], float)
        if np.isnan(total).any():
            continue
        residual = total - vis_sum[f]
        floor = np.minimum(float(k), total)
        if categories:
            anything = any_hidden[f] or bool((residual > 0).any())
            bad = anything and bool(((total > 0) & (residual < floor)).any())
        else:
            bad = bool(((residual > 0) & (residual < floor)).any())
        if bad:
            todo.append(f)
    return todo


def _norm(key: tuple) -> tuple:
    return tuple(_sortable(v) for v in key)


def _totals(totals: pd.DataFrame | None, on: Sequence[str], sizes: list[str], hidden: str,
            category: str | None) -> dict[tuple, tuple[dict[Any, float], bool]]:
    """family key -> (sizes by column or category, hidden)."""
    out: dict[tuple, tuple[dict[Any, float], bool]] = {}
    if totals is None or totals.empty:
        return out
    if not category:  # one row per family: no grouping needed
        first = totals.drop_duplicates(list(on)) if on else totals.head(1)
        keys = first[list(on)].itertuples(index=False, name=None) if on else [()] * len(first)
        flags = first[hidden].fillna(False).astype(bool).to_numpy()
        values = first[sizes].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        for key, flag, vec in zip(keys, flags, values, strict=True):
            out[_norm(tuple(key))] = (dict(zip(sizes, vec.tolist(), strict=True)), bool(flag))
        return out
    for key, g in totals.groupby(list(on), dropna=False, sort=False) if on else [((), totals)]:
        key = key if isinstance(key, tuple) else (key,)
        is_hidden = bool(g[hidden].fillna(False).astype(bool).any())
        if category:
            vec = {c: float(v) for c, v in zip(g[category], pd.to_numeric(g[sizes[0]], errors="coerce"),
                                               strict=True)}
            is_hidden = is_hidden or any(np.isnan(v) for v in vec.values())
        else:
            vec = {c: float(pd.to_numeric(g[c], errors="coerce").iloc[0]) for c in sizes}
        out[_norm(key)] = (vec, is_hidden)
    return out


def withhold(frame: pd.DataFrame, mask: pd.Series | np.ndarray, measures: Iterable[str],
             flag: str = "suppressed") -> pd.DataFrame:
    """NULL the measures of the masked rows and set their flag (integers become nullable, like the marts)."""
    out = frame.copy()
    mask = np.asarray(mask, dtype=bool)
    if flag in out.columns:
        out[flag] = out[flag].fillna(False).astype(bool) | mask
    else:
        out[flag] = mask
    for col in measures:
        if col not in out.columns:
            continue
        if pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].astype("boolean")
        elif pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype("Int64")  # always: the same dtype whether anything is hidden or not
        if not mask.any():
            continue
        if isinstance(out[col].dtype, pd.api.extensions.ExtensionDtype) and out[col].dtype.kind in "biu":
            out.loc[mask, col] = pd.NA
        elif pd.api.types.is_float_dtype(out[col]):
            out.loc[mask, col] = np.nan
        else:
            out[col] = out[col].astype(object)
            out.loc[mask, col] = None
    return out


# ------------------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Layer:
    """A suppression flag, the size that decides it and the measures it withholds (None: every column
    that is not a key, a label or a flag)."""

    flag: str
    size: str
    size_from: str | None = None  # "table.column" joined on the day and segment when the mart has no size
    measures: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Family:
    """How one published table's cells add up to its totals."""

    table: str
    family: tuple[str, ...]  # columns identifying one family (segment_type included)
    cell: tuple[str, ...]  # columns identifying a cell within it
    total: str  # where the total is: "segment_type = org", "department is null", or a description
    layers: tuple[Layer, ...]
    shared_people: tuple[str, ...] = ()  # segment types whose cells share people; ("all",): every cell
    labels: tuple[str, ...] = ()  # columns that are never measures
    category: str | None = None  # long layout: one row per cell and category (counts of people by category)
    partition_by: str | None = None  # the incremental mart's date column (the run rewrites its interval)
    applied: str = "publish"  # publish: apply_published on the warehouse; build: by the code that builds it
    note: str = ""

    @property
    def overlap(self) -> bool:
        """Whether the segment types of one day are audited together (`overlap_audit`): the segment
        tables of a day, whose cells are sets of people of the directory on that day."""
        return "segment_type" in self.family and self.cell == ("segment_value",) and self.partition_by is not None

    @property
    def total_filter(self) -> tuple[str, str] | None:
        m = re.fullmatch(r"\s*([a-z_]+)\s*=\s*'?([A-Za-z0-9_ -]+?)'?\s*", self.total)
        return (m.group(1), m.group(2)) if m else None


def sql_family(model: warehouse.Model) -> Family | None:
    """The family declared in a dbt mart's `meta` (sql/models/marts/_marts.yml), e.g.

        families: as_of_date, period_type, segment_type
        family_total: segment_type = org
        group_size: headcount            (or int_segment_headcount_daily.headcount)
        shared_people: container
        labels: period_start, period_end, is_complete
        sub_suppression: leaders_suppressed by leaders: leaders, leader_posts, ...
    """
    meta = model.meta
    if "families" not in meta:
        return None
    split = lambda v: tuple(x.strip() for x in v.split(",") if x.strip())  # noqa: E731
    family = split(meta["families"])
    cell = tuple(c for c in model.key if c not in family)
    size = meta.get("group_size", "").strip()
    if not size:
        raise ValueError(f"{model.path}: `families` needs `group_size`")
    size_from = size if "." in size else None
    layers = [Layer("suppressed", size.split(".")[-1], size_from)]
    sub = meta.get("sub_suppression")
    if sub:
        m = re.fullmatch(r"\s*([a-z_]+)\s+by\s+([a-z_]+)\s*:\s*(.+)", sub)
        if not m:
            raise ValueError(f"{model.path}: sub_suppression must read '<flag> by <size>: <measures>'")
        layers.append(Layer(m.group(1), m.group(2), None, split(m.group(3))))
    for col in family + cell:
        _ident(col)
    return Family(table=model.name, family=family, cell=cell, total=meta.get("family_total", "none"),
                  layers=tuple(layers), shared_people=split(meta.get("shared_people", "")),
                  labels=split(meta.get("labels", "")), partition_by=model.partition_by)


#: the tables Python builds (network stage, impact metrics): suppressed by the code that builds them
PYTHON_FAMILIES: tuple[Family, ...] = (
    Family("mart_network_department", ("window_name", "window_end"), ("department",),
           "mart_network_org.directory_people (every directory person, with or without a department)",
           (Layer("suppressed", "people"),), applied="build"),
    Family("mart_network_community", ("window_name", "window_end"), ("community_id",),
           "the people given a community in the window", (Layer("suppressed", "people"),), applied="build"),
    Family("mart_network_influence_tiers", ("window_name", "window_end"), ("department",),
           "department is null (the organisation's row of each tier)", (Layer("suppressed", "people"),),
           category="influence_tier", applied="build",
           note="counts of people by tier: every tier must keep min_group_size people among the hidden"),
    Family("mart_impact_engaged_vs_not", ("outcome",), ("segment_type", "segment_value"),
           "segment_type = org", (Layer("suppressed", "people engaged, people not engaged"),),
           applied="build", note="engaged and not engaged are two categories of people"),
)

#: published tables with no family: every row is organisation-wide (or derived from suppressed marts)
NO_FAMILY: dict[str, str] = {
    "mart_alerts": "computed from the published (suppressed) rows; rebuilt after complementary suppression",
    "mart_network_org": "one row per window, the whole organisation",
    "mart_impact_correlation": "organisation-wide correlations over at least min_group_size observations",
    "mart_impact_its": "organisation-wide series",
    "mart_esn_scorecard": "organisation-wide values over at least min_group_size people",
    "mart_reply_completeness": "counts of replies per source and thread day: no group of people",
}


def families(models: Sequence[warehouse.Model] | None = None) -> list[Family]:
    """Every published table's family declaration: the dbt marts' meta, then the Python tables."""
    from pipelines import dbt_project

    models = models if models is not None else dbt_project.discover_models()
    out = [f for f in (sql_family(m) for m in models if m.layer == "marts") if f is not None]
    return out + list(PYTHON_FAMILIES)


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe column name: {name!r}")
    return name


# ---------------------------------------------------------------------------- overlapping families
@dataclass
class Directory:
    """Who is counted in which segment on a day: int_segment_membership for the people
    int_segment_headcount_daily counts (employed on the day; outside the HR directory, unless every
    account of theirs is deactivated), as a person x segment type table.

    The tables are coded once as integers (`_Coded`): a day's counted rows are a mask over the membership
    rows, and its people x types table a code matrix, so a day costs array operations over the directory,
    not a pandas pivot. The rows counted change only on the days a membership starts or ends, or a person
    is hired or leaves: days between two such changes share one `epoch` (and its atoms), so a directory
    that changes on few days is grouped into atoms a few times, not once per day."""

    people: pd.DataFrame
    membership: pd.DataFrame
    _coded: _Coded | None = None
    _day: tuple[int, _DayTable] | None = None  # the last epoch's table (days come in order of the marts)
    _atoms: dict[tuple[int, tuple[str, ...]], _Atoms] = field(default_factory=dict)
    _full: dict[int, _Atoms] = field(default_factory=dict)  # per epoch: the atoms of every type
    _types: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def coded(self) -> _Coded:
        if self._coded is None:
            self._coded = _Coded.of(self.people, self.membership)
        return self._coded

    def epoch(self, day: dt.date) -> int:
        """The same number for two days exactly when the same membership rows are counted on both."""
        return self.coded.epoch(day)

    def table(self, day: dt.date) -> _DayTable:
        ep = self.epoch(day)
        if self._day is None or self._day[0] != ep:
            self._day = (ep, self.coded.on(day))
        return self._day[1]

    def types_on(self, day: dt.date) -> tuple[str, ...]:
        """The segment types with a counted row on the day (none: nobody is counted, nothing to audit).
        Kept per epoch: every segment mart asks for every day, and its table is only needed when the
        day's atoms are not known yet."""
        ep = self.epoch(day)
        if ep not in self._types:
            self._types[ep] = self.coded.types_on(day)
        return self._types[ep]

    def atoms(self, day: dt.date, types: tuple[str, ...]) -> _Atoms:
        """The day's people grouped by their values of `types`. The people x types table of an epoch is
        built once, into the atoms of every type (`_full`); the atoms of fewer types are those grouped
        again (the families of the segment marts ask for different sets of types on the same days)."""
        ep = self.epoch(day)
        key = (ep, types)
        if key not in self._atoms:
            if ep not in self._full:
                self._full[ep] = self.table(day).atoms(self.coded.types, self.coded)
            self._atoms[key] = self._full[ep].regroup(types, self.coded)
        return self._atoms[key]

    @classmethod
    def load(cls, conn: sa.Connection) -> Directory | None:
        """The directory of the warehouse, or None before its models exist (nothing to audit then)."""
        if not (warehouse.table_exists(conn, "stg_people") and warehouse.table_exists(conn, "int_segment_membership")):
            return None
        cols = set(warehouse.columns(conn, "stg_people"))
        extra = [c for c in ("in_directory", "is_deactivated") if c in cols]
        people = warehouse.read_frame(conn, "select person_key, hire_date, termination_date"
                                      + "".join(f", {c}" for c in extra) + " from stg_people")
        membership = warehouse.read_frame(conn, "select person_key, segment_type, segment_value, valid_from, "
                                          "valid_to from int_segment_membership")
        return cls(people, membership)


_NEVER = np.iinfo(np.int64).max // 4  # a day after every day: an open end, or a start that never comes
_EVER = -_NEVER


def _days(values: pd.Series, missing: int) -> np.ndarray:
    """Dates as integer days since the epoch (missing: the given sentinel)."""
    ts = pd.Series(pd.to_datetime(values))
    out = ts.to_numpy().astype("datetime64[D]").astype(np.int64)
    return np.where(ts.isna().to_numpy(), missing, out)


def _day_number(day: dt.date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


@dataclass(frozen=True)
class _Coded:
    """The directory as integer arrays: each membership row's person, type and value code, and the days
    [start, stop) it is counted (its validity within its person's employment; never for a person outside
    the HR directory with an active account). Value codes follow the values' string order, `_NULL` (no
    value) first, so that atoms come in the order the string columns would sort them."""

    types: tuple[str, ...]  # sorted
    labels: tuple[np.ndarray, ...]  # per type: its value labels in code order (str)
    n_people: int
    person: np.ndarray  # per counted-ever row: person index
    type_: np.ndarray  # type index
    value: np.ndarray  # value code (the type's _NULL code for a row with no value)
    start: np.ndarray  # first day counted
    stop: np.ndarray  # first day not counted
    breaks: np.ndarray  # sorted days on which the counted rows change

    @classmethod
    def of(cls, people: pd.DataFrame, membership: pd.DataFrame) -> _Coded:
        hire = _days(people["hire_date"], _EVER)
        term = _days(people["termination_date"], _NEVER)
        static = np.ones(len(people), dtype=bool)
        if {"in_directory", "is_deactivated"} <= set(people.columns):
            static = (people["in_directory"].astype("boolean").fillna(True).to_numpy(bool)
                      | ~people["is_deactivated"].astype("boolean").fillna(False).to_numpy(bool))
        # a person key twice in stg_people counts when any of its rows does (the old isin over the keys)
        keys = pd.Index(people["person_key"].astype(object))
        codes_p, uniq = pd.factorize(keys)
        n = len(uniq)
        person = pd.Index(uniq).get_indexer(pd.Index(membership["person_key"].astype(object)))
        vfrom = _days(membership["valid_from"], _NEVER)  # a NULL bound compares false: never counted
        vto = _days(membership["valid_to"], _EVER - 1)
        rows = np.flatnonzero(person >= 0)
        types_col = membership["segment_type"].astype(object).to_numpy()
        values_col = membership["segment_value"]
        missing = values_col.isna().to_numpy()
        values_str = np.where(missing, _NULL, values_col.astype(object).astype(str).to_numpy(object))
        # every (person row, membership row) pair of one key: a key repeated in stg_people has several spans
        order = np.argsort(codes_p, kind="stable")
        bounds = np.searchsorted(codes_p[order], np.arange(n + 1))
        counts = np.diff(bounds)
        rep = counts[person[rows]]
        m_rows = np.repeat(rows, rep)
        offs = np.arange(len(m_rows)) - np.repeat(np.cumsum(rep) - rep, rep)
        p_rows = order[bounds[person[m_rows]] + offs]
        keep = static[p_rows]
        m_rows, p_rows = m_rows[keep], p_rows[keep]
        start = np.maximum(vfrom[m_rows], hire[p_rows])
        stop = np.minimum(np.where(vto[m_rows] >= _NEVER - 1, _NEVER, vto[m_rows] + 1), term[p_rows])
        ok = start < stop
        m_rows, start, stop = m_rows[ok], start[ok], stop[ok]
        types = tuple(sorted({str(t) for t in types_col[m_rows]}))
        type_index = {t: i for i, t in enumerate(types)}
        type_ = np.array([type_index[str(t)] for t in types_col[m_rows]], dtype=np.int64) \
            if len(m_rows) else np.zeros(0, np.int64)
        value = np.zeros(len(m_rows), dtype=np.int64)
        labels = []
        for i in range(len(types)):
            sel = type_ == i
            uniq_v, inv = np.unique(np.append(values_str[m_rows[sel]].astype(str), _NULL), return_inverse=True)
            value[sel] = inv[:-1]
            labels.append(uniq_v)
        breaks = np.unique(np.concatenate([start, stop]))
        return cls(types, tuple(labels), n, person[m_rows], type_, value, start, stop, breaks)

    def epoch(self, day: dt.date) -> int:
        return int(np.searchsorted(self.breaks, _day_number(day), side="right"))

    def types_on(self, day: dt.date) -> tuple[str, ...]:
        d = _day_number(day)
        present = np.unique(self.type_[(self.start <= d) & (d < self.stop)])
        return tuple(self.types[i] for i in present)

    def on(self, day: dt.date) -> _DayTable:
        d = _day_number(day)
        rows = np.flatnonzero((self.start <= d) & (d < self.stop))
        if not len(rows):
            return _DayTable((), np.zeros((0, 0), np.int64))
        # row order kept: a person with two values of a type on one day is given the first that has one
        person, type_, value = self.person[rows], self.type_[rows], self.value[rows]
        people, p_code = np.unique(person, return_inverse=True)
        present = np.unique(type_)
        nulls = np.array([int(np.searchsorted(lab, _NULL)) for lab in self.labels], dtype=np.int64)
        matrix = np.tile(nulls, (len(people), 1))
        has = value != nulls[type_]
        flat = p_code[has] * len(self.types) + type_[has]
        _, first = np.unique(flat, return_index=True)
        pick = np.flatnonzero(has)[first]
        matrix[p_code[pick], type_[pick]] = value[pick]
        return _DayTable(tuple(self.types[i] for i in present), matrix)


@dataclass(frozen=True)
class _DayTable:
    """The people counted on a day (those with a counted membership row) x every type's value code."""

    types: tuple[str, ...]  # the types with a counted row on the day
    matrix: np.ndarray

    def atoms(self, types: tuple[str, ...], coded: _Coded) -> _Atoms:
        """The day's people grouped by their values of `types` (in that order): the atoms in the order of
        the rows of their string values sorted, the value codes combined column by column into one dense
        integer key (never a product that overflows)."""
        cols = [coded.types.index(t) for t in types]
        key = np.zeros(len(self.matrix), dtype=np.int64)
        for c in cols:
            _, key = np.unique(key * len(coded.labels[c]) + self.matrix[:, c], return_inverse=True)
        first_rows, index, counts = np.unique(key, return_index=True, return_counts=True)
        rows = self.matrix[index][:, cols]
        return _Atoms(counts, types, rows, tuple(coded.labels[c] for c in cols))


_NULL = "\0null"


def overlap_audit(cells: pd.DataFrame, fam: Family, size: str, directory: Directory, k: int,
                  shared: np.ndarray) -> pd.Series:
    """Two overlapping families: every segment type of one day (and period) together, as sets of people.

    The rule within each family does not stop a reader from combining families: when the leader flag is
    a union of levels, `leader - VP - Director` is the C-level alone. Over the directory of the day, every
    visible cell (and every cell with no row at all: a known zero) is a vector over the atoms (people in
    the same cells of every type); a hidden cell below min_group_size, or an atom of fewer than
    min_group_size people, in the span of the visible vectors and the total can be computed. While one
    can, the smallest visible cell whose hiding takes it out of the span is hidden (else the smallest
    taking part in the combination). Returns the rows to hide (a superset of `_hidden_now`)."""
    out = cells["_hidden_now"].to_numpy().copy()
    group_cols = [c for c in fam.family if c != "segment_type"]
    date_col = fam.partition_by
    assert date_col is not None
    frame = cells.reset_index(drop=True)
    group_id = frame.groupby(group_cols, dropna=False, sort=True).ngroup().to_numpy()
    seg_type = frame["segment_type"].astype(str).to_numpy()
    seg_value = [_NULL if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
                 for v in frame["segment_value"]]
    primary_all = frame["_hidden"].fillna(False).astype(bool).to_numpy()
    size_all = pd.to_numeric(frame[size], errors="coerce").to_numpy(float)
    days = pd.to_datetime(frame[date_col]).dt.date.to_numpy()
    cache: dict[tuple, set[tuple[str, str]]] = {}
    for row_ids in _groups(group_id, int(group_id.max()) + 1 if len(group_id) else 0):
        row_ids = row_ids[~shared[row_ids]]
        if not len(row_ids) or not out[row_ids].any():
            continue
        day = days[row_ids[0]]
        present_types = directory.types_on(day)
        if not present_types:
            continue
        row_ids = row_ids[np.isin(seg_type[row_ids], present_types)]
        types = tuple(sorted(set(seg_type[row_ids])))
        if not types:
            continue
        keys = [(seg_type[r], seg_value[r]) for r in row_ids]
        hidden = {key for key, r in zip(keys, row_ids, strict=True) if out[r]}
        primary = {key for key, r in zip(keys, row_ids, strict=True) if primary_all[r]}
        sizes = {key: float(size_all[r]) for key, r in zip(keys, row_ids, strict=True)}
        signature = (directory.epoch(day), types, tuple(sorted(hidden)), tuple(sorted(primary)),
                     tuple(sorted((key, sizes[key]) for key in keys if key not in hidden)))
        if signature not in cache:
            cache[signature] = _audit_day(directory.atoms(day, types), keys, hidden, primary, sizes, k)
        extra = cache[signature]
        if extra:
            row_of = dict(zip(keys, row_ids, strict=True))
            for key in extra:
                out[row_of[key]] = True
    return pd.Series(out, index=cells.index)


@dataclass(frozen=True)
class _Atoms:
    """The people of a day grouped by their cells of every type: sizes and each cell as a 0/1 vector.

    Kept as the atoms' value codes (an atoms x types matrix), small enough to keep for every day;
    `vectors` builds the 0/1 vectors of the values present when a day is audited."""

    n: np.ndarray
    types: tuple[str, ...]
    rows: np.ndarray
    labels: tuple[np.ndarray, ...]

    def regroup(self, types: tuple[str, ...], coded: _Coded) -> _Atoms:
        """The atoms of `types` (a subset of this one's, in that order) from these: the same people
        grouped by fewer values, sizes summed; the same atoms, in the same order, as `_DayTable.atoms`
        gives for `types` (both order atoms by their value codes, column by column)."""
        if types == self.types:
            return self
        cols = [self.types.index(t) for t in types]
        key = np.zeros(len(self.rows), dtype=np.int64)
        for j, c in zip(cols, (coded.types.index(t) for t in types), strict=True):
            _, key = np.unique(key * len(coded.labels[c]) + self.rows[:, j], return_inverse=True)
        _, index, inverse = np.unique(key, return_index=True, return_inverse=True)
        n = np.bincount(inverse, weights=self.n, minlength=len(index)).astype(np.int64)
        return _Atoms(n, types, self.rows[index][:, cols], tuple(self.labels[j] for j in cols))

    @property
    def vectors(self) -> dict[tuple[str, str], np.ndarray]:
        out: dict[tuple[str, str], np.ndarray] = {}
        for j, t in enumerate(self.types):
            for code in np.unique(self.rows[:, j]):
                out[(t, str(self.labels[j][code]))] = (self.rows[:, j] == code).astype(float)
        return out


def _audit_day(atoms: _Atoms, present: list[tuple[str, str]], hidden: set[tuple[str, str]],
               primary: set[tuple[str, str]], sizes: dict[tuple[str, str], float], k: int) -> set[tuple[str, str]]:
    vectors = atoms.vectors
    n_atoms = len(atoms.n)
    targets = [vectors[key] for key in sorted(hidden)
               if key in vectors and (key in primary or sizes.get(key, 0.0) < k)]
    small_atoms = np.flatnonzero(atoms.n < k)
    present_set = set(present)
    order = {c: (sizes.get(c, 0.0), c) for c in present_set}
    added: set[tuple[str, str]] = set()
    ones = np.ones(n_atoms)
    # a cell with no row is a known zero, except people in no cell of a type (no value): nobody sees them
    unknown = {c for c in vectors if c[1] == _NULL and c not in present_set}

    def visible(excluding: set[tuple[str, str]]) -> list[tuple[str, str]]:
        return [c for c in vectors if c not in hidden and c not in excluding and c not in unknown]

    target_mat = np.vstack(targets) if targets else np.zeros((0, n_atoms))
    target_norm = np.maximum(1.0, np.linalg.norm(target_mat, axis=1))
    while True:
        names = visible(added)
        mat = np.vstack([ones] + [vectors[c] for c in names])
        # one SVD per cell hidden: the span's orthonormal basis, the min-norm way of writing a leak and
        # which cells no other cell can stand in for all come from it
        u, sv, vt = np.linalg.svd(mat, full_matrices=False)
        rank = int((sv > 1e-9 * max(1.0, float(sv.max()))).sum())
        basis = vt[:rank]
        # every target at once: its distance to the span of the visible cells; an atom's unit vector is in
        # the span when its column of the orthonormal basis has norm 1
        off = np.linalg.norm(target_mat - (target_mat @ basis.T) @ basis, axis=1)
        inside = np.flatnonzero(off < 1e-7 * target_norm)
        if len(inside):
            leak = target_mat[inside[0]]
        else:
            lone = small_atoms[1.0 - (basis[:, small_atoms] ** 2).sum(axis=0) < 1e-12] if len(small_atoms) else []
            if not len(lone):
                return added
            leak = np.zeros(n_atoms)
            leak[lone[0]] = 1.0
        # only a cell of every way of writing the leak can break it, so one of the min-norm solution's
        coef = (u[:, :rank] @ ((basis @ leak) / sv[:rank]))[1:]
        taking_part = sorted((c for c, x in zip(names, coef, strict=True) if abs(x) > 1e-9 and c in present_set),
                             key=order.__getitem__)
        # hiding a cell takes the leak out of the span exactly when no other cells can stand in for it:
        # its row is outside the span of the others (its leverage, the norm of its row of U, is 1), and
        # then its coefficient is the same in every way of writing the leak (here non-zero)
        alone = 1.0 - (u[1:, :rank] ** 2).sum(axis=1) < 1e-9
        position = {c: i for i, c in enumerate(names)}
        choice = next((c for c in taking_part if alone[position[c]]), None)
        if choice is None:  # no single cell breaks the combination: the smallest one taking part in it
            choice = taking_part[0] if taking_part else None
        if choice is None:
            log.warning("overlap audit: a group of fewer than %d people stays computable from cells that "
                        "have no row to hide", k)
            return added
        added.add(choice)


# ---------------------------------------------------------------------------------------- warehouse
def _measures(fam: Family, columns: list[str], layer: Layer) -> list[str]:
    if layer.measures is not None:
        return [c for c in layer.measures if c in columns]
    skip = set(fam.family) | set(fam.cell) | set(fam.labels) | {lyr.flag for lyr in fam.layers}
    if fam.partition_by:
        skip.add(fam.partition_by)
    return [c for c in columns if c not in skip]


def apply_table(conn: sa.Connection, fam: Family, k: int, start: dt.date | None = None,
                end: dt.date | None = None, directory: Directory | None = None) -> int:
    """Complementary suppression of one SQL mart, on the rows of [start, end] (incremental marts) or the
    whole table: the rule within each family, then (segment tables) the overlap audit across its segment
    types. Returns the number of cells it hid in any layer."""
    table = _ident(fam.table)
    cols = warehouse.columns(conn, table)
    where, params = "", {}
    if fam.partition_by and start is not None and end is not None:
        where = f" where t.{_ident(fam.partition_by)} between :s and :e"
        params = {"s": start, "e": end}
    key = list(dict.fromkeys(fam.family + fam.cell))
    select = [f"t.{_ident(c)}" for c in key] + [f"t.{_ident(lyr.flag)}" for lyr in fam.layers]
    joins = ""
    for i, layer in enumerate(fam.layers):
        if layer.size_from:
            src, col = layer.size_from.split(".")
            day = fam.partition_by or fam.family[0]
            joins += (f" left join {_ident(src)} s{i} on s{i}.as_of_date = t.{_ident(day)}"
                      f" and s{i}.segment_type = t.segment_type and s{i}.segment_value = t.segment_value")
            select.append(f"s{i}.{_ident(col)} as _size_{i}")
        else:
            select.append(f"t.{_ident(layer.size)} as _size_{i}")
    df = warehouse.read_frame(conn, f"select {', '.join(select)} from {table} t{joins}{where}", params)
    if df.empty:
        return 0
    filt = fam.total_filter
    shared_all = fam.shared_people == ("all",)
    hidden_main = df[fam.layers[0].flag].fillna(False).astype(bool)
    hid_total = 0
    for i, layer in enumerate(fam.layers):
        df["_hidden"] = hidden_main | df[layer.flag].fillna(False).astype(bool)
        if filt is not None:
            is_total = df[filt[0]].astype(str) == filt[1]
            cells, totals = df[~is_total], df[is_total]
        else:
            cells, totals = df, None
        total_on = [c for c in fam.family if filt is None or c != filt[0]]
        shared = (pd.Series(True, index=cells.index) if shared_all
                  else cells["segment_type"].isin(fam.shared_people) if "segment_type" in cells.columns
                  else pd.Series(False, index=cells.index))
        mask = complementary(cells, family=fam.family, cell=fam.cell, size=f"_size_{i}", hidden="_hidden", k=k,
                             totals=totals, total_on=total_on, shared_people=shared)
        if i == 0 and fam.overlap:
            directory = directory or Directory.load(conn)
        if i == 0 and fam.overlap and directory is not None:
            mask = mask | overlap_audit(cells.assign(_hidden_now=mask.to_numpy()), fam, f"_size_{i}", directory, k,
                                        shared.to_numpy())
        new = cells[mask.to_numpy() & ~cells["_hidden"].to_numpy()]
        if new.empty:
            continue
        _update(conn, table, key, new[key], layer.flag, _measures(fam, cols, layer))
        hid_total += len(new)
        if i == 0:  # hidden by the main flag: hidden in every layer
            hidden_main = hidden_main | pd.Series(df.index.isin(new.index), index=df.index)
    return hid_total


def _update(conn: sa.Connection, table: str, key: list[str], rows: pd.DataFrame, flag: str,
            measures: list[str]) -> None:
    tmp = f"_esn_suppress_{table}"[:60]
    conn.exec_driver_sql(f"drop table if exists {tmp}")
    conn.exec_driver_sql(f"create temporary table {tmp} as select {', '.join(key)} from {table} where 1 = 0")
    warehouse.insert_arrow(conn, tmp, pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False))
    sets = ", ".join([f"{_ident(flag)} = true"] + [f"{_ident(m)} = null" for m in measures])
    match = " and ".join(f"{table}.{c} is not distinct from {tmp}.{c}" for c in key)
    conn.exec_driver_sql(f"update {table} set {sets} from {tmp} where {match}")
    conn.exec_driver_sql(f"drop table {tmp}")


def readers_of_suppressed(models: Sequence[warehouse.Model] | None = None) -> list[str]:
    """The marts that read marts this module suppresses (mart_alerts): dbt builds them after
    `suppress_build`, from the suppressed rows, so that what they publish is computed from what is
    published."""
    from pipelines import dbt_project

    models = models if models is not None else dbt_project.discover_models()
    suppressed = {f.table for f in families(models) if f.applied == "publish"}
    return [m.name for m in models if m.layer == "marts" and m.name not in suppressed
            and suppressed & set(m.depends_on)]


def suppress_build(conn: sa.Connection, settings: Any, interval: Any) -> dict[str, int]:
    """Complementary suppression of the SQL marts of the build schema on the partitions the run wrote
    (`jobs.publish`, before the marts are published): the marts are read and rewritten by name with the
    build schema first in the search path. Returns the cells hidden per table."""
    k = settings.privacy.min_group_size
    schemas = warehouse.schemas_of(conn)
    path = ", ".join((schemas.build, schemas.internal, schemas.staging))
    if warehouse.dialect(conn) == "postgresql":
        conn.exec_driver_sql(f"set local search_path to {path}")
    else:
        conn.exec_driver_sql(f"set search_path = '{path.replace(' ', '')}'")
    hidden: dict[str, int] = {}
    directory: Directory | None = None
    from pipelines import dbt_project

    try:
        for model in dbt_project.discover_models():
            fam = sql_family(model) if model.layer == "marts" else None
            if fam is None or not warehouse.relation_exists(conn, f"{schemas.build}.{model.name}"):
                continue
            if fam.overlap and directory is None:
                directory = Directory.load(conn)
            n = apply_table(conn, fam, k, interval.start, interval.end, directory)
            if n:
                hidden[model.name] = n
    finally:
        if warehouse.dialect(conn) != "postgresql":  # SET LOCAL ends with the transaction
            conn.exec_driver_sql(f"set search_path = '{','.join(schemas.search_path)}'")
    if hidden:
        log.info("complementary suppression hid %s", hidden)
    return hidden
