"""The metric catalogue of the network tables: every column and every rule, as data.

`COLUMNS` maps table -> column -> description and is the single place the generated metric catalogue reads;
a test checks it matches what `compute_network` returns, column for column. `RULES` describes each rule and
threshold in words; their values and defaults live in the pydantic models (`NetworkRules` and the rules it
holds) and are published with `NetworkRules().model_dump()`. This module holds text only (and renders it, `render_rules`); it must never
compute anything.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

VERSION = "1.0.0"

GRAIN: dict[str, str] = {
    "fct_person_network": "one row per person_key (directory people first, then interacting people not in the directory) per window",
    "fct_network_ties": "one row per directed (source_key, target_key) pair with at least one kept interaction per window",
    "mart_network_department": "one row per department of the directory per window",
    "mart_network_community": "one row per detected community per window",
    "mart_network_org": "one row per window",
    "mart_network_influence_tiers": "one row per (department, influence tier) per window; department NULL = whole organisation",
}

_RECEIVED = "interactions of type {t} received (count, before type weights)"

COLUMNS: dict[str, dict[str, str]] = {
    "fct_person_network": {
        "person_key": "pseudonymous person key",
        "department": "department from the directory; NULL when the person is not in the directory",
        "location": "location from the directory",
        "level": "level from the directory",
        "is_leader": "leader flag from the directory",
        "in_directory": "the person is in the directory snapshot (false: only seen in interactions)",
        "in_degree": "distinct people who directed at least one kept interaction at this person",
        "out_degree": "distinct people this person directed at least one kept interaction at",
        "in_strength": "sum of weights of incoming edges (interaction weights, audience-capped)",
        "out_strength": "sum of weights of outgoing edges",
        "interactions_received": "kept interactions received (count)",
        "interactions_given": "kept interactions given (count)",
        "pagerank": "weighted PageRank, damping 0.85 by default, dangling mass spread uniformly; sums to 1 over nodes",
        "eigenvector": "in-edge eigenvector centrality of the weighted adjacency, L2 norm 1 (networkx definition)",
        "burt_constraint": "Burt's constraint on mutual weights (both directions summed); NULL for isolated people",
        "effective_size": "Burt's effective size on mutual weights (networkx per-node definition); NULL for isolated people",
        "efficiency": "effective_size / number of distinct neighbours; NULL for isolated people",
        "clustering": "local clustering coefficient of the undirected unweighted projection (0 below two neighbours)",
        "reciprocity": "d_in / (d_in + d_out) on distinct neighbours (METRICS.md); NULL without any edge",
        "reciprocity_mutual": "share of the person's directed edges that are reciprocated (networkx reciprocity(G, v))",
        "two_way_ties": "people with whom the person has edges in both directions",
        "betweenness": "directed hop betweenness normalised by (n-1)(n-2); exact or sampled, see mart_network_org.path_method",
        "closeness": "incoming hop closeness with the Wasserman-Faust correction; exact or sampled like betweenness",
        "community_id": "community (0 = largest); NULL for isolated people",
        "cross_department_ties": "undirected ties to people of another (known) department",
        "cross_community_ties": "undirected ties to people of another community",
        "influence_score": "the influence score: equal to pagerank",
        "influence_rank": "rank by influence score, 1 = highest, ties share the best rank",
        "influence_percentile": "share of the other people with a strictly lower influence score (0..1)",
        "influence_tier": "Top Influencer (percentile >= 0.8), Active Influencer (>= 0.25) or Observer; thresholds configurable",
        "posts": "original posts in the window when post counts are supplied, else 0",
        "persona": "Engager, Catalyst, Responder, Broadcaster or Observer (PersonaRules)",
        "received_reply": _RECEIVED.format(t="reply"),
        "received_reaction": _RECEIVED.format(t="reaction"),
        "received_mention": _RECEIVED.format(t="mention"),
        "received_share": _RECEIVED.format(t="share"),
        "received_from_people": "distinct people the received interactions came from (= in_degree)",
        "received_from_departments": "distinct known departments the received interactions came from",
        "explanation": "the above in words, for reading next to a rank",
        "rank_delta": "previous influence_rank - current (positive = climbed); NULL without a previous period or when new",
        "percentile_delta": "current - previous influence_percentile; NULL without a previous period or when new",
        "is_rising_star": "among the largest percentile gains (>= rising_star_min_gain, at most rising_star_top_n, not Observer); NULL without a previous period",
        "rank_ci_low": "lower end of the bootstrap interval of influence_rank (best plausible rank)",
        "rank_ci_high": "upper end of the bootstrap interval of influence_rank (worst plausible rank)",
        "ties_added": "directed ties touching the person present now but not in the previous period; NULL without one",
        "ties_dropped": "directed ties touching the person present in the previous period but not now; NULL without one",
    },
    "fct_network_ties": {
        "source_key": "person who acted (with the default direction rule)",
        "target_key": "person who received",
        "weight": "sum of interaction weights, audience-capped: in the pipeline each interaction weighs its type's interactions.weights of the run, applied once; library callers: type weight x input weight",
        "interactions": "kept interactions on the edge (count)",
        "n_reply": "replies on the edge",
        "n_reaction": "reactions on the edge",
        "n_mention": "mentions on the edge",
        "n_share": "shares on the edge",
        "is_reciprocated": "the reverse edge exists",
        "embeddedness": "shared neighbours of the pair in the undirected projection",
        "neighbourhood_overlap": "shared / (neighbours of either, excluding the pair) (Onnela et al. 2007)",
        "is_strong_by_weight": "weight >= the strong-weight threshold (mart_network_org.strong_weight_threshold)",
        "is_strong_by_embeddedness": "neighbourhood_overlap >= strong_overlap_min",
        "strength_class": "strong (both), intermediate (one) or weak (neither)",
        "crosses_department": "endpoints in different departments; NULL when a department is unknown",
        "crosses_community": "endpoints in different communities",
        "is_local_bridge": "no shared neighbour: removing the tie lengthens the path between its ends (Granovetter)",
    },
    "mart_network_department": {
        "department": "department",
        "people": "people of the department in the directory; NULL when suppressed",
        "active_people": "people of the department with at least one edge",
        "internal_ties": "undirected ties with both ends in the department",
        "external_ties": "undirected ties with one end in the department and the other in another known department",
        "ei_index": "(external - internal) / (external + internal) ties (Krackhardt & Stern 1988)",
        "ei_index_weighted": "the E-I index with ties weighted by mutual weight",
        "cross_department_share": "of the window graph's kept interactions touching the department with the other person's department known, the share with another department (the network's measure; mart_interactions_period.cross_department_interaction_share counts what the segment's people made)",
        "density": "internal directed edges / (people (people - 1))",
        "internal_clustering": "mean local clustering of members inside the department's own subgraph (isolated members count 0)",
        "suppressed": "people < min_group_size, or withheld so that no such department can be worked out from the directory total (complementary suppression): every measure is NULL",
    },
    "mart_network_community": {
        "community_id": "community id (0 = largest)",
        "people": "members; NULL when suppressed",
        "departments": "distinct known departments among members; NULL when suppressed",
        "top_department": "most frequent department among members; NULL when suppressed",
        "top_department_share": "share of members (with a known department) in the top department; NULL when suppressed",
        "internal_weight_share": "share of members' total mutual weight that stays inside the community; NULL when suppressed",
        "suppressed": "people < min_group_size, or withheld so that the hidden communities hold min_group_size people together (complementary suppression): every measure is NULL",
    },
    "mart_network_org": {
        "nodes": "directory people plus interacting people not in the directory",
        "directory_people": "people in the directory",
        "active_people": "nodes with at least one edge",
        "edges": "directed edges",
        "undirected_ties": "pairs linked in either direction",
        "interactions": "kept interactions",
        "total_weight": "sum of edge weights",
        "density": "edges / (nodes (nodes - 1))",
        "reciprocity": "share of directed edges whose reverse exists (networkx overall_reciprocity)",
        "isolated_share": "share of directory people with no edge",
        "largest_wcc_share": "share of nodes in the largest weakly connected component",
        "largest_scc_share": "share of nodes in the largest strongly connected component",
        "average_clustering": "mean local clustering over all nodes, isolated counting 0",
        "communities": "communities found (isolated people excluded)",
        "modularity": "modularity of the partition on the undirected weighted projection",
        "nmi_department": "normalised mutual information (arithmetic) between communities and departments over active people with a known department",
        "ei_index": "org-wide E-I index: (cross-department - within-department) / all ties with known departments",
        "ei_index_weighted": "org-wide E-I index by mutual weight",
        "cross_department_share": "of the window graph's kept interactions between two people whose departments are known, the share between different departments; people without a department are left out (the network's measure; mart_interactions_period.cross_department_interaction_share is the per-segment one of section 1)",
        "strong_weight_threshold": "edge weight at or above which a tie is strong by weight",
        "path_method": "exact or sampled_sources (closeness and betweenness)",
        "path_sources": "BFS sources used for closeness and betweenness (all senders when exact; when sampled, the fewest that meet network.centrality_error)",
        "betweenness_error_bound": "Hoeffding + union bound on the absolute error of normalised betweenness of every person at once, at network.centrality_confidence (95%); at most network.centrality_error; 0 when exact",
        "eigenvector_converged": "the eigenvector iteration met its tolerance",
        "bootstrap_replicates": "replicates behind rank_ci_low / rank_ci_high",
        "triangle_wedges": "wedges examined by the triangle enumeration (the cost driver of Burt's measures)",
        "ties_added": "directed ties present now and not in the previous period; NULL without one",
        "ties_dropped": "directed ties present in the previous period and not now; NULL without one",
        "ties_kept": "directed ties present in both; NULL without a previous period",
        "tie_turnover": "(added + dropped) / ties in either period (network dynamism); NULL without a previous period",
        "dropped_null_endpoint": "interactions dropped: missing source or target",
        "dropped_self_edge": "interactions dropped: source = target (always)",
        "dropped_type_not_weighted": "interactions dropped: weight 0 (interactions.weights) or type absent from type_weights",
        "dropped_audience_cap": "interactions dropped: their message reaches more than audience_cap people (policy drop)",
        "dropped_audience_scaled": "interactions down-weighted: their message reaches more than audience_cap people (policy scale)",
        "dropped_unknown_person": "interactions dropped: endpoint not in the directory (keep_unknown_people false)",
        "dropped_edges_below_minimum": "aggregated edges dropped by min_weight / min_interactions",
        "seed": "seed of every random choice (path sources, communities, bootstrap)",
    },
    "mart_network_influence_tiers": {
        "department": "department; NULL = the whole organisation (directory people only)",
        "influence_tier": "Top Influencer, Active Influencer or Observer",
        "group_size": "directory people in the group; NULL when suppressed",
        "people": "people of the group in the tier; NULL when suppressed",
        "suppressed": "the group has fewer than min_group_size people, or is withheld so that the hidden departments keep min_group_size people of every tier (complementary suppression by category)",
    },
}

RULES: dict[str, str] = {
    "edges.type_weights": "weight of one interaction by type (default reply 1, reaction 0.5, mention 1, share 1), set in interactions.weights and applied once, by the network stage, to every interaction of the window with the run's weights (a change applies to whole windows at once); weight 0 creates no edge. Outside the pipeline the library's EdgeRules.type_weights multiplies an input weight (minutes, counts)",
    "edges.direction": "edges point from the person acting to the person receiving (to_target), or the reverse",
    "edges.self_edges": "always dropped, whatever the configuration: acting on one's own message says nothing about the network",
    "edges.audience_cap": "a message reaching more than audience_cap (default 50) distinct people is dropped or scaled to a total of audience_cap; the interactions of one message are those of one int_interactions.audience_id (a mention belongs to the message that mentions, e.g. every recipient of an imported e-mail; any other interaction is its own message)",
    "edges.min_weight / min_interactions": "aggregated edges below these are dropped (defaults 0 and 1: keep everything)",
    "edges.keep_unknown_people": "interacting people absent from the directory are kept as nodes with NULL department (default)",
    "paths": "closeness and betweenness use hop distances; exact up to exact_paths_max_nodes (5000), above that estimated from uniformly sampled people with an out-edge, seeded, as many as the error target centrality_error (0.12) asks at centrality_confidence (0.95), ~530 at 100k people (or a fixed path_sources)",
    "betweenness.error": "with k sampled sources, every person's normalised betweenness is within (n/(n-1)) sqrt(ln(2n/0.05)/(2k)) of the exact value with probability 0.95 (Hoeffding + union bound); measured rank agreement is in bench/results/network.md",
    "structural_holes": "constraint, effective size and efficiency are computed for everyone, from triangle sums of the undirected projection with mutual weights",
    "clustering": "local clustering of the undirected, unweighted projection",
    "communities": "networkit PLM (Louvain with refinement) by default or igraph Leiden, on mutual weights, resolution 1, single-threaded and seeded for repeatability",
    "nmi": "normalised mutual information with arithmetic-mean normalisation, over active people with a known department",
    "ties.strength": "strong by weight at the 0.75 quantile of edge weight (or an absolute threshold); strong by embeddedness at neighbourhood overlap >= 0.1; strength_class combines both",
    "ei_index": "undirected ties between people with known departments; ties to people without a department are left out (of the E-I index, cross-department ties and shares, department tables and NMI alike: no department is not a department)",
    "influence.percentile": "share of other people with a strictly lower score, so all who received nothing share percentile 0",
    "influence.tiers": "Top Influencer >= 0.8, Active Influencer >= 0.25, else Observer (Salesforce Chatter)",
    "influence.rising_stars": "largest percentile gains vs the previous period, gain >= 0.1, at most 20 people, Observers excluded",
    "influence.bootstrap": "Poisson bootstrap of interactions (20 replicates, seeded), 90% interval of the rank",
    "personas": "give = interactions given + posts, receive = interactions received; Observer if give + receive < 3; Catalyst if receive > 2 x give; Engager if receive within [give / 2, 2 x give]; otherwise Broadcaster if posts >= 50% of give, else Responder",
    "privacy": "department and tier aggregates over fewer than min_group_size (5) people are NULL with suppressed = true; person-level tables are internal",
    "dynamics": "ties compared between consecutive snapshots of the same window length and rules",
    "repeatability": "the tables depend on the data and the rules only: people are numbered in person_key order, interactions are read in a canonical order, and every random choice uses the seed (network.seed); a rerun gives identical tables",
    "empty_windows": "a window without any interaction publishes the directory's people as isolated (Observers), no ties and no communities",
}


def _settings(model: type[BaseModel], prefix: str) -> list[tuple[str, Any, str]]:
    """(dotted key, default, description) of every field of a rules model, nested models flattened."""
    out: list[tuple[str, Any, str]] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _settings(kind, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", field.get_default(call_default_factory=True), field.description or ""))
    return out


def render_rules() -> list[str]:
    """docs/metrics.md's section of every rule and threshold of the network, tier and persona metrics:
    each setting of the configuration's `network:` section with its default, then the rules in words."""
    from pipelines.config import InteractionRules, PrivacyConfig
    from pipelines.network.rules import SET_ELSEWHERE, NetworkRules

    # the settings with their one place elsewhere in the configuration, at the values the pipeline uses
    elsewhere = {
        "edges.type_weights": ("interactions.weights", InteractionRules.model_validate({}).weights,
                               "weight of one interaction of each type, applied once by the network stage; "
                               "a type with weight 0 creates no edge"),
        "min_group_size": ("privacy.min_group_size", PrivacyConfig.model_validate({}).min_group_size,
                           "published aggregates over fewer people are suppressed"),
    }

    lines = ["## Network rules and thresholds", "",
             "Every rule and threshold the network, influence tier and persona metrics (section 3) use, with "
             "its default. An organisation sets them in the configuration's `network:` section (validated by "
             "`pipelines.network.rules.NetworkRules`: a bad value is an error naming its key); the interaction "
             "weights are set in `interactions.weights` and the group size in `privacy.min_group_size`, "
             "nowhere else.", "",
             "| setting | default | what it does |", "|---|---|---|"]
    for key, default, text in _settings(NetworkRules, ""):
        if key in elsewhere:
            setting, default, text = elsewhere[key]
            setting = f"`{setting}`"
        elif key in SET_ELSEWHERE:  # library callers only: the pipeline fixes it
            setting, text = f"{key} (not configurable)", SET_ELSEWHERE[key]
            default = {"edges.audience_key": "audience_id", "edges.use_input_weight": False}.get(key, default)
        else:
            setting = f"`network.{key}`"
        lines.append(f"| {setting} | `{json.dumps(default)}` | {text.replace('|', '/')} |")
    lines += ["", "### The rules in words", "", "| rule | definition |", "|---|---|"]
    lines += [f"| {name} | {text.replace('|', '/')} |" for name, text in RULES.items()]
    return [*lines, ""]
