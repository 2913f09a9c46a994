"""Build the directed, weighted person-to-person graph from canonical interactions.

Input is a frame shaped like `pipelines.model.INTERACTIONS` (source_key, target_key, interaction_type,
weight, optionally event_id / activity_date / container_id). The rules that turn interactions into edges
are the documented, configurable `EdgeRules` (METRICS.md section 3). Self-edges are always dropped,
whatever the rules say, because a person replying to or reacting to their own message says nothing about
the network. The result is a compact integer-indexed `PersonGraph` that every other module reads.

This module is pure: it never reads or writes a database or a file, and never sees a clear identity
(person keys are pseudonymous hashes and are only carried through).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from pipelines.model import INTERACTION_VERBS
from pipelines.network.rules import EdgeRules

__all__ = ["EdgeRules", "PersonGraph", "build_graph", "edges_frame", "graph_from_codes"]  # EdgeRules lives in rules.py

REQUIRED_COLUMNS: tuple[str, ...] = ("source_key", "target_key", "interaction_type")


@dataclass(frozen=True)
class PersonGraph:
    """A directed weighted graph on integer node ids 0..n-1.

    Edges are unique (src, dst) pairs sorted by (src, dst), never self-loops. `rows` keeps each
    interaction that survived the rules (its edge index and weight) so that the bootstrap can resample
    interactions rather than edges.
    """

    nodes: np.ndarray  # person_key per node id (object array)
    src: np.ndarray  # int64, per edge
    dst: np.ndarray  # int64, per edge
    weight: np.ndarray  # float64, per edge: sum of interaction weights
    count: np.ndarray  # int64, per edge: number of interactions
    type_counts: dict[str, np.ndarray]  # interaction type -> int64 per edge
    row_edge: np.ndarray  # int64 per kept interaction: its edge index
    row_weight: np.ndarray  # float64 per kept interaction
    dropped: dict[str, int] = field(default_factory=dict)  # rule name -> interactions (or edges) dropped
    #: the code of each node in a key space shared by several graphs (the network stage's windows), or None
    key_codes: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def m(self) -> int:
        return len(self.src)

    def adjacency(self, weights: np.ndarray | None = None) -> sparse.csr_matrix:
        """n x n CSR matrix, A[i, j] = weight of edge i -> j."""
        data = self.weight if weights is None else weights
        return sparse.csr_matrix((data, (self.src, self.dst)), shape=(self.n, self.n))

    def node_index(self) -> pd.Index:
        return pd.Index(self.nodes, name="person_key")


def build_graph(
    edges: pd.DataFrame, people_keys: pd.Series | np.ndarray | None = None, rules: EdgeRules | None = None
) -> PersonGraph:
    """Apply `rules` to interaction rows and aggregate them to unique directed edges.

    Nodes are the directory's people (in the given order, so isolated people exist in the graph) followed
    by any other endpoint, sorted, when `rules.keep_unknown_people`. Node ids follow the given order, so
    callers that need results independent of it pass the directory sorted (`compute_network` does).

    Weights: by default an interaction weighs its type weight times the input's `weight` column (library
    callers: intensities such as minutes, or 1); with `rules.type_weights` None the `weight` column is the
    weight as given (the pipeline, whose int_interactions.weight already is the configured type weight).
    """
    rules = rules or EdgeRules()
    missing = [c for c in REQUIRED_COLUMNS if c not in edges.columns]
    if missing:
        raise ValueError(f"interactions frame lacks columns {missing} (have {list(edges.columns)})")
    rows = len(edges)

    # Work in integer space: one factorize of all endpoint keys (fast on Arrow-backed strings), then
    # map the distinct keys to node ids. Per-row Python objects would cost ~10x more at millions of rows.
    codes, uniques = pd.factorize(pd.concat([edges["source_key"], edges["target_key"]], ignore_index=True))
    type_code, type_names = pd.factorize(edges["interaction_type"])
    weight = None
    if "weight" in edges.columns and (rules.type_weights is None or rules.use_input_weight):
        weight = edges["weight"].to_numpy(dtype=float, na_value=0.0 if rules.type_weights is None else 1.0)
    elif rules.type_weights is None:
        raise ValueError("type_weights None needs a `weight` column: the weight of each interaction")
    events = None
    if rules.audience_key is not None and rules.audience_cap is not None and rules.audience_key in edges.columns:
        events = pd.factorize(edges[rules.audience_key])[0]

    directory = (
        pd.Index(pd.Series(people_keys, dtype=object)).drop_duplicates()
        if people_keys is not None
        else pd.Index([], dtype=object)
    )
    if people_keys is None and not rules.keep_unknown_people:
        raise ValueError("keep_unknown_people=False needs the directory (people_keys)")
    key_to_node = directory.get_indexer(pd.Index(uniques, dtype=object))
    unknown = key_to_node < 0
    nodes = directory
    if rules.keep_unknown_people:
        others = pd.Index(np.asarray(uniques, dtype=object)[unknown]).sort_values()
        key_to_node[unknown] = len(directory) + others.get_indexer(np.asarray(uniques, dtype=object)[unknown])
        nodes = directory.append(others)
    return graph_from_codes(codes[:rows], codes[rows:], key_to_node, nodes.to_numpy(dtype=object),
                            type_code, [str(t) for t in type_names], rules, weight=weight, events=events)


def graph_from_codes(
    src_code: np.ndarray,
    dst_code: np.ndarray,
    key_to_node: np.ndarray,
    nodes: np.ndarray,
    type_code: np.ndarray,
    type_names: Sequence[str],
    rules: EdgeRules,
    *,
    weight: np.ndarray | None = None,
    events: np.ndarray | None = None,
    key_codes: np.ndarray | None = None,
) -> PersonGraph:
    """`build_graph` on interactions already coded as integers, in the canonical row order: endpoint key
    codes (-1 for NULL; `key_to_node` maps a code to its node id, -1 for a person outside the graph),
    type codes into `type_names` (-1 for NULL), the input weight per row (None: no weight column) and the
    message code per row (`rules.audience_key`; None: no cap). `key_codes` (the code of each node in a
    key space shared by several graphs) is carried for the comparison of two windows' ties."""
    dropped: dict[str, int] = {}
    if rules.direction == "to_source":
        src_code, dst_code = dst_code, src_code
    if rules.type_weights is None:
        # the input's weight is the interaction's weight (the pipeline's int_interactions.weight, set by
        # interactions.weights): applying a type weight again would weigh a reaction 0.5 x 0.5
        if weight is None:
            raise ValueError("type_weights None needs a `weight` column: the weight of each interaction")
        w = np.array(weight, dtype=float)
        w[type_code < 0] = 0.0
    else:
        type_w_of = np.array([rules.type_weights.get(str(t), 0.0) for t in type_names] + [0.0])
        w = type_w_of[type_code]  # code -1 (missing type) hits the trailing 0
        if rules.use_input_weight and weight is not None:
            w = w * weight

    null_end = (src_code < 0) | (dst_code < 0)
    self_edge = ~null_end & (src_code == dst_code)
    no_weight = ~null_end & ~self_edge & (w <= 0)
    dropped["null_endpoint"] = int(null_end.sum())
    dropped["self_edge"] = int(self_edge.sum())
    dropped["type_not_weighted"] = int(no_weight.sum())
    keep = ~(null_end | self_edge | no_weight)

    # Audience cap: counted on distinct targets per event after self-edges are gone, so a reply-all that
    # includes the sender does not count the sender.
    if rules.audience_key is not None and rules.audience_cap is not None and events is not None:
        has_ev = keep & (events >= 0)
        n_keys = int(max(src_code.max(initial=-1), dst_code.max(initial=-1))) + 2
        pair = np.unique(events[has_ev].astype(np.int64) * n_keys + dst_code[has_ev])
        audience_of = np.bincount(pair // n_keys, minlength=int(events.max(initial=-1)) + 1)
        audience = np.where(has_ev, audience_of[np.maximum(events, 0)], 0)
        over = has_ev & (audience > rules.audience_cap)
        dropped["audience_cap"] = int(over.sum()) if rules.audience_policy == "drop" else 0
        dropped["audience_scaled"] = int(over.sum()) if rules.audience_policy == "scale" else 0
        if rules.audience_policy == "drop":
            keep &= ~over
        else:
            w = np.where(over, w * rules.audience_cap / np.maximum(audience, 1), w)

    s_all = np.where(src_code >= 0, key_to_node[np.maximum(src_code, 0)], -1)
    t_all = np.where(dst_code >= 0, key_to_node[np.maximum(dst_code, 0)], -1)
    known = keep & (s_all >= 0) & (t_all >= 0)
    dropped["unknown_person"] = int((keep & ~known).sum())
    s = s_all[known].astype(np.int64)
    t = t_all[known].astype(np.int64)
    w = w[known]
    tcode = type_code[known]
    code_of = {str(name): i for i, name in enumerate(type_names)}

    n = len(nodes)
    key = s * n + t
    ukey, inverse = np.unique(key, return_inverse=True)
    m = len(ukey)
    weight_sum = np.bincount(inverse, weights=w, minlength=m).astype(float)  # float also for no rows
    count = np.bincount(inverse, minlength=m).astype(np.int64)
    type_counts = {
        name: np.bincount(inverse[tcode == code_of.get(name, -2)], minlength=m).astype(np.int64)
        for name in INTERACTION_VERBS
    }

    ok = (weight_sum >= rules.min_weight) & (count >= rules.min_interactions)
    dropped["edges_below_minimum"] = int((~ok).sum())
    new_id = np.full(m, -1, dtype=np.int64)
    new_id[ok] = np.arange(int(ok.sum()))
    row_edge = new_id[inverse]
    row_keep = row_edge >= 0
    ukey = ukey[ok]
    return PersonGraph(
        nodes=np.asarray(nodes, dtype=object),
        src=ukey // n,
        dst=ukey % n,
        weight=weight_sum[ok],
        count=count[ok],
        type_counts={k: v[ok] for k, v in type_counts.items()},
        row_edge=row_edge[row_keep],
        row_weight=w[row_keep],
        dropped=dropped,
        key_codes=key_codes,
    )


def edges_frame(g: PersonGraph) -> pd.DataFrame:
    """The aggregated edges with person keys: source_key, target_key, weight, interactions, n_<type>."""
    out = pd.DataFrame(
        {
            "source_key": g.nodes[g.src],
            "target_key": g.nodes[g.dst],
            "weight": g.weight,
            "interactions": g.count,
        }
    )
    for name, counts in g.type_counts.items():
        out[f"n_{name}"] = counts
    return out
