"""Org-level summary of one network snapshot: size, density, reciprocity, connectivity, clustering.

Conventions (also in `catalogue.RULES`): the node set is the directory plus any interacting person not in
it; density is directed edges / (n (n - 1)) over that node set; the isolated share counts directory people
with no edge; component shares are over all nodes; average clustering averages the local clustering of the
undirected projection over all nodes, isolated people counting 0 (networkx `average_clustering`).

Pure computation; no I/O.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from pipelines.network.centrality import global_reciprocity
from pipelines.network.graph import PersonGraph
from pipelines.network.triangles import Undirected


def component_shares(g: PersonGraph) -> tuple[float, float]:
    """Share of nodes in the largest weakly and strongly connected components."""
    if g.n == 0:
        return float("nan"), float("nan")
    adj = sparse.csr_matrix((np.ones(g.m), (g.src, g.dst)), shape=(g.n, g.n))
    out = []
    for connection in ("weak", "strong"):
        _, labels = csgraph.connected_components(adj, directed=True, connection=connection)
        out.append(float(np.bincount(labels).max() / g.n))
    return out[0], out[1]


def org_summary(
    g: PersonGraph, u: Undirected, n_directory: int, local_clustering: np.ndarray
) -> dict[str, float]:
    n = g.n
    active = np.bincount(np.concatenate([g.src, g.dst]), minlength=n) > 0
    wcc, scc = component_shares(g)
    return {
        "nodes": float(n),
        "directory_people": float(n_directory),
        "active_people": float(active.sum()),
        "edges": float(g.m),
        "undirected_ties": float(u.m),
        "interactions": float(g.count.sum()),
        "total_weight": float(g.weight.sum()),
        "density": g.m / (n * (n - 1)) if n > 1 else float("nan"),
        "reciprocity": global_reciprocity(g, u),
        "isolated_share": float((~active[:n_directory]).sum() / n_directory) if n_directory else float("nan"),
        "largest_wcc_share": wcc,
        "largest_scc_share": scc,
        "average_clustering": float(local_clustering.mean()) if n else float("nan"),
    }
