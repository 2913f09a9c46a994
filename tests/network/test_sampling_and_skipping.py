"""Sampled closeness and betweenness meet their stated error target, and reruns are deterministic; the
network stage does not recompute a run's windows whose inputs are published unchanged (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.network import TABLES, NetworkRules, compute_network
from pipelines.network import centrality as c
from pipelines.network_stage import run_network
from tests.network import helpers
from tests.network import pipeline_data as pdata


def _person(rules: NetworkRules) -> tuple[pd.DataFrame, pd.Series]:
    edges, people = helpers.eu_core()
    out = compute_network(edges, people, rules=rules)
    return out["fct_person_network"].set_index("person_key"), out["mart_network_org"].iloc[0]


def test_sampled_betweenness_is_within_the_published_bound_of_exact_on_eu_core():
    exact, exact_org = _person(NetworkRules())  # 1005 people: below the default threshold, exact
    assert exact_org["path_method"] == "exact" and exact_org["betweenness_error_bound"] == 0.0
    rules = NetworkRules(exact_paths_max_nodes=100, centrality_error=0.3, centrality_confidence=0.9)
    sampled, org = _person(rules)
    k = c.sources_for_error(int(org["nodes"]), 0.3, 0.1)
    assert org["path_method"] == "sampled_sources" and org["path_sources"] == k < 1005
    assert 0 < org["betweenness_error_bound"] <= 0.3
    error = (sampled["betweenness"] - exact["betweenness"].reindex(sampled.index)).abs()
    assert error.max() <= org["betweenness_error_bound"]
    # the estimate ranks people much like the exact values (not only within a loose bound)
    assert sampled["betweenness"].corr(exact["betweenness"].reindex(sampled.index), method="spearman") > 0.8
    assert sampled["closeness"].corr(exact["closeness"].reindex(sampled.index), method="spearman") > 0.9


def test_a_tighter_error_target_samples_more_sources():
    n = 100_000
    assert c.sources_for_error(n, 0.05) > c.sources_for_error(n, 0.12) > c.sources_for_error(n, 0.2)
    for error in (0.05, 0.12, 0.2):
        k = c.sources_for_error(n, error)
        assert c.sampled_error_bound(n, k) <= error < c.sampled_error_bound(n, k - 1)


def test_sampled_mode_is_deterministic():
    rules = NetworkRules(exact_paths_max_nodes=100, centrality_error=0.3)
    first, _ = _person(rules)
    second, _ = _person(rules)
    pd.testing.assert_frame_equal(first, second)
    other, _ = _person(rules.model_copy(update={"seed": 1}))
    assert not np.array_equal(first["betweenness"].to_numpy(), other["betweenness"].to_numpy())


@pytest.mark.slow
def test_unchanged_windows_are_not_recomputed_and_a_changed_input_is(tmp_path):
    edges, labels, path = pdata.eu_core_half_labels(tmp_path)
    settings = pdata.eu_core_settings(tmp_path, path)
    engine = pdata.run(settings, pdata.EU_INTERVAL)  # computes and publishes every window of the day
    try:
        tables = ("mart_network_org", "fct_person_network", "fct_network_ties")
        before = {t: pdata.frame(engine, f"select * from {t} order by all") for t in tables}
        again = run_network(settings, pdata.EU_DAY, engine=engine)
        assert set(again["windows"]) == {"rolling_28d", "rolling_90d", "month"}
        assert all(w["skipped"] for w in again["windows"].values())
        assert not set(again["rows"]) & set(TABLES)  # no network table written again
        for t in tables:
            pd.testing.assert_frame_equal(pdata.frame(engine, f"select * from {t} order by all"), before[t])
        # one interaction less: every window of the day holds it, so all are computed again
        with engine.begin() as conn:
            conn.exec_driver_sql("delete from int_interactions where event_id = "
                                 "(select min(event_id) from int_interactions)")
        changed = run_network(settings, pdata.EU_DAY, engine=engine)
        assert not any(w["skipped"] for w in changed["windows"].values())
        assert all(changed["windows"][k]["digest"] != again["windows"][k]["digest"] for k in changed["windows"])
        assert changed["rows"]["fct_network_ties"] > 0
        ties = pdata.frame(engine, "select sum(interactions) as n from fct_network_ties where window_name = 'month'")
        before_ties = before["fct_network_ties"]
        assert ties["n"].iloc[0] < before_ties.loc[before_ties["window_name"] == "month", "interactions"].sum()
        # and that change is now published: the next rerun skips again
        assert all(w["skipped"] for w in run_network(settings, pdata.EU_DAY, engine=engine)["windows"].values())
    finally:
        engine.dispose()
