"""The MangoApps source (kind "mangoapps"): feed posts, their (threaded) comments and likes, groups as
containers and users as people, through the MangoApps API (`pipelines.sources.mangoapps_api` for the
transport, the envelope and the assumption table; docs/sources/mangoapps.md).

**Built without any real MangoApps answer.** Every field read here is listed in
`mangoapps_api.SCHEMA` with the (unverified) assumption it rests on; each answer is checked against it
and a difference stops the run with `MangoAppsShapeError` naming the method, the field and the
assumption, rather than landing wrong data.

Each run lists `users` and `groups` whole (limit/offset), then `feeds`, newest-updated first, page after
page, until a page ends with an item updated before the watermark minus `overlap_s` (the first run: the
start day's midnight). An item's comments and likes are embedded in it (A7-A9), so an item updated since
the watermark (A19: a comment or a like moves `updated_at`) is read whole again; the overlap is re-read
on purpose and deduplicated by id. Events created at or after the end day's next midnight are left to
the next run. The watermark (`feeds/watermark`, the newest `updated_at` read below that bound, epoch
seconds) and the first day are kept in the source's state, committed only after the landing.

People: users are keyed through their email (`pseudonymiser.person("mangoapps", id, email)`, the same key
as any other platform's account of that email), or their id when they have none; the `users` stream
(key) is the platform's user listing (in_directory false, account type member, never deactivated: no
documented field says so; no department: none is documented). Names, emails, employee ids and photos
are never kept.

Canonical activities (pipelines.model): a feed item is a `post` (thread_id its own event_id, container
its group, or `feed:network` when it has none, A6; content_length the body's length with tags removed;
is_question by the configured question rules); a system notice (`is_system`, A15) is not an activity
(counted, `system_items_skipped`). A comment is a `reply` (thread = the post; parent = the comment it
answers when `parent_id` names one of the item's comments, else the post; target = that parent's
author). A like is a `reaction` (actor the liker, parent the liked post or comment, target its author),
dated at the liked item's creation unless the like carries its own time (A10). Event ids are
`feed:<id>`, `comment:<id>` and `like:<item event id>:<a hash of the liker's key>` (no raw user id).
No mentions (their representation is not documented), no shares, no views.

Topics (`topic_ids`, `pipelines.topics` with `ctx.settings.topics`): a post's and a comment's `body`,
tags stripped, entities decoded and links removed, is matched against the taxonomy and for `#hashtags`
while the item is in memory; only the ids are landed. No field of `mangoapps_api.SCHEMA` (A1-A19) holds
tags, so there are no platform tags; system notices have no post, hence no topics. Rows landed before
the column load with none.

Streams under raw/source=<name>/: `posts`, `comments` (by their own day of creation), `likes` (by the
day they are dated at; an item read again replaces all its likes, so an unlike disappears), `groups`
(containers snapshot at `end`), `users` (people snapshot at `end`). No text, no names, no emails, no
user ids: keys and lengths only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines import lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.config import QuestionRules
from pipelines.connectors.errors import AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.state import StateStore, open_state
from pipelines.model import ACTIVITIES, TS
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.mangoapps_api import (
    PRIVACY,
    MangoAppsApi,
    MangoAppsShapeError,
    check_counts,
    epoch_seconds,
    norm_id,
    to_datetime,
)
from pipelines.topics import TopicRules, as_column

PLATFORM = "mangoapps"
STATE = "feeds"
NETWORK_FEED = "feed:network"
#: the Airflow connection's extra field with the session API key (a credential: `erasure.NOT_PERSON_COLUMNS`)
API_KEY_EXTRA = "api_key"
_TAG = re.compile(r"<[^>]+>")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.I)
#: topic ids (pipelines/topics.py), never text; absent from rows landed before it
_TOPICS = ("topic_ids", pa.string())

POSTS = pa.schema([("post_id", pa.string()), ("container_id", pa.string()), ("created_at", TS),
                   ("actor_key", pa.string()), ("content_length", pa.int32()), ("is_question", pa.bool_()),
                   _TOPICS])
COMMENTS = pa.schema([("comment_id", pa.string()), ("post_id", pa.string()), ("parent_comment_id", pa.string()),
                      ("container_id", pa.string()), ("created_at", TS), ("actor_key", pa.string()),
                      ("parent_actor_key", pa.string()), ("content_length", pa.int32()), _TOPICS])
LIKES = pa.schema([("like_id", pa.string()), ("item_id", pa.string()), ("post_id", pa.string()),
                   ("container_id", pa.string()), ("created_at", TS), ("actor_key", pa.string()),
                   ("item_actor_key", pa.string())])
STREAMS = {"posts": POSTS, "comments": COMMENTS, "likes": LIKES}
USERS = pa.schema([("person_key", pa.string()), ("is_deactivated", pa.bool_())])
CONTAINER_COLUMNS = ["source", "container_id", "kind", "visibility", "member_count", "owner_department",
                     "created_at"]


class MangoAppsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]$",
                               description="the domain: https://<domain>/api/ (e.g. acme.mangoapps.com)")
    base_url: str | None = Field(None, description="overrides the URL made from domain (emulator, proxies)")
    auth: Literal["session", "oauth"] = "session"
    api_key_env: str | None = Field(None, description="session: environment variable with the API key")
    username_env: str | None = Field(None, description="session: environment variable with the username")
    password_env: str | None = Field(None, description="session: environment variable with the password")
    access_token_env: str | None = Field(None, description="oauth: environment variable with the access token")
    refresh_token_env: str | None = Field(None, description="oauth: environment variable with a refresh token")
    client_id_env: str | None = Field(None, description="oauth: environment variable with the client id")
    client_secret_env: str | None = Field(None, description="oauth: environment variable with the client secret")
    feeds_limit: int = Field(50, ge=1, le=500, description="feed items per page (unverified maximum)")
    users_limit: int = Field(500, ge=1, le=500, description="users per page (the importer uses 500)")
    groups_limit: int = Field(100, ge=1, le=500, description="groups per page (unverified maximum)")
    overlap_s: float = Field(3600.0, ge=0, description="seconds re-read before the watermark")
    requests_per_s: float = Field(2.0, gt=0, description="no documented limit: a conservative default (A18)")
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retry_after_s: float = Field(300.0, gt=0, description="a longer Retry-After stops the run")

    @model_validator(mode="after")
    def _where(self) -> MangoAppsOptions:
        if self.domain is None and self.base_url is None:
            raise ValueError("set domain (https://<domain>/api/) or base_url")
        return self

    @property
    def url(self) -> str:
        return self.base_url or f"https://{self.domain}"


def options(ctx: SourceContext) -> MangoAppsOptions:
    return MangoAppsOptions.model_validate(ctx.source.options)


def connection_credentials(login: str | None, password: str | None, extra: Mapping[str, Any] | None
                           ) -> dict[str, Any]:
    """The `extract` keyword arguments from an Airflow connection of this source: a session (login: the
    username, password: the password, extra `api_key`), or OAuth (extra `access_token`, optionally
    `refresh_token`, with login / password the client id / secret)."""
    extra = extra or {}
    if extra.get("access_token") or extra.get("refresh_token"):
        return {"access_token": extra.get("access_token"), "refresh_token": extra.get("refresh_token"),
                "client_id": login, "client_secret": password}
    return dict(username=login, password=password, api_key=extra.get(API_KEY_EXTRA))


def _env(name: str | None) -> str:
    return os.environ.get(name or "", "") if name else ""


def make_api(opts: MangoAppsOptions, *, username: str | None = None, password: str | None = None,
             api_key: str | None = None, access_token: str | None = None, refresh_token: str | None = None,
             client_id: str | None = None, client_secret: str | None = None) -> MangoAppsApi:
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s)
    limits: dict[str, Any] = {"policy": policy, "timeout_s": opts.timeout_s, "requests_per_s": opts.requests_per_s,
                              "max_retry_after_s": opts.max_retry_after_s}
    if opts.auth == "session":
        from_conn = bool(username or password or api_key)
        creds = {"key": api_key or _env(opts.api_key_env), "username": username or _env(opts.username_env),
                 "password": password or _env(opts.password_env)}
        where = "the username, password and extra api_key of the Airflow connection" if from_conn else \
            (f"the session credentials in ${opts.api_key_env} / ${opts.username_env} / ${opts.password_env}"
             if opts.api_key_env or opts.username_env or opts.password_env else "")
        if not where:
            raise AuthError("no MangoApps session credentials: set api_key_env, username_env and password_env, or "
                            "pass them from an Airflow connection (login = username, password, extra api_key)")
        return MangoAppsApi(opts.url, mode="session", credentials=creds, credentials_source=where, **limits)
    from_conn = bool(access_token or refresh_token or client_id or client_secret)
    creds = {"access_token": access_token or _env(opts.access_token_env),
             "refresh_token": refresh_token or _env(opts.refresh_token_env),
             "client_id": client_id or _env(opts.client_id_env), "client_secret": client_secret or _env(opts.client_secret_env)}
    where = "the OAuth tokens of the Airflow connection" if from_conn else \
        f"the OAuth access token in ${opts.access_token_env}" if opts.access_token_env else ""
    if not where:
        raise AuthError("no MangoApps OAuth access token: set access_token_env (and refresh_token_env, client_id_env, "
                        "client_secret_env to renew it), or pass it from an Airflow connection (extra access_token)")
    return MangoAppsApi(opts.url, mode="oauth", credentials=creds, credentials_source=where, **limits)


def _length(text: Any) -> int | None:
    return len(_TAG.sub("", text)) if isinstance(text, str) else None


def prose(text: Any) -> str:
    """What the topics are matched on: the body with tags stripped, entities decoded, links removed."""
    return _URL.sub(" ", html.unescape(_TAG.sub(" ", text))) if isinstance(text, str) else ""


def topic_ids(rules: TopicRules | None, text: Any) -> str | None:
    """The `topic_ids` of a post's or comment's body; None without rules, text or topics."""
    return as_column(rules.topics(prose(text))) if rules is not None and isinstance(text, str) else None


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A landed table in `schema`: columns added since it was landed (`topic_ids`) are null."""
    for name in schema.names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(schema.names).cast(schema)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def like_event(item_event: str, actor_key: str) -> str:
    """A like's event id: the liked item and a hash of the liker's key (never a raw user id)."""
    return f"like:{item_event}:{hashlib.sha256(actor_key.encode()).hexdigest()[:12]}"


