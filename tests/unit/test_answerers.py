"""Who could answer (pipelines/answerers.py), on activities small enough to check by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.answerers import (
    LIFT_PRIOR,
    AnswererModel,
    Weights,
    _scores,
    container_baseline,
    design,
    evaluate,
    fit,
    pick,
    questions_and_answers,
)

T0 = pd.Timestamp("2026-03-01T12:00:00Z")


def _acts(rows: list[tuple]) -> pd.DataFrame:
    """(event_id, day offset, actor, verb, container, thread, is_question, topic_ids)"""
    out = []
    for eid, day, actor, verb, container, thread, q, topics in rows:
        out.append({"source": "s", "event_id": eid, "occurred_at": (T0 + pd.Timedelta(days=day)).round("s"),
                    "actor_key": actor,
                    "verb": verb, "container_id": container, "thread_id": thread, "parent_id": thread if verb == "reply"
                    else None, "is_question": q, "is_deleted": False, "topic_ids": topics})
    return pd.DataFrame(out)


HISTORY = _acts([
    ("q1", 0, "ann", "post", "C", "q1", True, "tx:vpn"),
    ("r1", 0, "bob", "reply", "C", "q1", False, None),
    ("r1b", 0, "bob", "reply", "C", "q1", False, None),  # a second reply by bob: one answer
    ("r2", 1, "cat", "reply", "C", "q1", False, None),
    ("r3", 1, "ann", "reply", "C", "q1", False, None),  # the asker's own reply is no answer
    ("q2", 10, "dan", "post", "C", "q2", True, "tx:sap"),
    ("r4", 10, "cat", "reply", "C", "q2", False, None),
    ("p3", 10, "dan", "post", "C", "p3", False, None),  # not a question: replies to it are activity only
    ("r5", 10, "eve", "reply", "C", "p3", False, None),
    ("q4", 20, "ann", "post", "D", "q4", True, "tx:vpn"),
    ("r6", 20, "eve", "reply", "D", "q4", False, None),
])


def test_questions_and_answers_keep_one_answer_per_person_and_question() -> None:
    questions, replies = questions_and_answers(HISTORY)
    assert list(questions["question_id"]) == ["q1", "q2", "q4"]
    assert list(questions["topics"]) == [("tx:vpn",), ("tx:sap",), ("tx:vpn",)]
    answers = replies[replies["is_answer"]]
    assert sorted(zip(answers["question_id"], answers["answerer"], strict=True)) == [
        ("q1", "bob"), ("q1", "cat"), ("q2", "cat"), ("q4", "eve")]
    assert answers.set_index(["question_id", "answerer"]).loc[("q1", "bob"), "answered_at"] == T0
    assert list(replies.loc[~replies["is_answer"], "answerer"]) == ["eve"]


def test_evidence_is_age_weighted_counts_per_part() -> None:
    _, replies = questions_and_answers(HISTORY)
    as_of = T0 + pd.Timedelta(days=30)
    model = AnswererModel(replies, as_of, weights=Weights(half_life_days=10.0))
    ev = model.evidence("ann", "C", ["tx:vpn"])
    w = lambda age: 0.5 ** (age / 10.0)  # noqa: E731
    assert "ann" not in ev.index
    assert ev.at["bob", "topic"] == pytest.approx(w(30))
    assert ev.at["cat", "topic"] == pytest.approx(w(29))  # cat answered q1 a day later
    assert ev.at["eve", "topic"] == pytest.approx(w(10))  # in container D, on the same topic
    assert ev.at["cat", "container"] == pytest.approx(w(29) + w(20))
    assert ev.at["cat", "answers"] == pytest.approx(w(29) + w(20)) and ev.at["eve", "answers"] == pytest.approx(w(10))
    # the share of all answers on tx:vpn: bob's, cat's (q1) and eve's (q4) of the four
    total = w(30) + w(29) + w(20) + w(10)
    assert ev.attrs["topic_share"] == pytest.approx((w(30) + w(29) + w(10)) / total)
    assert ev.at["eve", "container"] == 0.0 and ev.at["eve", "activity"] == pytest.approx(w(20))
    # ties with the asker: replies to ann's threads count whole (ann helped nobody)
    assert ev.at["bob", "asker"] == pytest.approx(w(30)) and ev.at["eve", "asker"] == pytest.approx(w(10))
    # without a directory, similar askers are ann's neighbours (bob, cat, eve): whom they helped
    assert ev.at["cat", "similar"] == 0.0
    # nothing after as_of is seen
    early = AnswererModel(replies, T0 + pd.Timedelta(days=5)).evidence("ann", "C", ["tx:vpn"])
    assert "eve" not in early.index and "dan" not in early.index


def test_the_topic_lift_multiplies_the_container_evidence() -> None:
    ev = pd.DataFrame({"container": [4.0, 4.0, 1.0], "activity": 0.0, "topic": [4.0, 0.0, 1.0], "answers": [4.0, 8.0, 1.0],
                       "asker": 0.0, "similar": 0.0}, index=["all-on-topic", "never", "one"])
    ev.attrs["topic_share"] = 0.25
    lifted = design(ev, 1.0)[:, 0]
    lift = lambda t, a: ((t + LIFT_PRIOR * 0.25) / (a + LIFT_PRIOR)) / 0.25  # noqa: E731
    assert list(lifted) == pytest.approx([4.0 * lift(4, 4), 4.0 * lift(0, 8), 1.0 * lift(1, 1)])
    assert lifted[0] > 4.0 > lifted[1]  # a specialist rises, a generalist with the same count falls
    assert list(design(ev, 0.5)[:, 0]) == pytest.approx([4.0 * lift(4, 4) ** 0.5, 4.0 * lift(0, 8) ** 0.5,
                                                         lift(1, 1) ** 0.5])
    assert list(design(ev, 0.0)[:, 0]) == [4.0, 4.0, 1.0]
    ev.attrs["topic_share"] = 0.0  # a question without known topics: no lift
    assert list(design(ev, 1.0)[:, 0]) == [4.0, 4.0, 1.0]


def test_rank_orders_by_weighted_evidence_and_reaches_outside_the_team() -> None:
    ev = pd.DataFrame({"container": [3.0, 2.0, 2.0, 0.0, 0.5], "activity": 0.0, "topic": [0.0, 1.0, 1.0, 0.0, 0.1],
                       "answers": 0.0, "asker": [0.0, 1.0, 1.0, 5.0, 0.0], "similar": 0.0},
                      index=["p1", "p2", "p3", "p4", "p5"])
    w = Weights(container=1.0, activity=0.0, topic=0.0, asker=1.0, similar=0.0)
    assert pick(ev, w, 3) == ["p4", "p1", "p2"]  # 5, then 3, 3, 3 by key
    assert pick(ev, w, 10) == ["p4", "p1", "p2", "p3", "p5"]
    groups = {"me": "A", "p1": "A", "p2": "A", "p3": "A", "p4": "A", "p5": "B"}
    # a list of the asker's team only takes the best outsider with topic or container evidence: p5
    assert pick(ev, w, 3, "me", groups) == ["p4", "p1", "p5"]
    groups["p5"] = "A"
    assert pick(ev, w, 3, "me", groups) == ["p4", "p1", "p2"]  # nobody outside: the list stays
    assert pick(ev, Weights(container=0, activity=0, topic=0, asker=0, similar=0), 3) == []


def test_baseline_counts_answers_in_the_container_before_the_cutoff() -> None:
    _, replies = questions_and_answers(HISTORY)
    assert container_baseline(replies, T0 + pd.Timedelta(days=30), "ann", "C") == ["cat", "bob"]
    assert container_baseline(replies, T0 + pd.Timedelta(days=5), "zed", "C") == ["bob", "cat"]
    assert container_baseline(replies, T0 + pd.Timedelta(days=30), "cat", "C", k=1) == ["bob"]


def test_precision_and_recall_at_k() -> None:
    sc = _scores([["a", "b", "c", "d", "e"], ["x"]], [{"a", "z"}, {"y"}], 5)
    assert sc.precision == pytest.approx((1 / 5 + 0) / 2)
    assert sc.recall == pytest.approx((1 / 2 + 0) / 2)
    assert sc.hit_rate == pytest.approx(0.5)


def _org(weeks: int) -> pd.DataFrame:
    """Two topics with their own experts in one channel, plus a generalist who answers everything a
    little: questions every day, the experts answer their topic, the generalist every third question."""
    rows: list[tuple] = []
    for d in range(weeks * 7):
        topic = "tx:vpn" if d % 2 else "tx:sap"
        asker = f"asker{d % 7}"
        rows.append((f"q{d}", d, asker, "post", "C", f"q{d}", True, topic))
        rows.append((f"a{d}", d, "vpn-expert" if topic == "tx:vpn" else "sap-expert", "reply", "C", f"q{d}", False, None))
        rows.append((f"b{d}", d, "busy", "reply", "C", f"q{d}", False, None))
        rows.append((f"b2{d}", d, "busy2", "reply", "C", f"q{d}", False, None))
        if d % 3 == 0:
            rows.append((f"g{d}", d, "generalist", "reply", "C", f"q{d}", False, None))
    return _acts(rows)


def test_evaluation_hides_the_last_weeks_and_topics_beat_the_container_baseline() -> None:
    acts = _org(12)
    ev = evaluate(acts, holdout_days=14, dataset="hand", k=3)
    # the last question is on day 83 at noon: the cutoff is the midnight starting day 69, 15 questions after it
    assert ev.questions == 15 and ev.cutoff == str((T0 + pd.Timedelta(days=69)).date())
    # truth per question: its expert, busy, busy2 (+ the generalist one day in three)
    assert ev.answerers_per_question == pytest.approx((15 * 3 + sum(1 for d in range(69, 84) if d % 3 == 0)) / 15)
    # the baseline's top 3 are busy, busy2 and one expert (the same one for every question): right half the time
    assert ev.baseline.recall < ev.model.recall
    assert ev.model.precision == pytest.approx(1.0)  # busy, busy2 and the topic's expert, every time
    assert ev.ablations["without_topic"].recall < ev.model.recall
    assert ev.fitted_weights is not None and ev.fitted_weights.topic > 0  # fitted on the two weeks before


def test_fit_reads_nothing_after_the_cutoff() -> None:
    acts = _org(6)
    questions, replies = questions_and_answers(acts)
    cutoff = T0 + pd.Timedelta(days=28)
    before = fit(questions, replies, cutoff, holdout_days=14, k=3)
    # activity after the cutoff (a new expert answering everything) changes nothing fitted before it
    later = pd.concat([acts, _acts([(f"n{d}", d, "newcomer", "reply", "C", f"q{d}", False, None)
                                    for d in range(29, 42)])], ignore_index=True)
    q2, r2 = questions_and_answers(later)
    assert fit(q2, r2, cutoff, holdout_days=14, k=3) == before


def test_the_vectorised_grid_makes_the_same_lists_as_pick() -> None:
    from pipelines.answerers import EVIDENCE, LINEAR, _hits

    rng = __import__("numpy").random.default_rng(3)
    people = [f"p{i:02d}" for i in reversed(range(30))]  # not in key order
    groups = {p: ("A" if i % 3 else "B") for i, p in enumerate(people)} | {"me": "A"}
    for trial in range(40):
        values = rng.integers(0, 3, size=(30, len(EVIDENCE))).astype(float) * (rng.random((30, len(EVIDENCE))) < 0.4)
        ev = pd.DataFrame(values, index=people, columns=list(EVIDENCE))
        ev["answers"] = ev["answers"] + ev["topic"]
        ev["replies"] = ev["replies"] + ev["hour_replies"]
        ev.attrs["topic_share"] = 0.2 if trial % 3 else 0.0
        truth = set(rng.choice(people, 4, replace=False))
        weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=(len(LINEAR), 12))
        ev.attrs["hour_share"] = 0.15 if trial % 4 else 0.0
        exponent = [0.0, 0.5, 1.0][trial % 3]
        got = _hits(ev, truth, (exponent, 1.0 - exponent), weights, 5, "me", groups if trial % 2 else None)
        want = [len(set(pick(ev, Weights(*weights[:, c][:1], activity=weights[1, c], topic=exponent,
                                         availability=1.0 - exponent, asker=weights[2, c], similar=weights[3, c]),
                             5, "me",
                             groups if trial % 2 else None)) & truth) for c in range(12)]
        assert list(got) == want


def test_the_availability_lift_favours_who_is_around_at_the_hour_of_the_question() -> None:
    rows = [("q0", 0, "asker", "post", "C", "q0", True, None)]
    # night replies by "owl" (02:00 UTC), day replies by "lark" (12:00), as many of each
    for d in range(1, 7):
        rows.append((f"q{d}", d, "asker", "post", "C", f"q{d}", True, None))
        rows.append((f"n{d}", d - 10 / 24, "owl", "reply", "C", f"q{d}", False, None))  # 02:00
        rows.append((f"l{d}", d, "lark", "reply", "C", f"q{d}", False, None))  # 12:00
    _, replies = questions_and_answers(_acts(rows))
    model = AnswererModel(replies, T0 + pd.Timedelta(days=10))
    night = model.evidence("asker", "C", (), at=pd.Timestamp("2026-03-20T03:00Z"))  # bins 02-04
    assert night.at["owl", "hour_replies"] == 6 and night.at["lark", "hour_replies"] == 0
    assert night.at["owl", "replies"] == 6 and night.attrs["hour_share"] == pytest.approx(0.5)
    assert pick(night, Weights(), 1) == ["owl"]
    assert pick(model.evidence("asker", "C", (), at=pd.Timestamp("2026-03-20T13:00Z")), Weights(), 1) == ["lark"]
    # the lift: (6 + 5 * 0.5) / (6 + 5) / 0.5 for owl at night, (0 + 2.5) / 11 / 0.5 for lark
    x = design(night, 0.0, 1.0)[:, 0]
    at = {p: i for i, p in enumerate(night.index)}
    assert x[at["owl"]] / night.at["owl", "container"] == pytest.approx((6 + 2.5) / 11 / 0.5)
    assert x[at["lark"]] / night.at["lark", "container"] == pytest.approx(2.5 / 11 / 0.5)
    assert "hour_share" in night.attrs and model.evidence("asker", "C", ()).attrs["hour_share"] == 0.0
