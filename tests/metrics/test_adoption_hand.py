"""Section 1 (adoption and engagement), hand-computed on the SHORT organisation of hand_data.py.

Person-days (non-deleted events; an action is any event, a contribution a post or reply):
  2026-01-15 e 1 (view)
  D1 a 1 (p1)  b 2 (r1, v1)  c 1 (p2)  d 1 (x1)
  D2 a 1 (m1)  b 2 (p3, r2)
  D3 a 1 (x2)  c 1 (r3)  d 1 (p4)  f 1 (s1)
  D4 a 3 (p5, k1, x3)                 (d's p6 is deleted)
Headcount: a b c d e g on D1-D2 (6); f joins on D3 (7). Contributions in March: a 2, b 3, c 2, d 1, f 0.
"""

from __future__ import annotations  # noqa: I001


import pytest
import sqlalchemy as sa

from hand_data import D1, D2, D4, RUN_START, SHORT_ACTIVITIES, SHORT_CONTAINERS, SHORT_PEOPLE  # noqa: I001
from hand_helpers import build, check

COVERED: set[str] = set()


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    return build(tmp_path_factory.mktemp("short"), SHORT_ACTIVITIES, SHORT_PEOPLE, SHORT_CONTAINERS, RUN_START, D4)


def test_engagement_daily_org_and_department(short: sa.Engine) -> None:
    # D4 org: active on D4 only a; in 7/28 days a b c d f; posting (post/reply) a b c d, on D4 only a (p5).
    # actions in 28 days: a 6, b 4, c 2, d 2, f 1 = 15 -> 15 / 5 active
    check(short, "mart_engagement_daily", {
        "headcount": 7, "dau": 1, "wau": 5, "mau": 5, "posting_users_1d": 1, "posting_users_7d": 4,
        "posting_users_28d": 4, "participation_rate": 5 / 7, "contributor_rate": 4 / 7, "stickiness": 1 / 5,
        "activity_per_active_user": 15 / 5, "suppressed": False,
    }, COVERED, activity_date=D4, segment_type="org", segment_value="all")
    # D1 org: headcount 6 (f not hired); a b c d active, a b c posted; 5 actions; e's January view is out
    check(short, "mart_engagement_daily", {
        "headcount": 6, "dau": 4, "wau": 4, "mau": 4, "posting_users_1d": 3, "participation_rate": 4 / 6,
        "contributor_rate": 3 / 6, "stickiness": 1.0, "activity_per_active_user": 5 / 4,
    }, COVERED, activity_date=D1, segment_type="org", segment_value="all")
    # Engineering on D4: a b f; actions 6 + 4 + 1 = 11
    check(short, "mart_engagement_daily", {
        "headcount": 3, "dau": 1, "mau": 3, "posting_users_7d": 2, "participation_rate": 1.0,
        "contributor_rate": 2 / 3, "stickiness": 1 / 3, "activity_per_active_user": 11 / 3,
    }, COVERED, activity_date=D4, segment_type="department", segment_value="Engineering")
    # Legal on D4: e and g, nobody active in 28 days: rates 0, ratios over mau undefined
    check(short, "mart_engagement_daily", {"headcount": 2, "mau": 0, "participation_rate": 0.0,
                                           "stickiness": None, "activity_per_active_user": None},
          COVERED, activity_date=D4, segment_type="department", segment_value="Legal")


def test_engagement_period_week_and_month(short: sa.Engine) -> None:
    # ISO week of D4 = Mon 2026-03-02 .. Sun 03-08, 4 days elapsed. posts p1 p2 p3 p4 p5 (p6 deleted);
    # replies r1 r2 r3; reactions x1 x2 x3; contributions a 2 + b 3 + c 2 + d 1 = 8; actions 15.
    # person-days a 4, b 2, c 2, d 2, f 1 = 11 -> stickiness 11 / (4 days * 5 active)
    check(short, "mart_engagement_period", {
        "period_start": D1, "period_end": D1.replace(day=8), "is_complete": False, "headcount": 7,
        "active_users": 5, "posting_users": 4, "actions": 15, "contributions": 8, "posts": 5, "replies": 3,
        "reactions": 3, "participation_rate": 5 / 7, "contributor_rate": 4 / 7, "activity_per_active_user": 3.0,
        "stickiness": 11 / 20, "reply_post_ratio": 3 / 5, "threads_per_user": 5 / 5,
    }, COVERED, as_of_date=D4, period_type="week", segment_type="org", segment_value="all")
    # month to date: March 1 .. 5 (5 days), period_end March 31 -> stickiness 11 / (5 * 5)
    check(short, "mart_engagement_period", {
        "period_start": D1.replace(day=1), "period_end": D1.replace(day=31), "stickiness": 11 / 25,
    }, COVERED, as_of_date=D4, period_type="month", segment_type="org", segment_value="all")


