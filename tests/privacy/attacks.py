"""A curious reader's differencing attacks on published tables, and the ground truth to judge them.

The attacker sees only what is published. The judge (these functions) also knows the truth: the same
tables rebuilt without any suppression (`truth` frames) and who is in which segment on each day, so it can
tell whether what the attacker derives is a figure about fewer than `k` people.

Attacks:
  residual      total minus the visible cells of one family: the hidden cells (and the people in no cell)
                are known together; a finding when they are fewer than k people (partitions), or when no
                hidden cell is known to hold k people (cells that share people: containers), or when the
                residual of a count of people by category says what every hidden person is (categories);
  overlap       two overlapping families (every segment type of one day and period at once): a finding when
                a hidden cell, or a combination of segments holding fewer than k people, lies in the linear
                span of what is visible (person-level algebra over the directory);
  consecutive   the same family on two consecutive days where the figures did not change: the two days'
                equations stacked, a finding when a hidden cell below k becomes determined;
  exposed       a hidden row that still carries a measure.
Nothing here imports the suppression mechanism: the attacks must hold whatever it does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ORG = "org"
#: segment types whose cells share people (a person asks in several containers)
NON_PARTITION = {"container"}


@dataclass(frozen=True)
class Finding:
    table: str
    attack: str
    family: str
    detail: str
    cells: int = 1  # hidden cells exposed by it
    exact: bool = False  # the residual equals the hidden cell's true value (one hidden cell, nothing else)


@dataclass(frozen=True)
class Layer:
    """One suppression flag of a table and what it withholds: its size column (in the truth table) and,
    when it is not the row's main flag, the measures it NULLs."""

    flag: str = "suppressed"
    size: str = "headcount"
    measures: tuple[str, ...] | None = None  # None: every integer column of the row


@dataclass(frozen=True)
class Shape:
    """How a segment table is laid out: its key (segment columns included), the additive measures the
    attacker subtracts (integer columns), the flags and the columns that are never measures."""

    table: str
    key: tuple[str, ...]
    layers: tuple[Layer, ...] = (Layer(),)
    labels: tuple[str, ...] = ()
    date: str | None = None  # the day column, for the overlap and consecutive-day attacks
    overlap: bool = True
    ints: tuple[str, ...] = ()  # the integer columns of the table (counts: what the attacker adds up)

    @property
    def family_by(self) -> list[str]:
        return [c for c in self.key if c != "segment_value"]


@dataclass
class Directory:
    """Who is in which segment on a day (from stg_people and int_segment_membership)."""

    people: pd.DataFrame  # person_key, hire_date, termination_date
    membership: pd.DataFrame  # person_key, segment_type, segment_value, valid_from, valid_to
    _cache: dict[dt.date, pd.DataFrame] = field(default_factory=dict)

    def on(self, day: dt.date) -> pd.DataFrame:
        """person_key x segment_type -> segment_value for the people employed on `day`."""
        if day not in self._cache:
            p = self.people
            hired = pd.to_datetime(p["hire_date"]).dt.date
            left = pd.to_datetime(p["termination_date"]).dt.date
            employed = p[(hired.isna() | (hired <= day)) & (left.isna() | (left > day))]["person_key"]
            m = self.membership
            m = m[m["person_key"].isin(employed) & (m["valid_from"] <= day) & (m["valid_to"] >= day)]
            self._cache[day] = m.pivot_table(index="person_key", columns="segment_type", values="segment_value",
                                             aggfunc="first")
        return self._cache[day]


def _num(v: object) -> float:
    if v is None or v is pd.NA:
        return float("nan")
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _measures(df: pd.DataFrame, shape: Shape, layer: Layer) -> list[str]:
    if layer.measures is not None:
        return [c for c in layer.measures if c in df.columns]
    skip = set(shape.key) | set(shape.labels) | {lyr.flag for lyr in shape.layers}
    return [c for c in shape.ints if c not in skip and c in df.columns]


def _hidden(df: pd.DataFrame, shape: Shape, layer: Layer) -> pd.Series:
    main = df[shape.layers[0].flag].fillna(False).astype(bool)
    own = df[layer.flag].fillna(False).astype(bool) if layer.flag in df.columns else main
    return main | own


def exposed(table: str, df: pd.DataFrame, flag: str, measures: Iterable[str]) -> list[Finding]:
    """Hidden rows that still publish a measure."""
    if flag not in df.columns or df.empty:
        return []
    hidden = df[df[flag].fillna(False).astype(bool)]
    out = []
    for col in measures:
        if col in hidden.columns:
            n = int(hidden[col].notna().sum())
            if n:
                out.append(Finding(table, "exposed", col, f"{n} hidden row(s) still carry {col}", cells=n))
    return out


