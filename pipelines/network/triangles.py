"""Undirected projection of the person graph and weighted triangle sums, vectorised with numpy.

Local clustering, tie embeddedness and Burt's constraint / effective size all reduce to sums over the
triangles of the undirected projection. Listing each triangle once (orienting every edge from the
lower- to the higher-degree endpoint, the classic O(m^1.5) bound) and accumulating per-edge sums is far
cheaper than the two-hop sparse product P @ P that a direct translation of Burt's formula needs, which is
what makes constraint affordable for everyone on large graphs (PERFORMANCE.md: 150 s at 6M edges
with the product). Work is done in chunks of wedges so memory stays bounded.

This module is pure numpy/scipy; it never touches I/O and never depends on person keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.network.graph import PersonGraph

#: wedges (pairs of out-neighbours in the degree orientation) examined per chunk; ~40 bytes each
WEDGE_CHUNK = 4_000_000


@dataclass(frozen=True)
class Undirected:
    """Undirected projection: one row per unordered pair {lo, hi} (lo < hi) linked in either direction.

    `s` is the mutual weight w(lo->hi) + w(hi->lo), as in Burt's and networkx's definitions.
    """

    n: int
    lo: np.ndarray
    hi: np.ndarray
    s: np.ndarray
    mutual: np.ndarray  # bool: both directions present

    @property
    def m(self) -> int:
        return len(self.lo)

    def degree(self) -> np.ndarray:
        """Distinct neighbours per node."""
        return np.bincount(self.lo, minlength=self.n) + np.bincount(self.hi, minlength=self.n)

    def strength(self) -> np.ndarray:
        return np.bincount(self.lo, weights=self.s, minlength=self.n) + np.bincount(
            self.hi, weights=self.s, minlength=self.n
        )

    def max_weight(self) -> np.ndarray:
        out = np.zeros(self.n)
        np.maximum.at(out, self.lo, self.s)
        np.maximum.at(out, self.hi, self.s)
        return out


def undirected(g: PersonGraph) -> Undirected:
    n = g.n
    a = np.minimum(g.src, g.dst)
    b = np.maximum(g.src, g.dst)
    key = a * n + b
    ukey, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    s = np.bincount(inverse, weights=g.weight, minlength=len(ukey))
    return Undirected(n=n, lo=ukey // n, hi=ukey % n, s=s, mutual=counts == 2)


@dataclass(frozen=True)
class TriangleSums:
    """Per undirected edge e = {u, v} (aligned with `Undirected.lo/hi`):

    - `count[e]`: triangles through e = number of shared neighbours (embeddedness);
    - `two_step[e]`: sum over shared neighbours q of s(u,q) s(q,v) / strength(q) (Burt's indirect
      investment, before dividing by strength(u));
    - `product[e]`: sum over shared neighbours q of s(u,q) s(q,v) (effective size redundancy).
    """

    count: np.ndarray
    two_step: np.ndarray
    product: np.ndarray
    wedges: int
    #: per edge, the triangles whose three people are in the same group (`triangle_sums(groups=...)`):
    #: the triangles of the subgraph of the ties inside the groups, without a second search
    group_count: np.ndarray | None = None


def triangle_sums(u: Undirected, chunk: int = WEDGE_CHUNK, groups: np.ndarray | None = None) -> TriangleSums:
    """The sums of `TriangleSums` for every edge of `u`; with `groups` (a group code per node, -1 for
    none) also `group_count`."""
    n, m = u.n, u.m
    deg = u.degree()
    strength = u.strength()
    count = np.zeros(m, dtype=np.int64)
    two_step = np.zeros(m)
    product = np.zeros(m)
    group_count = None if groups is None else np.zeros(m, dtype=np.int64)
    if m == 0:
        return TriangleSums(count, two_step, product, 0, group_count)

    # Rank nodes by (degree, id); orient each edge from lower to higher rank.
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), deg))] = np.arange(n)
    rl, rh = rank[u.lo], rank[u.hi]
    a = np.minimum(rl, rh)
    b = np.maximum(rl, rh)
    order = np.lexsort((b, a))  # CSR in rank space, columns sorted
    a, b = a[order], b[order]
    edge_of = order  # position in CSR -> undirected edge index
    keys = a * n + b  # sorted, because rows then columns are sorted
    s_csr = u.s[order]
    by_rank = np.empty(n, dtype=np.int64)
    by_rank[rank] = np.arange(n)
    strength_r = strength[by_rank]
    groups_r = None if groups is None else groups[by_rank]

    row_start = np.searchsorted(a, np.arange(n + 1))
    later = row_start[a + 1] - np.arange(m) - 1  # entries after p in its row = wedges rooted at p
    total = int(later.sum())
    cum = np.cumsum(later)
    start = 0
    while start < m:
        # Take entries until the chunk's wedge budget is used (at least one entry).
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + chunk, side="right"))
        stop = max(stop, start + 1)
        cnt = later[start:stop]
        n_w = int(cnt.sum())
        if n_w:
            p1 = np.repeat(np.arange(start, stop), cnt)
            offs = np.arange(n_w) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            p2 = p1 + 1 + offs
            q = b[p1]  # second vertex (rank)
            r = b[p2]  # third vertex (rank)
            k = q * n + r
            pos = np.searchsorted(keys, k)
            pos_c = np.minimum(pos, m - 1)
            hit = keys[pos_c] == k
            p1, p2, p3 = p1[hit], p2[hit], pos_c[hit]
            root = a[p1]
            s_ab, s_ac, s_bc = s_csr[p1], s_csr[p2], s_csr[p3]
            d_a, d_b, d_c = strength_r[root], strength_r[b[p1]], strength_r[b[p2]]
            for pe, num, den in ((p3, s_ab * s_ac, d_a), (p2, s_ab * s_bc, d_b), (p1, s_ac * s_bc, d_c)):
                e = edge_of[pe]
                count += np.bincount(e, minlength=m)
                two_step += np.bincount(e, weights=num / den, minlength=m)
                product += np.bincount(e, weights=num, minlength=m)
            if groups_r is not None and group_count is not None:
                g_a, g_b, g_c = groups_r[root], groups_r[b[p1]], groups_r[b[p2]]
                same = (g_a >= 0) & (g_a == g_b) & (g_a == g_c)
                group_count += np.bincount(edge_of[np.concatenate([p1[same], p2[same], p3[same]])], minlength=m)
        start = stop
    return TriangleSums(count=count, two_step=two_step, product=product, wedges=total, group_count=group_count)


def node_triangles(u: Undirected, t: TriangleSums) -> np.ndarray:
    """Triangles through each node (each triangle counted once per node)."""
    per = np.bincount(u.lo, weights=t.count, minlength=u.n) + np.bincount(
        u.hi, weights=t.count, minlength=u.n
    )
    return (per / 2).astype(np.int64)
