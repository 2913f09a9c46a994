"""Tiny hand-made organisations for the hand-computed metric tests (see each test for the derivations).

SHORT: 7 people, 2 containers, four days 2026-03-02 (Mon) .. 2026-03-05 (Thu) plus one old view by e on
2026-01-15; every published metric of sections 1 and 2 can be derived from the table below by hand.

  person  department   location  level      leader  hired        acts
  a       Engineering  London    VP         yes     2020-01-01   p1 (question), m1, x2, p5, k1, x3
  b       Engineering  London    Associate  no      2025-06-01   r1 (answers p1), v1 (view), p3 (question), r2 (self)
  c       Sales        Paris     Director   yes     2022-01-01   p2, r3 (answers p3 after 26 h)
  d       Sales        Paris     Associate  no      2024-01-01   x1, p4 (question, never answered), p6 (deleted)
  e       Legal        Paris     Associate  no      2019-01-01   e0 (a view in C1 on 2026-01-15 only)
  f       Engineering  Remote    Senior     no      2026-03-04   s1 (shares p2)
  g       Legal        Paris     Associate  no      2018-01-01   nothing (the non-user)
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

D1, D2, D3, D4 = (dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(4))
RUN_START = dt.date(2026, 1, 12)

PEOPLE_COLUMNS = ["person_key", "department", "location", "level", "manager_key", "is_leader", "hire_date",
                  "termination_date", "snapshot_date"]


def people(rows: list[tuple], snapshot: dt.date) -> pd.DataFrame:
    df = pd.DataFrame([(*r[:7], None, snapshot) for r in rows], columns=PEOPLE_COLUMNS)
    for c in ("hire_date", "termination_date", "snapshot_date"):
        df[c] = pd.to_datetime(df[c]).dt.date
    df["termination_date"] = df["termination_date"].astype(object).where(df["termination_date"].notna(), None)
    return df


def activities(rows: list[tuple]) -> pd.DataFrame:
    """rows: (event_id, 'YYYY-MM-DD HH:MM', actor, verb, container, parent, target, is_question, is_deleted)"""
    out = []
    for event_id, at, actor, verb, container, parent, target, question, deleted in rows:
        ts = pd.Timestamp(at, tz="UTC")
        out.append({"source": "hand", "event_id": event_id, "occurred_at": ts, "activity_date": ts.date(),
                    "actor_key": actor, "verb": verb, "container_id": container, "thread_id": parent or event_id,
                    "parent_id": parent, "target_key": target, "content_length": 10, "is_question": question,
                    "is_edited": False, "is_deleted": deleted})
    return pd.DataFrame(out)


def containers(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"source": "hand", "container_id": c, "kind": k, "visibility": "public",
                          "member_count": 10, "owner_department": None,
                          "created_at": pd.Timestamp("2025-01-01", tz="UTC")} for c, k in rows])


SHORT_PEOPLE = people([
    ("a", "Engineering", "London", "VP", None, True, "2020-01-01"),
    ("b", "Engineering", "London", "Associate", "a", False, "2025-06-01"),
    ("c", "Sales", "Paris", "Director", "a", True, "2022-01-01"),
    ("d", "Sales", "Paris", "Associate", "c", False, "2024-01-01"),
    ("e", "Legal", "Paris", "Associate", "a", False, "2019-01-01"),
    ("f", "Engineering", "Remote", "Senior", "a", False, "2026-03-04"),
    ("g", "Legal", "Paris", "Associate", "a", False, "2018-01-01"),
], D4)
SHORT_PEOPLE["manager_key"] = SHORT_PEOPLE["person_key"].map({"b": "a", "c": "a", "d": "c"})

SHORT_ACTIVITIES = activities([
    ("e0", "2026-01-15 10:00", "e", "view", "C1", None, None, False, False),
    # D1 2026-03-02
    ("p1", "2026-03-02 09:00", "a", "post", "C1", None, None, True, False),
    ("r1", "2026-03-02 10:00", "b", "reply", "C1", "p1", None, False, False),
    ("x1", "2026-03-02 11:00", "d", "reaction", "C1", "p1", None, False, False),
    ("p2", "2026-03-02 12:00", "c", "post", "C2", None, None, False, False),
    ("v1", "2026-03-02 13:00", "b", "view", "C2", "p2", None, False, False),
    # D2
    ("p3", "2026-03-03 08:00", "b", "post", "C1", None, None, True, False),
    ("r2", "2026-03-03 09:00", "b", "reply", "C1", "p3", None, False, False),
    ("m1", "2026-03-03 14:00", "a", "mention", "C2", None, "d", False, False),
    # D3
    ("p4", "2026-03-04 09:00", "d", "post", "C2", None, None, True, False),
    ("r3", "2026-03-04 10:00", "c", "reply", "C1", "p3", None, False, False),
    ("x2", "2026-03-04 10:30", "a", "reaction", "C2", "p4", None, False, False),
    ("s1", "2026-03-04 11:00", "f", "share", "C2", "p2", None, False, False),
    # D4
    ("p5", "2026-03-05 09:00", "a", "post", "C2", None, None, False, False),
    ("p6", "2026-03-05 09:30", "d", "post", "C2", None, None, False, True),
    ("k1", "2026-03-05 10:00", "a", "answer_accepted", "C1", "r1", None, False, False),
    ("x3", "2026-03-05 11:00", "a", "reaction", "C1", "r3", None, False, False),
])
SHORT_CONTAINERS = containers([("C1", "channel"), ("C2", "group")])