# -------------------------------------------------------------------------------------------- residual
def residual(shape: Shape, published: pd.DataFrame, truth: pd.DataFrame, k: int) -> list[Finding]:
    """Total minus visible cells, within every family of a segment table and every flag layer."""
    out: list[Finding] = []
    fam_cols = shape.family_by
    pub = published.set_index(list(shape.key)).sort_index()
    tru = truth.set_index(list(shape.key)).sort_index()
    for layer in shape.layers:
        measures = _measures(published, shape, layer)
        hidden_all = _hidden(published, shape, layer).to_numpy()
        hidden_by_key = dict(zip(map(tuple, published[list(shape.key)].to_numpy()), hidden_all, strict=True))
        for fam, rows in published.groupby(fam_cols, dropna=False, sort=True):
            fam = fam if isinstance(fam, tuple) else (fam,)
            seg_type = dict(zip(fam_cols, fam, strict=True)).get("segment_type")
            if seg_type == ORG:
                continue
            total_key = tuple(v if c != "segment_type" else ORG for c, v in zip(fam_cols, fam, strict=True)) + ("all",)
            total_key = _reorder(shape, fam_cols, total_key)
            if total_key not in pub.index or hidden_by_key.get(total_key, True):
                continue  # no visible total to subtract from
            keys = [tuple(r) for r in rows[list(shape.key)].to_numpy()]
            hidden = [key for key in keys if hidden_by_key[key]]
            visible = [key for key in keys if not hidden_by_key[key]]
            sizes_t = {key: _size(tru, key, layer.size) for key in keys}
            label = f"{dict(zip(fam_cols, fam, strict=True))}"
            if seg_type in NON_PARTITION:
                # with nothing visible to subtract, the residual is the published total itself
                if hidden and visible and max(sizes_t[h] for h in hidden) < k:
                    out.append(Finding(shape.table, "residual", label,
                                       f"{len(hidden)} hidden cell(s) sharing people, none known to hold {k}",
                                       cells=len(hidden)))
                continue
            # the people of the total in no visible cell: the hidden cells' and anyone's in no cell at all
            # (a cell with no row holds nobody: in the truth it is absent too, or inactive)
            total_size = _num(tru.at[total_key, layer.size])
            group = total_size - sum(sizes_t[v] for v in visible)
            if not hidden and group <= 0:
                continue
            if 0 < group < k:
                exact = False
                if len(hidden) == 1:
                    h = hidden[0]
                    remainder = total_size - sum(sizes_t.values())
                    exact = remainder == 0 and all(
                        np.isclose(_num(pub.at[total_key, m]) - sum(_num(pub.at[v, m]) for v in visible),
                                   _num(tru.at[h, m]) if h in tru.index else 0.0, equal_nan=True)
                        for m in measures)
                out.append(Finding(shape.table, "residual", label,
                                   f"{layer.flag}: total minus {len(visible)} visible cell(s) describes "
                                   f"{group:g} people", cells=max(1, len(hidden)), exact=exact))
    return out


def unsized(shape: Shape, published: pd.DataFrame) -> list[Finding]:
    """A table that does not publish the size of its cells: every hidden cell of a family with a visible
    total is given back together with the other hidden ones, and nobody can tell how many people that is."""
    hidden = _hidden(published, shape, shape.layers[0])
    df = published.assign(_hidden=hidden.to_numpy())
    out = []
    fam_cols = shape.family_by
    for fam, rows in df[df["segment_type"] != ORG].groupby(fam_cols, sort=True):
        group = [c for c in fam_cols if c != "segment_type"]
        key = dict(zip(fam_cols, fam if isinstance(fam, tuple) else (fam,), strict=True))
        total = df[(df["segment_type"] == ORG)]
        for c in group:
            total = total[total[c] == key[c]]
        if rows["_hidden"].any() and len(total) and not total["_hidden"].iloc[0]:
            out.append(Finding(shape.table, "residual", str(key),
                               "hidden cells given back together; the table publishes no group size",
                               cells=int(rows["_hidden"].sum())))
    return out


def _size(tru: pd.DataFrame, key: tuple, column: str) -> float:
    value = _num(tru.at[key, column]) if key in tru.index else 0.0
    return 0.0 if np.isnan(value) else value


