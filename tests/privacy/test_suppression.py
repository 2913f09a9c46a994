"""The complementary suppression rule (pipelines/suppression.py) on hand-made families."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import completeness, dbt_project, suppression, warehouse
from pipelines.metrics import PYTHON_TABLES
from pipelines.network import TABLES
from pipelines.suppression import complementary, complete


def test_one_hidden_cell_takes_the_smallest_visible_one_with_it():
    # 1 hidden person; total 37: without more, 37 - (6 + 10 + 20) = 1 person comes back
    hidden = complete(np.array([[np.nan], [6], [10], [20]]), np.array([True, False, False, False]),
                      np.array([37.0]), k=5)
    assert hidden.tolist() == [True, True, False, False]


def test_hidden_cells_that_already_hold_enough_people_need_nothing():
    hidden = complete(np.array([[np.nan], [np.nan], [10], [20]]), np.array([True, True, False, False]),
                      np.array([35.0]), k=5)  # 35 - 30 = 5 people hidden together
    assert hidden.tolist() == [True, True, False, False]


def test_people_in_no_cell_count_as_hidden():
    # nobody suppressed, but 2 people of the total are in no cell (no department): they come back alone
    hidden = complete(np.array([[6], [10], [20]]), np.zeros(3, bool), np.array([38.0]), k=5)
    assert hidden.tolist() == [True, False, False]


def test_ties_are_broken_by_the_cell_key_so_reruns_agree():
    sizes = np.array([[np.nan], [8], [8], [30]])
    hidden = np.array([True, False, False, False])
    a = complete(sizes, hidden, np.array([47.0]), k=5, order=["x", "b", "a", "c"])
    b = complete(sizes, hidden, np.array([47.0]), k=5, order=["x", "b", "a", "c"])
    assert a.tolist() == b.tolist() == [True, False, True, False]


def test_no_visible_total_no_subtraction():
    hidden = complete(np.array([[np.nan], [6]]), np.array([True, False]), None, k=5)
    assert hidden.tolist() == [True, False]


def test_hidden_cells_of_nobody_need_nothing():
    # segments without leaders: their leader measures are hidden, but they are about no leader at all
    hidden = complete(np.array([[np.nan], [np.nan], [7], [9]]), np.array([True, True, False, False]),
                      np.array([16.0]), k=5)
    assert hidden.tolist() == [True, True, False, False]


def test_cells_sharing_people_need_one_hidden_cell_known_to_hold_k():
    # containers: one person asks in several, sizes do not add up; the smallest visible one is hidden too
    hidden = complete(np.array([[np.nan], [np.nan], [12], [7], [40]]), np.array([True, True, False, False, False]),
                      None, k=5, shared_people=True)
    assert hidden.tolist() == [True, True, False, True, False]


def test_every_category_keeps_k_people_among_the_hidden():
    # tiers (Top, Active, Observer): a hidden department of 4 Observers; the org has 30/60/40
    sizes = np.array([[np.nan, np.nan, np.nan], [1, 10, 9], [6, 20, 14], [23, 30, 13]])
    hidden = complete(sizes, np.array([True, False, False, False]), np.array([30.0, 60.0, 44.0]), k=5,
                      categories=True)
    # the department with 1 Top is not enough (1 Top hidden < 5); the next smallest holding Top people too
    assert hidden.tolist() == [True, True, True, False]


def test_a_category_smaller_than_k_must_be_hidden_whole():
    # only 3 Top people in the organisation: the hidden side must hold all of them, or the visible ones
    # would say none of the hidden people is Top
    sizes = np.array([[np.nan, np.nan], [0, 20], [3, 30]])
    hidden = complete(sizes, np.array([True, False, False]), np.array([3.0, 55.0]), k=5, categories=True)
    assert hidden.tolist() == [True, False, True]


def test_frame_rule_families_and_totals():
    cells = pd.DataFrame({
        "day": [1, 1, 1, 2, 2, 2],
        "segment_type": ["level"] * 6,
        "segment_value": ["ceo", "staff", "managers"] * 2,
        "headcount": [np.nan, 40, 8, 1, 40, 8],
        "hidden": [True, False, False, False, False, False],
    })
    totals = pd.DataFrame({"day": [1, 2], "headcount": [49, 49], "hidden": [False, False]})
    mask = complementary(cells, family=["day", "segment_type"], cell=["segment_value"], size="headcount",
                         hidden="hidden", k=5, totals=totals, total_on=["day"])
    # day 1: the CEO is hidden, the managers (8) go with them; day 2: nobody was hidden (the CEO's row is
    # visible in this made-up input) and nothing is missing from the total
    assert mask.tolist() == [True, False, True, False, False, False]


def test_withhold_nulls_the_measures_and_sets_the_flag():
    df = pd.DataFrame({"key": ["a", "b"], "people": [3, 9], "share": [0.5, 0.2], "suppressed": [True, False]})
    out = suppression.withhold(df, np.array([False, True]), ["people", "share"])
    assert out["suppressed"].tolist() == [True, True]
    assert out["people"].isna().tolist() == [False, True] and np.isnan(out.loc[1, "share"])


def test_every_published_table_declares_its_families_or_why_it_has_none():
    marts = [m for m in dbt_project.discover_models() if m.layer == "marts"]
    declared = {f.table for f in suppression.families(marts)}
    python = set(PYTHON_TABLES) | {completeness.PUBLISHED}  # the tables published from Python
    published = {m.name for m in marts} | {t for t in TABLES if t.startswith("mart_")} | python
    missing = published - declared - set(suppression.NO_FAMILY)
    assert not missing, f"published tables without a family declaration: {sorted(missing)}"
    assert not declared & set(suppression.NO_FAMILY)


def test_a_mart_header_declares_its_families():
    model = next(m for m in dbt_project.discover_models() if m.name == "mart_leader_engagement")
    fam = suppression.sql_family(model)
    assert fam is not None and fam.family == ("as_of_date", "period_type", "segment_type")
    assert fam.cell == ("segment_value",) and fam.total_filter == ("segment_type", "org")
    assert [(lyr.flag, lyr.size) for lyr in fam.layers] == [("suppressed", "headcount"),
                                                           ("leaders_suppressed", "leaders")]
    assert fam.layers[0].size_from == "int_segment_headcount_daily.headcount"


def test_apply_table_updates_only_the_interval_and_matches_null_segments(tmp_path: Path):
    engine = warehouse.make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    d1, d2 = dt.date(2026, 5, 1), dt.date(2026, 5, 2)
    rows = []
    for day in (d1, d2):
        rows += [(day, "org", "all", False, 60, 30), (day, "level", "C-level", True, None, None),
                 (day, "level", None, False, 7, 3), (day, "level", "Staff", False, 52, 27)]
    with engine.begin() as conn:
        conn.exec_driver_sql("create table m (as_of_date date, segment_type varchar, segment_value varchar, "
                             "suppressed boolean, headcount bigint, mau bigint)")
        for r in rows:
            conn.exec_driver_sql("insert into m values (?, ?, ?, ?, ?, ?)", r)
        fam = suppression.Family("m", ("as_of_date", "segment_type"), ("segment_value",), "segment_type = org",
                                 (suppression.Layer("suppressed", "headcount"),), partition_by="as_of_date")
        assert suppression.apply_table(conn, fam, 5, d2, d2) == 1
        got = warehouse.read_frame(conn, "select * from m order by as_of_date, segment_type, segment_value")
    engine.dispose()
    day2 = got[got["as_of_date"] == d2].set_index("segment_value", drop=False)
    # 1 person (the C-level) + 7 (the level with no name: NULL) hidden together on the interval's day only
    null_row = day2[day2["segment_value"].isna()].iloc[0]
    assert bool(null_row["suppressed"]) and pd.isna(null_row["mau"]) and pd.isna(null_row["headcount"])
    assert not got[(got["as_of_date"] == d1) & got["segment_value"].isna()]["suppressed"].iloc[0]


@pytest.mark.parametrize("k", [1, 5])
def test_nothing_is_hidden_at_k_1(k):
    sizes = np.array([[1.0], [2.0], [3.0]])
    hidden = complete(sizes, sizes[:, 0] < k, np.array([6.0]), k=k)
    assert hidden.sum() == (0 if k == 1 else 3)


def test_the_overlap_audit_stops_leader_minus_levels_giving_the_ceo_back():
    # leader = C-level + VP + Director. Within the level family the CEO (1) is hidden with the smallest
    # other level, Manager (6): 7 people. But leader - VP - Director is the CEO alone.
    levels = {"C-level": 1, "VP": 8, "Director": 9, "Manager": 6, "Staff": 20}
    people, membership = [], []
    for level, n in levels.items():
        for i in range(n):
            key = f"{level}-{i}"
            people.append({"person_key": key, "hire_date": pd.NaT, "termination_date": pd.NaT})
            leader = "leader" if level in ("C-level", "VP", "Director") else "non-leader"
            for st, sv in (("org", "all"), ("level", level), ("leader", leader)):
                membership.append({"person_key": key, "segment_type": st, "segment_value": sv,
                                   "valid_from": pd.Timestamp("1900-01-01"), "valid_to": pd.Timestamp("9999-12-31")})
    directory = suppression.Directory(pd.DataFrame(people), pd.DataFrame(membership))
    day = dt.date(2026, 5, 1)
    cells = pd.DataFrame([
        {"as_of_date": day, "segment_type": "level", "segment_value": lv, "headcount": float(n),
         "_hidden": lv == "C-level", "_hidden_now": lv in ("C-level", "Manager")} for lv, n in levels.items()
    ] + [{"as_of_date": day, "segment_type": "leader", "segment_value": v, "headcount": float(n),
          "_hidden": False, "_hidden_now": False} for v, n in (("leader", 18), ("non-leader", 26))])
    fam = suppression.Family("m", ("as_of_date", "segment_type"), ("segment_value",), "segment_type = org",
                             (suppression.Layer("suppressed", "headcount"),), partition_by="as_of_date")
    mask = suppression.overlap_audit(cells, fam, "headcount", directory, 5, np.zeros(len(cells), bool))
    hidden = set(cells.loc[mask.to_numpy(), "segment_value"])
    # VP (8) is the smallest cell whose hiding breaks leader - VP - Director
    assert hidden == {"C-level", "Manager", "VP"}
