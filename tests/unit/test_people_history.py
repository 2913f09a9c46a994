"""canonical.people_over_time: effective-dated directory attributes from the merged people snapshots."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines import canonical

D = dt.date
FIRST, MOVE, LATER = D(2026, 5, 1), D(2026, 6, 1), D(2026, 6, 15)


def _snapshot(**people: tuple[str | None, str, bool]) -> pd.DataFrame:
    """{key: (department, location, is_leader)} merged as the pipeline merges one HR directory."""
    rows = [{"person_key": k, "department": d, "location": loc, "level": "Associate", "is_leader": lead,
             "hire_date": D(2020, 1, 1)} for k, (d, loc, lead) in people.items()]
    return canonical.merge_people({"hr": pd.DataFrame(rows)})


def _ranges(history: pd.DataFrame, key: str) -> list[tuple]:
    rows = history[history.person_key == key]
    return [(r.department, r.listed, r.valid_from, r.valid_to) for r in rows.itertuples()]


def test_a_move_starts_on_the_snapshot_that_shows_it_and_the_first_snapshot_holds_before_it() -> None:
    before = _snapshot(ann=("Sales", "Paris", False), bob=("Sales", "Paris", True))
    after = _snapshot(ann=("Finance", "Paris", False), bob=("Sales", "Paris", True))
    people, history = canonical.people_over_time([(FIRST, before), (MOVE, after), (LATER, after)])
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
    _, history = canonical.people_over_time([(FIRST, first), (MOVE, later)])
    assert _ranges(history, "cid") == [(None, False, D(1900, 1, 1), MOVE - dt.timedelta(days=1)),
                                       ("Legal", True, MOVE, D(9999, 12, 31))]


def test_a_person_no_snapshot_lists_any_more_keeps_their_last_row_and_the_day_they_were_delisted() -> None:
    first = _snapshot(ann=("Sales", "Paris", False), dan=("Legal", "Paris", True))
    later = _snapshot(ann=("Sales", "Paris", False))
    people, history = canonical.people_over_time([(FIRST, first), (MOVE, later), (LATER, later)])
    assert _ranges(history, "dan") == [("Legal", True, D(1900, 1, 1), MOVE - dt.timedelta(days=1)),
                                       (None, False, MOVE, D(9999, 12, 31))]
    dan = people.set_index("person_key").loc["dan"]
    assert dan.department == "Legal" and bool(dan.is_leader) and dan.delisted_on == MOVE
    # listed again later: in force again from that snapshot, and no longer delisted
    people, history = canonical.people_over_time([(FIRST, first), (MOVE, later), (LATER, first)])
    assert _ranges(history, "dan")[-1] == ("Legal", True, LATER, D(9999, 12, 31))
    assert people.set_index("person_key").delisted_on.isna().all()


def test_the_history_is_contiguous_sorted_and_the_same_on_a_rerun() -> None:
    snaps = [(FIRST, _snapshot(b=("Sales", "Paris", False), a=("Legal", "Paris", False))),
             (MOVE, _snapshot(a=("Legal", "Remote", False), c=("Sales", "Paris", False))),
             (LATER, _snapshot(a=("Legal", "Remote", True), b=("Finance", "Paris", False)))]
    _, history = canonical.people_over_time(snaps)
    pd.testing.assert_frame_equal(history, canonical.people_over_time(snaps)[1])
    assert list(history.columns) == canonical.HISTORY_COLUMNS
    assert history[["person_key", "valid_from"]].equals(
        history[["person_key", "valid_from"]].sort_values(["person_key", "valid_from"]))
    for _, rows in history.groupby("person_key"):
        assert rows.valid_from.iloc[0] == D(1900, 1, 1) and rows.valid_to.iloc[-1] == D(9999, 12, 31)
        assert (rows.valid_from.iloc[1:].to_numpy() == (rows.valid_to.iloc[:-1] + pd.Timedelta(days=1)).to_numpy()).all()


def test_no_snapshot_gives_no_people_and_no_history() -> None:
    people, history = canonical.people_over_time([])
    assert people.empty and history.empty and list(history.columns) == canonical.HISTORY_COLUMNS
