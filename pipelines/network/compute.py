"""`compute_network`: the six network tables of one window, and `previous_period`, what the next window
reads of this one. `pipelines.network` re-exports both (see its docstring for what the package must never do).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from pipelines.network import centrality, communities, dynamics, influence, summary, ties
from pipelines.network.graph import PersonGraph, build_graph, edges_frame
from pipelines.network.rules import EdgeRules, NetworkRules
from pipelines.network.triangles import Undirected, triangle_sums, undirected


@contextmanager
def _timed(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def compute_network(
    edges: pd.DataFrame,
    people: pd.DataFrame,
    *,
    rules: NetworkRules | EdgeRules | None = None,
    previous: dict[str, pd.DataFrame] | None = None,
    seed: int | None = None,
    contributions: pd.DataFrame | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """All network tables for one window.

    edges: interactions (pipelines.model.INTERACTIONS columns; source_key, target_key, interaction_type
        required, weight and event_id used when present).
    people: directory with person_key, department (location, level, is_leader carried when present).
    previous: the tables returned for the previous period (fct_person_network and fct_network_ties are
        read) for rising stars and dynamism.
    contributions: optional person_key, posts (original posts per person in the window), used by the
        Broadcaster persona.
    seed: seed of every random choice; `rules.seed` when None.
    timings: if given, filled with seconds per stage (the benchmark reads it).

    The result depends on the rows given, never on their order (`canonical_inputs`): a rerun of the same
    data with the same rules gives identical tables, whatever order a database returned the rows in.
    """
    if isinstance(rules, EdgeRules):
        rules = NetworkRules(edges=rules)
    rules = rules or NetworkRules()
    seed = rules.seed if seed is None else seed
    for col in ("person_key", "department"):
        if col not in people.columns:
            raise ValueError(f"people: required column {col!r} is missing (have {list(people.columns)})")
    edges, people = canonical_inputs(edges, people, rules.edges)
    with _timed(timings, "build_graph"):
        g = build_graph(edges, people["person_key"], rules.edges)
    return network_tables(g, people, rules=rules, previous=previous, seed=seed, contributions=contributions,
                          timings=timings)


def network_tables(
    g: PersonGraph,
    people: pd.DataFrame,
    *,
    rules: NetworkRules,
    previous: dict[str, pd.DataFrame] | None = None,
    seed: int | None = None,
    contributions: pd.DataFrame | None = None,
    timings: dict[str, float] | None = None,
    paths: tuple[np.ndarray | None, Callable[[], np.ndarray]] | None = None,
) -> dict[str, pd.DataFrame]:
    """The six tables of `compute_network` from the window's graph, built from the canonical inputs
    (`canonical_inputs`: `people` sorted by person_key, the graph's directory in that order). `paths`:
    what `start_paths` returned for this graph, rules and seed (a caller with several windows starts
    them all first), else started here."""
    seed = rules.seed if seed is None else seed
    with _timed(timings, "betweenness"):
        # the sampled sources from the error target (or the fixed count configured), seeded; betweenness
        # started first (in the paths worker when one is open: `centrality.paths_worker`)
        sources, between = paths if paths is not None else start_paths(g, rules, seed)
    with _timed(timings, "build_graph"):
        directory = people.drop_duplicates("person_key").set_index("person_key")
        n_directory = len(directory)
        dept_of_node = directory["department"].reindex(g.nodes)
        dept_names = sorted(dept_of_node.dropna().unique().tolist())
        dept = pd.Index(dept_names).get_indexer(dept_of_node.to_numpy())
        headcount = np.bincount(dept[dept >= 0], minlength=len(dept_names))
        u = undirected(g)

    person = pd.DataFrame({"person_key": g.nodes})
    person["department"] = dept_of_node.to_numpy()
    for col in ("location", "level", "is_leader"):
        if col in directory.columns:
            person[col] = directory[col].reindex(g.nodes).to_numpy()
    person["in_directory"] = np.arange(g.n) < n_directory

    with _timed(timings, "degrees"):
        person = pd.concat([person, centrality.degrees(g)], axis=1)
    with _timed(timings, "pagerank"):
        score = centrality.pagerank(g, alpha=rules.influence.damping)
        person["pagerank"] = score
    with _timed(timings, "eigenvector"):
        person["eigenvector"], eig_converged = centrality.eigenvector(g)
    with _timed(timings, "triangles"):
        tri = triangle_sums(u, groups=dept)
    with _timed(timings, "structural_holes"):
        person = pd.concat([person, centrality.structural_holes(u, tri)], axis=1)
        local = centrality.clustering(u, tri)
        person["clustering"] = local
        person = pd.concat([person, centrality.reciprocity(g, u)], axis=1)
    delta = 1.0 - rules.centrality_confidence
    person["betweenness"] = np.nan  # the column's place; the values come from `between` below
    with _timed(timings, "closeness"):
        person["closeness"] = centrality.closeness(g, sources)

    with _timed(timings, "communities"):
        community = communities.detect(
            u, method=rules.community_method, resolution=rules.community_resolution, seed=seed
        )
        person["community_id"] = pd.array(np.where(community >= 0, community, -1), dtype="Int64")
        person.loc[community < 0, "community_id"] = pd.NA
        modularity = communities.modularity(u, community, rules.community_resolution)
        aligned = (community >= 0) & (dept >= 0)
        nmi = communities.nmi(community[aligned], dept[aligned]) if aligned.any() else float("nan")

    with _timed(timings, "ties"):
        tie_tab = ties.tie_table(g, u, tri, dept, community, rules.ties)
        fct_ties = pd.concat([edges_frame(g), tie_tab], axis=1)
        person = pd.concat([person, ties.person_bridging(g, u, dept, community)], axis=1)
        dept_tab, org_ei = ties.department_table(g, u, dept, dept_names, headcount, tri)

    with _timed(timings, "influence"):
        rank, pct = influence.percentile_and_rank(score)
        person["influence_score"] = score
        person["influence_rank"] = rank
        person["influence_percentile"] = pct
        person["influence_tier"] = influence.tiers(pct, rules.influence)
        posts = np.zeros(g.n)
        if contributions is not None:
            posts = (
                contributions.groupby("person_key")["posts"].sum().reindex(g.nodes).fillna(0).to_numpy(float)
            )
        person["posts"] = posts.astype(np.int64)
        person["persona"] = influence.personas(
            person["interactions_given"].to_numpy(float),
            person["interactions_received"].to_numpy(float),
            posts,
            rules.personas,
        )
        person = pd.concat([person, influence.explanation(g, dept)], axis=1)
        prev_person = previous.get("fct_person_network") if previous else None
        person = pd.concat([person, influence.rising_stars(person, prev_person, rules.influence)], axis=1)
    with _timed(timings, "bootstrap"):
        person = pd.concat(
            [person, influence.bootstrap_ranks(g, rules.influence, rules.edges.min_weight, seed)], axis=1
        )

    with _timed(timings, "dynamics"):
        dyn: dict[str, float] = {
            "ties_added": np.nan,
            "ties_dropped": np.nan,
            "ties_kept": np.nan,
            "tie_turnover": np.nan,
        }
        if previous and "fct_network_ties" in previous:
            dyn, added, dropped = dynamics.tie_changes_of_graph(g, previous["fct_network_ties"])
            person["ties_added"] = added
            person["ties_dropped"] = dropped
        else:
            person["ties_added"] = pd.array([pd.NA] * g.n, dtype="Int64")
            person["ties_dropped"] = pd.array([pd.NA] * g.n, dtype="Int64")

    with _timed(timings, "betweenness"):
        person["betweenness"] = between()

    with _timed(timings, "marts"):
        org: dict[str, object] = dict(summary.org_summary(g, u, n_directory, local))
        path_exact = sources is None
        org.update(
            {
                "communities": float(community.max() + 1) if g.n else 0.0,
                "modularity": modularity,
                "nmi_department": nmi,
                **org_ei,
                "strong_weight_threshold": ties.weight_threshold(g, rules.ties),
                "path_method": "exact" if path_exact else "sampled_sources",
                "path_sources": float(g.n if sources is None else len(sources)),
                "betweenness_error_bound": 0.0
                if sources is None
                else centrality.sampled_error_bound(g.n, len(sources), delta),
                "eigenvector_converged": bool(eig_converged),
                "bootstrap_replicates": float(rules.influence.bootstrap_replicates),
                "triangle_wedges": float(tri.wedges),
                **dyn,
                **{f"dropped_{k}": float(v) for k, v in g.dropped.items()},
                "seed": float(seed),
            }
        )
        mart_org = pd.DataFrame([org])
        # every directory person is in the departments' total, those without a department too
        mart_dept = _suppress(dept_tab, rules.min_group_size, keep=("department",), total=float(n_directory))
        mart_comm = _community_table(person, community, dept, dept_names, u, rules.min_group_size)
        mart_tiers = _tier_table(person, n_directory, dept_names, rules.min_group_size)

    return {
        "fct_person_network": person,
        "fct_network_ties": fct_ties,
        "mart_network_department": mart_dept,
        "mart_network_community": mart_comm,
        "mart_network_org": mart_org,
        "mart_network_influence_tiers": mart_tiers,
    }


def start_paths(g: PersonGraph, rules: NetworkRules, seed: int | None = None,
                ) -> tuple[np.ndarray | None, Callable[[], np.ndarray]]:
    """The path sources of `g` (None: exact) and its betweenness, started (`centrality.start_betweenness`)."""
    sources = centrality.path_sources(g, rules, rules.seed if seed is None else seed)
    return sources, centrality.start_betweenness(g, sources)


def canonical_inputs(
    edges: pd.DataFrame, people: pd.DataFrame, rules: EdgeRules
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The interactions and the directory in one canonical order: people by person_key (node ids follow
    it, and Louvain, path sampling and the bootstrap depend on node ids), interactions by every column
    the graph reads (weights are summed in row order and the bootstrap resamples rows). Rows equal in
    all of these are interchangeable, so any input order gives the same tables, to the bit."""
    people = canonical_people(people)
    cols = [c for c in ("source_key", "target_key", "interaction_type", rules.audience_key, "weight")
            if c is not None and c in edges.columns]
    edges = edges.sort_values(list(dict.fromkeys(cols)), kind="stable", ignore_index=True, na_position="last")
    return edges, people


def canonical_people(people: pd.DataFrame) -> pd.DataFrame:
    """The directory of `canonical_inputs`: one row per person_key, sorted by it (then department)."""
    by = [c for c in ("person_key", "department") if c in people.columns]
    return (people.sort_values(by, kind="stable", na_position="last")
            .drop_duplicates("person_key").reset_index(drop=True))


def _suppress(
    table: pd.DataFrame, min_group_size: int, keep: tuple[str, ...], size_col: str = "people",
    total: float | None = None,
) -> pd.DataFrame:
    """NULL every measure of groups smaller than min_group_size and flag them; then complementary
    suppression (`pipelines.suppression`): the hidden groups, with the people of `total` in no group,
    must hold at least min_group_size people, or more groups are hidden, smallest first."""
    from pipelines import suppression

    cells = table.assign(_family=0, _hidden=(table[size_col] < min_group_size).to_numpy())
    totals = (None if total is None else
              pd.DataFrame({"_family": [0], size_col: [float(total)], "_hidden": [False]}))
    hidden = suppression.complementary(cells, family=["_family"], cell=[keep[0]], size=size_col,
                                       hidden="_hidden", k=min_group_size, totals=totals, total_on=["_family"])
    measures = [c for c in table.columns if c not in keep and c != "suppressed"]
    return suppression.withhold(table, hidden.to_numpy(), measures)


def _community_table(
    person: pd.DataFrame,
    community: np.ndarray,
    dept: np.ndarray,
    dept_names: list[str],
    u: Undirected,
    min_group_size: int,
) -> pd.DataFrame:
    k = int(community.max()) + 1 if len(community) else 0
    cols = [
        "community_id",
        "people",
        "departments",
        "top_department",
        "top_department_share",
        "internal_weight_share",
        "suppressed",
    ]
    if k <= 0:  # no tie in the window: no community, but the table keeps its column types
        return pd.DataFrame({"community_id": pd.Series([], dtype="int64"), "people": pd.Series([], dtype="Int64"),
                             "departments": pd.Series([], dtype="Int64"), "top_department": pd.Series([], dtype=object),
                             "top_department_share": pd.Series([], dtype=float),
                             "internal_weight_share": pd.Series([], dtype=float),
                             "suppressed": pd.Series([], dtype=bool)})[cols]
    has = community >= 0
    size = np.bincount(community[has], minlength=k)
    known = has & (dept >= 0)
    nd = max(len(dept_names), 1)
    mix = np.bincount(community[known] * nd + dept[known], minlength=k * nd).reshape(k, nd)
    top = mix.argmax(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        top_share = np.where(mix.sum(axis=1) > 0, mix.max(axis=1) / mix.sum(axis=1), np.nan)
    cl, ch = community[u.lo], community[u.hi]
    inside = (cl == ch) & (cl >= 0)
    strength = u.strength()
    internal = 2 * np.bincount(cl[inside], weights=u.s[inside], minlength=k)
    total = np.bincount(community[has], weights=strength[has], minlength=k)
    table = pd.DataFrame(
        {
            "community_id": np.arange(k),
            "people": size.astype(np.int64),
            "departments": (mix > 0).sum(axis=1).astype(np.int64),
            "top_department": [dept_names[i] if mix[c].sum() > 0 else None for c, i in enumerate(top)],
            "top_department_share": top_share,
            "internal_weight_share": np.where(total > 0, internal / np.maximum(total, 1e-300), np.nan),
        }
    )
    # the communities of a window hold every person given one: that is their total
    out = _suppress(table, min_group_size, keep=("community_id",), total=float(size.sum()))
    out["departments"] = out["departments"].astype("Int64")
    return out[cols]


def _tier_table(
    person: pd.DataFrame, n_directory: int, dept_names: list[str], min_group_size: int
) -> pd.DataFrame:
    """People per influence tier per department (and org-wide, department NULL). A department smaller
    than min_group_size is suppressed, then complementary suppression by tier (`pipelines.suppression`,
    categories): the hidden departments, with the people of no department, must hold min_group_size
    people of every tier (or all of the organisation's), so the organisation's row minus the visible
    departments never says what tier the hidden people are."""
    from pipelines import suppression

    staff = person.iloc[:n_directory]
    rows = []
    groups: list[tuple[str | None, pd.DataFrame]] = [(None, staff)]
    groups += [(d, staff[staff["department"] == d]) for d in dept_names]
    for name, members in groups:
        counts = members["influence_tier"].value_counts()
        for tier in influence.TIERS:
            rows.append(
                {
                    "department": name,
                    "influence_tier": tier,
                    "group_size": len(members),
                    "people": int(counts.get(tier, 0)),
                    "suppressed": len(members) < min_group_size,
                }
            )
    out = pd.DataFrame(rows)
    out["group_size"] = out["group_size"].astype("Int64")
    out["people"] = out["people"].astype("Int64")
    is_org = out["department"].isna()
    cells = out[~is_org].assign(_family=0)
    totals = out[is_org].assign(_family=0)
    hidden = suppression.complementary(cells, family=["_family"], cell=["department"], size="people",
                                       hidden="suppressed", k=min_group_size, totals=totals,
                                       total_on=["_family"], category="influence_tier", categories=True)
    mask = np.zeros(len(out), dtype=bool)
    mask[np.flatnonzero(~is_org.to_numpy())] = hidden.to_numpy()
    mask |= out["suppressed"].to_numpy(bool)
    return suppression.withhold(out, mask, ["group_size", "people"])


def previous_period(edges: pd.DataFrame, people: pd.DataFrame, *,
                    rules: NetworkRules | EdgeRules | None = None) -> dict[str, pd.DataFrame]:
    """What the next period's `compute_network(previous=...)` reads of this one, and nothing else: the
    influence ranks and percentiles (rising stars) and the kept ties (dynamism). Computed with the same
    functions as `compute_network`, so the values are identical, at a fraction of the cost (no paths,
    triangles, communities or bootstrap)."""
    if isinstance(rules, EdgeRules):
        rules = NetworkRules(edges=rules)
    rules = rules or NetworkRules()
    edges, people = canonical_inputs(edges, people, rules.edges)
    return previous_of_graph(build_graph(edges, people["person_key"], rules.edges), rules)


def previous_of_graph(g: PersonGraph, rules: NetworkRules) -> dict[str, pd.DataFrame]:
    """`previous_period` of a window's graph. When the graph carries key codes (the network stage's
    windows share one key space), the ties are those codes (source_code, target_code), which
    `dynamics.tie_changes_of_graph` compares without person keys."""
    score = centrality.pagerank(g, alpha=rules.influence.damping)
    rank, pct = influence.percentile_and_rank(score)
    person = pd.DataFrame({"person_key": g.nodes, "influence_rank": rank, "influence_percentile": pct})
    if g.key_codes is not None:
        ties = pd.DataFrame({"source_code": g.key_codes[g.src], "target_code": g.key_codes[g.dst]})
    else:
        ties = edges_frame(g)
    return {"fct_person_network": person, "fct_network_ties": ties}
