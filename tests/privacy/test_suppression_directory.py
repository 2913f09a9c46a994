"""The overlap audit's directory (pipelines/suppression.Directory) against the per-day pandas code it
replaced, kept here as the oracle: on random small directories whose memberships, hires and terminations
change mid-interval, every day gives the same segment types, the same atoms in the same order and the
same cell vectors, and the audit hides the same cells."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines import suppression
from pipelines.suppression import _NULL


def _old_on(people: pd.DataFrame, membership: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The directory of a day as the audit computed it before the integer coding (its code, unchanged)."""
    p, ts = people.copy(), pd.Timestamp(day)
    for col in ("hire_date", "termination_date"):
        p[col] = pd.to_datetime(p[col])
    m = membership.copy()
    for col in ("valid_from", "valid_to"):
        m[col] = pd.to_datetime(m[col])
    counted = (p["hire_date"].isna() | (p["hire_date"] <= ts)) & \
        (p["termination_date"].isna() | (p["termination_date"] > ts))
    if {"in_directory", "is_deactivated"} <= set(p.columns):
        counted &= p["in_directory"].fillna(True).astype(bool) | ~p["is_deactivated"].fillna(False).astype(bool)
    m = m[m["person_key"].isin(p.loc[counted, "person_key"]) & (m["valid_from"] <= ts) & (m["valid_to"] >= ts)]
    return m.pivot_table(index="person_key", columns="segment_type", values="segment_value",
                         aggfunc="first", dropna=False) if len(m) else pd.DataFrame()


def _old_atoms(members: pd.DataFrame) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    sig = members.astype(object).where(members.notna(), _NULL).astype(str)
    codes, labels = [], []
    for t in sig.columns:
        values, inverse = np.unique(sig[t].to_numpy(), return_inverse=True)
        codes.append(inverse)
        labels.append(values)
    rows, counts = np.unique(np.column_stack(codes), axis=0, return_counts=True)
    vectors = {(t, str(value)): (rows[:, j] == i).astype(float)
               for j, t in enumerate(sig.columns) for i, value in enumerate(labels[j])}
    return counts, vectors


def _old_in_span(basis: np.ndarray, target: np.ndarray) -> bool:
    if basis.size == 0:
        return not target.any()
    residual = target - basis.T @ (basis @ target)
    return bool(np.linalg.norm(residual) < 1e-7 * max(1.0, float(np.linalg.norm(target))))


def _old_basis(rows: list[np.ndarray]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0))
    _, sv, vt = np.linalg.svd(np.vstack(rows), full_matrices=False)
    rank = int((sv > 1e-9 * max(1.0, float(sv.max()))).sum())
    return vt[:rank]


def _old_audit_day(atoms, present, hidden, primary, sizes, k):
    """The audit of one day as it was, with an SVD per candidate cell (its code, unchanged)."""
    vectors = atoms.vectors
    n_atoms = len(atoms.n)
    targets = [vectors[key] for key in sorted(hidden)
               if key in vectors and (key in primary or sizes.get(key, 0.0) < k)]
    small_atoms = np.flatnonzero(atoms.n < k)
    present_set = set(present)
    order = {c: (sizes.get(c, 0.0), c) for c in present_set}
    added: set[tuple[str, str]] = set()
    ones = np.ones(n_atoms)
    unknown = {c for c in vectors if c[1] == _NULL and c not in present_set}

    def visible(excluding):
        return [c for c in vectors if c not in hidden and c not in excluding and c not in unknown]

    target_mat = np.vstack(targets) if targets else np.zeros((0, n_atoms))
    target_norm = np.maximum(1.0, np.linalg.norm(target_mat, axis=1))
    while True:
        names = visible(added)
        basis = _old_basis([ones] + [vectors[c] for c in names])
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
        mat = np.vstack([ones] + [vectors[c] for c in names])
        coef = np.linalg.lstsq(mat.T, leak, rcond=None)[0][1:]
        taking_part = sorted((c for c, x in zip(names, coef, strict=True) if abs(x) > 1e-9 and c in present_set),
                             key=order.__getitem__)
        choice = next((c for c in taking_part
                       if not _old_in_span(_old_basis([ones] + [vectors[o] for o in visible(added | {c})]), leak)),
                      None)
        if choice is None:
            choice = taking_part[0] if taking_part else None
        if choice is None:
            return added
        added.add(choice)


START = dt.date(2026, 5, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(12)]
VALUES = {"org": ["all"], "department": ["Sales", "R&D", "Ops", None], "level": ["Staff", "VP", "C-level"],
          "leader": ["leader", "non-leader"]}


