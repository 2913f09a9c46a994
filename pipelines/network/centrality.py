"""Per-person centralities of the directed, weighted person graph.

Definitions follow networkx (the test oracle) unless stated; every choice is in `catalogue.RULES`:
- degrees: distinct in/out neighbours; strengths: summed edge weights;
- PageRank: weighted, damping 0.85, dangling mass spread uniformly, scipy power iteration to an L1 change
  below `tol`;
- eigenvector: in-edge eigenvector of the weighted adjacency, by the shifted power iteration networkx uses
  (x <- (A^T + I) x, L2-normalised), so it is defined on graphs that are not strongly connected;
- closeness: incoming hop distances with the Wasserman-Faust correction for unreachable people (networkx
  `closeness_centrality` default); betweenness: hop shortest paths, normalised by (n-1)(n-2). Both are
  exact up to `exact_max_nodes`, otherwise estimated from uniformly sampled sources (see `sampled_error_bound`).
  Weights are not used as distances: a heavier tie is a closer one, and inverting weights is arbitrary;
- Burt constraint, effective size, efficiency on the mutual weights s(u,v) = w(u,v) + w(v,u), for everyone
  (triangle sums, `triangles.py`); NaN only for isolated people (networkx also returns NaN for people with
  no outgoing edge in a directed graph; we do not, their ego network is well defined);
- local clustering of the undirected, unweighted projection;
- reciprocity per person d_in / (d_in + d_out) (METRICS.md) plus the share of a person's ties that are
  two-way (networkx `reciprocity(G, node)`).

Pure computation: no I/O, no person keys, never networkx (too slow for production sizes).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import igraph as ig
import networkit as nk
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from pipelines.network.graph import PersonGraph
from pipelines.network.rules import NetworkRules
from pipelines.network.triangles import TriangleSums, Undirected, node_triangles


def degrees(g: PersonGraph) -> pd.DataFrame:
    n = g.n
    return pd.DataFrame(
        {
            "in_degree": np.bincount(g.dst, minlength=n),
            "out_degree": np.bincount(g.src, minlength=n),
            # float also without edges (bincount of nothing is an integer array): one column type always
            "in_strength": np.bincount(g.dst, weights=g.weight, minlength=n).astype(float),
            "out_strength": np.bincount(g.src, weights=g.weight, minlength=n).astype(float),
            "interactions_received": np.bincount(g.dst, weights=g.count, minlength=n).astype(np.int64),
            "interactions_given": np.bincount(g.src, weights=g.count, minlength=n).astype(np.int64),
        }
    )


def pagerank(
    g: PersonGraph,
    alpha: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted PageRank; sums to 1. Zero-weight edges count as absent (used by the bootstrap)."""
    return PageRank(g).run(alpha, tol, max_iter, weights)


class PageRank:
    """PageRank with the transposed sparsity pattern built once, so the bootstrap only swaps weights."""

    def __init__(self, g: PersonGraph):
        self.g = g
        # CSR of P^T: rows are targets. Sorting edges by (dst, src) once gives indices and indptr.
        self.order = np.lexsort((g.src, g.dst))
        self.indices = g.src[self.order].astype(np.int32)
        self.indptr = np.searchsorted(g.dst[self.order], np.arange(g.n + 1)).astype(np.int32)

    def run(
        self, alpha: float = 0.85, tol: float = 1e-10, max_iter: int = 1000, weights: np.ndarray | None = None
    ) -> np.ndarray:
        g, n = self.g, self.g.n
        if n == 0:
            return np.zeros(0)
        w = g.weight if weights is None else weights
        out = np.bincount(g.src, weights=w, minlength=n)
        dangling = out <= 0
        inv = np.zeros(n)
        inv[~dangling] = 1.0 / out[~dangling]
        data = (w * inv[g.src])[self.order]
        pt = sparse.csr_matrix((data, self.indices, self.indptr), shape=(n, n))
        x = np.full(n, 1.0 / n)
        for _ in range(max_iter):
            x_new = alpha * (pt @ x + x[dangling].sum() / n) + (1.0 - alpha) / n
            err = np.abs(x_new - x).sum()
            x = x_new
            if err < tol:
                break
        return x / x.sum()


