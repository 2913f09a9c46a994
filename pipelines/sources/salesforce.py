"""The Salesforce Chatter source (kind "salesforce"): posts, comments, likes, questions and best
answers through SOQL, incremental by `SystemModstamp`, within the org's daily API allocation.

Queries (REST `query`/`queryAll`, `nextRecordsUrl` paging, `pipelines.sources.salesforce_api`):
  - `User` (Id, Email, IsActive, Department, UserType): the org's user listing; ids are keyed through the
    email (`pseudonymiser.person("salesforce", id, email)`) so people match other platforms. Landed as
    the `users` stream (key, active, account type, department) and canonicalised into the source's people
    rows, outside the HR directory (`salesforce_people`): UserType Standard and CsnOnly (Chatter Free,
    employees) are members, Guest a guest, the partner / customer community types external,
    AutomatedProcess a bot; an inactive user is deactivated. Titles are not kept;
  - `CollaborationGroup`: the containers;
  - `FeedItem` with the child sub-queries `FeedComments` and `FeedLikes` (FeedLike cannot be queried on
    its own), through `queryAll` so that deletions (`IsDeleted`) are seen, `WHERE SystemModstamp >=
    watermark AND SystemModstamp < end+1`, `ORDER BY SystemModstamp, Id`. A new comment, like, best
    answer or deletion moves the item's SystemModstamp, so the item comes back whole with its children.
Completeness: each live item's comments received in the sub-query are tallied against its `CommentCount`
(`pipelines.completeness`, report entry `completeness`; a child sub-query can come back cut short).
`Type: QuestionPost` items are questions; `BestCommentId` marks the best answer, which gives an
`answer_accepted` activity (actor = asker, target = the comment's author, dated at the comment: the
time of the choice is not in the data). `TrackedChange` and other system item types are not people
activity. Mentions are not extracted: SOQL bodies are plain text (only Chatter REST structures them).
Likes on comments cannot be queried through the API at all (documented limit).

Topics (`topic_ids`, `pipelines.topics`): computed at extraction for people's items and for comments, from
the prose through the configured taxonomy and `#hashtags` (`topics:` of the settings), plus the Chatter
tags where the record carries them: a SOQL `Body` / `CommentBody` is the prose (HTML tags removed, its
`#hashtags` are text); a Chatter REST body's `Text` segments are the prose and its `Hashtag` segments'
`tag` and the `capabilities.topics.items[].name` are tags, by name (a Chatter `#frogs` has the `tag_id` of
a Slack `#frogs`). Only the ids land, never the text or a tag; partitions landed before `topic_ids` load
with it null. Topics assigned to a post without a hashtag (`TopicAssignment`) are not queried.

Streams under raw/source=<name>/: `feed_items` (by the item's day), `feed_comments` and `feed_likes`
(by their own day), each row keyed (no ids of people, no text: `content_length` only), `groups`
(containers snapshot at `end`), `users` (people snapshot at `end`). A re-read item replaces all its
earlier rows, in every day.

Containers: a post's container is its parent: a group (`0F9...`, its 18-character id), a person's profile
(all of them one container, `user_profiles`: a person's id is never kept) or a record (an account, an
opportunity, a case...: one container per object type, `records:<key prefix>`, since record ids are not
kept). The containers snapshot lists every one of them, so that the validation finds every container an
activity names: the groups of `CollaborationGroup`, `user_profiles` (kind `feed`, public) and a row per
record key prefix ever seen by this source (kind `record_feed`, visibility `private`: a record's feed is
visible only to the users who can see the record, under the org's sharing rules). The prefixes seen are
kept in the source's state (`feed/record_prefixes`), so the snapshot still lists the object types of items
landed by earlier runs. A key prefix (`001` Account, `006` Opportunity) names an object type, not a record.

Daily limit: 403 REQUEST_LIMIT_EXCEEDED stops the run cleanly: what was received is landed, the
watermark is the SystemModstamp of the last item landed (`>=` re-reads the ties, idempotently), and
the report says `stopped_by_daily_limit`; the next run resumes from there. It is neither retried nor a
crash. The usage header (`api-usage=N/M`) is reported. Auth: an access token from the environment
variable named by `token_env` (+ `instance_url`), or the client credentials flow with the client id and
secret from the variables named by `client_id_env` / `client_secret_env`.

This module must never write, log or return Chatter text, user ids or emails.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines import completeness, lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.connectors.errors import AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.state import StateStore, open_state
from pipelines.model import ACTIVITIES, TS
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.salesforce_api import (
    DEFAULT_VERSION,
    DailyLimitExceeded,
    SalesforceApi,
    client_credentials,
    parse_datetime,
    soql_datetime,
    to18,
)
from pipelines.topics import TopicRules, as_column

PLATFORM = "salesforce"
STATE = "feed"
#: item types written by a person; TrackedChange, CreateRecordEvent and the like are the system's
PERSON_TYPES = frozenset({"TextPost", "LinkPost", "ContentPost", "QuestionPost", "PollPost", "AdvancedTextPost",
                          "UserStatus", "RypplePost", "ProfileSkillPost", "CanvasPost", "AnnouncementPost"})
USER_FEEDS = "user_profiles"  # posts on people's profiles: the parent id is a person, it is never kept
RECORDS = "records:"  # + the record's key prefix: posts on records, by object type (record ids are not kept)
_TAG = re.compile(r"<[^>]+>")

FEED_QUERY = ("SELECT Id, ParentId, CreatedById, CreatedDate, SystemModstamp, Type, Body, IsRichText, IsDeleted, "
              "BestCommentId, CommentCount, (SELECT Id, CreatedById, CreatedDate, CommentBody, IsDeleted FROM FeedComments), "
              "(SELECT Id, CreatedById, CreatedDate FROM FeedLikes) FROM FeedItem "
              "WHERE SystemModstamp >= {lower} AND SystemModstamp < {upper} ORDER BY SystemModstamp, Id")

ITEMS = pa.schema([("item_id", pa.string()), ("container_id", pa.string()), ("created_at", TS),
                   ("actor_key", pa.string()), ("kind", pa.string()), ("is_question", pa.bool_()),
                   ("is_deleted", pa.bool_()), ("content_length", pa.int32()),
                   ("topic_ids", pa.string())])  # pipelines/topics.py ids, never text (landed before it: absent)
COMMENTS = pa.schema([("comment_id", pa.string()), ("item_id", pa.string()), ("container_id", pa.string()),
                      ("created_at", TS), ("actor_key", pa.string()), ("item_actor_key", pa.string()),
                      ("is_best_answer", pa.bool_()), ("is_deleted", pa.bool_()), ("content_length", pa.int32()),
                      ("topic_ids", pa.string())])
LIKES = pa.schema([("like_id", pa.string()), ("item_id", pa.string()), ("container_id", pa.string()),
                   ("created_at", TS), ("actor_key", pa.string()), ("item_actor_key", pa.string())])
STREAMS = {"feed_items": ITEMS, "feed_comments": COMMENTS, "feed_likes": LIKES}
USERS = pa.schema([("person_key", pa.string()), ("is_active", pa.bool_()), ("account_type", pa.string()),
                   ("department", pa.string())])
#: UserType -> account type (the types not listed here are members)
USER_TYPES = {"Guest": "guest", "AutomatedProcess": "bot", "PowerPartner": "external",
              "PowerCustomerSuccess": "external", "CustomerSuccess": "external", "CspLitePortal": "external",
              "CSPLitePortal": "external", "SelfService": "external"}


def salesforce_people(users: pa.Table) -> pd.DataFrame:
    """The source's people rows from a landed `users` snapshot."""
    df = users.to_pandas()
    return platform_people(pd.DataFrame({"person_key": df["person_key"],
                                         "account_type": df["account_type"].fillna("member"),
                                         "is_deactivated": ~df["is_active"].fillna(True).astype(bool),
                                         "department": df["department"]}))


class SalesforceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instance_url: str | None = Field(None, description="https://<domain>.my.salesforce.com (token_env mode)")
    api_version: str = Field(DEFAULT_VERSION, pattern=r"^\d+\.\d$")
    token_env: str | None = Field(None, description="environment variable holding an access token")
    login_url: str = Field("https://login.salesforce.com", description="token endpoint host (client credentials)")
    client_id_env: str | None = Field(None, description="environment variable holding the connected app's id")
    client_secret_env: str | None = Field(None, description="environment variable holding its secret")
    requests_per_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _auth(self) -> SalesforceOptions:
        creds = self.client_id_env is not None or self.client_secret_env is not None
        if creds and (self.client_id_env is None or self.client_secret_env is None):
            raise ValueError("client credentials need both client_id_env and client_secret_env")
        if not creds and self.token_env is None:
            raise ValueError("set token_env (+ instance_url), or client_id_env and client_secret_env")
        if self.token_env is not None and not creds and self.instance_url is None:
            raise ValueError("token_env needs instance_url")
        return self


def options(ctx: SourceContext) -> SalesforceOptions:
    return SalesforceOptions.model_validate(ctx.source.options)


def make_api(opts: SalesforceOptions, token: str | None = None) -> SalesforceApi:
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s)
    if token or (opts.token_env and not opts.client_id_env):
        value = token or os.environ.get(opts.token_env or "", "")
        where = "the token passed by the caller" if token else f"the token in ${opts.token_env}"
        if not value:
            raise AuthError(f"no Salesforce token: the environment variable {opts.token_env} (option token_env) "
                            "is unset or empty")
        instance = opts.instance_url or ""
        return SalesforceApi(lambda: (value, instance), token_source=where, version=opts.api_version,
                             policy=policy, timeout_s=opts.timeout_s, requests_per_s=opts.requests_per_s)
    cid = os.environ.get(opts.client_id_env or "", "")
    secret = os.environ.get(opts.client_secret_env or "", "")
    where = f"the client credentials in ${opts.client_id_env} / ${opts.client_secret_env}"
    if not cid or not secret:
        raise AuthError(f"no Salesforce client credentials: {opts.client_id_env} or {opts.client_secret_env} "
                        "is unset or empty")

    def fetch() -> tuple[str, str]:
        try:
            return client_credentials(opts.login_url, cid, secret, policy=policy, timeout_s=opts.timeout_s)
        except AuthError as exc:
            raise AuthError(f"{exc}; check {where}") from None
    return SalesforceApi(fetch, token_source=where, version=opts.api_version, refreshable=True, policy=policy,
                         timeout_s=opts.timeout_s, requests_per_s=opts.requests_per_s)


