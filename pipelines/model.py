"""The canonical data model: the tables every source is turned into.

Sources differ; after canonicalisation nothing downstream can tell them apart. This module holds the
pyarrow schemas (the contract between extraction, the lake, validation and the warehouse) and the
closed vocabularies. Per-event sources give `activities`; aggregate-only sources (usage reports: counts
per person and day, no events) give `usage`, a table of its own that no activity metric reads, so that
counts are never turned into synthetic events and a platform loaded both ways is never counted twice. It must never hold person identifiers in clear: every `*_key` column is a keyed
hash made by `pipelines.privacy` at extraction, and no column carries message text.
"""

from __future__ import annotations

import pyarrow as pa

#: Verbs of the canonical model (METRICS.md conventions). A contribution is a post or reply; an
#: interaction is a reply, reaction, mention or share directed at another person.
#: Ideas: `idea` is an idea submitted on an idea platform (a UserVoice suggestion; thread_id its own
#: event_id, container_id its forum); a post that its platform marks as an idea (a Socialcast `idea`
#: message) stays a `post` with `is_idea` true. A comment on an idea is a `reply` to it; `vote` is a
#: person supporting an idea (target_key the idea's author, parent_id and thread_id the idea);
#: `status_change` is an idea's status set by someone (parent_id and thread_id the idea, `idea_status` the
#: new status in IDEA_STATUSES, mapped from the platform's own status names by the source's options).
#: Votes and status changes are not interactions of the network: the idea marts measure them.
VERBS: tuple[str, ...] = ("post", "reply", "reaction", "mention", "share", "view", "answer_accepted",
                          "idea", "vote", "status_change")
CONTRIBUTION_VERBS: tuple[str, ...] = ("post", "reply", "idea")  # authored content
INTERACTION_VERBS: tuple[str, ...] = ("reply", "reaction", "mention", "share")
IDEA_VERBS: tuple[str, ...] = ("idea", "vote", "status_change")
#: the canonical statuses of an idea (`activities.idea_status` of a status_change)
IDEA_STATUSES: tuple[str, ...] = ("open", "planned", "in_progress", "completed", "declined")

CONTAINER_KINDS: tuple[str, ...] = ("channel", "group", "community", "chat", "feed")
VISIBILITIES: tuple[str, ...] = ("public", "private", "direct")

#: Kinds of account a person holds (`people.account_type`):
#:   member    a regular account of the organisation (every row of an HR directory is a member);
#:   guest     a guest of the platform (Slack single- and multi-channel guests, Entra B2B guests,
#:             Salesforce Guest users);
#:   external  an account of another organisation (Slack Connect strangers, Salesforce partner and
#:             customer-community users);
#:   bot       an automated account (Slack bots and apps, Salesforce automated-process users);
#:   unknown   seen in activity but listed by no source (a person deleted from the platform's user list,
#:             a participant of another tenant): added by `stg_people`, never landed.
ACCOUNT_TYPES: tuple[str, ...] = ("member", "guest", "external", "bot", "unknown")
#: when two platforms classify a person outside the directory differently, the first of this order wins
#: (a member account anywhere means the person belongs to the organisation)
ACCOUNT_PRECEDENCE: tuple[str, ...] = ("member", "guest", "external", "bot", "unknown")

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
        # true for the rows of an HR directory (or a dataset's node labels); false for the people a
        # platform's user listing names (Slack users.list, Graph users, ...) and for bare participants
        pa.field("in_directory", pa.bool_(), nullable=False),
        pa.field("account_type", pa.string(), nullable=False),  # ACCOUNT_TYPES
        pa.field("is_deactivated", pa.bool_(), nullable=False),  # the platform says the account is disabled
    ],
    metadata={"description": "the people one source knows, one row per pseudonymous person: the HR "
              "directory snapshot (in_directory true), or a platform's user listing with its account "
              "attributes (in_directory false; a department only where the platform gives one). "
              "`pipelines.canonical.merge_people` merges the sources into one row per person"},
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
        # an idea (verb idea) or a post its platform marks as an idea; false for everything else
        pa.field("is_idea", pa.bool_(), nullable=False),
        # the idea's new status (IDEA_STATUSES) on a status_change, null on every other verb
        pa.field("idea_status", pa.string()),
        # the message's topics (pipelines/topics.py): sorted ids separated by one blank (tx:<taxonomy id>,
        # tag:<hash of a tag>), computed at extraction from the text, which is dropped; null when none
        pa.field("topic_ids", pa.string()),
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
        # the type's interactions.weights as of the day's publish (the network applies the run's weights)
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("container_id", pa.string()),
        # the message the interaction belongs to (a mention's message, else the event), source-qualified:
        # what the network's large-audience cap groups by
        pa.field("audience_id", pa.string(), nullable=False),
    ],
    metadata={
        "description": "directed person-to-person edges derived from activities by the rules of "
        "METRICS.md section 3 (built in sql/models/intermediate/int_interactions.sql)"
    },
)

#: Products of the aggregate usage reports (`usage.product`)
USAGE_PRODUCTS: tuple[str, ...] = ("teams", "engage")

USAGE = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("usage_date", pa.date32(), nullable=False),
        pa.field("person_key", pa.string(), nullable=False),
        pa.field("product", pa.string(), nullable=False),  # USAGE_PRODUCTS
        # Teams: messages in team channels (posts + replies, else the report's team chat message count);
        # Viva Engage: messages posted (threads and replies alike)
        pa.field("channel_messages", pa.int64()),
        pa.field("posts", pa.int64()),  # Teams only, when the report splits posts and replies
        pa.field("replies", pa.int64()),
        pa.field("chat_messages", pa.int64()),  # Teams private (1:1 and group) chat messages
        pa.field("urgent_messages", pa.int64()),
        pa.field("meetings", pa.int64()),
        pa.field("calls", pa.int64()),
        pa.field("reactions", pa.int64()),  # Viva Engage likes
        pa.field("reads", pa.int64()),  # Viva Engage messages read
        # whether the source counts reads as actions (option synthesise_views of m365_usage)
        pa.field("reads_are_actions", pa.bool_(), nullable=False),
        pa.field("refresh_date", pa.date32()),
    ],
    metadata={"description": "aggregate usage counts of one person, product and day, as an aggregate-only "
              "source reports them (Microsoft 365 usage reports); (source, usage_date, person_key, "
              "product) is the key; partitioned by usage_date. Never activities: no event, thread, "
              "target or time of day, so nothing of it reaches the post, response or network metrics"},
)

TABLES: dict[str, pa.Schema] = {
    "people": PEOPLE,
    "containers": CONTAINERS,
    "activities": ACTIVITIES,
    "usage": USAGE,
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