def eigenvector(g: PersonGraph, tol: float = 1e-10, max_iter: int = 10_000) -> tuple[np.ndarray, bool]:
    """In-edge eigenvector centrality (L2 norm 1) and whether the iteration converged."""
    n = g.n
    if n == 0 or g.m == 0:
        return np.zeros(n), True
    at = sparse.csr_matrix((g.weight, (g.dst, g.src)), shape=(n, n))
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        x_new = x + at @ x
        x_new /= np.linalg.norm(x_new)
        if np.abs(x_new - x).sum() < n * tol:
            return x_new, True
        x = x_new
    return x, False


@dataclass(frozen=True)
class PathMethod:
    """How closeness and betweenness were computed (published in mart_network_org)."""

    exact: bool
    sources: int  # BFS sources used (n when exact)
    error_bound: float  # 0 when exact; else the Hoeffding bound, see `sampled_error_bound`
    confidence: float


def sampled_error_bound(n: int, k: int, delta: float = 0.05) -> float:
    """Bound on the absolute error of normalised betweenness when estimated from k uniform sources.

    Each sampled source s contributes X_s = n * dependency_s(v) / ((n-1)(n-2)) in [0, n/(n-1)], and the
    estimate is the mean of k such terms (Brandes & Pich 2007). Hoeffding plus a union bound over the n
    people give: with probability >= 1 - delta, every person's error is at most
    (n/(n-1)) * sqrt(ln(2n/delta) / (2k)). Loose but honest; the benchmark reports the measured rank
    agreement, which is what the broker ranking depends on.
    """
    if k <= 0 or n < 3:
        return math.inf if n >= 3 else 0.0
    return n / (n - 1) * math.sqrt(math.log(2 * n / delta) / (2 * k))


def sources_for_error(n: int, error: float, delta: float = 0.05) -> int:
    """The fewest sampled sources k for which `sampled_error_bound(n, k, delta)` is at most `error`:
    the inverse of the bound, k = (n/(n-1))^2 ln(2n/delta) / (2 error^2), rounded up."""
    if n < 3:
        return 0
    k = math.ceil((n / (n - 1)) ** 2 * math.log(2 * n / delta) / (2 * error**2))
    # the rounding of the formula may leave the bound a hair above the target: one more source then
    return k if sampled_error_bound(n, k, delta) <= error else k + 1


def choose_sources(g: PersonGraph, exact_max_nodes: int, n_sources: int, seed: int) -> np.ndarray | None:
    """None when paths are computed exactly, else the sampled BFS sources (people with an out-edge)."""
    if g.n <= exact_max_nodes:
        return None
    senders = np.flatnonzero(np.bincount(g.src, minlength=g.n) > 0)
    if n_sources >= len(senders):
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(senders, size=n_sources, replace=False))


def path_sources(g: PersonGraph, rules: NetworkRules, seed: int) -> np.ndarray | None:
    """The sampled BFS sources of closeness and betweenness (None: exact), from the error target at the
    configured confidence or the fixed count configured, seeded."""
    delta = 1.0 - rules.centrality_confidence
    n_sources = (rules.path_sources if rules.path_sources is not None
                 else sources_for_error(g.n, rules.centrality_error, delta))
    return choose_sources(g, rules.exact_paths_max_nodes, n_sources, seed)


#: graphs with at least this many edges have their betweenness computed in the paths worker process while
#: one is open (`paths_worker`), beside the rest of their window's tables: igraph holds the interpreter
#: lock for the whole computation, so a thread could not run anything beside it
WORKER_MIN_EDGES = 50_000
_worker: ProcessPoolExecutor | None = None


@contextmanager
def paths_worker() -> Iterator[None]:
    """Within the block, `start_betweenness` of a large graph runs in one worker process (spawned, not
    forked: the caller may run threads, DuckDB's among them), so that it takes the second core while this
    process computes everything else. The result is the same: the same igraph call on the same graph.
    As with any spawned process, the worker imports the caller's main module again: a script that runs
    the network stage keeps its work under `if __name__ == "__main__":` (the CLI, the DAGs, pytest and
    the benchmarks do)."""
    global _worker
    if _worker is not None or multiprocessing.current_process().daemon:
        # nested: the outer block's worker; a daemonic process (a Celery prefork worker) may not have
        # children: everything runs here, with the same results
        yield
        return
    _worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield
    finally:
        worker, _worker = _worker, None
        worker.shutdown(wait=True, cancel_futures=True)