def _length(body: Any) -> int | None:
    return len(_TAG.sub("", body)) if isinstance(body, str) else None


def prose_and_tags(record: Mapping[str, Any], field: str) -> tuple[str, list[str]]:
    """The prose and the Chatter tags of a feed item or comment (module doc): the SOQL `field` (`Body`,
    `CommentBody`) as text without HTML; else a Chatter REST `body`: its Text segments, and the `tag` of its
    Hashtag segments; plus the names of `capabilities.topics.items[]`. In memory only."""
    tags: list[str] = []
    value = record.get(field)
    body = record.get("body") if value is None else value
    if isinstance(body, str):
        prose = html.unescape(_TAG.sub(" ", body))
    elif isinstance(body, Mapping):
        segments = body.get("messageSegments")
        if isinstance(segments, list):
            parts = []
            for seg in segments:
                if not isinstance(seg, Mapping):
                    continue
                if seg.get("type") == "Text" and isinstance(seg.get("text"), str):
                    parts.append(seg["text"])
                elif seg.get("type") == "Hashtag":
                    tag = seg.get("tag") if isinstance(seg.get("tag"), str) else seg.get("text")
                    if isinstance(tag, str):
                        tags.append(tag)
                    parts.append(" ")
                else:
                    parts.append(" ")  # mentions (names), links, entity links: not prose
            prose = "".join(parts)
        else:
            text = body.get("text")
            prose = text if isinstance(text, str) else ""
    else:
        prose = ""
    caps = record.get("capabilities")
    topics = caps.get("topics") if isinstance(caps, Mapping) else None
    items = topics.get("items") if isinstance(topics, Mapping) else None
    for t in items if isinstance(items, list) else []:
        if isinstance(t, Mapping) and isinstance(t.get("name"), str):
            tags.append(t["name"])
    return prose, tags


