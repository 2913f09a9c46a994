"""Topic expertise (issue 18), hand-computed: int_activity_topics and fct_person_topic_expertise on the
SHORT people of hand_data.py, as of D4 (Thursday 5 March 2026).

  q1  question by b in C1, D1 09:00, topic tx:vpn
      r1  a answers D1 10:00 (no topic of its own: it inherits the thread's), accepted by b D1 12:00
      r2  c answers D1 11:00 with its own topic tx:laptop; reacted to by d D2 09:00 and by c itself D2 10:00
  q2  question by d in C2, D2 09:00, tx:vpn
      r3  a answers D2 10:00; r4 d replies to their own question (a contribution, not an answer)
  p1  an ordinary post by a in C1, D3 09:00, tx:vpn; r5 e replies D3 10:00 (not an answer: no question)
  q3  a deleted question by e in C1 with tx:vpn: no topic rows
"""

from __future__ import annotations  # noqa: I001

import pandas as pd
import pytest
import sqlalchemy as sa

from hand_data import D1, D2, D3, D4, RUN_START, SHORT_PEOPLE, activities
from hand_helpers import build, check

COVERED: set[str] = set()

ROWS = [
    ("q1", "2026-03-02 09:00", "b", "post", "C1", None, None, True, False),
    ("r1", "2026-03-02 10:00", "a", "reply", "C1", "q1", "b", False, False),
    ("acc1", "2026-03-02 12:00", "b", "answer_accepted", "C1", "r1", "a", False, False),
    ("r2", "2026-03-02 11:00", "c", "reply", "C1", "q1", "b", False, False),
    ("x1", "2026-03-03 09:00", "d", "reaction", "C1", "r2", "c", False, False),
    ("x2", "2026-03-03 10:00", "c", "reaction", "C1", "r2", "c", False, False),
    ("q2", "2026-03-03 09:00", "d", "post", "C2", None, None, True, False),
    ("r3", "2026-03-03 10:00", "a", "reply", "C2", "q2", "d", False, False),
    ("r4", "2026-03-03 11:00", "d", "reply", "C2", "q2", "d", False, False),
    ("p1", "2026-03-04 09:00", "a", "post", "C1", None, None, False, False),
    ("r5", "2026-03-04 10:00", "e", "reply", "C1", "p1", "a", False, False),
    ("q3", "2026-03-04 11:00", "e", "post", "C1", None, None, True, True),
]
TOPICS = {"q1": "tx:vpn", "r2": "tx:laptop", "q2": "tx:vpn", "p1": "tx:vpn", "q3": "tx:vpn"}


