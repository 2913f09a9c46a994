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
department), never published in a mart. On a DuckDB warehouse it is read with the duckdb module alone
(no SQLAlchemy, no pandas), so that the command answers in well under a second
(bench/results/answerers_eval.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.config import Settings

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

WEIGHTS = {"answers": 1, "answers_90d": 1, "answers_reacted": 2, "answers_accepted": 3, "askers_helped": 1}
COUNTS = ("answers", "answers_90d", "answers_accepted", "answers_reacted", "askers_helped", "contributions")
COLUMNS = ["rank", "person_key", "department", "score", *COUNTS, "last_answer_date", "last_contribution_date",
           "explanation"]


@dataclass
class Experts:
    query: str
    topic_ids: list[str]
    as_of: dt.date | None
    rows: list[dict[str, Any]]  # rank, person_key, department, score, answers, ..., explanation

    @property
    def people(self) -> pd.DataFrame:
        """The rows as a DataFrame (COLUMNS)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=COLUMNS)


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


_SQL = """
    select e.person_key, max(p.department) as department, max(e.as_of_date) as as_of_date,
           sum(e.answers) as answers, sum(e.answers_90d) as answers_90d,
           sum(e.answers_accepted) as answers_accepted, sum(e.answers_reacted) as answers_reacted,
           sum(e.askers_helped) as askers_helped, sum(e.contributions) as contributions,
           max(e.last_answer_date) as last_answer_date,
           max(e.last_contribution_date) as last_contribution_date
    from {internal}.fct_person_topic_expertise e
    left join {staging}.stg_people p on p.person_key = e.person_key
    where e.topic_id in ({marks})
    group by e.person_key"""


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _fetch(settings: Settings, topic_ids: list[str], engine: sa.Engine | None) -> list[dict[str, Any]]:
    """The expertise rows of the topics: through `engine` (SQLAlchemy) when given or when the warehouse is
    not a local DuckDB file; else read-only with the duckdb module alone (no SQLAlchemy, no pandas: the
    command answers in well under a second)."""
    names = settings.warehouse.schemas
    url = settings.warehouse_url
    if engine is None and not settings.warehouse.conn_id and url.startswith("duckdb:///") \
            and not url.startswith("duckdb:///:memory:"):
        from pipelines.duckdb_access import short_connection

        sql = _SQL.format(internal=names.internal, staging=names.staging, marks=", ".join("?" for _ in topic_ids))
        with short_connection(url.removeprefix("duckdb:///"), read_only=True) as con:
            cur = con.execute(sql, topic_ids)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    import sqlalchemy as sa

    from pipelines import warehouse

    own = engine is None
    engine = engine or warehouse.engine_for(settings)
    try:
        schemas = warehouse.schemas_of(engine)
        sql = _SQL.format(internal=schemas.internal, staging=schemas.staging,
                          marks=", ".join(f":t{i}" for i in range(len(topic_ids))))
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql), {f"t{i}": t for i, t in enumerate(topic_ids)})
            return [dict(r) for r in result.mappings()]
    finally:
        if own:
            engine.dispose()


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
    rows = _fetch(settings, topic_ids, engine)
    label = " / ".join(names.get(t, t) for t in topic_ids)
    for r in rows:
        for col in COUNTS:
            r[col] = int(r[col] or 0)
        for col in ("as_of_date", "last_answer_date", "last_contribution_date"):
            r[col] = _as_date(r[col])
        r["score"] = sum(w * r[c] for c, w in WEIGHTS.items())
    rows.sort(key=lambda r: (r["answers"] == 0, -r["score"], -(r["last_answer_date"] or dt.date.min).toordinal(),
                             -r["contributions"], r["person_key"]))
    top = rows[:limit]
    as_of = max((r["as_of_date"] for r in top if r["as_of_date"] is not None), default=None)
    out = []
    for rank, r in enumerate(top, start=1):
        r = {**r, "rank": rank}
        r["explanation"] = explain(r, label)
        out.append({c: r.get(c) for c in COLUMNS})
    return Experts(query, topic_ids, as_of, out)
