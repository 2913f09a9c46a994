"""One test per edge rule of EdgeRules (METRICS.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipelines.network.graph import EdgeRules, build_graph, edges_frame
from tests.network.helpers import interactions


def _edges(df, people=None, **rules):
    g = build_graph(df, people, EdgeRules(**rules))
    return edges_frame(g).set_index(["source_key", "target_key"]), g


def test_reply_to_own_post_creates_no_edge():
    e, g = _edges(interactions([("a", "a", "reply"), ("a", "b", "reply")]))
    assert list(e.index) == [("a", "b")]
    assert g.dropped["self_edge"] == 1


def test_self_edges_are_dropped_even_with_every_rule_relaxed():
    e, _ = _edges(interactions([("a", "a", "share", 5.0)]), audience_key=None, min_weight=0.0)
    assert e.empty


def test_reaction_weighs_half_a_reply_by_default():
    e, _ = _edges(interactions([("a", "b", "reaction"), ("a", "c", "reply")]))
    assert e.loc[("a", "b"), "weight"] == 0.5
    assert e.loc[("a", "c"), "weight"] == 1.0


def test_type_weights_are_configurable_and_unlisted_types_create_no_edge():
    e, g = _edges(
        interactions([("a", "b", "reaction"), ("a", "c", "mention")]), type_weights={"reaction": 2.0}
    )
    assert e.loc[("a", "b"), "weight"] == 2.0
    assert ("a", "c") not in e.index
    assert g.dropped["type_not_weighted"] == 1


def test_unknown_interaction_type_in_rules_is_rejected_with_the_field_name():
    with pytest.raises(ValidationError, match="type_weights"):
        EdgeRules(type_weights={"like": 1.0})


def test_input_weight_multiplies_the_type_weight_unless_disabled():
    df = interactions([("a", "b", "reply", 3.0)])
    assert _edges(df)[0].loc[("a", "b"), "weight"] == 3.0
    assert _edges(df, use_input_weight=False)[0].loc[("a", "b"), "weight"] == 1.0


def test_without_type_weights_the_input_weight_is_the_weight_and_zero_creates_no_edge():
    df = interactions([("a", "b", "reaction", 0.5), ("a", "c", "reply", 2.0), ("a", "d", "share", 0.0)])
    e, g = _edges(df, type_weights=None)
    assert e.loc[("a", "b"), "weight"] == 0.5 and e.loc[("a", "c"), "weight"] == 2.0
    assert ("a", "d") not in e.index and g.dropped["type_not_weighted"] == 1
    with pytest.raises(ValueError, match="weight"):
        build_graph(df.drop(columns=["weight"]), None, EdgeRules(type_weights=None))


def test_aggregation_sums_weights_and_counts_per_type():
    e, _ = _edges(
        interactions(
            [
                ("a", "b", "reply"),
                ("a", "b", "reply"),
                ("a", "b", "reaction"),
                ("a", "b", "share"),
                ("b", "a", "mention"),
            ]
        )
    )
    row = e.loc[("a", "b")]
    assert row["weight"] == 3.5 and row["interactions"] == 4
    assert (row["n_reply"], row["n_reaction"], row["n_mention"], row["n_share"]) == (2, 1, 0, 1)
    assert e.loc[("b", "a"), "n_mention"] == 1


def test_direction_to_source_reverses_edges():
    e, _ = _edges(interactions([("a", "b", "reply")]), direction="to_source")
    assert list(e.index) == [("b", "a")]


def _broadcast(n_targets: int):
    return interactions(
        [("a", f"t{i}", "mention") for i in range(n_targets)] + [("a", "b", "reply")],
        event_id=["big"] * n_targets + ["small"],
    )


def test_audience_above_cap_is_scaled_to_the_cap_in_total():
    e, g = _edges(_broadcast(10), audience_cap=4, audience_policy="scale")
    big = e.drop(index=("a", "b"))
    assert np.isclose(big["weight"].sum(), 4.0)
    assert np.allclose(big["weight"], 0.4)
    assert e.loc[("a", "b"), "weight"] == 1.0
    assert g.dropped["audience_scaled"] == 10


def test_audience_above_cap_is_dropped_with_policy_drop():
    e, g = _edges(_broadcast(10), audience_cap=4, audience_policy="drop")
    assert list(e.index) == [("a", "b")]
    assert g.dropped["audience_cap"] == 10


def test_audience_at_the_cap_counts_in_full_and_self_is_not_audience():
    df = _broadcast(4)
    df.loc[len(df)] = ["a", "a", "mention", 1.0, "big"]  # the sender in their own audience
    e, _ = _edges(df, audience_cap=4, audience_policy="drop")
    assert len(e) == 5 and np.allclose(e["weight"], 1.0)


def test_min_weight_and_min_interactions_drop_light_edges():
    df = interactions([("a", "b", "reaction"), ("a", "c", "reply"), ("a", "c", "reply")])
    assert list(_edges(df, min_weight=1.0)[0].index) == [("a", "c")]
    assert list(_edges(df, min_interactions=2)[0].index) == [("a", "c")]


def test_directory_people_without_edges_are_nodes_and_unknown_people_are_configurable():
    df = interactions([("a", "x", "reply"), ("a", "b", "reply")])
    _, g = _edges(df, people=["a", "b", "c"])
    assert list(g.nodes) == ["a", "b", "c", "x"]
    e, g2 = _edges(df, people=["a", "b", "c"], keep_unknown_people=False)
    assert list(g2.nodes) == ["a", "b", "c"] and list(e.index) == [("a", "b")]
    assert g2.dropped["unknown_person"] == 1


def test_rows_kept_for_bootstrap_match_edge_weights():
    df = interactions([("a", "b", "reply"), ("a", "b", "reaction"), ("b", "c", "share"), ("c", "c", "reply")])
    g = build_graph(df)
    assert np.allclose(np.bincount(g.row_edge, weights=g.row_weight, minlength=g.m), g.weight)
