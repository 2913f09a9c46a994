"""Ideas (issue 17, part 5), hand-computed: mart_ideas, fct_ideas, fct_idea_status_spells and
fct_idea_contributors on the SHORT people of hand_data.py (a, b, f Engineering; c, d Sales; e, g Legal).

Week of D1 (Monday 2 March 2026):
  i1  idea by a (Eng) D1 09:00; b (Eng) replies D1 10:00, a's own reply D1 11:00 (not a build-on), c and d
      (Sales) vote D2 09:00 and 10:00, e (Legal) votes D3 09:00; planned D2 12:00, completed D4 09:00
  i2  idea by c (Sales) D2 08:00; e (Legal) votes D3 08:00 (24 h), a (Eng) replies D3 10:00; declined D3 12:00
  i3  idea by d (Sales) D3 09:00; nothing
  p9  a post by e (Legal) its platform marks as an idea, D4 08:00; g (Legal) replies D4 10:00 (2 h)
  p10 an ordinary post by b with a reply by a: not an idea
"""

from __future__ import annotations  # noqa: I001

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from hand_data import D1, D4, RUN_START, SHORT_PEOPLE, activities
from hand_helpers import build, check, row

COVERED: set[str] = set()
H = 1 / 24  # an hour in days

ROWS = [
    ("i1", "2026-03-02 09:00", "a", "idea", "F1", None, None, False, False),
    ("i1r1", "2026-03-02 10:00", "b", "reply", "F1", "i1", "a", False, False),
    ("i1r2", "2026-03-02 11:00", "a", "reply", "F1", "i1", None, False, False),
    ("i1v1", "2026-03-03 09:00", "c", "vote", "F1", "i1", "a", False, False),
    ("i1v2", "2026-03-03 10:00", "d", "vote", "F1", "i1", "a", False, False),
    ("i1v3", "2026-03-04 09:00", "e", "vote", "F1", "i1", "a", False, False),
    ("i1s1", "2026-03-03 12:00", "f", "status_change", "F1", "i1", None, False, False),
    ("i1s2", "2026-03-05 09:00", "f", "status_change", "F1", "i1", None, False, False),
    ("i2", "2026-03-03 08:00", "c", "idea", "F1", None, None, False, False),
    ("i2v1", "2026-03-04 08:00", "e", "vote", "F1", "i2", "c", False, False),
    ("i2r1", "2026-03-04 10:00", "a", "reply", "F1", "i2", "c", False, False),
    ("i2s1", "2026-03-04 12:00", "f", "status_change", "F1", "i2", None, False, False),
    ("i3", "2026-03-04 09:00", "d", "idea", "F1", None, None, False, False),
    ("p9", "2026-03-05 08:00", "e", "post", "C1", None, None, False, False),
    ("p9r1", "2026-03-05 10:00", "g", "reply", "C1", "p9", "e", False, False),
    ("p10", "2026-03-05 08:30", "b", "post", "C1", None, None, False, False),
    ("p10r1", "2026-03-05 09:30", "a", "reply", "C1", "p10", "b", False, False),
]
STATUSES = {"i1s1": "planned", "i1s2": "completed", "i2s1": "declined"}


