"""The Socialcast archive source (kind "socialcast_archive"): the API files an organisation kept after
Socialcast's retirement (2019), imported from a folder or a zip.

Input (option `path`): a folder (read recursively), a zip, or one file, of Socialcast API answers in
JSON or in the older XML form (`pipelines.sources.socialcast_formats` lists the shapes): message pages
(`/api/messages`, `/api/streams/<id>/messages`), single messages, user listings (`/api/users`, a
user), group listings; stream listings are recognised and skipped. Files are recognised by their content,
whatever their names; only `.json` and `.xml` files are read (others, hidden files and `__MACOSX/` are
counted in `details["files_ignored"]`). docs/sources/socialcast.md has the layout and the limits.

Mapping (one canonical activity each):
  - a message is a `post` by its `user`, in its group's container (else `company_stream`), with
    `is_question` when `message_type` is `question`, `is_idea` when it is `idea`; `content_length` is the
    visible text of `html_body` (else `body`). Message types that people write are posts: status_message,
    question, idea, link, poll, and any type not listed below (counted in `details["message_types"]`).
    Items the platform generates are system items, no post: `web_feed` (an external feed: Twitter,
    Delicious...), `new_group` ("created the group"), `project_share_with_group` (`SYSTEM_TYPES`). Their
    comments and likes are people's and are kept, directed at the item's user;
  - a comment is a `reply` (target: the message's author, parent: the message);
  - a like, on a message or a comment, is a `reaction` by the liker (target: the liked item's author),
    dated when the like was made (`created_at`; the item's time when a like has none);
  - a mention is a `mention` (target: the mentioned user) by the author of the message or comment whose
    text mentions them: the HTML body's `data-user-id` attributes, and the users of the message's
    `recipients` (groups are not people) whose `mention_name` (XML: `username`) appears as `@name` in
    that item's text. `recipients` is the thread's list (the real 2011 and 2016 answers list there the
    users @mentioned in the message and in every comment), so each is attributed to the item that names
    them; a user recipient no item names (a message addressed to someone) is a mention by the message's
    author. Nobody mentions themselves; a person is mentioned at most once per item;
  - a `shared_message` makes the post also a `share` (target: the shared message's author);
  - groups are containers (`group`, private when `private` or `permission: private`);
  - a post's and a reply's `topic_ids` (`pipelines.topics`, with `ctx.settings.topics`) come from its
    prose (the visible text outside code, links removed) and, for a post, the names of its
    `tags[{name,url}]` (hashtags) as platform tags; computed while the file is read, the text dropped.
    System items have no post, hence no topics; events landed before this column load with none.
The same message in several files (a stream page and a messages page, a JSON and an XML capture) is one
message: its fields come from the version with the latest `updated_at` (the first file in path order on
a tie), its comments, likes and recipients are the union over every version (by comment id, by liker).

People: every user listed (`/api/users`, `user.xml`, `users.xml`) is a people row (outside the HR
directory; department from the `custom_fields` entry `department`; deactivated when `terminated`,
`inactive` or not `active`). Every user reference (author, commenter, liker, recipient, HTML mention) is
keyed `pseudonymiser.person("socialcast", user id, email)` with the email the archive gives for that user
id anywhere (a listing's, or an embedded user's `contact_info.email`), so a person has one key in the
whole import, and the key matches other platforms where an email is known.

Bad input (the style of `yammer_export` / `slack_export`): a file that is not a Socialcast API document
(not JSON or XML, not UTF-8, nested deeper than `max_json_depth`, an XML DOCTYPE, an unknown shape) is
quarantined whole; a record that cannot be read (a message without id, user or time, a comment or a like
without a user) is quarantined alone, the rest imported. `details["quarantined"]` is {reason: count},
`details["quarantine_file"]` the JSON file under `<lake>/quarantine/raw/source=<name>/` listing file,
position and reason of each (never a value). With `bad_records: reject` they reject the import
(`ImportRejected` naming file, record and reason) before anything is written; so does an archive with no
readable Socialcast file at all. Unsafe archives (`pipelines.sources.safe_archive`: `..` or absolute
members, links, oversize members, zip bombs) are refused naming the member and the option.

Landing: the raw `events` stream, one row per activity (keys only), per UTC day of [start, end]: a run
replaces exactly those days with what the archive holds for them (activities outside the interval are
counted in `details["outside_interval"]`, not landed); `users` and `groups` as of `end`. Replies announced
(`comments_count`) against the comments present are tallied for `pipelines.completeness`.

This module must never write, log or return message text, names, user ids or emails: records are keyed
before landing; event ids are built from message and comment ids and keys only.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import ConfigDict, Field

from pipelines import completeness, lake
from pipelines.canonical import platform_people
from pipelines.model import ACTIVITIES, TS
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.file_import_formats import ImportRejected, Problem
from pipelines.sources.safe_archive import (
    DEFAULT_MAX_JSON_DEPTH,
    ArchiveError,
    Budget,
    ExportLimits,
    FolderTree,
    Limits,
    Quarantine,
    Tree,
    UnsafePath,
    ZipTree,
    is_zip,
)
from pipelines.sources.socialcast_formats import (
    BadDocument,
    BadRecord,
    Comment,
    Group,
    Item,
    Like,
    Message,
    User,
    embedded_email,
    native_id,
    parse_group,
    parse_message,
    parse_user,
    read_document,
    record_value,
    user_objects,
)
from pipelines.topics import TopicRules

PLATFORM = "socialcast"  # native user ids are hashed under this name, whatever the source is called
COMPANY_STREAM = "company_stream"  # the container of messages posted outside any group
#: message types the platform generates (not a person's post); their comments and likes are kept
SYSTEM_TYPES = frozenset({"web_feed", "new_group", "project_share_with_group"})
#: message types known to be people's posts (any other type is a post too, and counted)
PERSON_TYPES = frozenset({"status_message", "question", "idea", "link", "poll", ""})
SUFFIXES = (".json", ".xml")

EVENTS_SCHEMA = pa.schema([
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
    pa.field("is_idea", pa.bool_(), nullable=False),
    pa.field("topic_ids", pa.string()),  # pipelines/topics.py ids, never text (events landed before it: absent)
])
#: the raw `users` stream: no id, no name, no email
USERS_SCHEMA = pa.schema([("person_key", pa.string()), ("department", pa.string()),
                          ("is_deactivated", pa.bool_()), ("account_type", pa.string())])
GROUPS_COLUMNS = ["source", "container_id", "kind", "visibility", "member_count", "owner_department", "created_at"]


class SocialcastArchiveOptions(ExportLimits):
    model_config = ConfigDict(extra="forbid")
    path: Path = Field(..., description="a folder (read recursively), a .zip, or one .json / .xml file of "
                       "Socialcast API answers")
    max_json_depth: int = Field(DEFAULT_MAX_JSON_DEPTH, ge=2, description="deepest nesting of a JSON or "
                                "XML document")


def options(ctx: SourceContext) -> SocialcastArchiveOptions:
    return SocialcastArchiveOptions.model_validate(ctx.source.options)


# ------------------------------------------------------------------------------------------ reading
@dataclass
class Archive:
    """Clear content of an archive, in memory only."""

    messages: dict[str, Message] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    files: Counter[str] = field(default_factory=Counter)  # kind of document -> files read
    files_ignored: int = 0
    records: Counter[str] = field(default_factory=Counter)  # messages / users / groups read (duplicates too)
    duplicates: int = 0
    email_conflicts: int = 0

    def learn(self, uid: str, email: str | None) -> None:
        if not email:
            return
        old = self.emails.setdefault(uid, email)
        if old.strip().lower() != email.strip().lower():
            self.email_conflicts += 1  # the first file in path order wins


def _listing(path: Path, limits: Limits, budget: Budget) -> tuple[Tree, list[str], int]:
    """The tree of the archive, the relative paths of its .json / .xml files (sorted), and how many
    other files it holds."""
    if is_zip(path):
        tree: Tree = ZipTree(path, limits, budget, label=path.name)
        names = [n for n in tree.names() if not n.endswith("/")]  # type: ignore[attr-defined]
    elif path.is_dir():
        tree = FolderTree(path, limits, budget)
        names = _walk(path, tree)
    elif path.is_file():
        real = path.resolve()  # the configured path itself may be a link: the operator's choice
        tree, names = FolderTree(real.parent, limits, budget), [real.name]
    else:
        raise ImportRejected([Problem(str(path), None, "option path: no such file or folder")])
    wanted, ignored = [], 0
    for name in sorted(names):
        parts = PurePosixPath(name).parts
        if any(p.startswith(".") or p == "__MACOSX" for p in parts) or not name.lower().endswith(SUFFIXES):
            ignored += 1
        else:
            wanted.append(name)
    return tree, wanted, ignored


def _walk(root: Path, tree: FolderTree) -> list[str]:
    """Relative paths of every file below `root`; a linked folder is refused like a linked file."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for d in sorted(dirnames):
            if (Path(dirpath) / d).is_symlink():
                raise UnsafePath(tree.where((rel / d).as_posix()), "a symbolic link: links are refused in an "
                                 "export (one could point outside it); replace it by the folder itself")
        out += [(rel / f).as_posix() for f in filenames]
    return out


