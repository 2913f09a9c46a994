"""Slack message minimisation: one Slack message object in, one privacy-safe raw row out.

Shared by the Web API connector (`pipelines.sources.slack`) and the workspace-export importer
(`pipelines.sources.slack_export`), so both land the same `messages` stream and canonicalise the same
way. The row keeps only what the metrics need: pseudonymous keys (never a user id or email), the
channel id and `ts` (the message key, kept as the string Slack sent: a float loses uniqueness), thread
pointers, the kind of author (person, bot, system, tombstone), flags, reaction names with their
reactors' keys, mentioned people's keys, and text-derived features (`content_length`, `is_question`, by
the configured question rules, `questions:` of the settings). The text itself is never returned, stored
or logged.

Event times: Slack gives no time for a reaction (neither the Web API nor the export: a reaction is a
name and its users), so a reaction is dated at the message it is on. The date is then a pure function of
the landed message, so a rerun, an incremental run and a fresh backfill give the same day; a reaction
made later than its message makes the reactor active on the message's day, and the landing that brings
it rewrites that day (its raw partition is journaled pending, so the day is republished). Dating a
reaction when a run first saw it was rejected: a backfill and the daily runs would date the same reaction
differently. Graph, Chatter and the platforms that give the time date it when it was made.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pyarrow as pa

from pipelines.config import QuestionRules
from pipelines.topics import TopicRules, as_column

PLATFORM = "slack"  # native ids are hashed under this name, whatever the configured source is called

#: subtypes written by a person that count as their activity; every other subtype is a system event
#: (joins, leaves, topic changes, pins, legacy file comments, ...) and is not people activity
PERSON_SUBTYPES = frozenset({None, "", "thread_broadcast", "file_share", "me_message", "reply_broadcast"})
BOT_SUBTYPES = frozenset({"bot_message", "bot_add", "bot_remove", "bot_enable", "bot_disable"})

# `<@U123>`, `<@U123|name>`; export archives with names instead of ids use the same brackets
_MENTION = re.compile(r"<@([^>|\s]+)(?:\|[^>]*)?>")
# links, channel refs and user refs: their text is no evidence of a question (`?` in URLs)
_ANGLE = re.compile(r"<[^>]*>")
_CODE = re.compile(r"```.*?```", re.S)

MESSAGES_SCHEMA = pa.schema([
    pa.field("channel", pa.string(), nullable=False),
    pa.field("ts", pa.string(), nullable=False),
    pa.field("thread_ts", pa.string()),
    pa.field("is_reply", pa.bool_(), nullable=False),
    pa.field("is_broadcast", pa.bool_(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # person | bot | system | tombstone
    pa.field("subtype", pa.string()),
    pa.field("actor_key", pa.string()),
    pa.field("parent_actor_key", pa.string()),
    pa.field("content_length", pa.int32()),
    pa.field("is_question", pa.bool_(), nullable=False),
    pa.field("topic_ids", pa.string()),  # pipelines/topics.py ids, never text (raw landed before it: absent)
    pa.field("is_edited", pa.bool_(), nullable=False),
    pa.field("is_deleted", pa.bool_(), nullable=False),
    pa.field("mention_keys", pa.list_(pa.string())),
    pa.field("reaction_names", pa.list_(pa.string())),
    pa.field("reaction_user_keys", pa.list_(pa.string())),
    pa.field("reply_count", pa.int32()),
    pa.field("latest_reply", pa.string()),
])

KeyFn = Callable[[str], str | None]
DEFAULT_QUESTIONS = QuestionRules.model_validate({})

# a Slack ts: epoch seconds (up to year 9999) and an optional fraction ("1736478514.897649")
_TS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
_MAX_TS_SECONDS = 253402300799  # 9999-12-31T23:59:59Z: later seconds do not make a date


def is_ts(value: object) -> bool:
    """True when `value` is a Slack ts string that `ts_to_micros` and `ts_day` accept."""
    return isinstance(value, str) and _TS.fullmatch(value) is not None and \
        int(value.partition(".")[0]) <= _MAX_TS_SECONDS


def ts_to_micros(ts: str) -> int:
    """`"1736478514.897649"` -> epoch microseconds, exactly (no float on the way)."""
    sec, _, frac = str(ts).partition(".")
    return int(sec) * 1_000_000 + int((frac + "000000")[:6])


def ts_day(ts: str) -> dt.date:
    return dt.datetime.fromtimestamp(ts_to_micros(ts) // 1_000_000, tz=dt.UTC).date()


def day_to_ts(day: dt.date) -> str:
    """The Slack ts of 00:00:00 UTC on `day`."""
    return f"{int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())}.000000"


def mentioned_ids(text: str, blocks: Any) -> list[str]:
    """User ids mentioned in `text` (`<@U..>`) and in rich-text `blocks` (`{"type":"user"}`), in order,
    without duplicates. Broadcasts (`<!channel>`, `<!here>`) and channel links are not people."""
    out: list[str] = []
    for uid in _MENTION.findall(text or ""):
        if uid not in out:
            out.append(uid)
    for uid in _block_users(blocks):
        if uid not in out:
            out.append(uid)
    return out


def _block_users(node: Any) -> Iterable[str]:
    if isinstance(node, Mapping):
        if node.get("type") == "user" and isinstance(node.get("user_id"), str):
            yield node["user_id"]
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _block_users(value)
    elif isinstance(node, list):
        for item in node:
            yield from _block_users(item)


def prose(text: str) -> str:
    """The visible prose of a message: links, channel and user references and code blocks removed."""
    return _ANGLE.sub(" ", _CODE.sub(" ", text or ""))


def is_question(text: str, rules: QuestionRules | None = None) -> bool:
    """A message asks something when its prose (outside links, mentions and code) matches the question
    rules (`questions:` of the configuration; by default: it contains '?')."""
    return (rules or DEFAULT_QUESTIONS).matches(prose(text))


def classify(msg: Mapping[str, Any]) -> str:
    subtype = msg.get("subtype")
    if subtype == "tombstone":
        return "tombstone"
    if subtype in BOT_SUBTYPES or msg.get("bot_id"):
        return "bot"
    if subtype not in PERSON_SUBTYPES or not msg.get("user"):
        return "system"
    return "person"


def minimise(msg: Mapping[str, Any], channel: str, key: KeyFn,
             questions: QuestionRules | None = None, topics: TopicRules | None = None) -> dict[str, Any] | None:
    """The raw row of one message, or None when it is not a message (no ts). `questions`: the configured
    question rules (`ctx.settings.questions`), the defaults when None; `topics`: the configured topic
    rules (`ctx.settings.topics`: taxonomy and hashtags on the prose), no topics when None."""
    ts = msg.get("ts")
    if not isinstance(ts, str) or not ts:
        return None
    kind = classify(msg)
    thread_ts = msg.get("thread_ts") or None
    is_reply = thread_ts is not None and thread_ts != ts
    text = msg.get("text") or ""
    user = msg.get("user")
    # Slack's own placeholder author of tombstones is not a person
    actor = key(user) if user and user != "USLACKBOT" else None
    parent_user = msg.get("parent_user_id")
    # self-mentions are no interaction; old exports also write "<@author> uploaded a file" in file_share
    mentions = [k for k in (key(u) for u in mentioned_ids(text, msg.get("blocks")) if u != user) if k] \
        if kind == "person" else []
    names: list[str] = []
    reactors: list[str] = []
    for reaction in msg.get("reactions") or []:
        name = str(reaction.get("name") or "")
        for uid in reaction.get("users") or []:
            k = key(uid)
            if k and name:
                names.append(name)
                reactors.append(k)
    reply_count = msg.get("reply_count")
    return {
        "channel": channel,
        "ts": ts,
        "thread_ts": thread_ts,
        "is_reply": is_reply,
        "is_broadcast": msg.get("subtype") == "thread_broadcast",
        "kind": kind,
        "subtype": msg.get("subtype") or None,
        "actor_key": actor,
        "parent_actor_key": key(parent_user) if is_reply and parent_user else None,
        "content_length": len(text) if kind == "person" else None,
        "is_question": is_question(text, questions) if kind == "person" else False,
        "topic_ids": as_column(topics.topics(prose(text))) if topics is not None and kind == "person" else None,
        "is_edited": bool(msg.get("edited")),
        "is_deleted": kind == "tombstone",
        "mention_keys": mentions,
        "reaction_names": names,
        "reaction_user_keys": reactors,
        "reply_count": int(reply_count) if reply_count is not None else None,
        "latest_reply": msg.get("latest_reply") or None,
    }


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    rows = sorted(rows, key=lambda r: (r["channel"], ts_to_micros(r["ts"]), r["ts"]))
    return pa.Table.from_pylist(rows, schema=MESSAGES_SCHEMA)


def fill_parent_keys(rows: Iterable[dict[str, Any]], parents: Mapping[tuple[str, str], str | None]) -> None:
    """Set `parent_actor_key` of replies that lack `parent_user_id` from the known parent rows."""
    for r in rows:
        if r["is_reply"] and r["parent_actor_key"] is None:
            r["parent_actor_key"] = parents.get((r["channel"], r["thread_ts"]))


def canonical_activities(messages: pa.Table, source: str) -> list[dict[str, Any]]:
    """Canonical activity records (pipelines.model.ACTIVITIES names) of one day's raw messages.

    - a person's message is a `post`, or a `reply` when `thread_ts != ts` (broadcasts included, once:
      rows are unique by (channel, ts)); target of a reply = the parent's author;
    - a tombstone (deleted parent that still has replies) stays a post with `is_deleted`, when its
      author is known;
    - one `reaction` per (reactor, emoji): parent = the message, target = its author (none for bots);
      Slack gives no reaction time, so it is dated at the message;
    - one `mention` per distinct mentioned person in a person's message;
    - bot and system messages produce no post, reply or mention.
    Event ids are built from the channel id, the ts and pseudonymous keys only."""
    out: list[dict[str, Any]] = []
    for r in messages.to_pylist():
        ch, ts = r["channel"], r["ts"]
        when = dt.datetime.fromtimestamp(0, tz=dt.UTC) + dt.timedelta(microseconds=ts_to_micros(ts))
        msg_id = f"{ch}:{ts}"
        thread_id = f"{ch}:{r['thread_ts'] or ts}"
        author = r["actor_key"] if r["kind"] in ("person", "tombstone") else None
        base = {"source": source, "occurred_at": when, "container_id": ch, "thread_id": thread_id,
                "is_question": False, "is_edited": False, "is_deleted": False, "content_length": None}
        if author is not None:
            reply = bool(r["is_reply"])
            out.append({**base, "event_id": msg_id, "actor_key": author, "verb": "reply" if reply else "post",
                        "parent_id": f"{ch}:{r['thread_ts']}" if reply else None,
                        "target_key": r["parent_actor_key"] if reply else None,
                        "content_length": r["content_length"], "is_question": bool(r["is_question"]),
                        "topic_ids": r.get("topic_ids"),
                        "is_edited": bool(r["is_edited"]), "is_deleted": bool(r["is_deleted"])})
        if r["kind"] == "person":
            for k in r["mention_keys"] or []:
                out.append({**base, "event_id": f"{msg_id}:mention:{k}", "actor_key": author, "verb": "mention",
                            "parent_id": msg_id, "target_key": k})
        seen: set[tuple[str, str]] = set()
        for name, k in zip(r["reaction_names"] or [], r["reaction_user_keys"] or [], strict=True):
            if (name, k) in seen:
                continue
            seen.add((name, k))
            out.append({**base, "event_id": f"{msg_id}:reaction:{name}:{k}", "actor_key": k, "verb": "reaction",
                        "parent_id": msg_id, "target_key": author})
    return out
