"""The canonical data model: the four tables every source is turned into.

Sources differ; after canonicalisation nothing downstream can tell them apart. This module holds the
pyarrow schemas (the contract between extraction, the lake, validation and the warehouse) and the
closed vocabularies. It must never hold person identifiers in clear: every `*_key` column is a keyed
hash made by `pipelines.privacy` at extraction, and no column carries message text.
"""

from __future__ import annotations

import pyarrow as pa

#: Verbs of the canonical model (METRICS.md conventions). A contribution is a post or reply; an
#: interaction is a reply, reaction, mention or share directed at another person.
VERBS: tuple[str, ...] = ("post", "reply", "reaction", "mention", "share", "view", "answer_accepted")
CONTRIBUTION_VERBS: tuple[str, ...] = ("post", "reply")
INTERACTION_VERBS: tuple[str, ...] = ("reply", "reaction", "mention", "share")

CONTAINER_KINDS: tuple[str, ...] = ("channel", "group", "community", "chat", "feed")
VISIBILITIES: tuple[str, ...] = ("public", "private", "direct")

TS = pa.timestamp("us", tz="UTC")

PEOPLE = pa.schema(
    [
        pa.field("person_key", pa.string(), nullable=False),
        pa.field("department", pa.string()),
        pa.field("location", pa.string()),
        pa.field("level", pa.string()),
        pa.field("manager_key", pa.string()),
        pa.field("is_leader", pa.bool_(), nullable=False),
        pa.field("hire_date", pa.date32()),
        pa.field("termination_date", pa.date32()),
    ],
    metadata={"description": "HR directory snapshot, one row per pseudonymous person"},
)

CONTAINERS = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("container_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("visibility", pa.string(), nullable=False),
        pa.field("member_count", pa.int32()),
        pa.field("owner_department", pa.string()),
        pa.field("created_at", TS),
    ],
    metadata={"description": "channels / groups / communities; the name is not kept, only the id"},
)

ACTIVITIES = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("occurred_at", TS, nullable=False),
        pa.field("actor_key", pa.string(), nullable=False),
        pa.field("verb", pa.string(), nullable=False),
        pa.field("container_id", pa.string()),
        pa.field("thread_id", pa.string()),
        pa.field("parent_id", pa.string()),
        pa.field("target_key", pa.string()),
        pa.field("content_length", pa.int32()),
        pa.field("is_question", pa.bool_(), nullable=False),
        pa.field("is_edited", pa.bool_(), nullable=False),
        pa.field("is_deleted", pa.bool_(), nullable=False),
    ],
    metadata={
        "description": "one row per event; (source, event_id) is the key; partitioned by UTC date of "
        "occurred_at; never the message text, only derived features"
    },
)

INTERACTIONS = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("occurred_at", TS, nullable=False),
        pa.field("activity_date", pa.date32(), nullable=False),
        pa.field("source_key", pa.string(), nullable=False),
        pa.field("target_key", pa.string(), nullable=False),
        pa.field("interaction_type", pa.string(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("container_id", pa.string()),
    ],
    metadata={
        "description": "directed person-to-person edges derived from activities by the rules of "
        "METRICS.md section 3 (built in sql/intermediate/int_interactions.sql)"
    },
)

TABLES: dict[str, pa.Schema] = {
    "people": PEOPLE,
    "containers": CONTAINERS,
    "activities": ACTIVITIES,
}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return `table` with exactly `schema`'s columns, in order and cast; missing nullable columns are
    filled with nulls. Raises a ValueError naming the column when a required one is missing."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        elif pa.types.is_boolean(field.type):
            columns.append(pa.array([False] * table.num_rows, pa.bool_()))
        else:
            raise ValueError(f"required column {field.name!r} is missing (have {table.column_names})")
    return pa.Table.from_arrays(columns, schema=schema)
