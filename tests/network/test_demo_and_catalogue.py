"""The planted patterns of the demo organisation are found, and every output column is catalogued."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.network import TABLES, compute_network
from pipelines.network.catalogue import COLUMNS, GRAIN, RULES
from pipelines.sources.demo_org import build_org, simulate


@pytest.fixture(scope="module")
def demo():
    org = build_org(people=600, days=60, seed=7)
    activity = pd.concat([frame for _, frame in simulate(org)], ignore_index=True)
    # reply / reaction / share -> author of the parent (target_email); mention -> the mentioned person
    inter = activity[
        activity["verb"].isin(["reply", "reaction", "mention", "share"]) & activity["target_email"].notna()
    ]
    edges = pd.DataFrame(
        {
            "source_key": inter["actor_email"],
            "target_key": inter["target_email"],
            "interaction_type": inter["verb"],
            "weight": 1.0,
            "event_id": inter["event_id"],
        }
    )
    edges = edges[edges["source_key"] != edges["target_key"]]
    posts = (
        activity[activity["verb"] == "post"]
        .groupby("actor_email")
        .size()
        .rename("posts")
        .rename_axis("person_key")
        .reset_index()
    )
    people = org.people.rename(columns={"email": "person_key"})
    return org, people, compute_network(edges, people, contributions=posts, seed=0)


def test_planted_influencers_top_the_pagerank_ranking(demo):
    org, people, out = demo
    person = out["fct_person_network"]
    planted = set(people["person_key"].iloc[org.influencers])
    top = person.nsmallest(len(planted), "influence_rank")["person_key"]
    assert top.isin(planted).all()
    assert (person[person["person_key"].isin(planted)]["influence_tier"] == "Top Influencer").all()


def test_planted_brokers_top_the_betweenness_ranking(demo):
    org, people, out = demo
    person = out["fct_person_network"]
    planted = set(people["person_key"].iloc[org.brokers])
    top = person.nlargest(len(planted) + 1, "betweenness")["person_key"]
    assert len(planted & set(top)) == len(planted)
    brokers = person[person["person_key"].isin(planted)]
    assert (brokers["cross_department_ties"] > person["cross_department_ties"].quantile(0.9)).all()


def test_silent_legal_is_observer_and_internal_audit_is_suppressed(demo):
    _, _, out = demo
    person = out["fct_person_network"]
    assert (person[person["department"] == "Legal"]["persona"] == "Observer").mean() > 0.9
    tiers = out["mart_network_influence_tiers"]
    assert tiers[tiers["department"] == "Internal Audit"]["suppressed"].all()


def test_every_output_column_is_catalogued_and_nothing_else(demo):
    _, _, out = demo
    assert set(out) == set(TABLES) == set(COLUMNS) == set(GRAIN)
    for table, frame in out.items():
        assert list(frame.columns) == list(COLUMNS[table]), table
        assert all(COLUMNS[table].values())
    assert all(RULES.values())


def test_previous_period_gives_exactly_what_the_full_computation_gives() -> None:
    from pipelines.network import compute_network, previous_period

    rng = np.random.default_rng(3)
    people = pd.DataFrame({"person_key": [f"p{i}" for i in range(40)], "department": ["a", "b"] * 20})
    edges = pd.DataFrame({
        "source_key": [f"p{i}" for i in rng.integers(0, 40, 300)],
        "target_key": [f"p{i}" for i in rng.integers(0, 40, 300)],
        "interaction_type": rng.choice(["reply", "reaction", "mention"], 300),
    })
    full = compute_network(edges, people)
    light = previous_period(edges, people)
    cols = ["person_key", "influence_rank", "influence_percentile"]
    pd.testing.assert_frame_equal(full["fct_person_network"][cols].reset_index(drop=True),
                                  light["fct_person_network"][cols].reset_index(drop=True))
    pairs = ["source_key", "target_key"]
    pd.testing.assert_frame_equal(full["fct_network_ties"][pairs].reset_index(drop=True),
                                  light["fct_network_ties"][pairs].reset_index(drop=True))
