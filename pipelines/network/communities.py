"""Community detection on the undirected weighted projection, modularity and alignment to departments.

Communities are found by Louvain with refinement (networkit PLM, the fastest measured in
PERFORMANCE.md) or by Leiden (igraph, `method="leiden"`). Direction is dropped because a community is a
group of people who interact, whoever started; the weight of a pair is the sum of both directions.
Isolated people get no community (-1). Community ids are relabelled 0.. by decreasing size, ties broken by
smallest member, so results do not depend on the library's internal numbering. Runs are made repeatable
by seeding the library and running PLM single-threaded (its parallel moves depend on thread timing).

Pure computation; never reads or writes anything.
"""

from __future__ import annotations

import random
from typing import Literal

import igraph as ig
import networkit as nk
import numpy as np

from pipelines.network.triangles import Undirected


def detect(
    u: Undirected, *, method: Literal["plm", "leiden"] = "plm", resolution: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Community id per node (-1 for isolated people)."""
    n = u.n
    labels = np.full(n, -1, dtype=np.int64)
    if u.m == 0:
        return labels
    if method == "plm":
        graph = nk.GraphFromCoo((u.s.astype(float), (u.lo, u.hi)), n=n, weighted=True, directed=False)
        threads = nk.getCurrentNumberOfThreads()
        nk.setNumberOfThreads(1)
        nk.setSeed(seed, False)
        try:
            algo = nk.community.PLM(graph, refine=True, gamma=resolution, par="none")
            algo.run()
            raw = np.asarray(algo.getPartition().getVector(), dtype=np.int64)
        finally:
            nk.setNumberOfThreads(threads)
    elif method == "leiden":
        graph = ig.Graph(n=n, edges=np.column_stack([u.lo, u.hi]), directed=False)
        state = random.getstate()
        random.seed(seed)  # igraph draws from Python's `random` by default
        try:
            part = graph.community_leiden(
                objective_function="modularity", weights=u.s.tolist(), resolution=resolution, n_iterations=-1
            )
        finally:
            random.setstate(state)
        raw = np.asarray(part.membership, dtype=np.int64)
    else:
        raise ValueError(f"method: unknown community method {method!r} (plm or leiden)")
    active = (np.bincount(u.lo, minlength=n) + np.bincount(u.hi, minlength=n)) > 0
    return _relabel(raw, active)


def _relabel(raw: np.ndarray, active: np.ndarray) -> np.ndarray:
    labels = np.full(len(raw), -1, dtype=np.int64)
    ids = raw[active]
    if len(ids) == 0:
        return labels
    uniq, inv = np.unique(ids, return_inverse=True)
    size = np.bincount(inv)
    first = np.full(len(uniq), len(raw))
    np.minimum.at(first, inv, np.flatnonzero(active))
    order = np.lexsort((first, -size))
    new = np.empty(len(uniq), dtype=np.int64)
    new[order] = np.arange(len(uniq))
    labels[active] = new[inv]
    return labels


def modularity(u: Undirected, labels: np.ndarray, resolution: float = 1.0) -> float:
    """Newman modularity of the weighted undirected projection (isolated people do not matter)."""
    total = u.s.sum()
    if total == 0:
        return float("nan")
    strength = u.strength()
    cl, ch = labels[u.lo], labels[u.hi]
    same = cl == ch
    k = int(labels.max()) + 1
    internal = np.bincount(cl[same], weights=u.s[same], minlength=k)
    has = labels >= 0
    community_strength = np.bincount(labels[has], weights=strength[has], minlength=k)
    return float((internal / total).sum() - resolution * ((community_strength / (2 * total)) ** 2).sum())


def nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information, arithmetic-mean normalisation (sklearn's default).

    Both arrays are label codes of the same people; 1 when the partitions are identical, 0 when independent.
    Defined as 1 when both partitions are a single group (no information to disagree on).
    """
    if len(a) == 0:
        return float("nan")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    n = len(a)
    joint = np.bincount(ai * (bi.max() + 1) + bi).astype(float) / n
    joint = joint[joint > 0]
    pa = np.bincount(ai) / n
    pb = np.bincount(bi) / n
    h_a = -(pa * np.log(pa)).sum()
    h_b = -(pb * np.log(pb)).sum()
    h_ab = -(joint * np.log(joint)).sum()
    mi = h_a + h_b - h_ab
    if h_a == 0 and h_b == 0:
        return 1.0
    return float(max(0.0, mi) / ((h_a + h_b) / 2))