def _newer(new: Item, old: Item) -> bool:
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    return (new.updated_at or floor) > (old.updated_at or floor)


def _merge_likes(a: list[Like], b: list[Like]) -> list[Like]:
    """Union by liker; the earliest time known for a liker."""
    by: dict[str, Like] = {}
    for like in [*a, *b]:
        old = by.get(like.user_id)
        if old is None or (like.created_at is not None and (old.created_at is None or like.created_at < old.created_at)):
            by[like.user_id] = Like(like.user_id, like.created_at)
    return list(by.values())


def _merge_comment(old: Comment, new: Comment) -> Comment:
    base = new if _newer(new, old) else old
    base.likes = _merge_likes(old.likes, new.likes)
    return base


def merge_message(old: Message, new: Message) -> Message:
    """One message seen twice: the later version's fields, the union of comments, likes, recipients."""
    base, other = (new, old) if _newer(new, old) else (old, new)
    comments = {c.id: c for c in old.comments}
    for c in new.comments:  # on a tie the version read first (path order) is kept, as for the message
        comments[c.id] = _merge_comment(comments[c.id], c) if c.id in comments else c
    recipients = {r.user_id: r for r in other.recipients}
    recipients.update({r.user_id: r for r in base.recipients if r.mention_name or r.user_id not in recipients})
    base.comments = sorted(comments.values(), key=lambda c: int(c.id))
    base.likes = _merge_likes(old.likes, new.likes)
    base.recipients = list(recipients.values())
    if base.comments_count is None or (other.comments_count or 0) > base.comments_count:
        base.comments_count = other.comments_count
    return base


