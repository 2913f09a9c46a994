"""Whom to connect (issue 18), hand-computed: mart_group_connections on the SHORT people of hand_data.py
(Engineering a, b, f; Sales c, d; Legal e, g: all in the headcount on D4), as of D4, at min_group_size 2.
No container (no container topic): the topics are the messages' own and, for a reply, its thread's.

  v1  post by a, tx:vpn;  v2 b replies (b->a);  v3 c replies (c->a: a tie Sales-Engineering)
  v4  post by d, tx:vpn;  v5 e replies (e->d: a tie Legal-Sales)
  g1  post by a, tx:budget;  g2 b replies (b->a)
  g3  post by f, tx:budget;  g4 e replies (e->f: a tie Legal-Engineering)
  g5  post by g, tx:budget;  g6 post by c, tx:budget
  m1  a mentions g (a->g: a tie Engineering-Legal)

People per topic: tx:vpn Engineering 2 (a, b), Sales 2 (c, d), Legal 1 (e: not active at 2);
tx:budget Engineering 3 (a, b, f), Legal 2 (e, g), Sales 1 (c: not active).
Vectors over the active topics: Engineering (vpn 2, budget 3), Sales (vpn 2), Legal (budget 2).
"""

from __future__ import annotations  # noqa: I001

import math

import pandas as pd
import pytest
import sqlalchemy as sa

from hand_data import D4, RUN_START, SHORT_PEOPLE, activities
from hand_helpers import check

from pipelines import warehouse

COVERED: set[str] = set()
TABLE = "mart_group_connections"
ROWS = [
    ("v1", "2026-03-02 09:00", "a", "post", None, None, None, False, False),
    ("v2", "2026-03-02 10:00", "b", "reply", None, "v1", None, False, False),
    ("v3", "2026-03-02 11:00", "c", "reply", None, "v1", None, False, False),
    ("v4", "2026-03-03 09:00", "d", "post", None, None, None, False, False),
    ("v5", "2026-03-03 10:00", "e", "reply", None, "v4", None, False, False),
    ("g1", "2026-03-03 11:00", "a", "post", None, None, None, False, False),
    ("g2", "2026-03-03 12:00", "b", "reply", None, "g1", None, False, False),
    ("g3", "2026-03-04 09:00", "f", "post", None, None, None, False, False),
    ("g4", "2026-03-04 10:00", "e", "reply", None, "g3", None, False, False),
    ("g5", "2026-03-04 11:00", "g", "post", None, None, None, False, False),
    ("g6", "2026-03-04 12:00", "c", "post", None, None, None, False, False),
    ("m1", "2026-03-05 09:00", "a", "mention", None, None, "g", False, False),
]
TOPICS = {"v1": "tx:vpn", "v4": "tx:vpn", "g1": "tx:budget", "g3": "tx:budget", "g5": "tx:budget",
          "g6": "tx:budget"}


@pytest.fixture(scope="module")
def connections(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    from conftest import load_lake, run_models

    acts = activities(ROWS)
    acts["topic_ids"] = acts["event_id"].map(TOPICS).astype("string")
    engine = warehouse.make_engine(f"duckdb:///{tmp_path_factory.mktemp('connections') / 'hand.duckdb'}")
    load_lake(engine, acts, SHORT_PEOPLE, pd.DataFrame([{"source": "hand", "container_id": "C0", "kind": "channel",
                                                          "visibility": "public", "member_count": 10,
                                                          "owner_department": None,
                                                          "created_at": pd.Timestamp("2025-01-01", tz="UTC")}]))
    run_models(engine, RUN_START, D4, min_group_size=2)
    return engine


def test_one_row_per_unordered_pair_of_departments(connections: sa.Engine) -> None:
    with connections.connect() as conn:
        got = [tuple(r) for r in conn.execute(sa.text(
            f"select department_a, department_b, suppressed from {TABLE} order by 1, 2")).all()]
        cols = [c.lower() for c in warehouse.columns(conn, TABLE)]
    # Legal and Sales share no topic both are active on (Legal has 1 person on vpn, Sales 1 on budget)
    assert got == [("Engineering", "Legal", False), ("Engineering", "Sales", False), ("Legal", "Sales", True)]
    assert not any(c.endswith("_key") for c in cols)
    COVERED.add(f"{TABLE}.suppressed")


def test_shared_interest_ties_gap_and_bridges(connections: sa.Engine) -> None:
    # Engineering-Sales: shared vpn; cosine (2*2) / (sqrt(2^2 + 3^2) * 2); one tie (a, c) of 3 x 2 pairs;
    # bridges: a and c are on vpn and tied across
    sim_es = 4 / (math.sqrt(13) * 2)
    per_100_es = 100 * 1 / 6
    check(connections, TABLE, {
        "measured_through": D4, "people_a_on_shared_topics": 2, "people_b_on_shared_topics": 2,
        "shared_topics": 1, "topic_similarity": sim_es, "ties": 1, "ties_per_100_pairs": per_100_es,
        "connection_gap": sim_es / (1 + per_100_es), "gap_rank": 1, "bridge_candidates": 2,
    }, COVERED, department_a="Engineering", department_b="Sales")
    # Engineering-Legal: shared budget; cosine (3*2) / (sqrt(13) * 2); ties (e, f) and (a, g) of 6 pairs;
    # bridges: a, f, e, g (all on budget, each tied across); b is on budget but tied to nobody in Legal
    sim_el = 6 / (math.sqrt(13) * 2)
    per_100_el = 100 * 2 / 6
    check(connections, TABLE, {
        "people_a_on_shared_topics": 3, "people_b_on_shared_topics": 2, "shared_topics": 1,
        "topic_similarity": sim_el, "ties": 2, "ties_per_100_pairs": per_100_el,
        "connection_gap": sim_el / (1 + per_100_el), "gap_rank": 2, "bridge_candidates": 4,
    }, COVERED, department_a="Engineering", department_b="Legal")
    # the suppressed pair publishes nothing (its tie e-d included)
    check(connections, TABLE, {"people_a_on_shared_topics": None, "shared_topics": None, "topic_similarity": None,
                               "ties": None, "ties_per_100_pairs": None, "connection_gap": None, "gap_rank": None,
                               "bridge_candidates": None}, COVERED, department_a="Legal", department_b="Sales")


def test_every_column_is_checked(connections: sa.Engine) -> None:
    with connections.connect() as conn:
        cols = warehouse.columns(conn, TABLE)
    missing = {f"{TABLE}.{c}" for c in cols} - COVERED
    assert not missing, f"columns no hand test checks: {sorted(missing)}"
