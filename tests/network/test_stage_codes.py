"""The network stage reads the interactions as integer codes (`network_stage._read_span`) and builds each
window's graph from them (`_window_graph`): the graph must be exactly the one `build_graph` makes of the
same rows read as text in the canonical order, whatever the keys' case or alphabet (codes sort like the
text: collation "C", the code point order pandas sorts in), with NULL endpoints and types, self-edges,
people outside the directory and a message above the audience cap."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import warehouse
from pipelines.network import NetworkRules
from pipelines.network.compute import canonical_inputs, canonical_people
from pipelines.network.graph import PersonGraph, build_graph
from pipelines.network.rules import EdgeRules
from pipelines.network_stage import _read_span, _window_graph

START = dt.date(2026, 3, 1)
# case, accents, a German sharp s and digits: their code point order is not a dictionary's order
KEYS = ["a", "B", "b", "É", "e", "ß", "z9", "Z10", "ä"]
OUTSIDE = ["x-outside", "Ω"]  # endpoints that are not in the directory


def _interactions(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    everyone = np.array(KEYS + OUTSIDE, dtype=object)
    source = everyone[rng.integers(0, len(everyone), rows)]
    target = everyone[rng.integers(0, len(everyone), rows)]
    source[rng.random(rows) < 0.03] = None
    target[rng.random(rows) < 0.03] = None
    kinds = np.array(["reply", "reaction", "mention", "share", "Vote", None], dtype=object)
    kind = kinds[rng.choice(len(kinds), rows, p=[0.3, 0.3, 0.2, 0.1, 0.05, 0.05])]
    messages = np.array([f"m{i}" for i in range(40)] + ["Mé", "mZ", "m_", "M1"], dtype=object)
    audience = messages[rng.integers(0, len(messages), rows)]
    # one message reaching every person: above the cap of the rules below
    audience[:len(everyone)] = "broadcast"
    target[:len(everyone)] = everyone
    audience[rng.random(rows) < 0.05] = None  # an older day: the event is its own message
    return pd.DataFrame({
        "source": "demo",
        "event_id": [f"e{i}" for i in range(rows)],
        "audience_id": audience,
        "source_key": source,
        "target_key": target,
        "interaction_type": kind,
        "activity_date": [START + dt.timedelta(days=int(d)) for d in rng.integers(0, 60, rows)],
        "container_id": "c",
    })


@pytest.fixture(scope="module")
def span_and_rows(tmp_path_factory: pytest.TempPathFactory):
    rows = _interactions(np.random.default_rng(7), 3000)
    path = Path(tmp_path_factory.mktemp("codes")) / "w.duckdb"
    engine = warehouse.make_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        raw.register("rows_df", rows)
        raw.execute("create table int_interactions as select * from rows_df")
        raw.register("people_df", pd.DataFrame({"person_key": KEYS}))
        raw.execute("create table stg_people as select * from people_df")
        span = _read_span(conn, START, START + dt.timedelta(days=59))
    engine.dispose()
    return span, rows


def _same(a: PersonGraph, b: PersonGraph) -> None:
    assert a.nodes.tolist() == b.nodes.tolist()
    for field in ("src", "dst", "count", "row_edge"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    for field in ("weight", "row_weight"):  # the same sums in the same order: equal to the bit
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.type_counts.keys() == b.type_counts.keys()
    for name in a.type_counts:
        np.testing.assert_array_equal(a.type_counts[name], b.type_counts[name])
    assert a.dropped == b.dropped


@pytest.mark.parametrize("edge_rules", [
    EdgeRules(type_weights={"reply": 1.0, "reaction": 0.5, "mention": 1.0}, use_input_weight=False,
              audience_key="audience_id", audience_cap=5),
    EdgeRules(type_weights={"reply": 1.0, "reaction": 0.5, "mention": 1.0, "share": 2.0}, use_input_weight=False,
              audience_key="audience_id", audience_cap=3, audience_policy="drop", keep_unknown_people=False),
    EdgeRules(type_weights={"reply": 1.0, "reaction": 0.25}, use_input_weight=False, audience_key="audience_id",
              direction="to_source", min_weight=1.0),
])
@pytest.mark.parametrize("days", [(0, 59), (10, 37), (40, 40)])
def test_the_coded_window_graph_is_the_graph_of_the_text_rows(span_and_rows, edge_rules, days):
    span, rows = span_and_rows
    rules = NetworkRules(edges=edge_rules)
    start, end = (START + dt.timedelta(days=d) for d in days)
    people = canonical_people(pd.DataFrame({"person_key": KEYS[::-1], "department": "d"}))
    codes = pd.Index(span.keys).get_indexer(people["person_key"])
    coded = _window_graph(span, span.mask(start, end), codes, rules)

    window = rows[(rows["activity_date"] >= start) & (rows["activity_date"] <= end)].sample(frac=1, random_state=3)
    window = window.assign(audience_id=window["audience_id"].fillna(window["source"] + ":" + window["event_id"]))
    edges, people = canonical_inputs(window, people, edge_rules)
    text = build_graph(edges, people["person_key"], edge_rules)
    assert text.m > 0
    _same(coded, text)
    # the key codes of the nodes name the same people
    assert coded.key_codes is not None and span.keys[coded.key_codes].tolist() == text.nodes.tolist()


def test_the_span_keys_are_in_code_point_order(span_and_rows):
    span, rows = span_and_rows
    expected = sorted(set(rows["source_key"].dropna()) | set(rows["target_key"].dropna()) | set(KEYS))
    assert span.keys.tolist() == expected
    assert span.types == sorted(rows["interaction_type"].dropna().unique())