def _merge_user(old: User, new: User) -> User:
    """Field by field, the first known value in path order."""
    return User(old.id, old.email or new.email, old.department or new.department, old.deactivated,
                old.account_type)


def read_archive(tree: Tree, names: list[str], bad: Quarantine, depth: int,
                 topics: TopicRules | None = None) -> Archive:
    """Every file of the archive parsed (bad files and records into `bad`); raises `ArchiveError`.
    `topics`: the configured topic rules (`ctx.settings.topics`), no topic ids when None."""
    arc = Archive()
    for rel in names:
        raw = tree.read(rel)
        if raw is None:
            continue
        try:
            doc = read_document(raw, depth)
        except BadDocument as exc:
            bad.add(rel, None, exc.reason, detail=str(exc))
            continue
        del raw
        arc.files[doc.kind] += 1
        for index, entry in doc.items:
            try:
                _take(arc, doc.kind, record_value(entry), rel, index, doc.unit, bad, topics)
            except BadRecord as exc:
                bad.add(rel, index, exc.reason, unit=doc.unit, detail=exc.detail)
    return arc


def _take(arc: Archive, kind: str, value: Any, rel: str, index: int, unit: str, bad: Quarantine,
          topics: TopicRules | None = None) -> None:
    if kind == "streams":
        return
    if kind == "groups":
        g = parse_group(value)
        arc.records["groups"] += 1
        arc.groups.setdefault(g.id, g)
        return
    if kind == "users":
        u = parse_user(value)
        arc.records["users"] += 1
        arc.learn(u.id, u.email)
        arc.users[u.id] = _merge_user(arc.users[u.id], u) if u.id in arc.users else u
        return
    m = parse_message(value, topics)
    arc.records["messages"] += 1
    for reason, detail in m.problems:  # comments or likes set aside, the message kept
        bad.add(rel, index, reason, unit=unit, detail=detail)
    for obj in user_objects(value):
        uid = native_id(obj.get("id"))
        if uid is not None:
            arc.learn(uid, embedded_email(obj))
    if m.group is not None:
        arc.groups.setdefault(m.group.id, m.group)
    if m.id in arc.messages:
        arc.duplicates += 1
        arc.messages[m.id] = merge_message(arc.messages[m.id], m)
    else:
        arc.messages[m.id] = m


