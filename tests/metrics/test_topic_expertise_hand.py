"""Expertise by topic (issue 18), hand-computed: mart_topic_expertise on the SHORT people of hand_data.py
(a, b Engineering; c, d Sales; e Legal), as of D4, on the messages of test_topics_hand.py plus one answer:

  q1  question by b (Eng) in C1, D1, tx:vpn; r1 a (Eng) answers; r2 c (Sales) answers with its own tx:laptop
  q2  question by d (Sales) in C2, D2, tx:vpn; r3 a (Eng) answers; r4 d's own reply (not an answer);
      r6 b (Eng) answers D2 12:00 (added here)
  p1  an ordinary post by a with e's reply r5 (no question: no answer); q3 a deleted question (nothing)

Answers and their topics (the question's, their own, their container's):
  r1 a->b  tx:vpn, container:C1 (same department)       r2 c->b  tx:vpn, tx:laptop, container:C1 (across)
  r3 a->d  tx:vpn, container:C2 (across)                 r6 b->d  tx:vpn, container:C2 (across)
"""

from __future__ import annotations  # noqa: I001

import pytest
import sqlalchemy as sa

from hand_data import D4, RUN_START, SHORT_PEOPLE
from hand_helpers import check
from test_topics_hand import ROWS, TOPICS

from pipelines import dbt_project, suppression, warehouse

COVERED: set[str] = set()
TABLE = "mart_topic_expertise"
EXTRA = [("r6", "2026-03-03 12:00", "b", "reply", "C2", "q2", "d", False, False)]


def _warehouse(tmp, min_group_size: int) -> sa.Engine:
    import pandas as pd
    from conftest import load_lake, run_models
    from hand_data import activities

    acts = activities(ROWS + EXTRA)
    acts.loc[acts["event_id"].isin(["acc1", "x1", "x2"]), "thread_id"] = "q1"
    acts["topic_ids"] = acts["event_id"].map(TOPICS).astype("string")
    conts = pd.DataFrame([{"source": "hand", "container_id": c, "kind": "channel", "visibility": "public",
                           "member_count": 10, "owner_department": None,
                           "created_at": pd.Timestamp("2025-01-01", tz="UTC")} for c in ("C1", "C2")])
    engine = warehouse.make_engine(f"duckdb:///{tmp / 'hand.duckdb'}")
    load_lake(engine, acts, SHORT_PEOPLE, conts)
    run_models(engine, RUN_START, D4, min_group_size=min_group_size)
    return engine


@pytest.fixture(scope="module")
def expertise(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    return _warehouse(tmp_path_factory.mktemp("expertise1"), 1)


@pytest.fixture(scope="module")
def expertise_k2(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    return _warehouse(tmp_path_factory.mktemp("expertise2"), 2)


def _rows(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            f"select topic_id, segment_type, segment_value, suppressed, askers_suppressed from {TABLE} "
            "order by 1, 2, 3")).all()]


def test_every_topic_and_department_with_an_answer_or_a_question_has_a_row(expertise: sa.Engine) -> None:
    # Legal (e) only replied to a post that is no question: no row; Sales asked in C2 but answered nothing
    # there (suppressed: 0 answerers); tx:laptop, C1 for Sales and C2 for Engineering have no askers
    assert _rows(expertise) == [
        ("container:C1", "department", "Engineering", False, False),
        ("container:C1", "department", "Sales", False, True),
        ("container:C1", "org", "all", False, False),
        ("container:C2", "department", "Engineering", False, True),
        ("container:C2", "department", "Sales", True, True),
        ("container:C2", "org", "all", False, False),
        ("tx:laptop", "department", "Sales", False, True),
        ("tx:laptop", "org", "all", False, True),
        ("tx:vpn", "department", "Engineering", False, False),
        ("tx:vpn", "department", "Sales", False, False),
        ("tx:vpn", "org", "all", False, False),
    ]
    with expertise.connect() as conn:
        cols = [c.lower() for c in warehouse.columns(conn, TABLE)]
    assert not any(c.endswith("_key") for c in cols)  # no person key is published
    COVERED.update({f"{TABLE}.suppressed", f"{TABLE}.askers_suppressed"})


