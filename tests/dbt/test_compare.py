"""The comparison helper of the equivalence tests: canonical rows, differences, stored expectations."""

from __future__ import annotations

import datetime as dt
import json

from tests.dbt import compare


def _snap(rows: list[tuple]) -> compare.Snapshot:
    return compare.Snapshot(("day", "n", "share", "flag"), ("date", "bigint", "double", "boolean"),
                            tuple(sorted((tuple(compare._canonical(v) for v in r) for r in rows),
                                         key=compare._sort_key)))


def test_differences_and_json_round_trip() -> None:
    a = _snap([(dt.date(2026, 5, 1), 3, 0.1 + 0.2, True), (dt.date(2026, 5, 2), None, None, False)])
    same = _snap([(dt.date(2026, 5, 2), None, None, False), (dt.date(2026, 5, 1), 3, 0.3, True)])
    assert compare.differences("t", a, same) == []  # order of rows and float noise below 1e-12
    other = _snap([(dt.date(2026, 5, 1), 4, 0.3, True), (dt.date(2026, 5, 2), None, None, False)])
    assert compare.differences("t", a, other) == ["t: 1 differing row(s), first: {'n': (3, 4)}"]
    assert compare.differences("t", a, _snap([(dt.date(2026, 5, 1), 3, 0.3, True)])) == [
        "t: 2 rows expected, 1 found"]
    retyped = compare.Snapshot(a.columns, ("date", "integer", "double", "boolean"), a.rows)
    assert compare.differences("t", a, retyped)[0].startswith("t: types")
    assert compare.from_json(compare.to_json({"t": a})) == {"t": a}


def test_digests_name_what_differs() -> None:
    a = _snap([(dt.date(2026, 5, 1), 3, 0.1 + 0.2, True), (dt.date(2026, 5, 2), None, None, False)])
    d = compare.digest(a)
    assert d["rows"] == 2 and d["columns"] == [["day", "date"], ["n", "bigint"], ["share", "double"],
                                               ["flag", "boolean"]]
    # row order, column order and float noise below 1e-12 do not count
    reordered = compare.Snapshot(("flag", "share", "n", "day"), ("boolean", "double", "bigint", "date"),
                                 tuple(r[::-1] for r in reversed(_snap([(dt.date(2026, 5, 1), 3, 0.3, True), (
                                     dt.date(2026, 5, 2), None, None, False)]).rows)))
    assert compare.digest_differences("t", d, compare.digest(reordered)) == []
    changed = compare.digest(_snap([(dt.date(2026, 5, 1), 4, 0.3, True), (dt.date(2026, 5, 2), None, None, False)]))
    assert compare.digest_differences("run r, t", d, changed) == [
        f"run r, t: same columns and 2 rows, but their values differ (sha256 {changed['sha256'][:12]}..., "
        f"expected {d['sha256'][:12]}...)"]
    fewer = compare.digest(_snap([(dt.date(2026, 5, 1), 3, 0.3, True)]))
    assert compare.digest_differences("t", d, fewer) == ["t: 2 rows expected, 1 found"]
    retyped = compare.digest(compare.Snapshot(a.columns, ("date", "integer", "double", "boolean"), a.rows))
    assert compare.digest_differences("t", d, retyped) == ["t: types (expected, found) {'n': ('bigint', 'integer')}"]
    renamed = compare.digest(compare.Snapshot(("day", "count", "share", "flag"), a.types, a.rows))
    assert compare.digest_differences("t", d, renamed) == ["t: columns missing ['n'], unexpected ['count']"]
    # stored form
    runs = {"r1": {"t": d}, "r2": {"t": fewer}}
    assert compare.unpack(json.loads(json.dumps(compare.pack(runs)))) == runs
