"""Every configurable rule and threshold of the network metrics, as validated pydantic models.

`NetworkRules` holds them all (edge rules, tie strength, influence, personas, paths, communities); the
configuration's `network:` section (`pipelines.config.Settings.network`) is a `NetworkRules`, and
`catalogue.render_rules` publishes every field with its default in docs/metrics.md.

This module imports pydantic only (the configuration loads it; the configuration must stay fast), and
must never compute anything: the metrics live in the sibling modules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EdgeRules(BaseModel):
    """How interactions become edges. Every field is published in the metric catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type_weights: dict[str, float] | None = Field(
        default_factory=lambda: {"reply": 1.0, "reaction": 0.5, "mention": 1.0, "share": 1.0},
        description="weight of one interaction of each type; a reaction costs less effort than a reply. "
        "Types absent from this mapping (or with weight 0) create no edge. None: the input's `weight` "
        "column already is each interaction's weight and no type weight is applied. The pipeline sets it "
        "to the configuration's interactions.weights and ignores int_interactions.weight, so each type's "
        "weight is applied once",
    )
    direction: Literal["to_target", "to_source"] = Field(
        default="to_target",
        description="to_target: the edge points from the person acting to the person receiving (the author "
        "replied to, reacted to, mentioned or shared), so PageRank flows to those who draw attention. "
        "to_source reverses every edge.",
    )
    use_input_weight: bool = Field(
        default=True,
        description="multiply the type weight by the `weight` column of the input (when present), e.g. "
        "minutes of co-presence; with type_weights None the input weight is always the weight",
    )
    audience_key: str | None = Field(
        default="event_id",
        description="column identifying the message an interaction belongs to; messages that reach more "
        "distinct targets than audience_cap are capped. The pipeline groups by int_interactions.audience_id "
        "(a mention's message, otherwise the event). None disables the cap.",
    )
    audience_cap: int | None = Field(
        default=50,
        ge=1,
        description="largest audience of a single message that counts in full (e.g. a message to a list)",
    )
    audience_policy: Literal["drop", "scale"] = Field(
        default="scale",
        description="drop: messages above the cap create no edge; scale: their edges keep weight * cap / "
        "audience, so one message never contributes more than `audience_cap` in total",
    )
    min_weight: float = Field(default=0.0, ge=0.0, description="aggregated edges lighter than this are dropped")
    min_interactions: int = Field(
        default=1, ge=1, description="aggregated edges with fewer interactions are dropped"
    )
    keep_unknown_people: bool = Field(
        default=True,
        description="keep edges whose endpoints are not in the directory (department unknown); if False "
        "they are dropped",
    )

    @field_validator("type_weights")
    @classmethod
    def _known_types(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        from pipelines.model import INTERACTION_VERBS  # here: pyarrow is not a cost of loading the config

        if value is None:
            return value
        unknown = sorted(set(value) - set(INTERACTION_VERBS))
        if unknown:
            raise ValueError(f"type_weights: unknown interaction types {unknown}; allowed {INTERACTION_VERBS}")
        negative = sorted(k for k, w in value.items() if w < 0)
        if negative:
            raise ValueError(f"type_weights: negative weight for {negative}")
        return value


class TieRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    strong_weight_quantile: float = Field(
        default=0.75, ge=0.0, le=1.0,
        description="edges at or above this quantile of edge weight are strong by weight",
    )
    strong_weight_min: float | None = Field(
        default=None, ge=0.0, description="absolute weight threshold; overrides the quantile when set"
    )
    strong_overlap_min: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="neighbourhood overlap at or above which a tie is strong by embeddedness",
    )


class InfluenceRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    damping: float = Field(default=0.85, gt=0.0, lt=1.0, description="PageRank damping factor")
    top_percentile: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Top Influencer at or above this percentile"
    )
    active_percentile: float = Field(
        default=0.25, ge=0.0, le=1.0, description="Active Influencer at or above this percentile"
    )
    rising_star_min_gain: float = Field(
        default=0.1, ge=0.0, le=1.0, description="smallest percentile gain for a rising star"
    )
    rising_star_top_n: int = Field(default=20, ge=0, description="at most this many rising stars per run")
    bootstrap_replicates: int = Field(
        default=20, ge=0, description="Poisson-bootstrap replicates for the rank interval (0 = off)"
    )
    bootstrap_level: float = Field(default=0.9, gt=0.0, lt=1.0, description="coverage of the rank interval")

    @model_validator(mode="after")
    def _ordered(self) -> InfluenceRules:
        if self.active_percentile > self.top_percentile:
            raise ValueError("active_percentile must not exceed top_percentile")
        return self


class PersonaRules(BaseModel):
    """Thresholds of the SWOOP-style personas, published with the metric."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min_activity: int = Field(
        default=3, ge=0,
        description="Observer when given + received interactions (+ posts) are fewer than this",
    )
    balance_ratio: float = Field(
        default=2.0, gt=1.0,
        description="Engager when received/given lies within [1/ratio, ratio]; Catalyst above, "
        "Responder or Broadcaster below",
    )
    broadcaster_post_share: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="a giver is a Broadcaster when posts are at least this share of what "
        "they give, else a Responder (needs post counts; without them nobody is a Broadcaster)",
    )


class NetworkRules(BaseModel):
    """Every configurable choice of the network metrics, validated at the boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    edges: EdgeRules = Field(default_factory=EdgeRules)
    ties: TieRules = Field(default_factory=TieRules)
    influence: InfluenceRules = Field(default_factory=InfluenceRules)
    personas: PersonaRules = Field(default_factory=PersonaRules)
    exact_paths_max_nodes: int = Field(
        default=5000, ge=0,
        description="closeness and betweenness are exact up to this many nodes, sampled above",
    )
    centrality_error: float = Field(
        default=0.12, gt=0.0, le=1.0,
        description="error target of sampled betweenness above exact_paths_max_nodes: the number of sampled "
        "BFS sources is the smallest for which the Hoeffding + union bound on every person's absolute error "
        "of normalised betweenness is at most this, at centrality_confidence (0.12 at 95% is ~530 sources at "
        "100k people; Spearman 0.96-0.97 against exact on a 10k graph, bench/results/network.md); published "
        "as mart_network_org.betweenness_error_bound with path_sources",
    )
    centrality_confidence: float = Field(
        default=0.95, gt=0.0, lt=1.0,
        description="probability that the sampled betweenness of every person is within the bound at once",
    )
    path_sources: int | None = Field(
        default=None, ge=1,
        description="a fixed number of sampled BFS sources instead of the number centrality_error asks for "
        "(None: from the error target); the published bound is then the one these sources give",
    )
    community_method: Literal["plm", "leiden"] = Field(
        default="plm", description="Louvain (networkit PLM) or Leiden (igraph)"
    )
    community_resolution: float = Field(default=1.0, gt=0.0, description="modularity resolution (gamma)")
    seed: int = Field(
        default=0, ge=0,
        description="seed of every random choice (sampled path sources, communities, bootstrap): the same "
        "data and rules give the same tables",
    )
    min_group_size: int = Field(
        default=5, ge=1, description="published aggregates over fewer people are suppressed"
    )


#: fields of `NetworkRules` the configuration's `network:` section may not set, and where they are set
#: instead: each has exactly one place in the configuration
SET_ELSEWHERE: dict[str, str] = {
    "edges.type_weights": "set interactions.weights (the network stage applies the run's weights, once, to "
    "every interaction of the window)",
    "edges.use_input_weight": "the pipeline weighs each interaction by its type's interactions.weights only",
    "edges.audience_key": "the pipeline groups by int_interactions.audience_id (disable the cap with "
    "network.edges.audience_cap: null)",
    "min_group_size": "set privacy.min_group_size",
}
