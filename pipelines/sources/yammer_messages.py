"""Viva Engage (Yammer) message minimisation and canonicalisation, shared by the REST connector
(`pipelines.sources.yammer`) and the Data Export importer (`pipelines.sources.yammer_export`).

Both land the same raw `messages` stream (one row per message, partitioned by the UTC day of
`created_at`), so they canonicalise identically and a person gets the same key from either path: the
key is `pseudonymiser.person("yammer", user id, email)`, email first, so it matches Slack, Teams or
Salesforce for the same address. A row keeps only what the metrics need: the message id and its
thread/reply pointers (Yammer's own numeric ids of *messages*, kept as strings: a float loses digits),
the container, pseudonymous keys (author, parent's author, thread starter, mentioned people, likers),
the kind of author (person or system), and text-derived features (`content_length`, `is_question`,
`topic_ids`).

Topics (`topic_ids`, `pipelines.topics`): computed while the message is in memory, for people's messages
only, from the prose (`body.plain` of the REST message, the export's `body` without its `[[user:ID]]` /
`[[tag:ID]]` tokens) through the configured taxonomy and `#hashtags`, plus the platform's tags: the Viva
Engage topics of a REST message, by NAME (the `#<a ...>name</a>` of a `data-resource-model='tag'` object of
`body.rich`, the `name` of the `tag` reference of a `[[tag:ID]]` token of `body.parsed`, the `name` of the
`topic` references a thread reference's `topics[]` (or the message's own `topics[]`) points to, given to the
thread starter only: the warehouse gives a thread's topics to its replies), so a Viva Engage topic has the
`tag_id` of the same Slack `#name`. The Data Export's documented Messages.csv columns carry no tag names (a
`[[tag:ID]]` token is a number): the export's topics come from the prose only. Only the ids are kept;
partitions landed before `topic_ids` load with it null (`conform_raw`).

Questions and best answers are first class: a thread starter with `message_type: question` is a
question; the reply chosen as best answer gives an `answer_accepted` activity whose actor is the asker
and whose target is the answerer, dated at the answer (Yammer gives no time of the choice).
Likes become `reaction`s dated at the message (Yammer gives no time of a like either: `liked_by` is
a count and the likers' names and ids; the Data Export has no likes at all). The date is then a pure
function of the landed message, so a rerun, the daily runs and a fresh backfill date a like alike; a like
made days later makes the liker active on the message's day, and the re-read that brings it rewrites that
day (its raw partition is journaled pending, so the day is republished). Graph and Chatter, which give a
reaction's time, date it when it was made. `is_question` is the platform's own type, not the configured
text heuristic (`questions:` of the settings applies to the sources without a question type).

People: both land the network's user listing as the raw `users` stream (`USERS_SCHEMA`: a key, the
department Viva Engage holds, deactivated when the user is not active), canonicalised into the source's
people rows (`yammer_people`: outside the HR directory, members; the HR row of the same email wins).

This module must never return, store or log message text, user ids or emails: callers pass a key
function and get keyed rows back.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines import lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.model import ACTIVITIES, TS
from pipelines.topics import TopicRules, as_column

PLATFORM = "yammer"  # native ids are hashed under this name, whatever the configured source is called
ALL_COMPANY = "all_company"  # container of public messages posted outside any community
#: one container for every private conversation: a container per conversation would have to be listed
#: in every containers snapshot (the validation checks activities against it) for the whole history
PRIVATE = "private_messages"

#: `[[user:123]]` tokens of `body.parsed` (REST) and of the export's `body` column
USER_TOKEN = re.compile(r"\[\[user:(\d+)\]\]")
#: `[[tag:123]]` tokens (a Viva Engage topic, by id) of `body.parsed` and of the export's `body`
TAG_TOKEN = re.compile(r"\[\[tag:(\d+)\]\]")
#: any `[[type:id]]` token: not prose
_ANY_TOKEN = re.compile(r"\[\[[a-z_]+:\d+\]\]")
#: a topic object of `body.rich`: `<span class='yammer-object' ... data-resource-model='tag'>#<a href=...>name</a>`
_RICH_TAG = re.compile(r"""<span\b[^>]*\bdata-resource-model\s*=\s*['"]tag['"][^>]*>\s*#?\s*(?:<a\b[^>]*>)?\s*([^<]+?)\s*<""",
                       re.I)

#: the raw `users` stream: no id, no name, no email
USERS_SCHEMA = pa.schema([("person_key", pa.string()), ("is_deactivated", pa.bool_()), ("department", pa.string())])


def user_row(key: str | None, *, state: Any = None, department: Any = None, gone: bool = False) -> dict[str, Any]:
    """A `users` row: deactivated when the state is anything but active (suspended, soft_delete...) or
    the user is marked deleted / suspended (`gone`)."""
    state = str(state or "").strip().lower()
    dept = department.strip() if isinstance(department, str) else None
    return {"person_key": key, "is_deactivated": gone or state not in ("", "active", "null"),
            "department": dept if dept and dept.lower() != "null" else None}