# ------------------------------------------------------------------------------------------ events
class Keys:
    """user id -> person key: by the email the archive gives for the id, else by the id."""

    def __init__(self, ctx: SourceContext, emails: dict[str, str]):
        self._ps, self._emails = ctx.pseudonymiser, emails
        self.email_keys: set[str] = set()

    def __call__(self, uid: str | None) -> str | None:
        if not uid:
            return None
        email = self._emails.get(uid)
        key = self._ps.person(PLATFORM, uid, email)
        if email and key:
            self.email_keys.add(key)
        return key


def is_person_post(m: Message) -> bool:
    return m.message_type not in SYSTEM_TYPES


def mention_targets(m: Message) -> list[tuple[Item, set[str]]]:
    """(item, user ids it mentions) of a message's items (the message first, then its comments), by the
    rule of the module docstring; author-self mentions removed."""
    items: list[Item] = ([m] if is_person_post(m) else []) + list(m.comments)
    named: set[str] = set()
    out = []
    for item in items:
        ids = set(item.html_user_ids)
        ids |= {r.user_id for r in m.recipients if r.mention_name and r.mention_name in item.tokens}
        named |= ids
        out.append((item, ids - {item.author}))
    if is_person_post(m):
        rest = {r.user_id for r in m.recipients} - named - {m.author}
        out[0] = (m, out[0][1] | rest)
    return out


def _event(event_id: str, when: dt.datetime, actor: str, verb: str, container: str, thread: str,
           parent: str | None, target: str | None, length: int | None = None, question: bool = False,
           idea: bool = False, topic_ids: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": when, "actor_key": actor, "verb": verb,
            "container_id": container, "thread_id": thread, "parent_id": parent, "target_key": target,
            "content_length": length, "is_question": question, "is_idea": idea, "topic_ids": topic_ids}


def build_events(arc: Archive, keys: Keys) -> list[dict[str, Any]]:
    """The activities of the archive, keyed, one per event id, sorted by time then id."""
    out: dict[str, dict[str, Any]] = {}

    def add(e: dict[str, Any]) -> None:
        if e["actor_key"]:
            out.setdefault(e["event_id"], e)

    for mid in sorted(arc.messages, key=int):
        m = arc.messages[mid]
        thread = f"m{mid}"
        container = m.group.id if m.group is not None else COMPANY_STREAM
        author = keys(m.author)
        if is_person_post(m):
            add(_event(thread, m.created_at, author or "", "post", container, thread, None, None,
                       m.text_length, m.message_type == "question", m.message_type == "idea", m.topic_ids))
            if m.shared is not None:
                add(_event(f"{thread}:share", m.created_at, author or "", "share", container, thread,
                           f"m{m.shared[0]}", keys(m.shared[1])))
        cids = {c.id: f"{thread}:c{c.id}" for c in m.comments}
        for c in m.comments:
            add(_event(cids[c.id], c.created_at, keys(c.author) or "", "reply", container, thread, thread,
                       author, c.text_length, topic_ids=c.topic_ids))
        for item, targets in mention_targets(m):
            eid = thread if item is m else cids[item.id]
            actor = keys(item.author)
            for mentioned in sorted({k for k in map(keys, targets) if k is not None} - {actor}):
                add(_event(f"{eid}:mention:{mentioned}", item.created_at, actor or "", "mention", container,
                           thread, eid, mentioned))
        for item, eid in [(m, thread), *((c, cids[c.id]) for c in m.comments)]:
            target = keys(item.author)
            for like in item.likes:
                k = keys(like.user_id)
                add(_event(f"{eid}:like:{k}", like.created_at or item.created_at, k or "", "reaction",
                           container, thread, eid, target))
    return sorted(out.values(), key=lambda e: (e["occurred_at"], e["event_id"]))