@pytest.fixture(scope="module")
def topics(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    acts = activities(ROWS)
    # the thread of a reply is its question or post; an acceptance or a reaction is on the answer's thread
    acts.loc[acts["event_id"].isin(["acc1", "x1", "x2"]), "thread_id"] = "q1"
    acts["topic_ids"] = acts["event_id"].map(TOPICS).astype("string")
    conts = pd.DataFrame([{"source": "hand", "container_id": c, "kind": "channel", "visibility": "public",
                           "member_count": 10, "owner_department": None,
                           "created_at": pd.Timestamp("2025-01-01", tz="UTC")} for c in ("C1", "C2")])
    return build(tmp_path_factory.mktemp("topics"), acts, SHORT_PEOPLE, conts, RUN_START, D4)


def test_each_message_has_its_own_its_thread_s_and_its_container_s_topics(topics: sa.Engine) -> None:
    with topics.connect() as conn:
        got = conn.execute(sa.text("select event_id, topic_id from int_activity_topics order by 1, 2")).all()
    assert [tuple(r) for r in got] == [
        ("p1", "container:C1"), ("p1", "tx:vpn"),
        ("q1", "container:C1"), ("q1", "tx:vpn"),
        ("q2", "container:C2"), ("q2", "tx:vpn"),
        ("r1", "container:C1"), ("r1", "tx:vpn"),
        ("r2", "container:C1"), ("r2", "tx:laptop"), ("r2", "tx:vpn"),
        ("r3", "container:C2"), ("r3", "tx:vpn"),
        ("r4", "container:C2"), ("r4", "tx:vpn"),
        ("r5", "container:C1"), ("r5", "tx:vpn"),
    ]
    COVERED.add("int_activity_topics.topic_id")


def test_the_evidence_of_expertise_per_person_and_topic(topics: sa.Engine) -> None:
    table = "fct_person_topic_expertise"
    base = {"answers_90d": None, "answers_accepted": 0, "answers_reacted": 0, "askers_helped": 0,
            "questions_asked": 0, "last_answer_date": None}
    check(topics, table, {"answers": 2, "answers_90d": 2, "answers_accepted": 1, "answers_reacted": 0,
                          "askers_helped": 2, "contributions": 3, "questions_asked": 0, "last_answer_date": D2,
                          "last_contribution_date": D3, "as_of_date": D4}, COVERED, person_key="a", topic_id="tx:vpn")
    check(topics, table, {"answers": 1, "answers_accepted": 1, "askers_helped": 1, "contributions": 2},
          COVERED, person_key="a", topic_id="container:C1")
    check(topics, table, {"answers": 1, "answers_accepted": 0, "askers_helped": 1, "contributions": 1},
          COVERED, person_key="a", topic_id="container:C2")
    # d's reaction counts; c's own reaction to its answer does not
    for topic in ("tx:vpn", "tx:laptop"):
        check(topics, table, {"answers": 1, "answers_reacted": 1, "answers_accepted": 0, "askers_helped": 1,
                              "contributions": 1}, COVERED, person_key="c", topic_id=topic)
    # askers and repliers to a non-question: contributions, no answers
    check(topics, table, {**base, "answers": 0, "answers_90d": 0, "contributions": 1, "questions_asked": 1,
                          "last_contribution_date": D1}, COVERED, person_key="b", topic_id="tx:vpn")
    check(topics, table, {**base, "answers": 0, "answers_90d": 0, "contributions": 2, "questions_asked": 1,
                          "last_contribution_date": D2}, COVERED, person_key="d", topic_id="tx:vpn")
    check(topics, table, {**base, "answers": 0, "answers_90d": 0, "contributions": 1},
          COVERED, person_key="e", topic_id="tx:vpn")
    with topics.connect() as conn:
        n = conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
    # a: vpn, C1, C2; b: vpn, C1; c: vpn, laptop, C1; d: vpn, C2; e: vpn, C1 (the deleted q3 adds nothing)
    assert n == 12


def test_esn_experts_ranks_and_explains_from_the_expertise_table(topics: sa.Engine) -> None:
    from pipelines.config import Settings
    from pipelines.expertise import find_experts

    settings = Settings.model_validate({"topics": {"taxonomy": [{"id": "vpn", "name": "VPN", "terms": ["vpn"]}]}})
    found = find_experts(settings, "VPN", engine=topics)
    assert found.topic_ids == ["tx:vpn"] and found.as_of == D4
    people = found.people
    # a: 2 + 2 (recent) + 3 (accepted) + 2 askers = 9; c: 1 + 1 + 2 (reacted) + 1 = 5; then who only talked
    # about it, by contributions (d 2; b and e 1, by key)
    assert list(people["person_key"]) == ["a", "c", "d", "b", "e"]
    assert list(people["score"]) == [9, 5, 0, 0, 0]
    assert list(people["department"][:2]) == ["Engineering", "Sales"]
    assert people.loc[0, "explanation"] == ("answered 2 questions on VPN in the last year (2 in the last 90 days) "
                                            "for 2 different people; 1 accepted; last answer on 2026-03-03")
    assert people.loc[1, "explanation"] == ("answered 1 question on VPN in the last year (1 in the last 90 days) "
                                            "for 1 person; 1 reacted to by others; last answer on 2026-03-02")
    assert people.loc[2, "explanation"] == "no answers on VPN yet; 2 posts and replies on it, the last on 2026-03-03"
    assert list(find_experts(settings, "container:C2", engine=topics).people["person_key"]) == ["a", "d"]
    assert find_experts(settings, "#nobody-uses-this", engine=topics).people.empty
    COVERED.add("esn experts")
