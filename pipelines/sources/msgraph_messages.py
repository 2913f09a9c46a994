"""Teams message minimisation: one Graph `chatMessage` in, one privacy-safe raw row out; and the canonical
activities of a day's raw rows.

The row keeps only what the metrics need: the container (a channel id; a chat id only as a keyed hash,
because 1:1 chat ids embed both people's Entra ids), the message id (epoch-ms string, unique only inside
its container), the reply pointer (`replyToId` in channels, the `messageReference` attachment in chats),
the kind of author (person, bot, system, deleted), pseudonymous keys of the author, of the parent's author,
of mentioned people and of reactors (with the reaction type and time), edit/delete flags and text-derived
features (`content_length`, `is_question` by the configured question rules, `questions:` of the settings).
The body itself is never returned, stored or logged. `reaction_rows` turns a row's reactions into rows of the `reactions` stream, landed by the day each
reaction was made (Graph's `createdDateTime` of the reaction), so a reaction is dated when it happened.

Classification (API_FORMATS.md section 2): `deletedDateTime` set -> deleted (Graph then gives `from: null`,
so the author is unknown and the message yields no activity); `messageType` `systemEventMessage` (or
`unknownFutureValue`, its name when the Prefer header was not honoured) or an `eventDetail` -> system, not
people's activity; `from.application` -> bot, unless `onBehalfOf.user` names the person it posted for.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from pipelines.config import QuestionRules
from pipelines.topics import TopicRules, as_column

PLATFORM = "msgraph"  # native ids are hashed under this name, whatever the configured source is called

SYSTEM_TYPES = frozenset({"systemEventMessage", "unknownFutureValue", "chatEvent", "typing"})
TS = pa.timestamp("us", tz="UTC")

MESSAGES_SCHEMA = pa.schema([
    pa.field("container_id", pa.string(), nullable=False),
    pa.field("container_kind", pa.string(), nullable=False),  # channel | chat
    pa.field("message_id", pa.string(), nullable=False),
    pa.field("reply_to_id", pa.string()),
    pa.field("created_at", TS, nullable=False),
    pa.field("last_modified_at", TS),
    pa.field("kind", pa.string(), nullable=False),  # person | bot | system | deleted
    pa.field("message_type", pa.string()),
    pa.field("event_type", pa.string()),  # eventDetail @odata.type of system events
    pa.field("actor_key", pa.string()),
    pa.field("parent_actor_key", pa.string()),
    pa.field("content_length", pa.int32()),
    pa.field("is_question", pa.bool_(), nullable=False),
    pa.field("topic_ids", pa.string()),  # pipelines/topics.py ids, never text (raw landed before it: absent)
    pa.field("is_edited", pa.bool_(), nullable=False),
    pa.field("is_deleted", pa.bool_(), nullable=False),
    pa.field("mention_keys", pa.list_(pa.string())),
    pa.field("reaction_types", pa.list_(pa.string())),
    pa.field("reaction_user_keys", pa.list_(pa.string())),
    pa.field("reaction_times", pa.list_(TS)),
])

#: the raw `reactions` stream: one row per (message, reaction type, reactor), partitioned by the UTC day
#: the reaction was made (`reacted_at`, Graph's `createdDateTime` of the reaction), not the message's day
REACTIONS_SCHEMA = pa.schema([
    pa.field("container_id", pa.string(), nullable=False),
    pa.field("message_id", pa.string(), nullable=False),
    pa.field("reply_to_id", pa.string()),
    pa.field("reaction_type", pa.string(), nullable=False),
    pa.field("actor_key", pa.string(), nullable=False),  # the reactor
    pa.field("target_key", pa.string()),  # the message's author (none for bots)
    pa.field("reacted_at", TS, nullable=False),
])

DEFAULT_QUESTIONS = QuestionRules.model_validate({})

#: identity object (`{"id":..., "userIdentityType":...}`) -> person key, or None when not a person
KeyFn = Callable[[Mapping[str, Any]], str | None]

_TAG = re.compile(r"<[^>]*>")
_URL = re.compile(r"https?://\S+")
_CODE = re.compile(r"<(code|pre)\b.*?</\1>", re.S | re.I)


class MessageError(ValueError):
    """A payload item that is not a usable chatMessage; the message says which field is wrong."""


def parse_time(value: Any, field_name: str) -> dt.datetime:
    """Graph timestamps: ISO-8601 UTC with `Z` and 0 to 7 fractional digits (`...:42.08Z`)."""
    if not isinstance(value, str) or not value:
        raise MessageError(f"{field_name} is missing or not a string")
    text = value.strip()
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if not m:
        raise MessageError(f"{field_name} {value!r} is not an ISO-8601 timestamp")
    frac = (m.group(2) or ".0")[1:][:6]  # Graph may send 7 digits; microseconds are enough
    try:
        out = dt.datetime.fromisoformat(f"{m.group(1)}.{frac.ljust(6, '0')}{m.group(3) or '+00:00'}"
                                        .replace("Z", "+00:00"))
    except ValueError as exc:
        raise MessageError(f"{field_name} {value!r} is not a valid timestamp") from exc
    return out.astimezone(dt.UTC)


def plain_text(body: Any) -> str:
    """Visible text of a message body (HTML tags removed, entities decoded); '' when there is none."""
    if not isinstance(body, Mapping):
        return ""
    content = body.get("content")
    if not isinstance(content, str):
        return ""
    if str(body.get("contentType") or "").lower() == "html":
        content = html.unescape(_TAG.sub("", content)).replace("\xa0", " ")
    return content.strip()


def prose(body: Any) -> str:
    """The visible prose of a message body: code blocks, tags and links removed, entities decoded."""
    content = body.get("content") if isinstance(body, Mapping) else None
    if not isinstance(content, str):
        return ""
    if str(body.get("contentType") or "").lower() == "html":
        content = html.unescape(_TAG.sub(" ", _CODE.sub(" ", content))).replace("\xa0", " ")
    return _URL.sub(" ", content)


def is_question(body: Any, rules: QuestionRules | None = None) -> bool:
    """A message asks something when its prose (outside code and links) matches the question rules
    (`questions:` of the configuration; by default: it contains '?')."""
    return (rules or DEFAULT_QUESTIONS).matches(prose(body))


def classify(msg: Mapping[str, Any]) -> str:
    if msg.get("deletedDateTime"):
        return "deleted"
    if msg.get("messageType") in SYSTEM_TYPES or msg.get("eventDetail"):
        return "system"
    sender = msg.get("from") or {}
    if isinstance(sender, Mapping) and isinstance(sender.get("user"), Mapping):
        return "person"
    behalf = msg.get("onBehalfOf") or {}
    if isinstance(sender, Mapping) and sender.get("application"):
        return "person" if isinstance(behalf, Mapping) and isinstance(behalf.get("user"), Mapping) else "bot"
    return "system"


def author_identity(msg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    sender = msg.get("from") or {}
    if isinstance(sender, Mapping) and isinstance(sender.get("user"), Mapping):
        return sender["user"]
    behalf = msg.get("onBehalfOf") or {}
    if isinstance(behalf, Mapping) and isinstance(behalf.get("user"), Mapping):
        return behalf["user"]
    return None


def message_reference(msg: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None] | None:
    """(referenced message id, its sender's user identity) of a chat reply, from the first
    `messageReference` attachment whose `content` (a JSON *string*) parses; None when there is none."""
    for att in msg.get("attachments") or []:
        if not isinstance(att, Mapping) or att.get("contentType") != "messageReference":
            continue
        try:
            content = json.loads(att.get("content") or "")
        except (TypeError, ValueError):
            continue
        if not isinstance(content, Mapping):
            continue
        ref_id = content.get("messageId") or att.get("id")
        if not ref_id:
            continue
        sender = content.get("messageSender") or {}
        user = sender.get("user") if isinstance(sender, Mapping) else None
        return str(ref_id), user if isinstance(user, Mapping) else None
    return None


def minimise(msg: Mapping[str, Any], container_id: str, container_kind: str, key: KeyFn,
             parent_actor_key: str | None = None, questions: QuestionRules | None = None,
             topics: TopicRules | None = None) -> dict[str, Any]:
    """The raw row of one chatMessage. Raises MessageError naming the field when it is unusable.
    `questions`: the configured question rules (`ctx.settings.questions`), the defaults when None;
    `topics`: the configured topic rules (`ctx.settings.topics`), no topics when None."""
    if not isinstance(msg, Mapping):
        raise MessageError(f"a message must be a JSON object, got {type(msg).__name__}")
    mid = msg.get("id")
    if not isinstance(mid, str) or not mid:
        raise MessageError("message without a string 'id'")
    created = parse_time(msg.get("createdDateTime"), "createdDateTime")
    modified_raw = msg.get("lastModifiedDateTime")
    modified = parse_time(modified_raw, "lastModifiedDateTime") if modified_raw else None
    kind = classify(msg)
    author = author_identity(msg) if kind == "person" else None
    actor = key(author) if author is not None else None
    if kind == "person" and actor is None:
        kind = "system"  # an identity we cannot key is nobody's activity
    reply_to = msg.get("replyToId") or None
    parent_key = parent_actor_key
    if container_kind == "chat" and kind == "person":
        ref = message_reference(msg)
        if ref is not None:
            reply_to = ref[0]
            parent_key = key(ref[1]) if ref[1] is not None else None
    mentions: list[str] = []
    reaction_types: list[str] = []
    reactors: list[str] = []
    reaction_times: list[dt.datetime] = []
    if kind in ("person", "bot"):
        for m in msg.get("mentions") or []:
            mentioned = (m or {}).get("mentioned") or {}
            user = mentioned.get("user") if isinstance(mentioned, Mapping) else None
            k = key(user) if isinstance(user, Mapping) else None  # bots, teams, channels, tags: not people
            if kind == "person" and k and k != actor and k not in mentions:
                mentions.append(k)
    if kind != "deleted":
        for r in msg.get("reactions") or []:
            ident = ((r or {}).get("user") or {}).get("user")
            k = key(ident) if isinstance(ident, Mapping) else None
            rtype = str((r or {}).get("reactionType") or "")
            if k and rtype:
                reaction_types.append(rtype)
                reactors.append(k)
                when = r.get("createdDateTime")
                reaction_times.append(parse_time(when, "reactions.createdDateTime") if when else created)
    body = msg.get("body")
    event = msg.get("eventDetail")
    return {
        "container_id": container_id,
        "container_kind": container_kind,
        "message_id": mid,
        "reply_to_id": str(reply_to) if reply_to else None,
        "created_at": created,
        "last_modified_at": modified,
        "kind": kind,
        "message_type": str(msg.get("messageType") or "") or None,
        "event_type": str(event.get("@odata.type") or "") or None if isinstance(event, Mapping) else None,
        "actor_key": actor,
        "parent_actor_key": parent_key if reply_to else None,
        "content_length": len(plain_text(body)) if kind == "person" else None,
        "is_question": is_question(body, questions) if kind == "person" else False,
        "topic_ids": as_column(topics.topics(prose(body))) if topics is not None and kind == "person" else None,
        "is_edited": bool(msg.get("lastEditedDateTime")),
        "is_deleted": kind == "deleted",
        "mention_keys": mentions,
        "reaction_types": reaction_types,
        "reaction_user_keys": reactors,
        "reaction_times": reaction_times,
    }


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    rows = sorted(rows, key=lambda r: (r["container_id"], r["created_at"], r["message_id"]))
    return pa.Table.from_pylist(rows, schema=MESSAGES_SCHEMA)


def reaction_rows(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `reactions` rows of one raw message row: one per distinct (reaction type, reactor), dated when
    the reaction was made (never before the message: a skewed clock does not move it to an earlier day).
    Deleted and system messages have none; reactions on bot messages are people's, without a target."""
    if row["kind"] not in ("person", "bot"):
        return []
    created = row["created_at"]
    times = row.get("reaction_times") or []
    first: dict[tuple[str, str], dt.datetime] = {}
    for i, (rtype, k) in enumerate(zip(row["reaction_types"] or [], row["reaction_user_keys"] or [], strict=True)):
        when = times[i] if i < len(times) and times[i] is not None else created
        when = max(when, created)
        if (rtype, k) not in first or when < first[(rtype, k)]:
            first[(rtype, k)] = when
    target = row["actor_key"] if row["kind"] == "person" else None
    return [{"container_id": row["container_id"], "message_id": row["message_id"], "reply_to_id": row["reply_to_id"],
             "reaction_type": rtype, "actor_key": k, "target_key": target, "reacted_at": when}
            for (rtype, k), when in sorted(first.items())]


def reactions_table(rows: list[dict[str, Any]]) -> pa.Table:
    rows = sorted(rows, key=lambda r: (r["reacted_at"], r["container_id"], r["message_id"], r["reaction_type"],
                                       r["actor_key"]))
    return pa.Table.from_pylist(rows, schema=REACTIONS_SCHEMA)


def canonical_activities(messages: pa.Table | None, source: str,
                         reactions: pa.Table | None = None, *, legacy: bool = False) -> list[dict[str, Any]]:
    """Canonical activity records (pipelines.model.ACTIVITIES names) of one day's raw landing: the
    messages created that day and the reactions made that day.

    - a person's message is a `post`, or a `reply` when it points at a parent (channel `replyToId`,
      chat `messageReference`); target of a reply = the parent's author (none when the parent is deleted);
    - one `mention` per distinct mentioned person other than the author;
    - one `reaction` per row of the day's `reactions` stream (one per message, reactor and reaction type):
      parent = the message, target = its author, dated when it was made (Graph's `createdDateTime` of the
      reaction), so a reaction today to a message of last week is today's activity and leaves last week's
      figures alone;
    - deleted, bot and system messages produce no post, reply or mention (reactions on bot messages are
      people's reactions, without a target).
    `legacy`: a lake landed before the reactions stream existed has no `reactions` partitions; its
    reactions are then read from the message rows and dated at the message, as they were then.
    Event ids are built from container ids, message ids and pseudonymous keys only."""
    out: list[dict[str, Any]] = []
    base0 = {"source": source, "is_question": False, "is_edited": False, "is_deleted": False, "content_length": None}
    for r in messages.to_pylist() if messages is not None else []:
        cid, mid = r["container_id"], r["message_id"]
        msg_key = f"{cid}:{mid}"
        parent = f"{cid}:{r['reply_to_id']}" if r["reply_to_id"] else None
        author = r["actor_key"] if r["kind"] == "person" else None
        base = {**base0, "occurred_at": r["created_at"], "container_id": cid, "thread_id": parent or msg_key}
        if author is not None:
            out.append({**base, "event_id": msg_key, "actor_key": author, "verb": "reply" if parent else "post",
                        "parent_id": parent, "target_key": r["parent_actor_key"] if parent else None,
                        "content_length": r["content_length"], "is_question": bool(r["is_question"]),
                        "topic_ids": r.get("topic_ids"),
                        "is_edited": bool(r["is_edited"])})
            for k in r["mention_keys"] or []:
                out.append({**base, "event_id": f"{msg_key}:mention:{k}", "actor_key": author, "verb": "mention",
                            "parent_id": msg_key, "target_key": k})
        if legacy:
            for x in reaction_rows(r):
                out.append({**base, "event_id": f"{msg_key}:reaction:{x['reaction_type']}:{x['actor_key']}",
                            "actor_key": x["actor_key"], "verb": "reaction", "parent_id": msg_key,
                            "target_key": x["target_key"]})
    for x in reactions.to_pylist() if reactions is not None else []:
        cid, msg_key = x["container_id"], f"{x['container_id']}:{x['message_id']}"
        out.append({**base0, "occurred_at": x["reacted_at"], "container_id": cid,
                    "thread_id": f"{cid}:{x['reply_to_id']}" if x["reply_to_id"] else msg_key,
                    "event_id": f"{msg_key}:reaction:{x['reaction_type']}:{x['actor_key']}",
                    "actor_key": x["actor_key"], "verb": "reaction", "parent_id": msg_key,
                    "target_key": x["target_key"]})
    return out
