"""Ties: strength, embeddedness, bridging, and the department-level measures built on them.

- strength by weight: a directed edge is strong when its weight reaches the `strong_weight_quantile` of all
  edge weights in the snapshot (or an absolute `strong_weight_min`);
- strength by embeddedness: neighbourhood overlap (Onnela et al. 2007) = shared neighbours /
  (neighbours of either, excluding the pair) of the undirected pair, strong at `strong_overlap_min`;
- bridging: the tie crosses departments, crosses communities, or is a local bridge (no shared neighbour);
- E-I index (Krackhardt & Stern 1988) on undirected ties between people whose department is known:
  (external - internal) / (external + internal), per department and org-wide, by tie count and by weight;
- cross-department share: share of interactions touching a department that involve another department;
- density: internal directed edges / (n (n - 1)) over the department's directory headcount;
- internal clustering: mean local clustering of members within the department's own subgraph
  (isolated members count as 0, like networkx average_clustering).

Pure computation; no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.network.centrality import clustering
from pipelines.network.graph import PersonGraph
from pipelines.network.rules import TieRules

__all__ = ["TieRules", "department_table", "person_bridging", "tie_table", "weight_threshold"]
from pipelines.network.triangles import TriangleSums, Undirected, triangle_sums


def edge_to_undirected(g: PersonGraph, u: Undirected) -> np.ndarray:
    """Index into the undirected pairs for each directed edge."""
    keys = u.lo * u.n + u.hi
    e = np.minimum(g.src, g.dst) * u.n + np.maximum(g.src, g.dst)
    return np.searchsorted(keys, e)


def weight_threshold(g: PersonGraph, rules: TieRules) -> float:
    if rules.strong_weight_min is not None:
        return rules.strong_weight_min
    return float(np.quantile(g.weight, rules.strong_weight_quantile)) if g.m else float("nan")


def tie_table(
    g: PersonGraph, u: Undirected, t: TriangleSums, dept: np.ndarray, community: np.ndarray, rules: TieRules
) -> pd.DataFrame:
    """One row per directed edge (person keys attached by the caller)."""
    e = edge_to_undirected(g, u)
    deg = u.degree()
    common = t.count[e]
    union = deg[g.src] - 1 + deg[g.dst] - 1 - common
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = np.where(union > 0, common / union, 0.0)
    threshold = weight_threshold(g, rules)
    by_weight = g.weight >= threshold
    by_embed = overlap >= rules.strong_overlap_min
    strength = np.where(
        by_weight & by_embed, "strong", np.where(by_weight | by_embed, "intermediate", "weak")
    )
    ds, dt = dept[g.src], dept[g.dst]
    known = (ds >= 0) & (dt >= 0)
    cs, ct = community[g.src], community[g.dst]
    # nullable boolean, NULL when a department is unknown; typed also for a window without ties (an object
    # column of no rows has no type, and would be created as text by the warehouse)
    crosses = pd.array(ds != dt, dtype="boolean")
    crosses[~known] = pd.NA
    return pd.DataFrame(
        {
            "is_reciprocated": u.mutual[e],
            "embeddedness": common.astype(np.int64),
            "neighbourhood_overlap": overlap,
            "is_strong_by_weight": by_weight,
            "is_strong_by_embeddedness": by_embed,
            "strength_class": strength,
            "crosses_department": crosses,
            "crosses_community": (cs != ct) & (cs >= 0) & (ct >= 0),
            "is_local_bridge": common == 0,
        }
    )


def person_bridging(g: PersonGraph, u: Undirected, dept: np.ndarray, community: np.ndarray) -> pd.DataFrame:
    """Undirected ties per person that cross departments / communities."""
    n = u.n
    dl, dh = dept[u.lo], dept[u.hi]
    cross_d = (dl >= 0) & (dh >= 0) & (dl != dh)
    cl, ch = community[u.lo], community[u.hi]
    cross_c = (cl >= 0) & (ch >= 0) & (cl != ch)
    return pd.DataFrame(
        {
            "cross_department_ties": np.bincount(u.lo[cross_d], minlength=n)
            + np.bincount(u.hi[cross_d], minlength=n),
            "cross_community_ties": np.bincount(u.lo[cross_c], minlength=n)
            + np.bincount(u.hi[cross_c], minlength=n),
        }
    )


def _ei(external: np.ndarray | float, internal: np.ndarray | float) -> np.ndarray:
    ext = np.asarray(external, dtype=float)
    inn = np.asarray(internal, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ext + inn > 0, (ext - inn) / (ext + inn), np.nan)


def department_table(
    g: PersonGraph, u: Undirected, dept: np.ndarray, dept_names: list[str], headcount: np.ndarray,
    t: TriangleSums | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-department measures (indexed by department code) and the org-wide E-I / cross-department share.
    `t`: the triangle sums of `u` with `groups=dept`, whose triangles inside a department give the
    within-department clustering without another search."""
    k = len(dept_names)
    dl, dh = dept[u.lo], dept[u.hi]
    known = (dl >= 0) & (dh >= 0)
    internal = known & (dl == dh)
    external = known & (dl != dh)
    i_ties = np.bincount(dl[internal], minlength=k)
    e_ties = np.bincount(dl[external], minlength=k) + np.bincount(dh[external], minlength=k)
    i_w = np.bincount(dl[internal], weights=u.s[internal], minlength=k)
    e_w = np.bincount(dl[external], weights=u.s[external], minlength=k) + np.bincount(
        dh[external], weights=u.s[external], minlength=k
    )

    ds, dt = dept[g.src], dept[g.dst]
    dknown = (ds >= 0) & (dt >= 0)
    d_int = dknown & (ds == dt)
    d_ext = dknown & (ds != dt)
    cnt = g.count.astype(float)
    inter_in = np.bincount(ds[d_int], weights=cnt[d_int], minlength=k)
    inter_ext = np.bincount(ds[d_ext], weights=cnt[d_ext], minlength=k) + np.bincount(
        dt[d_ext], weights=cnt[d_ext], minlength=k
    )
    internal_edges = np.bincount(ds[d_int], minlength=k)

    # Clustering inside each department: keep only internal pairs; the graph falls apart into the
    # department subgraphs, so one pass gives every member's within-department clustering.
    sub = Undirected(n=u.n, lo=u.lo[internal], hi=u.hi[internal], s=u.s[internal], mutual=u.mutual[internal])
    if t is not None and t.group_count is not None:
        # a triangle of the department subgraph is a triangle of u whose three people share a department
        inside = t.group_count[internal]
        local = clustering(sub, TriangleSums(count=inside, two_step=np.zeros(0), product=np.zeros(0), wedges=0))
    else:
        local = clustering(sub, triangle_sums(sub))
    member = dept >= 0
    internal_clustering = np.bincount(dept[member], weights=local[member], minlength=k) / np.maximum(
        headcount, 1
    )
    active = np.bincount(np.concatenate([g.src, g.dst]), minlength=g.n) > 0
    active_people = np.bincount(dept[member & active], minlength=k)

    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = headcount * (headcount - 1.0)
        density = np.where(pairs > 0, internal_edges / pairs, np.nan)
        share = np.where(inter_in + inter_ext > 0, inter_ext / (inter_in + inter_ext), np.nan)
    table = pd.DataFrame(
        {
            "department": dept_names,
            "people": headcount.astype(np.int64),
            "active_people": active_people.astype(np.int64),
            "internal_ties": i_ties.astype(np.int64),
            "external_ties": e_ties.astype(np.int64),
            "ei_index": _ei(e_ties, i_ties),
            "ei_index_weighted": _ei(e_w, i_w),
            "cross_department_share": share,
            "density": density,
            "internal_clustering": internal_clustering,
        }
    )
    total_int = float(cnt[d_int].sum())
    total_ext = float(cnt[d_ext].sum())
    org = {
        "ei_index": float(_ei(external.sum(), internal.sum())),
        "ei_index_weighted": float(_ei(u.s[external].sum(), u.s[internal].sum())),
        "cross_department_share": total_ext / (total_int + total_ext)
        if total_int + total_ext
        else float("nan"),
    }
    return table, org
