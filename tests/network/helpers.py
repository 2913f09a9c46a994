"""Test helpers: tiny interaction frames, networkx oracles and parsers of the real networks in tests/data.

Parsing lives here (with pandas) until the generic file-import module exists; networkx is used only as an
independent oracle.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from pipelines.network.graph import PersonGraph

DATA = Path(__file__).resolve().parents[1] / "data" / "networks"


def interactions(rows: list[tuple], **extra: list) -> pd.DataFrame:
    """Frame from (source, target, type) or (source, target, type, weight) tuples."""
    frame = pd.DataFrame(
        [r if len(r) == 4 else (*r, 1.0) for r in rows],
        columns=["source_key", "target_key", "interaction_type", "weight"],
    )
    for k, v in extra.items():
        frame[k] = v
    return frame


def to_networkx(g: PersonGraph) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(g.n))
    graph.add_weighted_edges_from(zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist(), strict=True))
    return graph


def as_array(values: dict, n: int) -> np.ndarray:
    return np.array([values[i] for i in range(n)], dtype=float)


def random_interactions(n: int, m: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    return pd.DataFrame(
        {
            "source_key": [f"p{i:03d}" for i in src],
            "target_key": [f"p{i:03d}" for i in dst],
            "interaction_type": rng.choice(["reply", "reaction", "mention", "share"], m),
            "weight": 1.0,
            "event_id": [f"e{i}" for i in range(m)],
        }
    )


def eu_core() -> tuple[pd.DataFrame, pd.DataFrame]:
    """email-Eu-core: one 'mention' per (sender, recipient) pair; department labels as the directory."""
    root = DATA / "snap-email-Eu-core"
    e = pd.read_csv(root / "email-Eu-core.txt", sep=r"\s+", header=None, names=["s", "t"])
    labels = pd.read_csv(
        root / "email-Eu-core-department-labels.txt", sep=r"\s+", header=None, names=["node", "dept"]
    )
    edges = pd.DataFrame(
        {
            "source_key": e["s"].map("n{:04d}".format),
            "target_key": e["t"].map("n{:04d}".format),
            "interaction_type": "mention",
            "weight": 1.0,
        }
    )
    people = pd.DataFrame(
        {
            "person_key": labels["node"].map("n{:04d}".format),
            "department": labels["dept"].map("d{:02d}".format),
        }
    )
    return edges, people


def workfrance() -> tuple[pd.DataFrame, pd.DataFrame]:
    """workfrance co-presence: each undirected pair becomes two directed edges weighted by minutes."""
    root = DATA / "mcnulty-workfrance"
    e = pd.read_csv(root / "workfrance_edgelist.csv")
    v = pd.read_csv(root / "workfrance_vertices.csv")
    a, b = e["from"].map("w{:03d}".format), e["to"].map("w{:03d}".format)
    edges = pd.DataFrame(
        {
            "source_key": pd.concat([a, b]),
            "target_key": pd.concat([b, a]),
            "interaction_type": "reply",
            "weight": pd.concat([e["mins"], e["mins"]]).astype(float),
        }
    )
    people = pd.DataFrame({"person_key": v["id"].map("w{:03d}".format), "department": v["dept"]})
    return edges.reset_index(drop=True), people


def enron() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Perry-Wolfe Enron: one row per (message, recipient), as 'mention' from sender to recipient."""
    root = DATA / "perry-wolfe-enron"
    msg = pd.read_csv(
        root / "messages.tsv", sep="\t", header=None, names=["message_id", "unix_time", "sender"]
    )
    rec = pd.read_csv(
        root / "recipients.tsv", sep="\t", header=None, names=["message_id", "index", "recipient"]
    )
    emp = pd.read_csv(
        root / "employees.tsv",
        sep="\t",
        header=None,
        names=["id", "department", "long_department", "title", "gender", "seniority"],
    )
    rows = rec.merge(msg, on="message_id", how="inner", validate="many_to_one")
    edges = pd.DataFrame(
        {
            "source_key": rows["sender"].map("e{:03d}".format),
            "target_key": rows["recipient"].map("e{:03d}".format),
            "interaction_type": "mention",
            "weight": 1.0,
            "event_id": rows["message_id"].astype(str),
        }
    )
    people = pd.DataFrame(
        {
            "person_key": emp["id"].map("e{:03d}".format),
            "department": emp["department"],
            "level": emp["seniority"],
            "is_leader": emp["seniority"] == "Senior",
        }
    )
    return edges, people
