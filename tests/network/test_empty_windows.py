"""A window without any interaction (a quiet day, a holiday, a source that landed nothing) gives the
network tables of an organisation without ties, with the same column types as any other window, instead
of failing (`cannot convert float NaN to integer` in centrality.structural_holes), issue 12."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pipelines.network import TABLES, compute_network, previous_period
from tests.network import helpers


def _no_interactions(like: pd.DataFrame) -> pd.DataFrame:
    return like.iloc[0:0]


def _types(frame: pd.DataFrame) -> dict[str, str]:
    """Column types as the warehouse creates them (from the Arrow schema): strings and columns of no
    type (no rows) are both text; anything else must keep its type, or an empty window's table would be
    created with text columns that later windows cannot fill."""
    schema = pa.Table.from_pandas(frame, preserve_index=False).schema
    return {f.name: "text" if pa.types.is_null(f.type) or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type) else str(f.type) for f in schema}


def test_a_window_without_interactions_gives_every_table_with_the_usual_column_types():
    edges, people = helpers.enron()
    busy = compute_network(edges, people, seed=0)
    quiet = compute_network(_no_interactions(edges), people, seed=0)
    assert set(quiet) == set(TABLES)
    for table in TABLES:
        assert list(quiet[table].columns) == list(busy[table].columns), table
        assert _types(quiet[table]) == _types(busy[table]), table
    person = quiet["fct_person_network"]
    assert len(person) == len(people) and (person["in_degree"] == 0).all()
    assert person["burt_constraint"].isna().all() and (person["influence_tier"] == "Observer").all()
    org = quiet["mart_network_org"].iloc[0]
    assert org["edges"] == 0 and org["isolated_share"] == 1.0 and org["communities"] == 0
    assert quiet["fct_network_ties"].empty and quiet["mart_network_community"].empty


def test_a_quiet_previous_period_and_a_quiet_current_one_combine():
    edges, people = helpers.enron()
    quiet = _no_interactions(edges)
    after_quiet = compute_network(edges, people, previous=previous_period(quiet, people))
    org = after_quiet["mart_network_org"].iloc[0]
    assert org["ties_dropped"] == 0 and org["ties_added"] == org["edges"] > 0
    before_quiet = compute_network(quiet, people, previous=previous_period(edges, people))
    assert before_quiet["mart_network_org"].iloc[0]["ties_added"] == 0
    assert before_quiet["mart_network_org"].iloc[0]["tie_turnover"] == 1.0
