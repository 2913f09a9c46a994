"""Expertise location: who knows about a topic, ranked and explained (`esn experts TOPIC`).

Read from the internal `fct_person_topic_expertise` (counts per person and topic over the last 365 days,
as of the last run). A person's score on the topics a query resolves to (`TopicRules.resolve`: a taxonomy
topic by id or name, a tag or hashtag, `container:<id>`):

    score = answers + answers_90d + 2 * answers_reacted + 3 * answers_accepted + askers_helped

that is: every answer to someone else's question counts, a recent one twice; an answer someone found
useful (a reaction from another person) or that was accepted counts more; helping many different people
counts more than helping one many times. Ties are broken by the last answer (recent first), then by the
key, so the same warehouse gives the same list. People with no answer on the topic come after those with
one, ranked by their contributions on it (they talk about it, and may know). Each row says why, in the
style of the influence explanations.

The list is person-level and internal, like `fct_person_network`: it names pseudonymous keys (with their
department); `directory` maps them back to the emails of an HR file for the people who run this, with
the pseudonymisation key, as the pipeline itself keys them. It is never published in a mart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.config import Settings

WEIGHTS = {"answers": 1, "answers_90d": 1, "answers_reacted": 2, "answers_accepted": 3, "askers_helped": 1}


@dataclass
class Experts:
    query: str
    topic_ids: list[str]
    as_of: dt.date | None
    people: pd.DataFrame  # rank, person_key, department, score, answers, ..., explanation


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def explain(row: dict[str, Any], label: str) -> str:
    """Why a person is on the list, in words."""
    if row["answers"] == 0:
        return (f"no answers on {label} yet; {_plural(int(row['contributions']), 'post or reply', 'posts and replies')} "
                f"on it, the last on {row['last_contribution_date']}")
    parts = [f"answered {_plural(int(row['answers']), 'question')} on {label} in the last year"
             + (f" ({int(row['answers_90d'])} in the last 90 days)" if row["answers_90d"] else "")
             + f" for {_plural(int(row['askers_helped']), 'person', 'different people')}"]
    useful = []
    if row["answers_accepted"]:
        useful.append(f"{int(row['answers_accepted'])} accepted")
    if row["answers_reacted"]:
        useful.append(f"{int(row['answers_reacted'])} reacted to by others")
    if useful:
        parts.append(", ".join(useful))
    parts.append(f"last answer on {row['last_answer_date']}")
    return "; ".join(parts)


def find_experts(settings: Settings, query: str, *, limit: int = 10, engine: sa.Engine | None = None,
                 labels: dict[str, str] | None = None) -> Experts:
    """The people to ask about `query`, best first, with the reason for each."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    topic_ids = settings.topics.resolve(query)
    if not topic_ids:
        raise ValueError(f"{query!r} names no topic: give a taxonomy topic (id or name), a tag or #hashtag, "
                         "or container:<id>")
    names = {**settings.topics.names(), **(labels or {})}
    own = engine is None
    engine = engine or warehouse.engine_for(settings)
    try:
        internal = warehouse.schemas_of(engine).internal
        staging = warehouse.schemas_of(engine).staging
        params = {f"t{i}": t for i, t in enumerate(topic_ids)}
        marks = ", ".join(f":t{i}" for i in range(len(topic_ids)))
        with engine.connect() as conn:
            frame = warehouse.read_frame(conn, f"""
                select e.person_key, max(p.department) as department, max(e.as_of_date) as as_of_date,
                       sum(e.answers) as answers, sum(e.answers_90d) as answers_90d,
                       sum(e.answers_accepted) as answers_accepted, sum(e.answers_reacted) as answers_reacted,
                       sum(e.askers_helped) as askers_helped, sum(e.contributions) as contributions,
                       max(e.last_answer_date) as last_answer_date,
                       max(e.last_contribution_date) as last_contribution_date
                from {internal}.fct_person_topic_expertise e
                left join {staging}.stg_people p on p.person_key = e.person_key
                where e.topic_id in ({marks})
                group by e.person_key""", params)
    finally:
        if own:
            engine.dispose()
    label = " / ".join(names.get(t, t) for t in topic_ids)
    if frame.empty:
        return Experts(query, topic_ids, None, frame.assign(rank=pd.Series(dtype="int64"),
                                                           score=pd.Series(dtype="int64"),
                                                           explanation=pd.Series(dtype="string")))
    for col in ("answers", "answers_90d", "answers_accepted", "answers_reacted", "askers_helped", "contributions"):
        frame[col] = frame[col].fillna(0).astype("int64")
    frame["score"] = sum(w * frame[c] for c, w in WEIGHTS.items())
    frame["has_answers"] = frame["answers"] > 0
    frame["_last"] = pd.to_datetime(frame["last_answer_date"]).fillna(pd.Timestamp.min)
    frame = frame.sort_values(["has_answers", "score", "_last", "contributions", "person_key"],
                              ascending=[False, False, False, False, True], kind="stable").head(limit)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    frame["explanation"] = [explain(r, label) for r in frame.to_dict("records")]
    as_of = pd.to_datetime(frame["as_of_date"]).max().date() if frame["as_of_date"].notna().any() else None
    return Experts(query, topic_ids, as_of, frame.drop(columns=["has_answers", "_last", "as_of_date"]))
