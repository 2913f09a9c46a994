"""Network dynamism: directed ties added and dropped between two consecutive snapshots (Yang et al. 2022).

A tie is a directed (source_key, target_key) pair present in a snapshot's `fct_network_ties`. Turnover is
the Jaccard distance of the two tie sets, (added + dropped) / |previous U current|, so 0 means an
unchanged network and 1 a completely new one. Comparing snapshots built with different edge rules or
windows is meaningless; the caller keeps them consistent.

Pure computation on frames; never reads a previous snapshot itself (the caller passes it in).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def tie_changes(current: pd.DataFrame, previous: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Org-level counts and per-person ties added / dropped (as either endpoint)."""
    cur = current[["source_key", "target_key"]].drop_duplicates()
    prev = previous[["source_key", "target_key"]].drop_duplicates()
    both = cur.merge(prev, how="outer", on=["source_key", "target_key"], indicator=True)
    added = both[both["_merge"] == "left_only"]
    dropped = both[both["_merge"] == "right_only"]
    kept = int((both["_merge"] == "both").sum())
    union = len(both)
    org = {
        "ties_added": float(len(added)),
        "ties_dropped": float(len(dropped)),
        "ties_kept": float(kept),
        "tie_turnover": (len(added) + len(dropped)) / union if union else float("nan"),
    }

    def per_person(frame: pd.DataFrame) -> pd.Series:
        return pd.concat([frame["source_key"], frame["target_key"]]).value_counts()

    person = pd.DataFrame({"ties_added": per_person(added), "ties_dropped": per_person(dropped)})
    person = person.fillna(0).astype(np.int64)
    person.index.name = "person_key"
    return org, person