def test_adoption_daily_short(short: sa.Engine) -> None:
    # 12 weeks to D4: a 6 actions, b 4, c 2, d 2, e 1 (Jan 15), f 1 -> all below 12 actions and 9 weeks: low.
    # claimed: a b c d e f ever active; g never -> non-user
    check(short, "mart_adoption_daily", {
        "headcount": 7, "registered": 7, "claimed": 6, "claimed_rate": 6 / 7, "power_users": 0,
        "habitual_users": 0, "novice_users": 0, "low_users": 6, "non_users": 1, "habitual_or_power_share": 0.0,
        "ever_habitual": 0, "adoption_curve_share": 0.0,
    }, COVERED, as_of_date=D4, segment_type="org", segment_value="all")
    # D2: f not yet employed; a b c d e claimed and low, g non-user
    check(short, "mart_adoption_daily", {"headcount": 6, "claimed": 5, "low_users": 5, "non_users": 1},
          COVERED, as_of_date=D2, segment_type="org", segment_value="all")


def test_participation_inequality(short: sa.Engine) -> None:
    # rolling 28 days at D4: active a b c d f with contributions 2 3 2 1 0 (sum 8).
    # Gini = sum|xi - xj| over ordered pairs / (2 n^2 mean): unordered diffs 1+2+2+3+1+1+2+0+1+1 = 14,
    # 28 / (2 * 25 * 1.6) = 0.35. Top 1% and top 10% are both ceil(0.5)=1 person: b with 3 of 8.
    # 90-9-1: f lurks (1/5), heavy = ceil(10% of 4 contributors) = 1 (1/5), intermittent 3/5.
    check(short, "mart_participation_inequality", {
        "active_users": 5, "contributors": 4, "contributions": 8, "gini": 0.35, "top1_share": 3 / 8,
        "top10_share": 3 / 8, "lurker_share": 1 / 5, "intermittent_share": 3 / 5, "heavy_share": 1 / 5,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="org", segment_value="all")
    # week to date at D2: a 1 (p1), b 3, c 1, d 0 -> values 0 1 1 3; diffs 1+1+3+0+2+2 = 9 -> 18 / (2*16*1.25)
    check(short, "mart_participation_inequality", {
        "active_users": 4, "contributors": 3, "gini": 0.45, "top1_share": 3 / 5, "lurker_share": 1 / 4,
        "heavy_share": 1 / 4, "intermittent_share": 2 / 4,
    }, COVERED, as_of_date=D2, period_type="week", segment_type="org", segment_value="all")


def test_cohort_retention_short(short: sa.Engine) -> None:
    # e's first activity is in January, everyone else's (a b c d f) in March; nobody was active in February,
    # so the months are January and March; e is not active in March.
    jan, mar = RUN_START.replace(day=1), D1.replace(day=1)
    check(short, "mart_cohort_retention", {"months_since": 0, "cohort_size": 1, "retained": 1,
                                           "retention_rate": 1.0},
          COVERED, cohort_month=jan, activity_month=jan, segment_type="org", segment_value="all")
    check(short, "mart_cohort_retention", {"months_since": 2, "cohort_size": 1, "retained": 0,
                                           "retention_rate": 0.0},
          COVERED, cohort_month=jan, activity_month=mar, segment_type="org", segment_value="all")
    check(short, "mart_cohort_retention", {"months_since": 0, "cohort_size": 5, "retained": 5},
          COVERED, cohort_month=mar, activity_month=mar, segment_type="org", segment_value="all")


def test_container_health(short: sa.Engine) -> None:
    # C1 in 28 days: a (p1, k1, x3), b (r1, p3, r2), d (x1), c (r3) = 4; in 12 months also e (Jan 15) = 5.
    # contributors a b c; posts p1 p3, both answered (r1, r3) -> response rate 1; replies from others r1 r3
    # (r2 is b's own); interactions in C1: r1 b->a (same department), x1 d->a, r3 c->b, x3 a->c -> 3 of 4 cross.
    check(short, "mart_container_health", {
        "container_kind": "channel", "active_users_28d": 4, "active_users_12m": 5, "community_health_index": 0.8,
        "contributors_28d": 3, "posts_28d": 2, "replies_28d": 2, "response_rate_28d": 1.0,
        "reply_post_ratio_28d": 1.0, "cross_department_share_28d": 0.75,
    }, COVERED, as_of_date=D4, container_id="C1")
    # C2: c (p2), b (v1), a (m1, x2, p5), d (p4), f (s1) = 5 people, all within 28 days -> index 1.
    # posts p2 p4 p5: only p4 got a reply or reaction (x2); p2's share is not a response -> 1/3; no replies;
    # interactions m1 a->d, x2 a->d, s1 f->c all cross-department
    check(short, "mart_container_health", {
        "container_kind": "group", "active_users_28d": 5, "active_users_12m": 5, "community_health_index": 1.0,
        "contributors_28d": 3, "posts_28d": 3, "replies_28d": 0, "response_rate_28d": 1 / 3,
        "reply_post_ratio_28d": 0.0, "cross_department_share_28d": 1.0,
    }, COVERED, as_of_date=D4, container_id="C2")


def test_department_concentration(short: sa.Engine) -> None:
    # 28 days at D4: contributors a b (Engineering), c d (Sales): tie, broken alphabetically; HHI .5^2 + .5^2
    check(short, "mart_department_concentration", {
        "contributors": 4, "departments_contributing": 2, "largest_department": "Engineering",
        "largest_department_share": 0.5, "department_hhi": 0.5,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="org", segment_value="all")
    # week to D2: a b (Engineering), c (Sales) -> 2/3, HHI 4/9 + 1/9
    check(short, "mart_department_concentration", {
        "contributors": 3, "largest_department_share": 2 / 3, "department_hhi": 5 / 9,
    }, COVERED, as_of_date=D2, period_type="week", segment_type="org", segment_value="all")


def test_leader_engagement(short: sa.Engine) -> None:
    # leaders a and c, both active and posting. Their posts p1 p2 p5 (3); responses from others: p1 got r1 and
    # x1 (2), p2 only a share (not counted), p5 none. Responders to any leader post: b (r1), d (x1), f (s1).
    check(short, "mart_leader_engagement", {
        "leaders_suppressed": False, "leaders": 2, "leader_active_share": 1.0, "leader_posting_share": 1.0,
        "leader_posts": 3, "leader_responses_received": 2, "responses_per_leader_post": 2 / 3,
        "people_reached_by_leaders": 3, "leader_reach": 3 / 7,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="org", segment_value="all")
    # Sales: leader c, post p2 without replies or reactions; reached in Sales: d (reacted to a's p1) of 2
    check(short, "mart_leader_engagement", {
        "leaders": 1, "leader_posts": 1, "leader_responses_received": 0, "responses_per_leader_post": 0.0,
        "people_reached_by_leaders": 1, "leader_reach": 0.5,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="department", segment_value="Sales")
    # Legal has no leader: the leader numbers are suppressed, reach is 0 of 2
    check(short, "mart_leader_engagement", {"leaders_suppressed": True, "leaders": None,
                                            "leader_posting_share": None, "leader_reach": 0.0},
          COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="department", segment_value="Legal")


def test_interactions_and_response_rate(short: sa.Engine) -> None:
    # interactions (self-edges dropped: r2): r1 b->a, x1 d->a, m1 a->d, r3 c->b, x2 a->d, s1 f->c, x3 a->c;
    # all but r1 cross departments. Posts p1..p5; answered by a reply/reaction by D4: p1, p3, p4.
    check(short, "mart_interactions_period", {
        "interactions": 7, "known_department_interactions": 7, "cross_department_interactions": 6,
        "cross_department_interaction_share": 6 / 7,
        "posts": 5, "posts_responded": 3, "response_rate": 3 / 5,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="org", segment_value="all")
    # as of D2 (week): r1, x1, m1 (2 cross); posts p1 p2 p3, only p1 responded by then (r3 comes on D3)
    check(short, "mart_interactions_period", {
        "interactions": 3, "cross_department_interaction_share": 2 / 3, "posts": 3, "posts_responded": 1,
        "response_rate": 1 / 3,
    }, COVERED, as_of_date=D2, period_type="week", segment_type="org", segment_value="all")
    # Engineering acts: r1 (b), m1 x2 x3 (a), s1 (f) -> 4 of 5 cross; posts p1 p3 p5, responded p1 p3
    check(short, "mart_interactions_period", {
        "interactions": 5, "cross_department_interactions": 4, "posts": 3, "posts_responded": 2,
        "response_rate": 2 / 3,
    }, COVERED, as_of_date=D4, period_type="rolling_28d", segment_type="department", segment_value="Engineering")