def test_the_figures_of_a_topic_for_the_organisation_and_its_departments(expertise: sa.Engine) -> None:
    vpn = {"topic_id": "tx:vpn", "segment_type": "org", "segment_value": "all"}
    # answers r1, r2, r3, r6 by a, c, a, b to b, b, d, d; across departments: r2, r3, r6
    check(expertise, TABLE, {"measured_through": D4, "answerers": 3, "answers": 4, "askers_helped": 2,
                             "cross_department_answers": 3, "cross_department_answer_share": 0.75,
                             "askers": 2, "questions_asked": 2, "questions_answered": 2,
                             "questions_answered_share": 1.0}, COVERED, **vpn)
    # Engineering: a (r1, r3) and b (r6), for b and d; asked q1 (b), answered
    check(expertise, TABLE, {"answerers": 2, "answers": 3, "askers_helped": 2, "cross_department_answers": 2,
                             "cross_department_answer_share": 2 / 3, "askers": 1, "questions_asked": 1,
                             "questions_answered": 1, "questions_answered_share": 1.0},
          COVERED, **{**vpn, "segment_type": "department", "segment_value": "Engineering"})
    # Sales: c (r2) for b; asked q2 (d), answered by a and b (d's own r4 does not answer it)
    check(expertise, TABLE, {"answerers": 1, "answers": 1, "askers_helped": 1, "cross_department_answers": 1,
                             "cross_department_answer_share": 1.0, "askers": 1, "questions_asked": 1,
                             "questions_answered": 1},
          COVERED, **{**vpn, "segment_type": "department", "segment_value": "Sales"})


def test_container_and_own_topics_and_the_askers_layer(expertise: sa.Engine) -> None:
    # C1: r1 (a->b, same department) and r2 (c->b, across); q1 asked there by b
    check(expertise, TABLE, {"answerers": 2, "answers": 2, "askers_helped": 1, "cross_department_answers": 1,
                             "cross_department_answer_share": 0.5, "askers": 1, "questions_asked": 1,
                             "questions_answered_share": 1.0},
          COVERED, topic_id="container:C1", segment_type="org", segment_value="all")
    check(expertise, TABLE, {"answerers": 1, "answers": 1, "cross_department_answers": 0,
                             "cross_department_answer_share": 0.0},
          COVERED, topic_id="container:C1", segment_type="department", segment_value="Engineering")
    # tx:laptop is r2's own topic: one answer, no question on it (askers' figures withheld, not zero)
    check(expertise, TABLE, {"answerers": 1, "answers": 1, "askers_helped": 1, "cross_department_answer_share": 1.0,
                             "askers": None, "questions_asked": None, "questions_answered_share": None},
          COVERED, topic_id="tx:laptop", segment_type="org", segment_value="all")
    # C2 for Sales: d asked, nobody of Sales answered: the whole row is suppressed
    check(expertise, TABLE, {"answerers": None, "answers": None, "askers": None, "questions_asked": None},
          COVERED, topic_id="container:C2", segment_type="department", segment_value="Sales")


def test_suppression_below_min_group_size_then_complementary(expertise_k2: sa.Engine) -> None:
    """At min_group_size 2: tx:vpn's org row (3 answerers, 2 askers helped, 2 askers) stays; Engineering (2
    answerers: a, b; 2 helped) passes on its own but its askers (b alone) do not; Sales (c alone) is
    suppressed. Then the organisation (3 answerers) minus Engineering (2) would give Sales' 1: complementary
    suppression hides Engineering too. C1, C2 and laptop: one asker helped or one answerer at most."""
    assert _rows(expertise_k2) == [
        ("container:C1", "department", "Engineering", True, True),
        ("container:C1", "department", "Sales", True, True),
        ("container:C1", "org", "all", True, True),
        ("container:C2", "department", "Engineering", True, True),
        ("container:C2", "department", "Sales", True, True),
        ("container:C2", "org", "all", True, True),
        ("tx:laptop", "department", "Sales", True, True),
        ("tx:laptop", "org", "all", True, True),
        ("tx:vpn", "department", "Engineering", False, True),
        ("tx:vpn", "department", "Sales", True, True),
        ("tx:vpn", "org", "all", False, False),
    ]
    check(expertise_k2, TABLE, {"answerers": 2, "answers": 3, "askers": None, "questions_asked": None},
          COVERED, topic_id="tx:vpn", segment_type="department", segment_value="Engineering")
    fam = suppression.sql_family(next(m for m in dbt_project.discover_models() if m.name == TABLE))
    assert fam is not None and fam.total == "segment_type = org" and [lyr.flag for lyr in fam.layers] == [
        "suppressed", "askers_suppressed"]
    with expertise_k2.begin() as conn:
        hid = suppression.apply_table(conn, fam, 2)
    assert hid == 1
    check(expertise_k2, TABLE, {"suppressed": True, "askers_suppressed": True, "answerers": None, "answers": None,
                                "askers_helped": None, "cross_department_answer_share": None},
          COVERED, topic_id="tx:vpn", segment_type="department", segment_value="Engineering")
    check(expertise_k2, TABLE, {"suppressed": False, "answerers": 3, "askers": 2, "questions_answered_share": 1.0},
          COVERED, topic_id="tx:vpn", segment_type="org", segment_value="all")


def test_every_column_is_checked(expertise: sa.Engine) -> None:
    with expertise.connect() as conn:
        cols = warehouse.columns(conn, TABLE)
    missing = {f"{TABLE}.{c}" for c in cols} - COVERED
    assert not missing, f"columns no hand test checks: {sorted(missing)}"
