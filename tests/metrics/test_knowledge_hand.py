"""Section 2 (knowledge sharing), hand-computed on the SHORT organisation of hand_data.py, plus a backlog
organisation with questions of every age band, and section 1's usage segments on a 12-week history.

SHORT questions: p1 (a, D1 09:00, C1) answered by b at 10:00 (1 h), answer r1 accepted on D4;
p3 (b, D2 08:00, C1) answered by c on D3 10:00 (26 h; b's own reply r2 does not count);
p4 (d, D3 09:00, C2) only reacted to (x2): never answered.
"""

from __future__ import annotations  # noqa: I001

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from hand_data import D2, D3, D4, RUN_START, SHORT_ACTIVITIES, SHORT_CONTAINERS, SHORT_PEOPLE, activities, people
from hand_helpers import build, check

COVERED: set[str] = set()
MARCH = D4.replace(day=1)


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    return build(tmp_path_factory.mktemp("short"), SHORT_ACTIVITIES, SHORT_PEOPLE, SHORT_CONTAINERS, RUN_START, D4)


def test_knowledge_sharing_as_of_each_day(short: sa.Engine) -> None:
    # D4: 3 questions from 3 askers, 2 answered; within 24 h: p1 only, of the 3 asked before D4;
    # hours to first reply 1 and 26: median 13.5, p90 (linear) 1 + 0.9 * 25 = 23.5; p1's answer accepted
    check(short, "mart_knowledge_sharing", {
        "askers": 3, "questions": 3, "questions_answered": 2, "answered_rate": 2 / 3, "answered_24h_rate": 1 / 3,
        "unanswered_rate": 1 / 3, "median_hours_to_first_response": 13.5, "p90_hours_to_first_response": 23.5,
        "accepted_answers": 1, "accepted_rate": 1 / 3,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="org", segment_value="all")
    # D3: the acceptance comes on D4; 24 h rate over p1 and p3 (asked before D3): 1 of 2
    check(short, "mart_knowledge_sharing", {"questions_answered": 2, "answered_24h_rate": 0.5,
                                            "accepted_answers": 0},
          COVERED, as_of_date=D3, period_type="rolling_28d", segment_type="org", segment_value="all")
    # D2: p1 and p3 asked, only p1 answered (1 h); only p1 is past its first day
    check(short, "mart_knowledge_sharing", {
        "questions": 2, "questions_answered": 1, "answered_rate": 0.5, "answered_24h_rate": 1.0,
        "median_hours_to_first_response": 1.0, "p90_hours_to_first_response": 1.0,
    }, COVERED, as_of_date=D2, period_type="rolling_28d", segment_type="org", segment_value="all")
    # by container: C1 has p1 and p3 (both answered), C2 has p4 (unanswered, no response time)
    check(short, "mart_knowledge_sharing", {"askers": 2, "questions": 2, "answered_rate": 1.0},
          COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="container", segment_value="C1")
    check(short, "mart_knowledge_sharing", {"questions": 1, "answered_rate": 0.0,
                                            "median_hours_to_first_response": None},
          COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="container", segment_value="C2")


def test_unanswered_backlog_short(short: sa.Engine) -> None:
    # end of D2: p3 asked that day is open (age 0); end of D4: p4 (asked D3) is open, age 1
    check(short, "mart_unanswered_backlog", {"open_questions": 1, "open_0_1d": 1, "open_1_7d": 0},
          COVERED, as_of_date=D2, segment_type="org", segment_value="all")
    check(short, "mart_unanswered_backlog", {"open_questions": 1, "open_0_1d": 0, "open_1_7d": 1},
          COVERED, as_of_date=D4, segment_type="container", segment_value="C2")


def test_unanswered_backlog_age_bands(tmp_path: Path) -> None:
    # questions by five people asked E, E-3, E-10, E-40 (never answered) and E-5 (answered on E-1 by v)
    e = dt.date(2026, 6, 30)
    at = lambda d: (e - dt.timedelta(days=d)).isoformat() + " 12:00"  # noqa: E731
    acts = activities([
        ("q0", at(0), "u0", "post", "K", None, None, True, False),
        ("q3", at(3), "u1", "post", "K", None, None, True, False),
        ("q10", at(10), "u2", "post", "K", None, None, True, False),
        ("q40", at(40), "u3", "post", "K", None, None, True, False),
        ("q5", at(5), "u4", "post", "K", None, None, True, False),
        ("a5", at(1), "v", "reply", "K", "q5", None, False, False),
    ])
    ppl = people([(k, "Ops", "Paris", "Associate", None, False, "2020-01-01")
                  for k in ("u0", "u1", "u2", "u3", "u4", "v")], e)
    engine = build(tmp_path, acts, ppl, None, e - dt.timedelta(days=45), e)
    # end of E: ages 0, 3, 10, 40 -> one in each band (q5 answered)
    # four askers (u0, u1, u2, u3): the group size of the row
    check(engine, "mart_unanswered_backlog", {"askers": 4, "open_questions": 4, "open_0_1d": 1, "open_1_7d": 1,
                                              "open_7_30d": 1, "open_over_30d": 1},
          COVERED, as_of_date=e, segment_type="org", segment_value="all")
    # end of E-2: q5 still open (age 3), q3 age 1, q10 age 8, q40 age 38; q0 not asked yet
    check(engine, "mart_unanswered_backlog", {"askers": 4, "open_questions": 4, "open_0_1d": 0, "open_1_7d": 2,
                                              "open_7_30d": 1, "open_over_30d": 1},
          COVERED, as_of_date=e - dt.timedelta(days=2), segment_type="org", segment_value="all")


def test_top_answerers_and_brokers(short: sa.Engine) -> None:
    # answers = replies to someone else's question: r1 (b, accepted via k1), r3 (c, reacted to by a via x3)
    check(short, "fct_answerers", {"answers": 1, "answers_accepted": 1, "answers_accepted_or_reacted": 1,
                                   "accepted_or_reacted_share": 1.0, "answerer_rank": 1},
          COVERED, month_start=MARCH, container_id="C1", person_key="b")
    check(short, "fct_answerers", {"answers": 1, "answers_accepted": 0, "accepted_or_reacted_share": 1.0,
                                   "answerer_rank": 2},
          COVERED, month_start=MARCH, container_id="(all)", person_key="c")
    # brokers: c (Sales) answered b (Engineering): 1 answer to another department; b answered a (same)
    check(short, "fct_knowledge_brokers", {"answers": 1, "askers_reached": 1, "answers_to_other_departments": 1,
                                           "other_departments_reached": 1, "cross_department_answer_share": 1.0,
                                           "broker_rank": 1}, COVERED, month_start=MARCH, person_key="c")
    check(short, "fct_knowledge_brokers", {"answers_to_other_departments": 0, "other_departments_reached": 0,
                                           "cross_department_answer_share": 0.0, "broker_rank": 2},
          COVERED, month_start=MARCH, person_key="b")


def test_usage_segments_over_twelve_weeks(tmp_path: Path) -> None:
    """Twelve 7-day blocks end on E = 2026-03-22: block k holds E-7k-6 .. E-7k.
    g: 20 views on E-7k for k = 0..11 -> 240 actions (20/week >= 15), 12 weeks -> power
    h: 1 view on E-7k for k = 0..8 -> 9 weeks -> habitual (first on E: the day before, E's view is out and
       the other eight fall in eight blocks)
    i: 12 views on one day -> 12/12 = 1 a week -> novice;  l: 25 views on E-7k, k = 0..7 -> 8 weeks: novice
    j: 1 view -> low;  k: nothing -> non-user."""
    e = dt.date(2026, 3, 22)
    rows = []
    for who, n, weeks in (("g", 20, range(12)), ("h", 1, range(9)), ("l", 25, range(8))):
        for wk in weeks:
            day = e - dt.timedelta(days=7 * wk)
            rows += [(f"{who}{wk}-{j}", f"{day} 12:00", who, "view", None, None, None, False, False) for j in range(n)]
    rows += [(f"i-{j}", "2026-02-10 12:00", "i", "view", None, None, None, False, False) for j in range(12)]
    rows += [("j-0", "2025-12-30 12:00", "j", "view", None, None, None, False, False)]
    ppl = people([(k, "Ops", "Paris", "Associate", None, False, "2020-01-01") for k in "ghijkl"], e)
    engine = build(tmp_path, activities(rows), ppl, None, e - dt.timedelta(days=83), e)
    check(engine, "fct_person_usage_daily", {"usage_segment": "power", "actions_12w": 240, "active_weeks_12w": 12},
          COVERED, as_of_date=e, person_key="g")
    check(engine, "fct_person_usage_daily", {"usage_segment": "habitual"}, COVERED, as_of_date=e, person_key="h")
    check(engine, "fct_person_usage_daily", {"usage_segment": "novice"}, COVERED, as_of_date=e, person_key="l")
    check(engine, "fct_person_usage_daily", {"usage_segment": "low"}, COVERED,
          as_of_date=e - dt.timedelta(days=1), person_key="h")
    # g was power earlier already (9 blocks of 20 = 180/12 = 15 three weeks before E), h only on E
    check(engine, "mart_adoption_daily", {
        "headcount": 6, "power_users": 1, "habitual_users": 1, "novice_users": 2, "low_users": 1, "non_users": 1,
        "habitual_or_power_share": 2 / 6, "ever_habitual": 2, "adoption_curve_share": 2 / 6,
    }, COVERED, as_of_date=e, segment_type="org", segment_value="all")
    check(engine, "mart_adoption_daily", {"ever_habitual": 1}, COVERED,
          as_of_date=e - dt.timedelta(days=1), segment_type="org", segment_value="all")
    # cohorts: j December 2025, g h January, i l February; l is active in March, i is not (1 of 2);
    # December to March crosses a year: 3 months
    check(engine, "mart_cohort_retention", {"months_since": 1, "cohort_size": 2, "retained": 1,
                                            "retention_rate": 0.5},
          COVERED, cohort_month=dt.date(2026, 2, 1), activity_month=dt.date(2026, 3, 1), segment_type="org",
          segment_value="all")
    check(engine, "mart_cohort_retention", {"months_since": 3, "retained": 0},
          COVERED, cohort_month=dt.date(2025, 12, 1), activity_month=dt.date(2026, 3, 1), segment_type="org",
          segment_value="all")
