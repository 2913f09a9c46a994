"""Influence: score, rank, percentile, tier, rising stars, personas, explanation and rank stability.

- influence score = weighted PageRank (damping 0.85) of the person graph;
- rank 1 = highest score, ties share the best rank; percentile = share of the other people with a strictly
  lower score, so everybody who received nothing shares the bottom percentile (0) and is an Observer;
- tiers like Salesforce Chatter: Top Influencer at percentile >= 0.8, Active Influencer >= 0.25, else Observer;
- rising stars: the largest percentile gains against the previous period among people who are not
  Observers now, at least `rising_star_min_gain`, at most `rising_star_top_n` people;
- personas (SWOOP): from what a person gives (interactions given + posts, when post counts are supplied) and
  receives; see `PersonaRules`;
- explanation: interactions received by type, from how many distinct people and departments;
- rank stability: Poisson bootstrap of the interactions (each interaction kept c ~ Poisson(1) times, the
  standard large-sample stand-in for resampling with replacement), PageRank recomputed, rank interval taken
  from the replicate quantiles. Seeded, so reruns give the same interval.

Pure computation; no I/O. Person-level output is internal (METRICS.md privacy conventions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.network.centrality import PageRank
from pipelines.network.graph import PersonGraph
from pipelines.network.rules import InfluenceRules, PersonaRules

__all__ = ["InfluenceRules", "PersonaRules", "TIERS", "PERSONAS", "bootstrap_ranks", "explanation",
           "percentile_and_rank", "personas", "rising_stars", "tiers"]

TIERS: tuple[str, ...] = ("Top Influencer", "Active Influencer", "Observer")
PERSONAS: tuple[str, ...] = ("Engager", "Catalyst", "Responder", "Broadcaster", "Observer")


def percentile_and_rank(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(score)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # Rounding to 12 significant digits relative to the maximum makes equal-by-construction scores
    # (everyone who received nothing) tie exactly despite floating-point noise.
    top = score.max() if score.max() > 0 else 1.0
    key = np.round(score / top, 12)
    s = pd.Series(key)
    rank = s.rank(method="min", ascending=False).to_numpy().astype(np.int64)
    lower = s.rank(method="min", ascending=True).to_numpy() - 1  # strictly lower scores
    pct = lower / (n - 1) if n > 1 else np.ones(n)
    return rank, pct


def tiers(pct: np.ndarray, rules: InfluenceRules) -> np.ndarray:
    return np.where(
        pct >= rules.top_percentile, TIERS[0], np.where(pct >= rules.active_percentile, TIERS[1], TIERS[2])
    )


def personas(given: np.ndarray, received: np.ndarray, posts: np.ndarray, rules: PersonaRules) -> np.ndarray:
    give = given + posts
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(give > 0, received / np.maximum(give, 1e-300), np.inf)
        post_share = np.where(give > 0, posts / np.maximum(give, 1e-300), 0.0)
    out = np.where(
        ratio > rules.balance_ratio,
        "Catalyst",
        np.where(
            ratio >= 1.0 / rules.balance_ratio,
            "Engager",
            np.where(post_share >= rules.broadcaster_post_share, "Broadcaster", "Responder"),
        ),
    )
    return np.where(give + received < rules.min_activity, "Observer", out)


def explanation(g: PersonGraph, dept: np.ndarray) -> pd.DataFrame:
    """What each person's score is made of: interactions received by type, from whom."""
    n = g.n
    out = pd.DataFrame(
        {
            f"received_{k}": np.bincount(g.dst, weights=v, minlength=n).astype(np.int64)
            for k, v in g.type_counts.items()
        }
    )
    out["received_from_people"] = np.bincount(g.dst, minlength=n)
    ds = dept[g.src]
    known = ds >= 0
    pairs = (
        np.unique(g.dst[known] * (int(dept.max()) + 2) + ds[known]) if known.any() else np.zeros(0, np.int64)
    )
    out["received_from_departments"] = np.bincount(pairs // (int(dept.max()) + 2), minlength=n)
    text = (
        out["received_reply"].astype(str)
        + " replies, "
        + out["received_reaction"].astype(str)
        + " reactions, "
        + out["received_mention"].astype(str)
        + " mentions, "
        + out["received_share"].astype(str)
        + " shares from "
        + out["received_from_people"].astype(str)
        + " people in "
        + out["received_from_departments"].astype(str)
        + " departments"
    )
    out["explanation"] = text.where(out["received_from_people"] > 0, "no interactions received")
    return out


def bootstrap_ranks(g: PersonGraph, rules: InfluenceRules, min_weight: float, seed: int) -> pd.DataFrame:
    """Rank interval per person from Poisson-bootstrapped interactions."""
    n, b = g.n, rules.bootstrap_replicates
    if b == 0 or n == 0:
        return pd.DataFrame({"rank_ci_low": np.full(n, np.nan), "rank_ci_high": np.full(n, np.nan)})
    rng = np.random.default_rng(seed)
    ranks = np.empty((b, n), dtype=np.int64)
    engine = PageRank(g)
    for r in range(b):
        c = rng.poisson(1.0, size=len(g.row_weight))
        w = np.bincount(g.row_edge, weights=g.row_weight * c, minlength=g.m)
        w[w < min_weight] = 0.0  # the minimum-weight rule applies to the replicate as to the original
        ranks[r], _ = percentile_and_rank(engine.run(alpha=rules.damping, weights=w))
    tail = (1 - rules.bootstrap_level) / 2
    return pd.DataFrame(
        {
            "rank_ci_low": np.quantile(ranks, tail, axis=0, method="lower"),
            "rank_ci_high": np.quantile(ranks, 1 - tail, axis=0, method="higher"),
        }
    )


def rising_stars(current: pd.DataFrame, previous: pd.DataFrame | None, rules: InfluenceRules) -> pd.DataFrame:
    """rank_delta (positive = climbed), percentile_delta and is_rising_star per person of `current`.

    `current` and `previous` carry person_key, influence_rank, influence_percentile (and current a tier).
    People absent from the previous period get NULL deltas and are never rising stars.
    """
    out = pd.DataFrame(index=current.index)
    if previous is None:
        out["rank_delta"] = pd.array([pd.NA] * len(current), dtype="Int64")
        out["percentile_delta"] = np.nan
        out["is_rising_star"] = pd.array([pd.NA] * len(current), dtype="boolean")
        return out
    prev = previous.set_index("person_key")[["influence_rank", "influence_percentile"]]
    joined = current[["person_key"]].join(prev, on="person_key")
    out["rank_delta"] = (joined["influence_rank"] - current["influence_rank"]).astype("Int64")
    out["percentile_delta"] = current["influence_percentile"] - joined["influence_percentile"]
    eligible = (out["percentile_delta"] >= rules.rising_star_min_gain) & (
        current["influence_tier"] != TIERS[2]
    )
    chosen = (
        out["percentile_delta"][eligible]
        .sort_values(ascending=False, kind="stable")
        .index[: rules.rising_star_top_n]
    )
    out["is_rising_star"] = current.index.isin(chosen)
    return out