def topic_ids(rules: TopicRules | None, record: Mapping[str, Any], field: str) -> str | None:
    """The `topic_ids` of a feed item or comment: ids only; None without rules or topics."""
    if rules is None:
        return None
    prose, tags = prose_and_tags(record, field)
    return as_column(rules.topics(prose, tags))


class _Run:
    def __init__(self, ctx: SourceContext, api: SalesforceApi, store: StateStore, start: dt.date, end: dt.date):
        self.ctx, self.api, self.store, self.start, self.end = ctx, api, store, start, end
        self.name = ctx.source.name
        self.emails: dict[str, str] = {}
        self.email_keys: set[str] = set()
        self.tally = completeness.Tally("salesforce CommentCount")
        self.announced: dict[str, int | None] = {}  # item id -> its CommentCount (the last version read)

    def key(self, uid: Any) -> str | None:
        if not isinstance(uid, str) or not uid:
            return None
        uid = to18(uid)
        email = self.emails.get(uid)
        k = self.ctx.pseudonymiser.person(PLATFORM, uid, email)
        if email and k:
            self.email_keys.add(k)
        return k

    def container(self, parent: Any) -> str:
        parent = str(parent or "")
        if parent.startswith("005"):
            return USER_FEEDS
        if parent.startswith("0F9"):
            return to18(parent)
        return f"{RECORDS}{parent[:3]}"  # a record's feed, by object type: record ids are not kept

    def rows(self, item: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        iid = to18(str(item["Id"]))
        created = parse_datetime(item.get("CreatedDate"))
        if created is None:
            raise ValueError(f"FeedItem {iid}: unparseable CreatedDate")
        container = self.container(item.get("ParentId"))
        author = self.key(item.get("CreatedById"))
        person = item.get("Type") in PERSON_TYPES and author is not None
        deleted = bool(item.get("IsDeleted"))
        best = item.get("BestCommentId")
        best = to18(best) if isinstance(best, str) and best else None
        rules = self.ctx.settings.topics
        item_row = {"item_id": iid, "container_id": container, "created_at": created, "actor_key": author,
                    "kind": "person" if person else "system", "is_question": item.get("Type") == "QuestionPost",
                    "is_deleted": deleted, "content_length": _length(item.get("Body")) if person else None,
                    "topic_ids": topic_ids(rules, item, "Body") if person else None}
        comments = []
        for c in (item.get("FeedComments") or {}).get("records") or []:
            when = parse_datetime(c.get("CreatedDate"))
            if when is None or not c.get("Id"):
                continue
            cid = to18(str(c["Id"]))
            commenter = self.key(c.get("CreatedById"))
            comments.append({"comment_id": cid, "item_id": iid, "container_id": container, "created_at": when,
                             "actor_key": commenter, "item_actor_key": author,
                             "is_best_answer": cid == best, "is_deleted": deleted or bool(c.get("IsDeleted")),
                             "content_length": _length(c.get("CommentBody")),
                             "topic_ids": topic_ids(rules, c, "CommentBody") if commenter else None})
        likes = []
        for x in (item.get("FeedLikes") or {}).get("records") or []:
            when = parse_datetime(x.get("CreatedDate"))
            if when is None or not x.get("Id"):
                continue
            likes.append({"like_id": to18(str(x["Id"])), "item_id": iid, "container_id": container,
                          "created_at": when, "actor_key": self.key(x.get("CreatedById")), "item_actor_key": author})
        return item_row, comments, likes

    def execute(self) -> ExtractReport:
        report = ExtractReport(source=self.name, days=[])
        first = self.store.get(STATE, "first_day")
        watermark = self.store.get(STATE, "watermark")
        day0 = dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)
        lower = day0 if watermark is None or (first and self.start.isoformat() < first) \
            else parse_datetime(watermark) or day0
        upper = dt.datetime(self.end.year, self.end.month, self.end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        fetched: dict[str, tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]] = {}
        new_mark: str | None = None
        stopped: str | None = None
        groups: list[dict[str, Any]] | None = None
        users: pa.Table | None = None
        try:
            listed = []
            for page in self.api.query("SELECT Id, Email, IsActive, Department, UserType FROM User"):
                for u in page:
                    if u.get("Id") and u.get("Email"):
                        self.emails[to18(str(u["Id"]))] = str(u["Email"])
                    if u.get("Id"):
                        listed.append(u)
            users = self.users(listed)
            groups = [g for page in self.api.query(
                "SELECT Id, CollaborationType, MemberCount, CreatedDate FROM CollaborationGroup") for g in page]
            soql = FEED_QUERY.format(lower=soql_datetime(lower), upper=soql_datetime(upper))
            for page in self.api.query(soql, include_deleted=True):
                for item in page:
                    fetched[to18(str(item["Id"]))] = self.rows(item)
                    count = item.get("CommentCount")
                    self.announced[to18(str(item["Id"]))] = int(count) if isinstance(count, int | float) else None
                    new_mark = item.get("SystemModstamp") or new_mark
        except DailyLimitExceeded as exc:
            stopped = str(exc)  # keep what was received; the watermark says where to resume
        written = self.land(fetched)
        self.tally_comments(fetched)
        changes: dict[tuple[str, str], Any] = {}
        known_prefixes = sorted(self.store.get(STATE, "record_prefixes") or [])
        prefixes = sorted(set(known_prefixes) | {v[0]["container_id"].removeprefix(RECORDS)
                                                  for v in fetched.values()
                                                  if v[0]["container_id"].startswith(RECORDS)})
        if prefixes != known_prefixes:
            changes[(STATE, "record_prefixes")] = prefixes
        if groups is not None:
            lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "groups"), self.end,
                                 pa.Table.from_pandas(self.containers(groups, prefixes), preserve_index=False))
        if users is not None:
            lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "users"), self.end, users)
        if new_mark is not None:
            changes[(STATE, "watermark")] = new_mark
        elif stopped is None and watermark is None:
            changes[(STATE, "watermark")] = soql_datetime(lower)
        if not first or self.start.isoformat() < first:
            changes[(STATE, "first_day")] = self.start.isoformat()
        self.store.commit(changes, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")
        items = [v[0] for v in fetched.values()]
        actors = {r["actor_key"] for v in fetched.values() for r in (v[0], *v[1], *v[2])
                  if r.get("actor_key") and r.get("kind", "person") == "person"}
        report.days = written
        report.rows = {"feed_items": len(items), "feed_comments": sum(len(v[1]) for v in fetched.values()),
                       "feed_likes": sum(len(v[2]) for v in fetched.values()), "users": len(self.emails)}
        report.details = {
            "stopped_by_daily_limit": stopped is not None, "stop_reason": stopped,
            "watermark_from": soql_datetime(lower), "watermark_to": new_mark,
            "questions": sum(r["is_question"] and r["kind"] == "person" for r in items),
            "best_answers": sum(c["is_best_answer"] for v in fetched.values() for c in v[1]),
            "days_rewritten_before_start": [d.isoformat() for d in written if d < self.start],
            "identity_matched_share": round(len(actors & self.email_keys) / len(actors), 4) if actors else None,
            "completeness": completeness.report(self.tally, None),
            **self.api.stats(),
        }
        return report

    def tally_comments(self, fetched: dict[str, tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]
                       ) -> None:
        """Live comments received against `CommentCount`, per live item (a deleted item announces
        nothing). Tier `current` for items of the run's days, `changed` for older items read again
        because their SystemModstamp moved (the watermark, not a revisit schedule, brings them back)."""
        for iid, (item, comments, _) in sorted(fetched.items()):
            if item["is_deleted"]:
                continue
            day = item["created_at"].date()
            self.tally.thread(day, "current" if day >= self.start else "changed", self.announced.get(iid),
                              sum(not c["is_deleted"] for c in comments))

    def users(self, listed: list[dict[str, Any]]) -> pa.Table:
        """The `users` stream: a key per user (by the email when there is one), never an id or an email."""
        rows = []
        for u in listed:
            dept = u.get("Department")
            rows.append({"person_key": self.key(u["Id"]), "is_active": u.get("IsActive") is not False,
                         "account_type": USER_TYPES.get(str(u.get("UserType") or ""), "member"),
                         "department": dept.strip() or None if isinstance(dept, str) else None})
        return pa.Table.from_pylist(rows, schema=USERS)

    def containers(self, groups: Iterable[dict[str, Any]], record_prefixes: Iterable[str] = ()) -> pd.DataFrame:
        """The containers snapshot (module doc): groups, people's profiles, a row per record type."""
        rows: list[dict[str, Any]] = [{"source": self.name, "container_id": USER_FEEDS, "kind": "feed",
                                       "visibility": "public", "member_count": None, "created_at": None}]
        rows += [{"source": self.name, "container_id": f"{RECORDS}{p}", "kind": "record_feed", "visibility": "private",
                  "member_count": None, "created_at": None} for p in sorted(set(record_prefixes))]
        for g in groups:
            rows.append({"source": self.name, "container_id": to18(str(g["Id"])), "kind": "group",
                         "visibility": "private" if g.get("CollaborationType") in ("Private", "Unlisted") else "public",
                         "member_count": g.get("MemberCount"), "created_at": parse_datetime(g.get("CreatedDate"))})
        df = pd.DataFrame(rows, columns=["source", "container_id", "kind", "visibility", "member_count",
                                         "owner_department", "created_at"])
        df["member_count"] = df["member_count"].astype("Int32")
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df

    def land(self, fetched: dict[str, tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]) -> list[dt.date]:
        """Replace every earlier row of the fetched items, in every day from the oldest fetched item's
        day to the newest row's day or the stream's latest landed day, whichever is later (a like taken
        back may be the newest row its item ever had: it goes from the day it was made); rewrite only the
        partitions that changed."""
        if not fetched:
            return []
        new = {"feed_items": [v[0] for v in fetched.values()],
               "feed_comments": [c for v in fetched.values() for c in v[1]],
               "feed_likes": [x for v in fetched.values() for x in v[2]]}
        all_rows = [r for rows in new.values() for r in rows]
        first = min(r["created_at"] for r in new["feed_items"]).date()
        last = max(r["created_at"] for r in all_rows).date()
        ids = pa.array(sorted(fetched))
        written: set[dt.date] = set()
        for stream, schema in STREAMS.items():
            base = lake.raw_dir(self.ctx.lake_dir, self.name, stream)
            by_day: dict[dt.date, list[dict[str, Any]]] = {}
            for r in new[stream]:
                by_day.setdefault(r["created_at"].date(), []).append(r)
            landed = lake.partition_days(base)
            for day in lake.days_between(first, max([last, *landed[-1:]])):
                old = lake.read_partition(base, day)
                if old is None and day not in by_day:
                    continue
                kept = conform_raw(old, schema).filter(pc.invert(pc.is_in(old.column("item_id"), ids))) \
                    if old is not None else schema.empty_table()
                table = pa.concat_tables([kept, pa.Table.from_pylist(by_day.get(day, []), schema=schema)])
                table = table.sort_by([("created_at", "ascending"), (schema.names[0], "ascending")])
                if old is not None and conform_raw(old, schema).equals(table):
                    continue
                lake.write_partition(base, day, table)
                written.add(day)
        return sorted(written)


def conform_raw(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A landed partition in today's `schema`: one landed before a column was added (`topic_ids`) gets
    it null."""
    for f in schema:
        if f.name not in table.column_names and f.nullable:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names).cast(schema)


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, token: str | None = None,
            engine: sa.Engine | None = None) -> ExtractReport:
    """Land Chatter changes up to the end of `end` (UTC): the first run from `start`, later runs from the
    watermark. `token` (an access token from an Airflow connection) overrides the options' auth."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    api = make_api(opts, token)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, api, store, start, end).execute()
    finally:
        api.close()


def canonical_activities(items: pa.Table | None, comments: pa.Table | None, likes: pa.Table | None,
                         source: str) -> list[dict[str, Any]]:
    """Activities of one day: person items -> post; comments -> reply (target: the item's author);
    best comments -> answer_accepted (actor: the asker); likes -> reaction (their own time)."""
    base = {"source": source, "is_question": False, "is_edited": False, "is_deleted": False, "content_length": None}
    out: list[dict[str, Any]] = []
    for r in items.to_pylist() if items is not None else []:
        if r["kind"] == "person" and r["actor_key"]:
            out.append({**base, "event_id": r["item_id"], "occurred_at": r["created_at"], "actor_key": r["actor_key"],
                        "verb": "post", "container_id": r["container_id"], "thread_id": r["item_id"],
                        "parent_id": None, "target_key": None, "content_length": r["content_length"],
                        "is_question": bool(r["is_question"]), "is_deleted": bool(r["is_deleted"]),
                        "topic_ids": r.get("topic_ids")})
    for r in comments.to_pylist() if comments is not None else []:
        if not r["actor_key"]:
            continue
        common = {**base, "occurred_at": r["created_at"], "container_id": r["container_id"], "thread_id": r["item_id"]}
        out.append({**common, "event_id": r["comment_id"], "actor_key": r["actor_key"], "verb": "reply",
                    "parent_id": r["item_id"], "target_key": r["item_actor_key"],
                    "content_length": r["content_length"], "is_deleted": bool(r["is_deleted"]),
                    "topic_ids": r.get("topic_ids")})
        if r["is_best_answer"] and r["item_actor_key"] and r["item_actor_key"] != r["actor_key"]:
            out.append({**common, "event_id": f"{r['comment_id']}:accepted", "actor_key": r["item_actor_key"],
                        "verb": "answer_accepted", "parent_id": r["comment_id"], "target_key": r["actor_key"]})
    for r in likes.to_pylist() if likes is not None else []:
        if r["actor_key"]:
            out.append({**base, "event_id": r["like_id"], "occurred_at": r["created_at"], "actor_key": r["actor_key"],
                        "verb": "reaction", "container_id": r["container_id"], "thread_id": r["item_id"],
                        "parent_id": r["item_id"], "target_key": r["item_actor_key"]})
    return out


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    name = ctx.source.name
    parts = {s: lake.read_partition(lake.raw_dir(ctx.lake_dir, name, s), day) for s in STREAMS}
    out: dict[str, pd.DataFrame] = {}
    if any(t is not None for t in parts.values()):
        records = canonical_activities(parts["feed_items"], parts["feed_comments"], parts["feed_likes"], name)
        frame = pd.DataFrame.from_records(records, columns=list(ACTIVITIES.names))
        out["activities"] = raw_activities_to_canonical(frame, name)
    groups = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "groups"), day)
    if groups is not None:
        out["containers"] = groups.to_pandas()
    users = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = salesforce_people(users)
    return out