# ------------------------------------------------------------------------------------------ landing
def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


def _containers(name: str, arc: Archive, base: Path, end: dt.date) -> pd.DataFrame:
    """Every group of this archive and of the latest groups snapshot landed before (so that older
    landed days keep their containers), plus the company stream."""
    rows: dict[str, dict[str, Any]] = {}
    day = lake.latest_on_or_before(base, end)
    old = lake.read_partition(base, day) if day is not None else None
    if old is not None:
        rows = {r["container_id"]: r for r in old.to_pandas().to_dict("records")}
    rows[COMPANY_STREAM] = {"source": name, "container_id": COMPANY_STREAM, "kind": "feed", "visibility": "public",
                           "member_count": None, "owner_department": None, "created_at": None}
    for gid, g in arc.groups.items():
        rows[gid] = {"source": name, "container_id": gid, "kind": "group",
                     "visibility": "private" if g.private else "public", "member_count": g.member_count,
                     "owner_department": None, "created_at": g.created_at}
    df = pd.DataFrame([rows[k] for k in sorted(rows)], columns=GROUPS_COLUMNS)
    df["source"] = name
    df["member_count"] = df["member_count"].astype("Int32")
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df


def _outside(events: list[dict[str, Any]], start: dt.date, end: dt.date) -> dict[str, Any]:
    before = [e for e in events if e["occurred_at"].date() < start]
    after = [e for e in events if e["occurred_at"].date() > end]
    out = before + after
    return {"before": len(before), "after": len(after),
            "first": min(e["occurred_at"] for e in out).isoformat() if out else None,
            "last": max(e["occurred_at"] for e in out).isoformat() if out else None,
            "examples": [e["event_id"] for e in before[:3] + after[:3]]}


