"""Organisational network analysis and influence rankings (METRICS.md section 3), as a pure library.

`compute_network(edges, people)` turns one window of canonical interactions plus the directory into six
tables (see `catalogue.COLUMNS` for every column, `catalogue.RULES` for every rule and threshold):
fct_person_network, fct_network_ties, mart_network_department, mart_network_community, mart_network_org,
mart_network_influence_tiers. The rules are the pydantic models of `rules` (`NetworkRules`), which the
configuration's `network:` section validates. The warehouse loading and the DAG wiring live elsewhere.

Importing this package is cheap (the rules only): the configuration imports it. The computing modules
(numpy, scipy, networkit, igraph) load on first use of `compute_network` and the other names below.

This package must never read or write a database or a file, never call networkx (tests only: it is the
oracle, far too slow for production), and never see clear identities: person keys are pseudonymous.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipelines.network.rules import EdgeRules, InfluenceRules, NetworkRules, PersonaRules, TieRules

if TYPE_CHECKING:
    from pipelines.network.compute import compute_network, previous_period
    from pipelines.network.graph import PersonGraph, build_graph

__all__ = [
    "TABLES",
    "NetworkRules",
    "EdgeRules",
    "TieRules",
    "InfluenceRules",
    "PersonaRules",
    "compute_network",
    "previous_period",
    "build_graph",
    "PersonGraph",
]

TABLES: tuple[str, ...] = (
    "fct_person_network",
    "fct_network_ties",
    "mart_network_department",
    "mart_network_community",
    "mart_network_org",
    "mart_network_influence_tiers",
)

_LAZY = {"compute_network": "compute", "previous_period": "compute", "build_graph": "graph", "PersonGraph": "graph"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"pipelines.network.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'pipelines.network' has no attribute {name!r}")