@pytest.fixture(scope="module")
def ideas(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    acts = activities(ROWS)
    acts["is_idea"] = acts["event_id"].isin(["i1", "i2", "i3", "p9"])
    acts["idea_status"] = acts["event_id"].map(STATUSES).astype("string")
    acts["thread_id"] = acts["parent_id"].fillna(acts["event_id"])
    conts = pd.DataFrame([{"source": "hand", "container_id": c, "kind": "community", "visibility": "public",
                           "member_count": 10, "owner_department": None,
                           "created_at": pd.Timestamp("2025-01-01", tz="UTC")} for c in ("F1", "C1")])
    return build(tmp_path_factory.mktemp("ideas"), acts, SHORT_PEOPLE, conts, RUN_START, D4)


def test_the_week_of_ideas_for_the_organisation_and_a_department(ideas: sa.Engine) -> None:
    week = {"period_type": "week", "period_start": D1, "segment_type": "org", "segment_value": "all"}
    # build-ons: i1 (b first, 1 h), i2 (e first, 24 h), p9 (g, 2 h): median 2 h; across departments: i1 (Sales,
    # Legal reached) and i2 (Legal, Engineering), not p9 (Legal to Legal); departments reached 2, 2, 0, 0.
    # Open spells: i1 27 h, i2 28 h, i3 39 h (to the end of D4), p9 16 h: mean 27.5 h
    check(ideas, "mart_ideas", {
        "period_end": D1 + dt.timedelta(days=6), "measured_through": D4, "suppressed": False, "idea_authors": 4,
        "ideas": 4, "ideas_built_on": 3, "build_on_rate": 0.75, "ideas_built_on_across_departments": 2,
        "cross_department_build_on_rate": 0.5, "mean_departments_reached": 1.0,
        "median_hours_to_first_build_on": 2.0, "ideas_planned": 0, "ideas_in_progress": 0, "ideas_completed": 1,
        "implementation_rate": 0.25, "ideas_declined": 1, "median_days_to_completed": 3.0,
        "mean_days_open": 27.5 * H,
    }, COVERED, **week)
    # Sales: i2 and i3, by c and d
    check(ideas, "mart_ideas", {
        "idea_authors": 2, "ideas": 2, "ideas_built_on": 1, "build_on_rate": 0.5,
        "ideas_built_on_across_departments": 1, "cross_department_build_on_rate": 0.5,
        "mean_departments_reached": 1.0, "median_hours_to_first_build_on": 24.0, "ideas_completed": 0,
        "implementation_rate": 0.0, "ideas_declined": 1, "median_days_to_completed": None,
        "mean_days_open": (28 + 39) / 2 * H,
    }, COVERED, **{**week, "segment_type": "department", "segment_value": "Sales"})
    # the month holds the same four ideas
    check(ideas, "mart_ideas", {"period_start": D1.replace(day=1), "period_end": dt.date(2026, 3, 31),
                                "ideas": 4, "ideas_built_on": 3},
          COVERED, period_type="month", period_start=D1.replace(day=1), segment_type="org", segment_value="all")


def test_each_idea_its_statuses_and_the_idea_brokers(ideas: sa.Engine) -> None:
    i1 = row(ideas, "fct_ideas", event_id="i1")
    assert (i1["comments"], i1["votes"], i1["builders"], i1["cross_department_builders"],
            i1["departments_reached"]) == (1, 3, 4, 3, 2)
    assert i1["author_department"] == "Engineering" and i1["status"] == "completed"
    assert i1["hours_to_first_build_on"] == pytest.approx(1.0) and i1["days_to_completed"] == pytest.approx(3.0)
    assert row(ideas, "fct_ideas", event_id="i3")["status"] == "open"
    assert row(ideas, "fct_ideas", event_id="p9")["builders"] == 1
    with ideas.connect() as conn:
        assert conn.execute(sa.text("select count(*) from fct_ideas where event_id = 'p10'")).scalar_one() == 0
        spells = conn.execute(sa.text("select spell, status, days_in_status, ended_at is null from "
                                      "fct_idea_status_spells where idea_id = 'i1' order by spell")).all()
        brokers = conn.execute(sa.text("select person_key, ideas, ideas_built_on, other_departments_built_on "
                                       "from fct_idea_contributors where is_idea_broker order by 1")).all()
    assert [(s, st, round(d, 6), cur) for s, st, d, cur in spells] == [
        (1, "open", round(27 * H, 6), False), (2, "planned", round(45 * H, 6), False),
        (3, "completed", round(15 * H, 6), True)]
    # e (Legal) voted for i1 (Engineering) and i2 (Sales): two other departments; a built on i2 only
    assert [tuple(b) for b in brokers] == [("e", 1, 2, 2)]
