"""Benchmark of `pipelines.network.compute_network` on a synthetic 100k-person, ~2M-edge organisation.

What it measures (written to bench/results/network.json and network.md):
- seconds per stage of compute_network (the `timings` hook) and the peak resident memory of the run;
- the accuracy of sampled-source betweenness against exact betweenness on a 10k-person subgraph
  (whole departments, so the 75%-internal structure is kept): Spearman correlation, top-100 overlap and
  the largest absolute error, next to the Hoeffding bound the library publishes.

The graph is reproducible (seeded): heavy-tailed (lognormal) activity and appeal, a quarter of people who
never act, Zipf-sized departments with 75% of interactions internal, 25% of rows made by closing
triangles (so clustering and Burt's measures have realistic work to do) and 15% reciprocating a random row.

Run: .venv/bin/python bench/network_bench.py [--people 100000 --edges 2000000 --seed 42]
It never touches the warehouse or the lake; it only writes its two result files.

Stage mode: .venv/bin/python bench/network_bench.py --warehouse COPY.duckdb --date YYYY-MM-DD times the
network stage's computation of every window ending on the date (`network_stage.compute_windows`: the one
read of the interactions, the windows and their previous windows) on a DuckDB warehouse a pipeline run
published (e.g. a copy of bench/pipeline_bench.py's work dir at M), with the peak RSS; it publishes nothing,
and writes bench/results/network_stage_<people>p.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from scipy import stats

from pipelines.network import NetworkRules, compute_network
from pipelines.network import centrality as c
from pipelines.network.graph import build_graph

RESULTS = Path(__file__).resolve().parent / "results"
TYPES = np.array(["reply", "reaction", "mention", "share"])
TYPE_P = np.array([0.35, 0.45, 0.12, 0.08])


def synthetic_org(
    people: int, edges: int, seed: int, n_departments: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sizes = 1.0 / np.arange(1, n_departments + 1) ** 0.8
    dept = np.sort(rng.choice(n_departments, size=people, p=sizes / sizes.sum()))
    activity = rng.lognormal(0.0, 1.2, people)
    activity[rng.random(people) < 0.25] = 0.0
    appeal = rng.lognormal(0.0, 1.2, people)

    n_random = int(edges * 0.6)
    src = rng.choice(people, size=n_random, p=activity / activity.sum())
    internal = rng.random(n_random) < 0.75
    dst = np.empty(n_random, dtype=np.int64)
    starts = np.searchsorted(dept, np.arange(n_departments + 1))
    for d in range(n_departments):
        lo, hi = starts[d], starts[d + 1]
        sel = np.flatnonzero(internal & (dept[src] == d))
        cw = np.cumsum(appeal[lo:hi])
        dst[sel] = lo + np.minimum(np.searchsorted(cw, rng.random(len(sel)) * cw[-1]), hi - lo - 1)
    ext = np.flatnonzero(~internal)
    cw = np.cumsum(appeal)
    dst[ext] = np.minimum(np.searchsorted(cw, rng.random(len(ext)) * cw[-1]), people - 1)

    # Triadic closure: a -> b and b -> c give a -> c.
    order = np.argsort(src, kind="stable")
    s_sorted, d_sorted = src[order], dst[order]
    row = np.searchsorted(s_sorted, np.arange(people + 1))
    n_close = int(edges * 0.25)
    pick = rng.integers(0, n_random, n_close)
    a, b = src[pick], dst[pick]
    out_deg = row[b + 1] - row[b]
    ok = out_deg > 0
    a, b, out_deg = a[ok], b[ok], out_deg[ok]
    cc = d_sorted[row[b] + (rng.random(len(b)) * out_deg).astype(np.int64)]
    # Reciprocation: b answers a on a share of the random edges, as people do.
    back = rng.integers(0, n_random, int(edges * 0.15))
    src = np.concatenate([src, a, dst[back]])
    dst = np.concatenate([dst, cc, src[back]])

    keys = np.array([f"p{i:06d}" for i in range(people)], dtype=object)
    frame = pd.DataFrame(
        {
            "source_key": keys[src],
            "target_key": keys[dst],
            "interaction_type": TYPES[rng.choice(4, size=len(src), p=TYPE_P)],
            "weight": 1.0,
            "event_id": np.arange(len(src)).astype(str),
        }
    )
    directory = pd.DataFrame(
        {
            "person_key": keys,
            "department": np.char.add("D", dept.astype(str)),
            "location": "L",
            "level": "Associate",
            "is_leader": False,
        }
    )
    return frame, directory


class PeakRss:
    """Samples the RSS of the process and of its children (the network stage's paths worker) in a
    thread; `peak` is the maximum of their sum seen (GB), `peak_self` that of this process alone."""

    def __init__(self, every: float = 0.05):
        self.every, self.peak, self.peak_self, self._stop = every, 0.0, 0.0, threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            own = self._proc.memory_info().rss
            children = 0
            for child in self._proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # ended between the listing and the reading
                    children += child.memory_info().rss
            self.peak_self = max(self.peak_self, own / 1e9)
            self.peak = max(self.peak, (own + children) / 1e9)
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def betweenness_quality(
    edges: pd.DataFrame, people: pd.DataFrame, target: int, source_counts: list[int], seed: int
) -> dict:
    depts = people["department"].value_counts().sort_values(ascending=False)
    chosen: list[str] = []
    total = 0
    # Smallest whole departments first until the target size, so many departments are in the subgraph.
    for d, size in depts.sort_values().items():
        if total + size > target:
            continue
        chosen.append(str(d))
        total += int(size)
    keep = people["person_key"][people["department"].isin(chosen)]
    keyset = set(keep)
    sub = edges[edges["source_key"].isin(keyset) & edges["target_key"].isin(keyset)]
    g = build_graph(sub, keep)
    t0 = time.perf_counter()
    exact = c.betweenness(g, None)
    exact_s = time.perf_counter() - t0
    top_exact = set(np.argsort(-exact)[:100])
    out: dict = {
        "nodes": g.n,
        "edges": g.m,
        "departments": len(chosen),
        "exact_seconds": round(exact_s, 2),
        "sampled": [],
    }
    for k in source_counts:
        for rep in range(3):
            sources = c.choose_sources(g, 0, k, seed + rep)
            t0 = time.perf_counter()
            est = c.betweenness(g, sources)
            secs = time.perf_counter() - t0
            out["sampled"].append(
                {
                    "sources": k,
                    "replicate": rep,
                    "seconds": round(secs, 2),
                    "spearman": round(float(stats.spearmanr(exact, est).statistic), 4),
                    "top100_overlap": len(top_exact & set(np.argsort(-est)[:100])) / 100,
                    "max_abs_error": float(np.abs(exact - est).max()),
                    "stated_error_bound_95": round(c.sampled_error_bound(g.n, k), 4),
                }
            )
    return out


def stage(warehouse_path: Path, end: str, out: Path) -> None:
    """The stage's computation of the windows ending on `end`, on a published DuckDB warehouse."""
    import datetime as dt
    import os

    from pipelines import warehouse
    from pipelines.config import load_settings
    from pipelines.network_stage import compute_windows

    os.environ.setdefault("ESN_PSEUDONYM_KEY", "bench-key-not-a-secret")
    settings = load_settings(None, warehouse_url=f"duckdb:///{warehouse_path}")
    engine = warehouse.make_engine(settings.warehouse_url)
    day = dt.date.fromisoformat(end)
    with PeakRss() as rss, engine.connect() as conn:
        people = int(warehouse.read_frame(conn, "select count(*) as n from stg_people")["n"].iloc[0])
        t0 = time.perf_counter()
        _, info = compute_windows(conn, settings, day)
        total_s = time.perf_counter() - t0
    engine.dispose()
    result = {
        "machine": {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
                    "load_1m": round(os.getloadavg()[0], 2)},
        "people": people, "end": end, "total_seconds": round(total_s, 2), "peak_rss_gb": round(rss.peak, 2),
        "peak_rss_gb_main_process": round(rss.peak_self, 2),
        "windows": {k: {"interactions": w["edges"], "seconds": round(sum(w["seconds"].values()), 2),
                        "stages": {s: round(v, 2) for s, v in w["seconds"].items()}} for k, w in info.items()},
    }
    windows_s = sum(w["seconds"] for w in result["windows"].values())
    lines = [f"# network stage at {people:,} people, windows ending {end}", "",
             f"compute_windows {result['total_seconds']} s (the read and every window; "
             f"{round(result['total_seconds'] - windows_s, 2)} s outside the windows' timings: the read of the "
             f"interactions, people and posts, the digests), peak RSS {result['peak_rss_gb']} GB (this process and "
             f"the paths worker; this process alone {result['peak_rss_gb_main_process']} GB); "
             f"{result['machine']['cpus']} CPUs, load {result['machine']['load_1m']} at the end. Produced by "
             "`bench/network_bench.py --warehouse`. A window's seconds are its timings; `betweenness` is the wait "
             "for the paths worker (which computes the windows' betweenness one after the other beside them).", "",
             "| window | interactions | seconds | stages (s) |", "|---|---:|---:|---|"]
    lines += [f"| {k} | {w['interactions']:,} | {w['seconds']} | "
              + ", ".join(f"{s} {v}" for s, v in sorted(w["stages"].items(), key=lambda x: -x[1]) if v >= 0.05) + " |"
              for k, w in result["windows"].items()]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"network_stage_{people}p.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"network_stage_{people}p.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, help="stage mode: a published DuckDB warehouse (a copy)")
    parser.add_argument("--date", help="stage mode: the run's date (the windows' end)")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument(
        "--edges",
        type=int,
        default=2_300_000,
        help="interaction rows generated (~2.0M distinct directed edges after aggregation)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--subgraph", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.warehouse is not None:
        stage(args.warehouse, args.date, args.out)
        return

    t0 = time.perf_counter()
    edges, people = synthetic_org(args.people, args.edges, args.seed)
    gen_s = time.perf_counter() - t0
    timings: dict[str, float] = {}
    rules = NetworkRules()
    with PeakRss() as rss:
        t0 = time.perf_counter()
        tables = compute_network(edges, people, rules=rules, seed=args.seed, timings=timings)
        total_s = time.perf_counter() - t0
    org = tables["mart_network_org"].iloc[0].to_dict()
    quality = betweenness_quality(edges, people, args.subgraph, [100, 500], args.seed)

    result = {
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "python": platform.python_version(),
        },
        "input": {
            "people": args.people,
            "interaction_rows": len(edges),
            "seed": args.seed,
            "generate_seconds": round(gen_s, 2),
        },
        "graph": {
            k: org[k]
            for k in (
                "nodes",
                "edges",
                "undirected_ties",
                "density",
                "reciprocity",
                "largest_wcc_share",
                "average_clustering",
                "modularity",
                "nmi_department",
                "triangle_wedges",
                "path_method",
                "path_sources",
                "betweenness_error_bound",
            )
        },
        "seconds_per_stage": {k: round(v, 2) for k, v in timings.items()},
        "total_seconds": round(total_s, 2),
        "peak_rss_gb_during_compute": round(rss.peak, 2),
        "peak_rss_gb_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "structural_holes_scope": "everyone (triangle sums)",
        "rules": json.loads(rules.model_dump_json()),
        "betweenness_quality_10k": quality,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "network.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "network.md").write_text(render_md(result))
    print(render_md(result))


def render_md(r: dict) -> str:
    lines = [
        "# compute_network benchmark",
        "",
        f"Synthetic organisation: {r['input']['people']:,} people, {r['input']['interaction_rows']:,} interaction "
        f"rows -> {int(r['graph']['edges']):,} directed edges ({int(r['graph']['undirected_ties']):,} undirected ties), "
        f"seed {r['input']['seed']}. Machine: {r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB. "
        "Produced by `bench/network_bench.py`; raw numbers in `network.json`.",
        "",
        f"Total {r['total_seconds']} s; peak RSS during compute_network {r['peak_rss_gb_during_compute']} GB "
        f"(process peak {r['peak_rss_gb_process']} GB incl. data generation).",
        "",
        "| stage | seconds |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in r["seconds_per_stage"].items()]
    g = r["graph"]
    lines += [
        "",
        f"Closeness/betweenness: {g['path_method']} with {int(g['path_sources'])} BFS sources; published "
        f"Hoeffding bound on normalised betweenness error (95%, all people at once): {g['betweenness_error_bound']:.3f}. "
        f"Burt constraint / effective size / efficiency: {r['structural_holes_scope']}, "
        f"{int(g['triangle_wedges']):,} wedges examined.",
        "",
        "## Sampled betweenness vs exact on a 10k subgraph",
        "",
    ]
    q = r["betweenness_quality_10k"]
    lines += [
        f"Subgraph: {q['nodes']:,} people ({q['departments']} whole departments), {q['edges']:,} edges; "
        f"exact betweenness {q['exact_seconds']} s.",
        "",
        "| sources | replicate | seconds | Spearman | top-100 overlap | max abs error | stated bound |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['sources']} | {s['replicate']} | {s['seconds']} | {s['spearman']} | {s['top100_overlap']} | "
        f"{s['max_abs_error']:.2e} | {s['stated_error_bound_95']} |"
        for s in q["sampled"]
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
