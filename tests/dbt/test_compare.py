"""The comparison helper of the equivalence tests: canonical rows, differences, stored expectations."""

from __future__ import annotations

import datetime as dt

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