def _reorder(shape: Shape, fam_cols: Sequence[str], values: tuple) -> tuple:
    """A key tuple (family columns then segment_value) in the order of shape.key."""
    named = dict(zip(list(fam_cols) + ["segment_value"], values, strict=True))
    return tuple(named[c] for c in shape.key)


# --------------------------------------------------------------------------------------------- overlap
def _in_span(basis: np.ndarray, target: np.ndarray) -> bool:
    if basis.size == 0:
        return not target.any()
    proj = basis.T @ (basis @ target)
    return bool(np.linalg.norm(target - proj) < 1e-7 * max(1.0, np.linalg.norm(target)))


def _basis(rows: np.ndarray) -> np.ndarray:
    if rows.size == 0:
        return rows
    u, s, vt = np.linalg.svd(rows, full_matrices=False)
    rank = int((s > 1e-9 * max(1.0, s.max())).sum())
    return vt[:rank]


def overlap(shape: Shape, published: pd.DataFrame, directory: Directory, k: int,
            truth: pd.DataFrame | None = None) -> list[Finding]:
    """Every segment type of one day (and period) at once, as sets of people: a finding when a hidden
    cell, or a group of people in the same cells (an intersection of segments) smaller than k, is a linear
    combination of the visible cells and the total."""
    if not shape.overlap or shape.date is None:
        return []
    out: list[Finding] = []
    layer = shape.layers[0]
    group_cols = [c for c in shape.family_by if c != "segment_type"]
    df = published.assign(_hidden=_hidden(published, shape, layer).to_numpy())
    df = df[~df["segment_type"].isin(NON_PARTITION)]
    cache: dict[tuple, list[str]] = {}
    for grp, rows in df.groupby(group_cols, sort=True):
        grp = grp if isinstance(grp, tuple) else (grp,)
        day = pd.Timestamp(dict(zip(group_cols, grp, strict=True))[shape.date]).date()
        members = directory.on(day)
        if members.empty:
            continue
        org = rows[rows["segment_type"] == ORG]
        if org.empty or bool(org["_hidden"].iloc[0]):
            continue
        hidden = {(t, v) for t, v, h in rows[["segment_type", "segment_value", "_hidden"]].to_numpy() if h}
        if not hidden:
            continue
        small = hidden
        if truth is not None:  # a hidden cell of k people or more (hidden to protect another) may come back
            key_of = dict(zip(group_cols, grp, strict=True))
            small = {(t, v) for t, v in hidden
                     if _size(truth, tuple({**key_of, "segment_type": t, "segment_value": v}[c] for c in shape.key),
                              layer.size) < k}
        types = sorted(t for t in rows["segment_type"].unique() if t != ORG and t in members.columns)
        signature = (day, tuple(types), tuple(sorted(hidden)), tuple(sorted(small)))
        if signature not in cache:
            cache[signature] = _overlap_one(members[types], hidden, small, k)
        for what in cache[signature]:
            out.append(Finding(shape.table, "overlap", str(dict(zip(group_cols, grp, strict=True))), what))
    return out


def _overlap_one(members: pd.DataFrame, hidden: set[tuple[str, str]], small: set[tuple[str, str]],
                 k: int) -> list[str]:
    types = list(members.columns)
    sig = members.fillna("\0null").astype(str)
    atoms = sig.groupby(types, sort=True).size().reset_index(name="n")
    n_atoms = len(atoms)
    sets: list[tuple[tuple[str, str], np.ndarray]] = []
    for t in types:
        for value in sorted(atoms[t].unique()):
            sets.append(((t, value), (atoms[t] == value).to_numpy(float)))
    # people with no value for a type are in no cell of it: nobody sees a cell of theirs
    visible = [vec for key, vec in sets if key not in hidden and key[1] != "\0null"]
    basis = _basis(np.vstack([np.ones(n_atoms)] + visible))
    found = []
    for key, vec in sets:
        if key in small and _in_span(basis, vec):
            found.append(f"hidden cell {key[0]}={key[1]} ({int(atoms['n'][vec > 0].sum())} people) is a "
                         "combination of visible cells")
    for i in np.flatnonzero(atoms["n"].to_numpy() < k):
        vec = np.zeros(n_atoms)
        vec[i] = 1.0
        if _in_span(basis, vec):
            found.append(f"{int(atoms['n'][i])} people in {dict(atoms.iloc[i][types])} are a combination "
                         "of visible cells")
    return found