def _random_directory(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    def date_or_none(p_none: float) -> dt.date | None:
        return None if rng.random() < p_none else START + dt.timedelta(days=int(rng.integers(-3, 15)))

    people, membership = [], []
    for i in range(n):
        key = f"p{i:03d}"
        people.append({"person_key": key, "hire_date": date_or_none(0.6), "termination_date": date_or_none(0.7),
                       "in_directory": rng.choice([True, False, None], p=[0.8, 0.1, 0.1]),
                       "is_deactivated": rng.choice([True, False, None], p=[0.2, 0.7, 0.1])})
        for st, values in VALUES.items():
            if st != "org" and rng.random() < 0.1:
                continue  # no row of this type: nobody sees them in it
            # one or two spans, a value change mid-interval (sometimes overlapping: the first row wins)
            cut = START + dt.timedelta(days=int(rng.integers(0, 12)))
            spans = [(dt.date(1900, 1, 1), cut), (cut + dt.timedelta(days=int(rng.integers(0, 2))),
                                                  dt.date(9999, 12, 31))] if rng.random() < 0.4 \
                else [(dt.date(1900, 1, 1), dt.date(9999, 12, 31))]
            for lo, hi in spans:
                membership.append({"person_key": key, "segment_type": st,
                                   "segment_value": values[int(rng.integers(0, len(values)))],
                                   "valid_from": lo, "valid_to": hi})
    if n:  # a person key twice in the directory (two HR rows): counted when either row is
        people.append({**people[0], "hire_date": START + dt.timedelta(days=5), "termination_date": None})
    return pd.DataFrame(people), pd.DataFrame(membership)


@pytest.mark.parametrize("seed", range(12))
def test_the_coded_directory_gives_the_old_days_and_atoms(seed):
    rng = np.random.default_rng(seed)
    people, membership = _random_directory(rng, int(rng.integers(0, 40)))
    directory = suppression.Directory(people, membership)
    epochs: dict[int, pd.DataFrame] = {}
    for day in DAYS:
        old = _old_on(people, membership, day) if len(membership) else pd.DataFrame()
        assert directory.types_on(day) == (tuple(old.columns) if not old.empty else ())
        if old.empty:
            continue
        ep = directory.epoch(day)
        if ep in epochs:  # one epoch: the same counted table
            pd.testing.assert_frame_equal(epochs[ep], old)
        epochs[ep] = old
        for types in {tuple(old.columns), tuple(sorted(set(old.columns) - {"leader"})), ("level",)}:
            if not set(types) <= set(old.columns) or not types:
                continue
            counts, vectors = _old_atoms(old[list(types)])
            atoms = directory.atoms(day, types)
            np.testing.assert_array_equal(atoms.n, counts)
            got = atoms.vectors
            assert list(got) == list(vectors)
            for key, vec in vectors.items():
                np.testing.assert_array_equal(got[key], vec)
    assert len(epochs) <= len(DAYS)


def test_days_between_changes_share_an_epoch_and_a_change_starts_a_new_one():
    people = pd.DataFrame([{"person_key": "a", "hire_date": None, "termination_date": dt.date(2026, 5, 6)},
                           {"person_key": "b", "hire_date": None, "termination_date": None}])
    membership = pd.DataFrame([
        {"person_key": k, "segment_type": "org", "segment_value": "all", "valid_from": dt.date(1900, 1, 1),
         "valid_to": dt.date(9999, 12, 31)} for k in ("a", "b")])
    directory = suppression.Directory(people, membership)
    epochs = [directory.epoch(d) for d in DAYS[:8]]
    # a leaves on the 6th (counted through the 5th): the 1st-5th one epoch, the 6th-8th another
    assert len(set(epochs[:5])) == 1 and len(set(epochs[5:])) == 1 and epochs[4] != epochs[5]
    assert directory.atoms(DAYS[0], ("org",)).n.tolist() == [2]
    assert directory.atoms(DAYS[6], ("org",)).n.tolist() == [1]


def _old_overlap_audit(monkeypatch, cells, fam, size, people, membership, k, shared):
    """overlap_audit with the old directory (per-day pivot and atoms) and the old audit of a day (an SVD
    per candidate cell), for the same-cells comparison."""

    class OldDirectory:
        def __init__(self):
            self.cache = {}

        def types_on(self, day):
            if day not in self.cache:
                self.cache[day] = _old_on(people, membership, day)
            return tuple(self.cache[day].columns) if not self.cache[day].empty else ()

        def epoch(self, day):
            return day

        def atoms(self, day, types):
            counts, vectors = _old_atoms(self.cache[day][list(types)])
            return _OldAtoms(counts, vectors)

    with monkeypatch.context() as m:
        m.setattr(suppression, "_audit_day", _old_audit_day)
        return suppression.overlap_audit(cells, fam, size, OldDirectory(), k, shared)


class _OldAtoms:
    def __init__(self, n, vectors):
        self.n, self.vectors = n, vectors


def _audit_case(seed: int, monkeypatch) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(100 + seed)
    people, membership = _random_directory(rng, int(rng.integers(15, 40)))
    rows = []
    for day in DAYS:
        old = _old_on(people, membership, day)
        if old.empty:
            continue
        for st in old.columns:
            sig = old[st].astype(object).where(old[st].notna(), None)
            for value, n in sig.value_counts(dropna=False).items():
                value = None if pd.isna(value) else value
                rows.append({"as_of_date": day, "segment_type": st, "segment_value": value,
                             "headcount": float(n), "_hidden": n < 5, "_hidden_now": n < 5})
    cells = pd.DataFrame(rows)
    fam = suppression.Family("m", ("as_of_date", "segment_type"), ("segment_value",), "segment_type = org",
                             (suppression.Layer("suppressed", "headcount"),), partition_by="as_of_date")
    shared = np.zeros(len(cells), bool)
    new = suppression.overlap_audit(cells, fam, "headcount", suppression.Directory(people, membership), 5, shared)
    old = _old_overlap_audit(monkeypatch, cells, fam, "headcount", people, membership, 5, shared)
    return cells, new, old


def test_the_overlap_audit_hides_the_same_cells_as_the_old_code(monkeypatch):
    audited = 0
    for seed in range(16):
        cells, new, old = _audit_case(seed, monkeypatch)
        assert new.tolist() == old.tolist(), seed
        audited += int(new.sum() > cells["_hidden_now"].sum())
    assert audited >= 12  # most cases had cells for the audit to hide (not only the primary ones)
