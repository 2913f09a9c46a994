"""Network dynamism: directed ties added and dropped between two consecutive snapshots (Yang et al. 2022).

A tie is a directed (source_key, target_key) pair present in a snapshot's `fct_network_ties`. Turnover is
the Jaccard distance of the two tie sets, (added + dropped) / |previous U current|, so 0 means an
unchanged network and 1 a completely new one. Comparing snapshots built with different edge rules or
windows is meaningless; the caller keeps them consistent.

The sets are compared as integer pairs (one code per person), not as frames of person keys: a window of
millions of ties is compared in a second. Pure computation on frames and arrays; never reads a previous
snapshot itself (the caller passes it in).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.network.graph import PersonGraph


def _changes(cur_s: np.ndarray, cur_t: np.ndarray, prev_s: np.ndarray, prev_t: np.ndarray,
             size: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Org-level counts and, per code (0..size-1), the ties added and dropped as either endpoint."""
    cur = np.unique(cur_s.astype(np.int64) * size + cur_t)
    prev = np.unique(prev_s.astype(np.int64) * size + prev_t)
    kept_mask = np.isin(cur, prev, assume_unique=True)
    added = cur[~kept_mask]
    dropped = prev[~np.isin(prev, cur, assume_unique=True)]
    kept = int(kept_mask.sum())
    union = len(cur) + len(prev) - kept
    org = {
        "ties_added": float(len(added)),
        "ties_dropped": float(len(dropped)),
        "ties_kept": float(kept),
        "tie_turnover": (len(added) + len(dropped)) / union if union else float("nan"),
    }

    def per_code(pairs: np.ndarray) -> np.ndarray:
        return np.bincount(np.concatenate([pairs // size, pairs % size]), minlength=size).astype(np.int64)

    return org, per_code(added), per_code(dropped)


def tie_changes(current: pd.DataFrame, previous: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Org-level counts and per-person ties added / dropped (as either endpoint), from two frames of
    source_key, target_key."""
    m, k = len(current), len(previous)
    codes, keys = pd.factorize(pd.concat([current["source_key"], current["target_key"], previous["source_key"],
                                          previous["target_key"]], ignore_index=True))
    codes = codes + 1  # a NULL key (-1) is code 0: NULL matches NULL, as in a merge of the frames
    size = len(keys) + 1
    org, added, dropped = _changes(codes[:m], codes[m:2 * m], codes[2 * m:2 * m + k], codes[2 * m + k:], size)
    index = pd.Index([None, *keys], dtype=object, name="person_key")
    person = pd.DataFrame({"ties_added": added, "ties_dropped": dropped}, index=index)
    return org, person[(person["ties_added"] > 0) | (person["ties_dropped"] > 0)]


def tie_changes_of_graph(g: PersonGraph, previous: pd.DataFrame) -> tuple[dict[str, float], np.ndarray,
                                                                          np.ndarray]:
    """`tie_changes` of a window's graph against the previous window's ties, and the ties added and
    dropped per node. The previous ties are person keys (source_key, target_key) or, when both graphs
    share one key space (`PersonGraph.key_codes`), codes (source_code, target_code)."""
    if g.key_codes is not None and {"source_code", "target_code"} <= set(previous.columns):
        codes = g.key_codes.astype(np.int64)
        prev_s = previous["source_code"].to_numpy(dtype=np.int64)
        prev_t = previous["target_code"].to_numpy(dtype=np.int64)
        size = int(max(codes.max(initial=-1), prev_s.max(initial=-1), prev_t.max(initial=-1))) + 1
    else:
        k = len(previous)
        all_codes, keys = pd.factorize(pd.concat([pd.Series(g.nodes, dtype=object), previous["source_key"],
                                                  previous["target_key"]], ignore_index=True))
        all_codes = all_codes + 1  # NULL is code 0
        codes, prev_s, prev_t = all_codes[:g.n], all_codes[g.n:g.n + k], all_codes[g.n + k:]
        size = len(keys) + 1
    org, added, dropped = _changes(codes[g.src], codes[g.dst], prev_s, prev_t, max(size, 1))
    return org, added[codes], dropped[codes]
