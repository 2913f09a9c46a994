"""canonical.people_over_time: effective-dated directory attributes from the merged people snapshots."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipelines import canonical

D = dt.date
FIRST, MOVE, LATER = D(2026, 5, 1), D(2026, 6, 1), D(2026, 6, 15)


def _snapshot(**people: tuple[str | None, str, bool]) -> pd.DataFrame:
    """{key: (department, location, is_leader)} merged as the pipeline merges one HR directory."""
    rows = [{"person_key": k, "department": d, "location": loc, "level": "Associate", "is_leader": lead,
             "hire_date": D(2020, 1, 1)} for k, (d, loc, lead) in people.items()]
    return canonical.merge_people({"hr": pd.DataFrame(rows)})


def _all(snapshots: list[tuple[dt.date, pd.DataFrame]]) -> list[tuple[dt.date, pd.DataFrame, None]]:
    """Snapshots without the changed keys: people_over_time compares everyone."""
    return [(d, s, None) for d, s in snapshots]


def _changed(snapshots: list[tuple[dt.date, pd.DataFrame]]) -> list[tuple[dt.date, pd.DataFrame, set[str] | None]]:
    """Snapshots with the keys whose rows changed, as jobs._people_snapshots gives them."""
    out: list[tuple[dt.date, pd.DataFrame, set[str] | None]] = []
    for i, (d, s) in enumerate(snapshots):
        out.append((d, s, None if i == 0 else canonical.changed_people(snapshots[i - 1][1], s)))
    return out


def _ranges(history: pd.DataFrame, key: str) -> list[tuple]:
    rows = history[history.person_key == key]
    return [(r.department, r.listed, r.valid_from, r.valid_to) for r in rows.itertuples()]


def test_a_move_starts_on_the_snapshot_that_shows_it_and_the_first_snapshot_holds_before_it() -> None:
    before = _snapshot(ann=("Sales", "Paris", False), bob=("Sales", "Paris", True))
    after = _snapshot(ann=("Finance", "Paris", False), bob=("Sales", "Paris", True))
    people, history = canonical.people_over_time(_all([(FIRST, before), (MOVE, after), (LATER, after)]))
    assert _ranges(history, "ann") == [("Sales", True, D(1900, 1, 1), MOVE - dt.timedelta(days=1)),
                                       ("Finance", True, MOVE, D(9999, 12, 31))]
    assert _ranges(history, "bob") == [("Sales", True, D(1900, 1, 1), D(9999, 12, 31))]  # unchanged: one range
    assert history[history.person_key == "bob"].is_leader.tolist() == [True]
    # the people table is the latest snapshot, nobody delisted
    assert people.set_index("person_key").department.to_dict() == {"ann": "Finance", "bob": "Sales"}
    assert people.delisted_on.isna().all()


def test_a_joiner_is_not_listed_before_the_snapshot_that_first_lists_them() -> None:
    first = _snapshot(ann=("Sales", "Paris", False))
    later = _snapshot(ann=("Sales", "Paris", False), cid=("Legal", "Remote", False))
    _, history = canonical.people_over_time(_all([(FIRST, first), (MOVE, later)]))
    assert _ranges(history, "cid") == [(None, False, D(1900, 1, 1), MOVE - dt.timedelta(days=1)),
                                       ("Legal", True, MOVE, D(9999, 12, 31))]


def test_a_person_no_snapshot_lists_any_more_keeps_their_last_row_and_the_day_they_were_delisted() -> None:
    first = _snapshot(ann=("Sales", "Paris", False), dan=("Legal", "Paris", True))
    later = _snapshot(ann=("Sales", "Paris", False))
    people, history = canonical.people_over_time(_all([(FIRST, first), (MOVE, later), (LATER, later)]))
    assert _ranges(history, "dan") == [("Legal", True, D(1900, 1, 1), MOVE - dt.timedelta(days=1)),
                                       (None, False, MOVE, D(9999, 12, 31))]
    dan = people.set_index("person_key").loc["dan"]
    assert dan.department == "Legal" and bool(dan.is_leader) and dan.delisted_on == MOVE
    # listed again later: in force again from that snapshot, and no longer delisted
    people, history = canonical.people_over_time(_all([(FIRST, first), (MOVE, later), (LATER, first)]))
    assert _ranges(history, "dan")[-1] == ("Legal", True, LATER, D(9999, 12, 31))
    assert people.set_index("person_key").delisted_on.isna().all()


def test_the_history_is_contiguous_sorted_and_the_same_on_a_rerun() -> None:
    snaps = [(FIRST, _snapshot(b=("Sales", "Paris", False), a=("Legal", "Paris", False))),
             (MOVE, _snapshot(a=("Legal", "Remote", False), c=("Sales", "Paris", False))),
             (LATER, _snapshot(a=("Legal", "Remote", True), b=("Finance", "Paris", False)))]
    _, history = canonical.people_over_time(_all(snaps))
    pd.testing.assert_frame_equal(history, canonical.people_over_time(_all(snaps))[1])
    assert list(history.columns) == canonical.HISTORY_COLUMNS
    assert history[["person_key", "valid_from"]].equals(
        history[["person_key", "valid_from"]].sort_values(["person_key", "valid_from"]))
    for _, rows in history.groupby("person_key"):
        assert rows.valid_from.iloc[0] == D(1900, 1, 1) and rows.valid_to.iloc[-1] == D(9999, 12, 31)
        assert (rows.valid_from.iloc[1:].to_numpy() == (rows.valid_to.iloc[:-1] + pd.Timedelta(days=1)).to_numpy()).all()


def test_no_snapshot_gives_no_people_and_no_history() -> None:
    people, history = canonical.people_over_time([])
    assert people.empty and history.empty and list(history.columns) == canonical.HISTORY_COLUMNS


def test_only_the_changed_people_logged_give_the_same_history_as_comparing_everyone() -> None:
    rng = np.random.default_rng(3)
    depts, people = ["Sales", "Finance", "Legal", None], [f"p{i:02d}" for i in range(40)]
    snaps = []
    listed = set(people[:30])
    current = {k: (depts[rng.integers(4)], "Paris", bool(rng.random() < 0.1)) for k in people}
    for day in range(12):
        for k in rng.choice(people, 5, replace=False):  # moves, joiners, leavers, returns
            current[k] = (depts[rng.integers(4)], ["Paris", "Remote"][rng.integers(2)], bool(rng.random() < 0.1))
            if rng.random() < 0.3:
                listed ^= {k}
        snaps.append((FIRST + dt.timedelta(days=3 * day), _snapshot(**{k: current[k] for k in sorted(listed)})))
    a_people, a_history = canonical.people_over_time(_all(snaps))
    b_people, b_history = canonical.people_over_time(_changed(snaps))
    pd.testing.assert_frame_equal(a_history, b_history)
    pd.testing.assert_frame_equal(a_people, b_people)
    assert (~a_history.listed).any() and a_people.delisted_on.notna().any()  # the case covers leavers


def test_remerging_the_changed_people_gives_the_whole_merge() -> None:
    hr_before = _snapshot(ann=("Sales", "Paris", False), bob=("Legal", "Paris", False)).drop(columns=["sources"])
    hr_after = _snapshot(ann=("Finance", "Paris", False), cid=("Legal", "Paris", False)).drop(columns=["sources"])
    slack = pd.DataFrame({"person_key": ["bob", "eve"], "in_directory": False, "account_type": ["member", "guest"],
                          "is_deactivated": [True, False], "department": [None, "Ops"]})
    before = canonical.merge_people({"hr": hr_before, "slack": slack})
    keys = canonical.changed_people(hr_before, hr_after)
    assert keys == {"ann", "bob", "cid"}
    again = canonical.remerge_people(before, {"hr": hr_after, "slack": slack}, keys)
    pd.testing.assert_frame_equal(again, canonical.merge_people({"hr": hr_after, "slack": slack}), check_dtype=False)