def _raw_betweenness(n: int, src: np.ndarray, dst: np.ndarray, sources: np.ndarray | None) -> np.ndarray:
    """igraph's directed betweenness (hops) from `sources` (every node when None), not normalised."""
    graph = ig.Graph(n=n, edges=np.column_stack([src, dst]), directed=True)
    if sources is None:
        return np.asarray(graph.betweenness(directed=True), dtype=float)
    return np.asarray(graph.betweenness(directed=True, sources=sources.tolist()), dtype=float)


def start_betweenness(g: PersonGraph, sources: np.ndarray | None) -> Callable[[], np.ndarray]:
    """`betweenness(g, sources)`, started: in the paths worker when one is open and the graph is large
    (`WORKER_MIN_EDGES`), else here and now. Call the result for the values."""
    n = g.n
    if n < 3 or g.m == 0:
        return lambda: np.zeros(n)
    if sources is not None:
        senders = int((np.bincount(g.src, minlength=n) > 0).sum())

    def scaled(raw: np.ndarray) -> np.ndarray:
        if sources is not None:
            raw *= senders / len(sources)
        return raw / ((n - 1) * (n - 2))

    if _worker is not None and g.m >= WORKER_MIN_EDGES:
        future = _worker.submit(_raw_betweenness, n, g.src, g.dst, sources)
        return lambda: scaled(future.result())
    values = scaled(_raw_betweenness(n, g.src, g.dst, sources))
    return lambda: values


def betweenness(g: PersonGraph, sources: np.ndarray | None) -> np.ndarray:
    """Normalised directed betweenness (hops); exact when `sources` is None, else estimated.

    Sources are drawn among people with an out-edge: the others contribute no dependency, so sampling
    only senders is unbiased after scaling by senders / k and has lower variance.
    """
    return start_betweenness(g, sources)()


