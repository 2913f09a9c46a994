"""The network stage's configuration, through the pipeline on the demo organisation (issue 12):

- the weight of an interaction type set in the YAML (`interactions.weights`) is the weight in
  fct_network_ties, applied once (it was multiplied by the library's type weight again: a reaction
  weighed 0.5 x 0.5), and a change of weights applies to every day of a window at once;
- the `network:` section (community method and resolution, persona and tier thresholds, edge rules)
  changes what is published, and a bad value is an error naming its key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from pipelines import jobs, warehouse
from pipelines.config import ConfigError, Settings, load_settings
from pipelines.network_stage import run_network

pytestmark = pytest.mark.slow

START = dt.date(2026, 5, 1)
END = START + dt.timedelta(days=27)
WEIGHTS = {"reply": 1.5, "reaction": 0.25, "mention": 2.0, "share": 0.0}


def _config(tmp: Path, **sections: Any) -> Path:
    data = {"lake_dir": str(tmp / "lake"), "warehouse_url": f"duckdb:///{tmp / 'w.duckdb'}",
            "sources": [{"name": "demo", "kind": "demo",
                         "options": {"people": 120, "days": 28, "start": START.isoformat(), "seed": 11}}],
            **sections}
    path = tmp / f"esn-{len(list(tmp.glob('esn-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("demo-config")
    settings = load_settings(_config(tmp, interactions={"weights": WEIGHTS}))
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, jobs.Interval(START, END), engine=engine)
    yield tmp, settings, engine
    engine.dispose()


def _frame(engine: sa.Engine, sql: str, **params: Any) -> pd.DataFrame:
    return warehouse.read_frame(engine, sql, params)


def test_the_yaml_weight_of_each_type_is_the_weight_in_fct_network_ties(demo):
    _, settings, engine = demo
    run_network(settings, END, engine=engine)
    ties = _frame(engine, "select * from fct_network_ties where window_name = 'rolling_28d' and window_end = :d",
                  d=END)
    org = _frame(engine, "select dropped_audience_scaled, dropped_type_not_weighted from mart_network_org "
                 "where window_name = 'rolling_28d' and window_end = :d", d=END).iloc[0]
    assert org["dropped_audience_scaled"] == 0  # the demo's messages reach few people: no cap here
    expected = sum(ties[f"n_{t}"] * w for t, w in WEIGHTS.items())
    assert len(ties) > 100 and (ties["n_reaction"] > 0).sum() > 10 and (ties["n_mention"] > 0).sum() > 10
    assert ties["weight"].to_numpy() == pytest.approx(expected.to_numpy())
    # weight 0 creates no edge: the shares of the window were dropped, and counted
    shares = _frame(engine, "select count(*) as n from int_interactions where interaction_type = 'share' "
                    "and activity_date between :s and :e", s=START, e=END)["n"].iloc[0]
    assert shares > 0 and (ties["n_share"] == 0).all() and org["dropped_type_not_weighted"] == shares


def test_new_weights_apply_to_the_whole_window_without_republishing(demo):
    tmp, _, engine = demo
    weights = {"reply": 1.0, "reaction": 0.75, "mention": 0.5, "share": 3.0}
    changed = load_settings(_config(tmp, interactions={"weights": weights}))
    run_network(changed, END, engine=engine)
    ties = _frame(engine, "select * from fct_network_ties where window_name = 'rolling_28d' and window_end = :d",
                  d=END)
    assert (ties["n_share"] > 0).any()
    expected = sum(ties[f"n_{t}"] * w for t, w in weights.items())
    assert ties["weight"].to_numpy() == pytest.approx(expected.to_numpy())


def _published(settings: Settings, engine: sa.Engine) -> dict[str, pd.DataFrame]:
    run_network(settings, END, engine=engine)
    q = "select * from {} where window_name = 'rolling_28d' and window_end = :d"
    return {t: _frame(engine, q.format(t), d=END)
            for t in ("mart_network_org", "fct_person_network", "mart_network_influence_tiers")}


def test_the_network_section_changes_the_published_result(demo):
    tmp, settings, engine = demo
    base = _published(settings, engine)
    tuned = load_settings(_config(tmp, interactions={"weights": WEIGHTS}, network={
        "community_resolution": 3.0, "personas": {"min_activity": 40},
        "influence": {"top_percentile": 0.95}}))
    assert tuned.network.community_resolution == 3.0
    changed = _published(tuned, engine)
    # a higher resolution finds more, smaller communities
    assert changed["mart_network_org"]["communities"].iloc[0] > base["mart_network_org"]["communities"].iloc[0]
    assert changed["mart_network_org"]["modularity"].iloc[0] != base["mart_network_org"]["modularity"].iloc[0]
    # Observers are the people with fewer than min_activity interactions given, received and posted
    person = changed["fct_person_network"]
    activity = person["interactions_given"] + person["interactions_received"] + person["posts"]
    assert ((person["persona"] == "Observer") == (activity < 40)).all()
    assert (person["persona"] == "Observer").sum() > (base["fct_person_network"]["persona"] == "Observer").sum()
    top = lambda t: t.loc[t["department"].isna() & (t["influence_tier"] == "Top Influencer"), "people"].iloc[0]  # noqa: E731
    assert top(changed["mart_network_influence_tiers"]) < top(base["mart_network_influence_tiers"])
    # back to the defaults: the defaults' tables again
    again = _published(settings, engine)
    pd.testing.assert_frame_equal(again["mart_network_org"], base["mart_network_org"], check_exact=True)


@pytest.mark.parametrize(("network", "key"), [
    ({"community_resolution": 0}, "network.community_resolution"),
    ({"community_method": "girvan_newman"}, "network.community_method"),
    ({"personas": {"min_activity": -1}}, "network.personas.min_activity"),
    ({"personas": {"balance_ratio": float("nan")}}, "network.personas.balance_ratio"),
    ({"influence": {"top_percentile": 1.5}}, "network.influence.top_percentile"),
    ({"edges": {"audience_cap": 0}}, "network.edges.audience_cap"),
    ({"ties": {"strong_overlap": 0.2}}, "network.ties.strong_overlap"),
    ({"edges": {"type_weights": {"reaction": 0.5}}}, "network.edges.type_weights"),
    ({"min_group_size": 3}, "network.min_group_size"),
])
def test_a_bad_network_setting_is_an_error_naming_its_key(tmp_path: Path, network: dict, key: str) -> None:
    path = _config(tmp_path, network=network)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        load_settings(path)
    assert str(path) in str(err.value)