def yammer_people(users: pa.Table) -> pd.DataFrame:
    df = users.to_pandas()
    return platform_people(pd.DataFrame({"person_key": df["person_key"], "account_type": "member",
                                         "is_deactivated": df["is_deactivated"], "department": df["department"]}))


MESSAGES_SCHEMA = pa.schema([
    pa.field("message_id", pa.string(), nullable=False),
    pa.field("thread_id", pa.string(), nullable=False),
    pa.field("replied_to_id", pa.string()),
    pa.field("container_id", pa.string(), nullable=False),
    pa.field("visibility", pa.string(), nullable=False),  # public | private | direct
    pa.field("created_at", TS, nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # person | system
    pa.field("actor_key", pa.string()),
    pa.field("parent_actor_key", pa.string()),
    pa.field("thread_starter_key", pa.string()),
    pa.field("content_length", pa.int32()),
    pa.field("is_question", pa.bool_(), nullable=False),
    pa.field("topic_ids", pa.string()),  # pipelines/topics.py ids, never text (raw landed before it: absent)
    pa.field("is_best_answer", pa.bool_(), nullable=False),
    pa.field("is_deleted", pa.bool_(), nullable=False),
    pa.field("mention_keys", pa.list_(pa.string())),
    pa.field("like_keys", pa.list_(pa.string())),
])

KeyFn = Callable[[str], str | None]


def conform_raw(table: pa.Table) -> pa.Table:
    """A landed `messages` partition in today's `MESSAGES_SCHEMA`: one landed before a column was added
    (`topic_ids`) gets it null."""
    for f in MESSAGES_SCHEMA:
        if f.name not in table.column_names and f.nullable:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(MESSAGES_SCHEMA.names).cast(MESSAGES_SCHEMA)


def rich_tags(rich: Any) -> list[str]:
    """The topic names of the `data-resource-model='tag'` objects of a REST `body.rich`."""
    if not isinstance(rich, str):
        return []
    return [html.unescape(name) for name in _RICH_TAG.findall(rich)]


def token_free(text: Any) -> str:
    """A `parsed`-style body (the export's `body`) without its `[[user:ID]]` / `[[tag:ID]]` tokens."""
    return _ANY_TOKEN.sub(" ", text) if isinstance(text, str) else ""


def topic_column(rules: TopicRules | None, prose: str | None, tags: Iterable[str] = ()) -> str | None:
    """The `topic_ids` of a person's message (None without rules): ids only, never text."""
    return as_column(rules.topics(prose, tags)) if rules is not None else None

_FORMATS = ("%Y/%m/%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z")


def parse_time(value: Any) -> dt.datetime | None:
    """A Yammer timestamp as an aware UTC datetime, or None when blank / `null` / unparseable.

    REST payloads use `2013/06/25 18:14:45 +0000` although the docs say RFC3339; exports use ISO-8601
    with `Z` or an offset; a naive value is taken as UTC."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.lower() == "null":
        return None
    text = text.replace("Z", "+00:00") if text.endswith("Z") else text
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).astimezone(dt.UTC)
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def native_id(value: Any) -> str | None:
    """A Yammer id (int, numeric string, or float read by a careless CSV reader) as a digit string."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float):
        # 16-digit ids are below 2**53, so a float that still holds one converts back exactly
        return str(int(value))
    text = str(value).strip()
    if not text or text.lower() in ("null", "none", "nan"):
        return None
    return text


def container_of(group_id: str | None, private: bool) -> tuple[str, str]:
    """(container_id, visibility): a community, the private conversations, or All Company."""
    if private:
        return PRIVATE, "direct"
    if group_id:
        return group_id, "public"
    return ALL_COMPANY, "public"


def row(*, message_id: str, thread_id: str | None, replied_to_id: str | None, group_id: str | None,
        private: bool, created_at: dt.datetime, person: bool, actor_key: str | None,
        parent_actor_key: str | None, thread_starter_key: str | None, text_length: int | None,
        is_question: bool, is_best_answer: bool, is_deleted: bool, mention_keys: Iterable[str],
        like_keys: Iterable[str], topic_ids: str | None = None) -> dict[str, Any]:
    """One raw row; every identifier given here must already be a key, `topic_ids` ids only
    (`topic_column`), kept for a person's message only."""
    thread = thread_id or message_id
    container, visibility = container_of(group_id, private)
    mentions = [] if not person else sorted({k for k in mention_keys if k and k != actor_key})
    return {
        "message_id": message_id, "thread_id": thread, "replied_to_id": replied_to_id,
        "container_id": container, "visibility": visibility, "created_at": created_at,
        "kind": "person" if person and actor_key else "system", "actor_key": actor_key,
        "parent_actor_key": parent_actor_key if replied_to_id else None,
        "thread_starter_key": thread_starter_key,
        "content_length": text_length if person else None,
        "is_question": bool(is_question and person and not replied_to_id),
        "topic_ids": topic_ids if person and actor_key else None,
        "is_best_answer": bool(is_best_answer and replied_to_id),
        "is_deleted": is_deleted, "mention_keys": mentions,
        "like_keys": sorted({k for k in like_keys if k}),
    }


def rows_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    ordered = sorted(rows, key=lambda r: (r["created_at"], int(r["message_id"]) if r["message_id"].isdigit()
                                          else 0, r["message_id"]))
    return pa.Table.from_pylist(ordered, schema=MESSAGES_SCHEMA)


def land_days(lake_dir: Path, name: str, rows: Iterable[dict[str, Any]], days: Iterable[dt.date]) -> list[dt.date]:
    """Replace the `messages` partitions of `days` with `rows` (each day gets its rows, possibly none):
    the caller read every message of those days, so what is missing was deleted."""
    by_day: dict[dt.date, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_day.setdefault(r["created_at"].astimezone(dt.UTC).date(), {})[r["message_id"]] = r
    base = lake.raw_dir(lake_dir, name, "messages")
    written = []
    for day in sorted(set(days)):
        table = rows_table(by_day.get(day, {}).values())
        old = lake.read_partition(base, day)
        if old is not None and conform_raw(old).equals(table):
            continue  # unchanged: no rewrite, so nothing downstream needs to re-read it
        lake.write_partition(base, day, table)
        written.append(day)
    return written


def canonical_activities(messages: pa.Table, source: str) -> list[dict[str, Any]]:
    """Canonical activity records of one day's raw messages.

    - a person's message is a `post` (thread starter) or a `reply` (target: the replied-to author);
      a deleted one (exports keep them with `deleted_at`) stays, flagged `is_deleted`;
    - one `mention` per mentioned person, one `reaction` per liker (target: the author);
    - the best answer of a question gives `answer_accepted`: actor = asker, target = answerer;
    - system messages (joins, announcements by the platform) give nothing.
    Event ids are built from message ids and keys only."""
    out: list[dict[str, Any]] = []
    for r in messages.to_pylist():
        if r["kind"] != "person" or not r["actor_key"]:
            continue
        mid = r["message_id"]
        reply = r["replied_to_id"] is not None
        base = {"source": source, "occurred_at": r["created_at"], "container_id": r["container_id"],
                "thread_id": r["thread_id"], "is_question": False, "is_edited": False, "is_deleted": False,
                "content_length": None}
        author = r["actor_key"]
        out.append({**base, "event_id": mid, "actor_key": author, "verb": "reply" if reply else "post",
                    "parent_id": r["replied_to_id"], "target_key": r["parent_actor_key"] if reply else None,
                    "content_length": r["content_length"], "is_question": bool(r["is_question"]),
                    "topic_ids": r.get("topic_ids"), "is_deleted": bool(r["is_deleted"])})
        for k in r["mention_keys"] or []:
            out.append({**base, "event_id": f"{mid}:mention:{k}", "actor_key": author, "verb": "mention",
                        "parent_id": mid, "target_key": k})
        for k in r["like_keys"] or []:
            out.append({**base, "event_id": f"{mid}:like:{k}", "actor_key": k, "verb": "reaction",
                        "parent_id": mid, "target_key": author})
        if r["is_best_answer"] and r["thread_starter_key"] and r["thread_starter_key"] != author:
            out.append({**base, "event_id": f"{mid}:accepted", "actor_key": r["thread_starter_key"],
                        "verb": "answer_accepted", "parent_id": mid, "target_key": author})
    return out


def canonicalise_landing(lake_dir: Path, name: str, day: dt.date) -> dict[str, pd.DataFrame]:
    """Canonical tables of `day` from the raw landing only (replayable without the API)."""
    out: dict[str, pd.DataFrame] = {}
    raw = lake.read_partition(lake.raw_dir(lake_dir, name, "messages"), day)
    if raw is not None:
        frame = pd.DataFrame.from_records(canonical_activities(raw, name), columns=list(ACTIVITIES.names))
        out["activities"] = raw_activities_to_canonical(frame, name)
    users = lake.read_partition(lake.raw_dir(lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = yammer_people(users)
    groups = lake.read_partition(lake.raw_dir(lake_dir, name, "groups"), day)
    if groups is not None:
        out["containers"] = groups.to_pandas()
    return out


def containers_frame(source: str, groups: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The containers snapshot: every community, plus All Company and the private conversations, so
    that every container an activity names is listed. `groups` rows: id, private (bool), members,
    created_at; names and descriptions are never kept."""
    rows = [{"source": source, "container_id": ALL_COMPANY, "kind": "feed", "visibility": "public",
             "member_count": None, "owner_department": None, "created_at": None},
            {"source": source, "container_id": PRIVATE, "kind": "chat", "visibility": "direct",
             "member_count": None, "owner_department": None, "created_at": None}]
    for g in groups:
        rows.append({"source": source, "container_id": g["id"], "kind": "community",
                     "visibility": "private" if g.get("private") else "public",
                     "member_count": g.get("members"), "owner_department": None,
                     "created_at": g.get("created_at")})
    df = pd.DataFrame(rows, columns=["source", "container_id", "kind", "visibility", "member_count",
                                     "owner_department", "created_at"])
    df["member_count"] = df["member_count"].astype("Int32")
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df