# ----------------------------------------------------------------------------------------- consecutive
def consecutive(shape: Shape, published: pd.DataFrame, truth: pd.DataFrame, k: int) -> list[Finding]:
    """The same family on two consecutive days: for every measure whose true value did not change in any
    cell (the headcount, typically), the two days' visible cells and totals are stacked; a finding when a
    hidden cell of fewer than k people gets determined."""
    if shape.date is None:
        return []
    out: list[Finding] = []
    layer = shape.layers[0]
    other = [c for c in shape.family_by if c not in (shape.date,)]
    pub = published.assign(_hidden=_hidden(published, shape, layer).to_numpy())
    pub = pub[~pub["segment_type"].isin(NON_PARTITION)]
    tru = truth.set_index(list(shape.key))
    measures = [m for m in _measures(published, shape, layer)] + [layer.size]
    measures = list(dict.fromkeys(m for m in measures if m in truth.columns))
    for grp, rows in pub.groupby(other, sort=True):
        days = sorted(rows[shape.date].unique())
        by_day = {d: r for d, r in rows.groupby(shape.date)}
        for d0, d1 in zip(days, days[1:], strict=False):
            if (pd.Timestamp(d1) - pd.Timestamp(d0)).days != 1:
                continue
            a, b = by_day[d0], by_day[d1]
            if set(a.loc[a["_hidden"], "segment_value"]) == set(b.loc[b["_hidden"], "segment_value"]):
                continue  # the same cells hidden on both days: nothing new to stack
            for m in measures:
                hit = _stack(shape, a, b, tru, m, k)
                if hit:
                    out.append(Finding(shape.table, "consecutive", f"{grp} {d0}..{d1} {m}", hit))
    return out


def _stack(shape: Shape, a: pd.DataFrame, b: pd.DataFrame, tru: pd.DataFrame, m: str, k: int) -> str | None:
    key_of = lambda r: tuple(r[c] for c in shape.key)  # noqa: E731
    values = sorted(set(a["segment_value"]) | set(b["segment_value"]))
    values = [v for v in values if v != "all"]
    if not values:
        return None
    # the measure's truth must be the same on both days for every cell and the total
    for v in values + ["all"]:
        ra, rb = a[a["segment_value"] == v], b[b["segment_value"] == v]
        if ra.empty or rb.empty:
            return None
        ta, tb = _num(tru.at[key_of(ra.iloc[0]), m]), _num(tru.at[key_of(rb.iloc[0]), m])
        if not np.isclose(ta, tb, equal_nan=True):
            return None
    index = {v: i for i, v in enumerate(values)}
    rows = [np.ones(len(values))]
    for r in (a, b):
        for v, hid in r[["segment_value", "_hidden"]].to_numpy():
            if v != "all" and not hid:
                vec = np.zeros(len(values))
                vec[index[v]] = 1.0
                rows.append(vec)
    basis = _basis(np.vstack(rows))
    for r in (a, b):
        for _, row in r[r["_hidden"] & (r["segment_value"] != "all")].iterrows():
            size = _num(tru.at[key_of(row), shape.layers[0].size])
            if 0 < size < k:
                vec = np.zeros(len(values))
                vec[index[row["segment_value"]]] = 1.0
                if _in_span(basis, vec):
                    return f"hidden {row['segment_type']}={row['segment_value']} ({size:g} people) determined"
    return None


# ------------------------------------------------------------------------------------------ categories
def categories(table: str, family: str, total: dict[str, float], cells: dict[str, dict[str, float]],
               hidden: set[str], remainder: dict[str, float], k: int) -> list[Finding]:
    """Counts of people by category (influence tiers, engaged / not engaged) per cell, with a total per
    category. A finding when the hidden cells (plus the people in no cell) hold fewer than k people, or
    when their residual has a category empty or full: then every hidden person's category is known."""
    cats = sorted(total)
    res = {c: sum(cells[h].get(c, 0.0) for h in hidden) + remainder.get(c, 0.0) for c in cats}
    people = sum(res.values())
    if not hidden and people == 0:
        return []
    out = []
    if 0 < people < k:
        out.append(Finding(table, "residual", family, f"hidden cells hold {people:g} people", cells=len(hidden) or 1))
    elif people > 0:
        empty = [c for c in cats if res[c] == 0 and total[c] > 0]
        full = [c for c in cats if res[c] == people and any(total[o] > 0 for o in cats if o != c)]
        if empty or full:
            out.append(Finding(table, "residual", family,
                               f"all {people:g} hidden people are {full}: none is {empty}", cells=len(hidden) or 1))
    return out
