"""compute_network on three real organisational networks, checked against networkx built independently
from the parsed files (pandas aggregation + networkx, not our graph builder)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from pipelines.network import NetworkRules, compute_network
from tests.network import helpers


def _oracle_graph(edges: pd.DataFrame, people: pd.DataFrame, cap: int | None = None) -> nx.DiGraph:
    """The documented rules, re-implemented with pandas: drop self-loops, scale events above the audience
    cap to a total of `cap`, sum weights per pair (all types here weigh 1 per unit of input weight)."""
    e = edges[edges["source_key"] != edges["target_key"]].copy()
    if cap is not None:
        audience = e.groupby("event_id")["target_key"].transform("nunique")
        e["weight"] = np.where(audience > cap, e["weight"] * cap / audience, e["weight"])
    agg = e.groupby(["source_key", "target_key"], as_index=False)["weight"].sum()
    G = nx.DiGraph()
    G.add_nodes_from(people["person_key"])
    G.add_weighted_edges_from(agg.itertuples(index=False, name=None))
    return G


def _load(name: str):
    edges, people = getattr(helpers, name)()
    cap = 50 if "event_id" in edges.columns else None
    out = compute_network(edges, people, rules=NetworkRules(), seed=1)
    G = _oracle_graph(edges, people, cap)
    person = out["fct_person_network"].set_index("person_key")
    return out, person.loc[list(G.nodes)], G, people


@pytest.fixture(scope="module", params=["eu_core", "workfrance", "enron"])
def network(request):
    return _load(request.param)


def test_sizes_density_and_rule_counts(network):
    out, person, G, people = network
    org = out["mart_network_org"].iloc[0]
    assert org["nodes"] == G.number_of_nodes() == len(people)
    assert org["edges"] == G.number_of_edges()
    assert org["density"] == pytest.approx(nx.density(G))
    assert org["reciprocity"] == pytest.approx(nx.overall_reciprocity(G))
    isolated = sum(1 for v in G if G.degree(v) == 0)
    assert org["isolated_share"] == pytest.approx(isolated / len(people))
    assert org["largest_wcc_share"] == pytest.approx(
        max(map(len, nx.weakly_connected_components(G))) / len(G)
    )
    assert org["average_clustering"] == pytest.approx(nx.average_clustering(G.to_undirected()))


def test_pagerank_and_eigenvector(network):
    _, person, G, _ = network
    pr = nx.pagerank(G, alpha=0.85, weight="weight", tol=1e-12)
    assert np.allclose(person["pagerank"], [pr[v] for v in G], atol=1e-10)
    top = sorted(G, key=lambda v: -pr[v])[:20]
    assert list(person.loc[top, "influence_rank"]) == sorted(person.loc[top, "influence_rank"])


def test_betweenness_and_closeness_exact(network):
    out, person, G, _ = network
    assert out["mart_network_org"].loc[0, "path_method"] == "exact"
    b = nx.betweenness_centrality(G)
    assert np.allclose(person["betweenness"], [b[v] for v in G], atol=1e-12)
    c = nx.closeness_centrality(G)
    assert np.allclose(person["closeness"], [c[v] for v in G], atol=1e-12)


def test_constraint_clustering_reciprocity(network):
    _, person, G, _ = network
    con = nx.constraint(G, weight="weight")
    active = [v for v in G if G.degree(v) > 0]
    assert np.allclose(person.loc[active, "burt_constraint"], [con[v] for v in active], atol=1e-12)
    cl = nx.clustering(G.to_undirected())
    assert np.allclose(person["clustering"], [cl[v] for v in G])
    rec = nx.reciprocity(G, active)
    assert np.allclose(person.loc[active, "reciprocity_mutual"], [rec[v] for v in active])


def test_effective_size_on_the_small_networks():
    for name in ("workfrance", "enron"):
        _, person, G, _ = _load(name)
        # networkx's per-node effective size is cubic in degree: all of workfrance, 25 Enron senders
        senders = [v for v in G if G.out_degree(v) > 0][: 25 if name == "enron" else None]
        eff = nx.effective_size(G, nodes=senders, weight="weight")
        assert np.allclose(person.loc[senders, "effective_size"], [eff[v] for v in senders], atol=1e-10)


def test_communities_modularity_and_department_alignment(network):
    out, person, G, people = network
    org = out["mart_network_org"].iloc[0]
    H = nx.Graph()
    H.add_nodes_from(G)
    for a, b, w in G.edges(data="weight"):
        H.add_edge(a, b, weight=H.get_edge_data(a, b, {"weight": 0.0})["weight"] + w)
    members = person["community_id"].dropna()
    parts = [set(members.index[members == c]) for c in sorted(members.unique())]
    parts += [{v} for v in person.index[person["community_id"].isna()]]
    assert org["modularity"] == pytest.approx(nx.community.modularity(H, parts, weight="weight"), abs=1e-9)
    assert org["modularity"] > 0.2  # real organisations are modular
    assert 0.0 < org["nmi_department"] <= 1.0


def test_ei_index_org_wide_matches_a_pandas_count(network):
    out, _, G, people = network
    dept = people.set_index("person_key")["department"]
    pairs = {tuple(sorted((a, b))) for a, b in G.edges()}
    same = [dept[a] == dept[b] for a, b in pairs]
    internal, external = sum(same), len(same) - sum(same)
    assert out["mart_network_org"].loc[0, "ei_index"] == pytest.approx(
        (external - internal) / (external + internal)
    )


def test_eu_core_and_enron_rule_counts():
    out, *_ = _load("eu_core")
    assert out["mart_network_org"].loc[0, "dropped_self_edge"] == 642  # as documented by SNAP
    out, *_ = _load("enron")
    assert out["mart_network_org"].loc[0, "dropped_audience_scaled"] > 0  # some messages reach > 50 people