def _bfs_hops(adjacency: sparse.csr_matrix, source: int, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The people `source` reaches (itself left out) and their hop distances, by scipy's breadth-first
    order: a FIFO queue, so each level of the search is a block of the order and the position of each
    person's predecessor never decreases along it; each level ends where the predecessors leave the
    previous level. (A search in another order would break that: it is checked, and networkit's BFS
    gives the distances then.)"""
    order, pred = csgraph.breadth_first_order(adjacency, source, directed=True, return_predecessors=True)
    r = len(order)
    hops = np.empty(r)
    if r <= 1:
        return order[1:], hops[1:]
    position[order] = np.arange(r)
    parent = position[pred[order[1:]]]  # parent[j]: position of the predecessor of position j + 1
    if parent[0] != 0 or (np.diff(parent) < 0).any():
        bfs = nk.distance.BFS(nk.GraphFromCoo((adjacency.tocoo().row, adjacency.tocoo().col), n=adjacency.shape[0],
                                              weighted=False, directed=True), source, storePaths=False)
        bfs.run()
        return order[1:], np.asarray(bfs.getDistances(asarray=True))[order[1:]]
    hops[0] = 0.0
    hi, level = 1, 0
    while hi < r:  # the positions before hi hold the levels so far; the next level: parents at the last one
        level += 1
        end = hi + int(np.searchsorted(parent[hi - 1:], hi, side="left"))
        hops[hi:end] = level
        hi = end
    return order[1:], hops[1:]


def closeness(g: PersonGraph, sources: np.ndarray | None) -> np.ndarray:
    """Incoming closeness, Wasserman-Faust corrected: (r/(n-1)) * (r / sum of distances from the r
    people who can reach v). With sampled sources, r and the sum are estimated from the sample (the
    ratio r / sum is then an unbiased-in-numerator estimate of the mean distance's inverse)."""
    n = g.n
    out = np.zeros(n)
    if n < 2 or g.m == 0:
        return out
    senders_mask = np.bincount(g.src, minlength=n) > 0
    src_list = np.flatnonzero(senders_mask) if sources is None else sources
    # reached people and hop distances per source, summed: integers, exact in any order
    reach = np.zeros(n)
    dist_sum = np.zeros(n)
    adjacency = sparse.csr_matrix((np.ones(g.m), (g.src, g.dst)), shape=(n, n))
    position = np.empty(n, dtype=np.int64)
    for s in src_list:
        reached, hops = _bfs_hops(adjacency, int(s), position)
        reach[reached] += 1
        dist_sum[reached] += hops
    if sources is None:
        r_hat = reach
    else:
        # Scale the sampled reach to the population of senders other than v.
        in_sample = np.zeros(n, dtype=bool)
        in_sample[sources] = True
        k_v = len(sources) - in_sample
        pop_v = senders_mask.sum() - senders_mask
        r_hat = reach * pop_v / np.maximum(k_v, 1)
    pos = dist_sum > 0
    # Ratio r / sum uses the sample directly (both scale by the same factor).
    out[pos] = (reach[pos] / dist_sum[pos]) * (r_hat[pos] / (n - 1))
    return out


def structural_holes(u: Undirected, t: TriangleSums) -> pd.DataFrame:
    """Burt's constraint, effective size and efficiency from mutual weights, for every person.

    constraint(i) = sum_j (p_ij + sum_q p_iq p_qj)^2 with p_ij = s_ij / strength_i, which is
    sum_j ((s_ij + two_step_ij) / strength_i)^2 over i's neighbours j.
    effective_size(i) = deg(i) - sum_j sum_q p_iq * s_jq / max_x s_jx, the redundancy sum running over
    shared neighbours q of i and j; efficiency = effective_size / deg(i).
    """
    n = u.n
    deg = u.degree().astype(float)
    strength = u.strength()
    max_w = u.max_weight()
    inner = u.s + t.two_step
    with np.errstate(divide="ignore", invalid="ignore"):
        c_lo = (inner / strength[u.lo]) ** 2
        c_hi = (inner / strength[u.hi]) ** 2
        # float whatever the input: bincount of no edges is an integer array, which cannot hold NaN
        constraint = (np.bincount(u.lo, weights=c_lo, minlength=n)
                      + np.bincount(u.hi, weights=c_hi, minlength=n)).astype(float)
        # redundancy of i seen through neighbour j: product[e] / (strength_i * max_w_j)
        r_lo = t.product / (strength[u.lo] * max_w[u.hi])
        r_hi = t.product / (strength[u.hi] * max_w[u.lo])
        redundancy = (np.bincount(u.lo, weights=r_lo, minlength=n)
                      + np.bincount(u.hi, weights=r_hi, minlength=n)).astype(float)
        eff = deg - redundancy
        efficiency = eff / deg
    isolated = deg == 0
    constraint[isolated] = np.nan
    eff[isolated] = np.nan
    efficiency[isolated] = np.nan
    return pd.DataFrame({"burt_constraint": constraint, "effective_size": eff, "efficiency": efficiency})


def clustering(u: Undirected, t: TriangleSums) -> np.ndarray:
    """Local clustering of the undirected unweighted projection; 0 for fewer than two neighbours."""
    deg = u.degree().astype(float)
    tri = node_triangles(u, t).astype(float)
    out = np.zeros(u.n)
    ok = deg >= 2
    out[ok] = 2 * tri[ok] / (deg[ok] * (deg[ok] - 1))
    return out


def reciprocity(g: PersonGraph, u: Undirected) -> pd.DataFrame:
    n = g.n
    d_in = np.bincount(g.dst, minlength=n).astype(float)
    d_out = np.bincount(g.src, minlength=n).astype(float)
    two_way = np.bincount(u.lo[u.mutual], minlength=n) + np.bincount(u.hi[u.mutual], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        receive = np.where(d_in + d_out > 0, d_in / (d_in + d_out), np.nan)
        mutual_share = np.where(d_in + d_out > 0, 2 * two_way / (d_in + d_out), np.nan)
    return pd.DataFrame(
        {"reciprocity": receive, "reciprocity_mutual": mutual_share, "two_way_ties": two_way.astype(np.int64)}
    )


def global_reciprocity(g: PersonGraph, u: Undirected) -> float:
    """Share of directed edges whose reverse edge exists (networkx `overall_reciprocity`)."""
    return float(2 * u.mutual.sum() / g.m) if g.m else float("nan")
