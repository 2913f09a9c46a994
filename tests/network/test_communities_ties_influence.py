"""Hand-computed examples: communities, E-I index, tie classes, tiers, personas, rising stars, dynamics."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from pipelines.network import NetworkRules, TieRules, compute_network, influence
from pipelines.network.communities import detect, modularity, nmi
from pipelines.network.graph import build_graph
from pipelines.network.influence import InfluenceRules, PersonaRules
from pipelines.network.triangles import undirected
from tests.network.helpers import interactions, random_interactions


def _two_cliques():
    rows = [(a, b, "reply") for grp in ("abcde", "vwxyz") for a in grp for b in grp if a != b]
    rows.append(("e", "v", "reply"))
    people = pd.DataFrame({"person_key": list("abcdevwxyz"), "department": ["Eng"] * 5 + ["Ops"] * 5})
    return interactions(rows), people


@pytest.mark.parametrize("method", ["plm", "leiden"])
def test_two_planted_cliques_are_two_communities_aligned_with_departments(method):
    edges, people = _two_cliques()
    g = build_graph(edges, people["person_key"])
    labels = detect(undirected(g), method=method, seed=3)
    assert labels[:5].tolist() == [0] * 5 and labels[5:].tolist() == [1] * 5
    assert nmi(labels, np.array([0] * 5 + [1] * 5)) == pytest.approx(1.0)


def test_modularity_matches_networkx_and_detection_is_repeatable():
    g = build_graph(random_interactions(120, 700, 5))
    u = undirected(g)
    a = detect(u, seed=11)
    assert np.array_equal(a, detect(u, seed=11))
    H = nx.Graph()
    H.add_nodes_from(range(g.n))
    H.add_weighted_edges_from(zip(u.lo.tolist(), u.hi.tolist(), u.s.tolist(), strict=True))
    parts = [set(np.flatnonzero(a == c).tolist()) for c in range(a.max() + 1)]
    assert modularity(u, a) == pytest.approx(nx.community.modularity(H, parts, weight="weight"), abs=1e-12)


def test_nmi_hand_values():
    assert nmi(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])) == pytest.approx(1.0)
    assert nmi(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(0.0)
    # H(A) = ln 2, H(B) = 0.5 ln 2 + ... : A = {0,0,1,1}, B = {0,0,0,1}
    a, b = np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])
    h_a = np.log(2)
    h_b = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    h_ab = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    assert nmi(a, b) == pytest.approx((h_a + h_b - h_ab) / ((h_a + h_b) / 2))


def test_ei_index_hand_computed():
    # Eng = a, b, c; Ops = x, y. Undirected ties: a-b, b-c (internal Eng), x-y (internal Ops),
    # c-x, a-y (external). Eng: E = 2, I = 2 -> 0; Ops: E = 2, I = 1 -> 1/3; org: E = 2, I = 3 -> -1/5.
    edges = interactions(
        [
            ("a", "b", "reply"),
            ("b", "a", "reply"),
            ("b", "c", "reply"),
            ("x", "y", "reply"),
            ("c", "x", "reply"),
            ("y", "a", "mention"),
        ]
    )
    people = pd.DataFrame({"person_key": list("abcxy"), "department": ["Eng"] * 3 + ["Ops"] * 2})
    out = compute_network(edges, people, rules=NetworkRules(min_group_size=1))
    dept = out["mart_network_department"].set_index("department")
    assert dept.loc["Eng", "ei_index"] == pytest.approx(0.0)
    assert dept.loc["Ops", "ei_index"] == pytest.approx(1 / 3)
    assert out["mart_network_org"].loc[0, "ei_index"] == pytest.approx(-0.2)
    # interactions touching Eng: a-b x2, b-c, c-x, y-a = 5, of which 2 cross
    assert dept.loc["Eng", "cross_department_share"] == pytest.approx(2 / 5)
    # density Eng: internal directed edges a->b, b->a, b->c = 3 of 3 * 2
    assert dept.loc["Eng", "density"] == pytest.approx(0.5)
    ties = out["fct_network_ties"].set_index(["source_key", "target_key"])
    assert bool(ties.loc[("c", "x"), "crosses_department"]) and not bool(
        ties.loc[("a", "b"), "crosses_department"]
    )
    assert bool(ties.loc[("a", "b"), "is_reciprocated"]) and not bool(ties.loc[("b", "c"), "is_reciprocated"])


def test_small_departments_are_suppressed_in_every_published_mart():
    edges, people = _two_cliques()
    people.loc[people["person_key"] == "z", "department"] = "Tiny"
    out = compute_network(edges, people)  # default min_group_size 5: Ops has 4, Tiny 1
    tiers = out["mart_network_influence_tiers"]
    small = tiers[tiers["department"].isin(["Ops", "Tiny"])]
    assert small["suppressed"].all() and small["people"].isna().all() and small["group_size"].isna().all()
    eng = tiers[tiers["department"] == "Eng"]
    # complementary suppression by tier: the organisation (1 Top, 5 Active, 4 Observers) minus a visible
    # Eng (0, 1, 4) would say that none of the 5 hidden people of Ops and Tiny is an Observer
    assert eng["suppressed"].all() and eng["people"].isna().all()
    org = tiers[tiers["department"].isna()]
    assert org["people"].sum() == 10
    dept = out["mart_network_department"].set_index("department")
    assert dept.loc["Ops", "suppressed"] and np.isnan(dept.loc["Ops", "ei_index"])
    assert not dept.loc["Eng", "suppressed"]


def test_percentile_ties_share_the_bottom_and_tiers_follow_chatter_thresholds():
    score = np.array([0.5, 0.3, 0.1, 0.05, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0])
    rank, pct = influence.percentile_and_rank(score)
    assert rank.tolist() == [1, 2, 3, 4, 4, 6, 6, 6, 6, 6]
    assert pct.tolist() == pytest.approx([9 / 9, 8 / 9, 7 / 9, 5 / 9, 5 / 9, 0, 0, 0, 0, 0])
    tiers = influence.tiers(pct, InfluenceRules())
    assert tiers.tolist() == ["Top Influencer"] * 2 + ["Active Influencer"] * 3 + ["Observer"] * 5


@pytest.mark.parametrize(
    ("given", "received", "posts", "expected"),
    [
        (0, 0, 0, "Observer"),  # no contribution at all
        (1, 1, 0, "Observer"),  # below min_activity 3
        (10, 12, 0, "Engager"),  # balanced
        (10, 20, 0, "Engager"),  # exactly 2x is still balanced
        (2, 30, 1, "Catalyst"),  # receives far more
        (0, 5, 0, "Catalyst"),  # receives, never gives
        (30, 2, 1, "Responder"),  # gives far more, mostly replies/reactions
        (5, 2, 20, "Broadcaster"),  # gives far more, mostly posts
    ],
)
def test_personas_hand_examples(given, received, posts, expected):
    got = influence.personas(
        np.array([given], float), np.array([received], float), np.array([posts], float), PersonaRules()
    )
    assert got.tolist() == [expected]


def test_rising_stars_and_dynamics_against_a_previous_period():
    people = pd.DataFrame({"person_key": [f"p{i}" for i in range(8)], "department": ["A"] * 8})
    before = interactions([(f"p{i}", "p0", "reply") for i in range(1, 8)] + [("p0", "p1", "reply")])
    after = interactions([(f"p{i}", "p7", "reply") for i in range(0, 7)] + [("p0", "p1", "reply")])
    prev = compute_network(before, people)
    cur = compute_network(after, people, previous=prev)
    person = cur["fct_person_network"].set_index("person_key")
    assert person.loc["p7", "rank_delta"] > 0 and person.loc["p7", "percentile_delta"] > 0.5
    assert person["is_rising_star"].sum() >= 1 and bool(person.loc["p7", "is_rising_star"])
    org = cur["mart_network_org"].iloc[0]
    # before: p1..p7 -> p0 and p0 -> p1 (8); after: p0..p6 -> p7 and p0 -> p1 (8); kept: p0 -> p1
    assert (org["ties_added"], org["ties_dropped"], org["ties_kept"]) == (7, 7, 1)
    assert org["tie_turnover"] == pytest.approx(14 / 15)
    assert person.loc["p7", "ties_added"] == 7 and person.loc["p7", "ties_dropped"] == 1
    assert prev["fct_person_network"]["is_rising_star"].isna().all()


def test_bootstrap_interval_is_seeded_and_brackets_the_rank():
    edges = random_interactions(80, 600, 12)
    people = pd.DataFrame({"person_key": [f"p{i:03d}" for i in range(80)], "department": "A"})
    a = compute_network(edges, people, seed=4)["fct_person_network"]
    b = compute_network(edges, people, seed=4)["fct_person_network"]
    pd.testing.assert_frame_equal(a, b)
    assert (a["rank_ci_low"] <= a["rank_ci_high"]).all()
    top = a.nsmallest(5, "influence_rank")
    assert (
        (top["rank_ci_low"] <= top["influence_rank"]) & (top["influence_rank"] <= top["rank_ci_high"])
    ).all()


def test_tie_strength_classes_and_local_bridges():
    edges, people = _two_cliques()
    edges.loc[len(edges)] = ["a", "b", "reply", 5.0]  # make a->b the heaviest
    # every other edge weighs 1, so the 0.75 quantile would call all of them strong: use a threshold
    out = compute_network(
        edges, people, rules=NetworkRules(min_group_size=1, ties=TieRules(strong_weight_min=2.0))
    )
    ties = out["fct_network_ties"].set_index(["source_key", "target_key"])
    assert out["mart_network_org"].loc[0, "strong_weight_threshold"] == 2.0
    assert ties.loc[("b", "a"), "strength_class"] == "intermediate"
    assert ties.loc[("e", "v"), "is_local_bridge"] and ties.loc[("e", "v"), "embeddedness"] == 0
    assert bool(ties.loc[("e", "v"), "crosses_community"])
    assert ties.loc[("a", "b"), "embeddedness"] == 3 and ties.loc[("a", "b"), "strength_class"] == "strong"
    assert ties.loc[("e", "v"), "strength_class"] == "weak"