class _Run:
    def __init__(self, ctx: SourceContext, opts: MangoAppsOptions, api: MangoAppsApi, store: StateStore,
                 start: dt.date, end: dt.date):
        self.ctx, self.opts, self.api, self.store, self.start, self.end = ctx, opts, api, store, start, end
        self.name = ctx.source.name
        self.emails: dict[str, str] = {}
        self.email_keys: set[str] = set()
        self.floor = _midnight(start)
        self.rules: QuestionRules = getattr(ctx.settings, "questions", None) or QuestionRules.model_validate({})
        self.topics: TopicRules | None = getattr(ctx.settings, "topics", None)
        self.counts = {"system_items_skipped": 0, "comment_parent_unresolved": 0, "items_in_unlisted_groups": 0,
                       "likes_with_own_time": 0, "events_after_end": 0}

    def key(self, uid: str | None) -> str | None:
        if not uid:
            return None
        email = self.emails.get(uid)
        k = self.ctx.pseudonymiser.person(PLATFORM, uid, email)
        if email and k:
            self.email_keys.add(k)
        return k

    def execute(self) -> ExtractReport:
        first = self.store.get(STATE, "first_day")
        backfill = not first or self.start.isoformat() < first
        floor = self.floor = _midnight(self.start if backfill else dt.date.fromisoformat(first))
        upper = _midnight(self.end) + dt.timedelta(days=1)
        mark = self.store.get(STATE, "watermark")
        lower = floor if backfill or mark is None else \
            max(floor, dt.datetime.fromtimestamp(float(mark), tz=dt.UTC) - dt.timedelta(seconds=self.opts.overlap_s))
        listed = [u for page, _ in self.api.pages("users", limit=self.opts.users_limit) for u in page]
        for u in listed:
            email = u.get("email")
            if isinstance(email, str) and email.strip():
                self.emails[str(norm_id(u["id"]))] = email
        users = pa.Table.from_pylist(
            [{"person_key": self.key(norm_id(u["id"])), "is_deactivated": False} for u in listed], schema=USERS)
        groups = {str(norm_id(g["id"])): g for page, _ in self.api.pages("groups", limit=self.opts.groups_limit)
                  for g in page}
        items, newest, pages = self.read_feeds(lower, upper)
        rows, reread = self.rows(items, floor, upper, groups)
        written = self.land(rows, reread)
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "groups"), self.end,
                             pa.Table.from_pandas(self.containers(groups.values()), preserve_index=False))
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "users"), self.end, users)
        changes: dict[tuple[str, str], Any] = {}
        if newest is not None:
            changes[(STATE, "watermark")] = newest
        elif mark is None or backfill:
            changes[(STATE, "watermark")] = lower.timestamp()
        if backfill:
            changes[(STATE, "first_day")] = self.start.isoformat()
        self.store.commit(changes, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")
        actors = {r["actor_key"] for rs in rows.values() for r in rs if r.get("actor_key")}
        report = ExtractReport(source=self.name, days=written)
        report.rows = {**{s: len(rs) for s, rs in rows.items()}, "users": users.num_rows, "groups": len(groups),
                       "feed_items_read": len(items)}
        report.details = {
            "watermark_from": lower.timestamp(), "watermark_to": newest, "feed_pages": pages, **self.counts,
            "days_rewritten_before_start": [d.isoformat() for d in written if d < self.start],
            "identity_matched_share": round(len(actors & self.email_keys) / len(actors), 4) if actors else None,
            **self.api.stats(),
        }
        return report

    def read_feeds(self, lower: dt.datetime, upper: dt.datetime
                   ) -> tuple[dict[str, dict[str, Any]], float | None, int]:
        """Feed items updated at or after `lower`, newest first (A11), and the newest `updated_at` below `upper`."""
        got: dict[str, dict[str, Any]] = {}
        newest: float | None = None
        previous: float | None = None
        pages = 0
        low = lower.timestamp()
        for page, _ in self.api.pages("feeds", limit=self.opts.feeds_limit):
            pages += 1
            check_counts("feeds", page)
            oldest: float | None = None
            for i, item in enumerate(page):
                when = float(epoch_seconds(item["updated_at"]) or 0.0)
                if previous is not None and when > previous:
                    raise MangoAppsShapeError("feeds", "feeds[].updated_at", "is later than the item before it",
                                              "items newest-updated first", "A11", where=f"feeds[{i}] of page {pages}")
                previous = oldest = when
                if when < low:
                    continue
                got[str(norm_id(item["id"]))] = item  # the overlap and shifted pages: the last copy wins
                if when < upper.timestamp() and (newest is None or when > newest):
                    newest = when
            if oldest is not None and oldest < low:
                break  # everything further down was updated before the watermark (A11)
        return got, newest, pages

    def rows(self, items: dict[str, dict[str, Any]], floor: dt.datetime, upper: dt.datetime,
             groups: Mapping[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dt.date]]:
        """The raw rows of the items read, and every item (post or comment) read with its day: their likes
        are replaced."""
        out: dict[str, list[dict[str, Any]]] = {"posts": [], "comments": [], "likes": []}
        reread: dict[str, dt.date] = {}

        def inside(when: dt.datetime) -> bool:
            if when >= upper:
                self.counts["events_after_end"] += 1
                return False
            return when >= floor

        def likes(liked: Any, item_event: str, post_event: str, container: str, created: dt.datetime,
                  author: str | None) -> None:
            reread[item_event] = created.date()
            for like in liked or []:
                actor = self.key(norm_id(like["id"]))
                own = like.get("created_at")
                when = to_datetime(own) if own is not None else created  # A10
                self.counts["likes_with_own_time"] += own is not None
                if actor is None or not inside(when):
                    continue
                out["likes"].append({"like_id": like_event(item_event, actor), "item_id": item_event,
                                     "post_id": post_event, "container_id": container, "created_at": when,
                                     "actor_key": actor, "item_actor_key": author})

        for fid, item in items.items():
            if item.get("is_system") is True:
                self.counts["system_items_skipped"] += 1
                continue
            gid = norm_id(item.get("group_id"))
            if gid is not None and gid not in groups:
                self.counts["items_in_unlisted_groups"] += 1
            container = gid or NETWORK_FEED
            created = to_datetime(item["created_at"])
            author = self.key(norm_id(item["from_user"]["id"]))
            post_event = f"feed:{fid}"
            if inside(created):
                body = item.get("body")
                out["posts"].append({"post_id": fid, "container_id": container, "created_at": created,
                                     "actor_key": author, "content_length": _length(body),
                                     "is_question": self.rules.matches(_TAG.sub("", body)) if isinstance(body, str)
                                     else False, "topic_ids": topic_ids(self.topics, body)})
            likes(item.get("liked_list"), post_event, post_event, container, created, author)
            comments = item.get("comments") or []
            by_id = {str(norm_id(c["id"])): c for c in comments}
            for c in comments:
                cid = str(norm_id(c["id"]))
                ccreated = to_datetime(c["created_at"])
                cauthor = self.key(norm_id(c["user"]["id"]))
                pid = norm_id(c.get("parent_id"))
                parent = by_id.get(pid) if pid is not None and pid != cid else None
                if pid is not None and parent is None:
                    self.counts["comment_parent_unresolved"] += 1  # answered as a reply to the post
                if inside(ccreated):
                    out["comments"].append({
                        "comment_id": cid, "post_id": fid, "parent_comment_id": pid if parent is not None else None,
                        "container_id": container, "created_at": ccreated, "actor_key": cauthor,
                        "parent_actor_key": self.key(norm_id(parent["user"]["id"])) if parent is not None else author,
                        "content_length": _length(c.get("body")), "topic_ids": topic_ids(self.topics, c.get("body"))})
                likes(c.get("liked_list"), f"comment:{cid}", post_event, container, ccreated, cauthor)
        return out, reread

    def containers(self, groups: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        rows = [{"source": self.name, "container_id": str(norm_id(g["id"])), "kind": "group",
                 "visibility": PRIVACY[str(g["privacy"]).strip().lower()],
                 "member_count": int(g["member_Count"]) if g.get("member_Count") is not None else None,
                 "created_at": to_datetime(g["created_at"]) if g.get("created_at") is not None else None}
                for g in groups]
        rows.append({"source": self.name, "container_id": NETWORK_FEED, "kind": "feed", "visibility": "public",
                     "member_count": None, "created_at": None})
        df = pd.DataFrame(rows, columns=CONTAINER_COLUMNS)
        df["member_count"] = df["member_count"].astype("Int32")
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df

    def land(self, rows: dict[str, list[dict[str, Any]]], reread: Mapping[str, dt.date]) -> list[dt.date]:
        """Posts and comments replace the rows with the same id in their day (a record's day, its creation,
        never moves); likes replace every like of the items read again, in the days of the new likes and
        the items' own days (where likes without a time of their own are, A10). Only partitions that
        changed are rewritten."""
        written: set[dt.date] = set()
        for stream, schema in STREAMS.items():
            base = lake.raw_dir(self.ctx.lake_dir, self.name, stream)
            by_day: dict[dt.date, list[dict[str, Any]]] = {}
            for r in rows[stream]:
                by_day.setdefault(r["created_at"].date(), []).append(r)
            id_col = "item_id" if stream == "likes" else schema.names[0]
            days = set(by_day)
            if stream == "likes":  # unliked items: their old likes go even when none is left
                days |= {d for d in reread.values() if d >= self.floor.date()}
            for day in sorted(days):
                new = by_day.get(day, [])
                old = lake.read_partition(base, day)
                if old is None and not new:
                    continue
                gone = set(reread) if stream == "likes" else {r[id_col] for r in new}
                ids = pa.array(sorted(gone), pa.string())
                kept = conform(old, schema).filter(pc.invert(pc.is_in(old.column(id_col), ids))) \
                    if old is not None else schema.empty_table()
                table = pa.concat_tables([kept, pa.Table.from_pylist(new, schema=schema)])
                table = table.sort_by([("created_at", "ascending"), (schema.names[0], "ascending")])
                if old is not None and old.schema.names == schema.names and old.cast(schema).equals(table):
                    continue
                lake.write_partition(base, day, table)
                written.add(day)
        return sorted(written)


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, username: str | None = None,
            password: str | None = None, api_key: str | None = None, access_token: str | None = None,
            refresh_token: str | None = None, client_id: str | None = None, client_secret: str | None = None,
            engine: sa.Engine | None = None) -> ExtractReport:
    """Land MangoApps changes up to the end of `end` (UTC): the first run from `start`, later runs from the
    watermark. The keyword credentials (an Airflow connection's, `connection_credentials`) override the
    options' environment variables."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    api = make_api(opts, username=username, password=password, api_key=api_key, access_token=access_token,
                   refresh_token=refresh_token, client_id=client_id, client_secret=client_secret)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, opts, api, store, start, end).execute()
    finally:
        api.close()


def canonical_activities(parts: Mapping[str, pa.Table | None], source: str) -> list[dict[str, Any]]:
    """Activities of one day from the raw streams (module doc)."""
    base = {"source": source, "is_question": False, "is_edited": False, "is_deleted": False, "is_idea": False,
            "content_length": None, "idea_status": None, "target_key": None, "topic_ids": None}

    def rows(stream: str) -> list[dict[str, Any]]:
        table = parts.get(stream)
        return [r for r in table.to_pylist() if r["actor_key"]] if table is not None else []

    out: list[dict[str, Any]] = []
    for r in rows("posts"):
        eid = f"feed:{r['post_id']}"
        out.append({**base, "event_id": eid, "occurred_at": r["created_at"], "actor_key": r["actor_key"],
                    "verb": "post", "container_id": r["container_id"], "thread_id": eid, "parent_id": None,
                    "content_length": r["content_length"], "is_question": bool(r["is_question"]),
                    "topic_ids": r.get("topic_ids")})
    for r in rows("comments"):
        thread = f"feed:{r['post_id']}"
        parent = f"comment:{r['parent_comment_id']}" if r["parent_comment_id"] else thread
        out.append({**base, "event_id": f"comment:{r['comment_id']}", "occurred_at": r["created_at"],
                    "actor_key": r["actor_key"], "verb": "reply", "container_id": r["container_id"],
                    "thread_id": thread, "parent_id": parent, "target_key": r["parent_actor_key"],
                    "content_length": r["content_length"], "topic_ids": r.get("topic_ids")})
    for r in rows("likes"):
        out.append({**base, "event_id": r["like_id"], "occurred_at": r["created_at"], "actor_key": r["actor_key"],
                    "verb": "reaction", "container_id": r["container_id"], "thread_id": f"feed:{r['post_id']}",
                    "parent_id": r["item_id"], "target_key": r["item_actor_key"]})
    return out


def mangoapps_people(users: pa.Table) -> pd.DataFrame:
    """The source's people rows from a landed `users` snapshot (the platform's listing, members)."""
    df = users.to_pandas()
    return platform_people(pd.DataFrame({"person_key": df["person_key"], "account_type": "member",
                                         "is_deactivated": df["is_deactivated"].fillna(False).astype(bool)}))


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    name = ctx.source.name
    parts = {s: lake.read_partition(lake.raw_dir(ctx.lake_dir, name, s), day) for s in STREAMS}
    out: dict[str, pd.DataFrame] = {}
    if any(t is not None for t in parts.values()):
        frame = pd.DataFrame.from_records(canonical_activities(parts, name), columns=list(ACTIVITIES.names))
        out["activities"] = raw_activities_to_canonical(frame, name)
    groups = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "groups"), day)
    if groups is not None:
        out["containers"] = groups.to_pandas()
    users = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = mangoapps_people(users)
    return out