def extract(ctx: SourceContext, start: dt.date, end: dt.date) -> ExtractReport:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    name = ctx.source.name
    limits = Limits.of(opts)
    budget = Budget(limits)
    bad = Quarantine(name, str(opts.path), opts.bad_records)
    try:
        tree, names, ignored = _listing(opts.path, limits, budget)
        with tree:
            arc = read_archive(tree, names, bad, opts.max_json_depth, ctx.settings.topics)
    except ArchiveError as exc:  # unsafe or too large: the archive is refused
        raise ImportRejected([Problem(exc.where, None, exc.reason)]) from exc
    arc.files_ignored = ignored
    problems = [Problem(i.file, i.index, i.detail or i.reason, i.unit) for i in bad.items]
    if not sum(arc.files.values()):
        why = "no Socialcast API file (.json or .xml) in it" if not names else \
            f"none of its {len(names)} .json / .xml file(s) is a Socialcast API document"
        raise ImportRejected([Problem(str(opts.path), None, why), *problems])
    if opts.bad_records == "reject" and problems:
        raise ImportRejected(problems)  # before any write
    quarantine_file = bad.write(ctx.lake_dir, start, end)

    keys = Keys(ctx, arc.emails)
    events = build_events(arc, keys)
    base = lake.raw_dir(ctx.lake_dir, name, "events")
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for e in events:
        day = e["occurred_at"].date()
        if start <= day <= end:
            by_day.setdefault(day, []).append(e)
    emptied = [d for d in lake.partition_days(base) if start <= d <= end and d not in by_day]
    written = []
    for day in sorted([*by_day, *emptied]):
        table = _table(by_day.get(day, []))
        old = lake.read_partition(base, day)
        if old is not None and old.schema.names == EVENTS_SCHEMA.names and old.cast(EVENTS_SCHEMA).equals(table):
            continue  # unchanged: no rewrite, so a rerun leaves the lake byte for byte as it was
        lake.write_partition(base, day, table)
        written.append(day)

    groups_base = lake.raw_dir(ctx.lake_dir, name, "groups")
    containers = pa.Table.from_pandas(_containers(name, arc, groups_base, end), preserve_index=False)
    _write_if_changed(groups_base, end, containers)
    user_rows = sorted(({"person_key": keys(u.id), "department": u.department, "is_deactivated": u.deactivated,
                         "account_type": u.account_type} for u in arc.users.values()),
                       key=lambda r: r["person_key"] or "")
    if user_rows:  # an archive without a user listing leaves the last users snapshot in force
        _write_if_changed(lake.raw_dir(ctx.lake_dir, name, "users"), end,
                          pa.Table.from_pylist(user_rows, schema=USERS_SCHEMA))

    tally = completeness.Tally("socialcast comments_count")
    for m in arc.messages.values():
        if start <= m.created_at.date() <= end:
            tally.thread(m.created_at.date(), "archive", m.comments_count, len(m.comments))
    landed = sum(len(v) for v in by_day.values())
    actors = {e["actor_key"] for e in events}
    verbs = Counter(e["verb"] for e in events)
    types = Counter(m.message_type or "(none)" for m in arc.messages.values())
    return ExtractReport(source=name, days=sorted(by_day), rows={
        "events": landed, "users": len(user_rows), "groups": containers.num_rows}, details={
        "files": dict(sorted(arc.files.items())), "files_ignored": arc.files_ignored,
        "records_read": dict(sorted(arc.records.items())), "duplicate_messages": arc.duplicates,
        "messages": len(arc.messages), "comments": sum(len(m.comments) for m in arc.messages.values()),
        "likes": sum(len(i.likes) for m in arc.messages.values() for i in [m, *m.comments]),
        "verbs": dict(sorted(verbs.items())), "message_types": dict(sorted(types.items())),
        "unknown_message_types": sorted(t for t in types if t not in PERSON_TYPES | SYSTEM_TYPES | {"(none)"}),
        "system_items": sum(1 for m in arc.messages.values() if not is_person_post(m)),
        "events_in_archive": len(events), "events_in_interval": landed,
        "outside_interval": _outside(events, start, end), "days_rewritten": [d.isoformat() for d in written],
        "actors": len(actors), "email_conflicts": arc.email_conflicts,
        "identity_matched_share": round(len(actors & keys.email_keys) / len(actors), 4) if actors else None,
        "completeness": completeness.report(tally, None),
        **bad.details(quarantine_file), "bytes_read": budget.total})


def _write_if_changed(base: Path, day: dt.date, table: pa.Table) -> None:
    old = lake.read_partition(base, day)
    if old is not None and old.schema.equals(table.schema) and old.equals(table):
        return
    lake.write_partition(base, day, table)


def socialcast_people(users: pa.Table) -> pd.DataFrame:
    return platform_people(users.to_pandas())


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    """Canonical tables of `day` from the raw landing only (replayable without the archive)."""
    name = ctx.source.name
    out: dict[str, pd.DataFrame] = {}
    raw = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "events"), day)
    if raw is not None:
        df = raw.to_pandas()
        df["source"] = name
        df["is_edited"] = False
        df["is_deleted"] = False
        columns = list(ACTIVITIES.names) + ([] if "is_idea" in ACTIVITIES.names else ["is_idea"])
        for col in columns:
            if col not in df.columns:
                df[col] = None
        out["activities"] = df[columns]
    users = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = socialcast_people(users)
    groups = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "groups"), day)
    if groups is not None:
        out["containers"] = groups.to_pandas()
    return out
