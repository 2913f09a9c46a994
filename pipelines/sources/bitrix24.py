"""The Bitrix24 source (kind "bitrix24"): the Feed ("Лента": posts, comments, readers of important posts,
`[USER=<id>]` mentions), users with their departments, and workgroups as containers, through the REST
API (`pipelines.sources.bitrix24_api`), incrementally and within the portal's two limits.

What is read, per run:
  - `user.admin`: the caller must be a portal administrator. Only an administrator may read another
    user's comments; anyone else asking for them silently gets their own comments back, which would
    credit every author with the caller's comments, so a non-administrator is refused at once (and, as
    a second guard, a comment that comes back for two authors stops the run);
  - `user.get` by `>ID` with `start=-1` (all users, fired ones included: `ACTIVE` false is a
    deactivated account), `USER_TYPE` employee -> member, extranet / email -> external. People are keyed
    by email (`pseudonymiser.person("bitrix24", ID, EMAIL)`); names, positions and ids are never kept;
  - `department.get`: the tree (`PARENT`). A person's department is the first department of
    `UF_DEPARTMENT` that the tree knows, named by option `department_level`: `top` (default: the
    ancestor just below the company root; the root itself for people placed in the root) or `leaf` (the
    department itself). Top-level units keep segments above `min_group_size`; leaf units are the teams;
  - `sonet_group.get` (`IS_ADMIN=Y`) and `sonet_group.user.get` per group (batched): the workgroups,
    their visibility (`VISIBLE` and `OPENED` both Y: public; else private) and member counts;
  - `log.blogpost.get`, the whole Feed and once per workgroup with `LOG_RIGHTS=["SG<id>"]` (batched), with
    `LOG_DATE_FROM` / `LOG_DATE_TO` around the run's window. The API does not return a post's recipients,
    so these per-group reads are the only way to tell a post's container: a post found in a group's read
    is in that group (in several: the one with the lowest id, counted as `posts_in_several_groups`),
    else `feed:all` when `HAS_SOCNET_ALL` is Y, else `feed:restricted` (sent to people or departments).
    The date parameters appeared in the docs in 2026 and older portals ignore them: option `date_filter`
    `auto` sends them and, when the answer holds posts outside the window, says so
    (`log_date_filter: ignored`) and keeps reading the whole Feed; the window is always applied here too.
    Paging does not trust `total` and survives posts moving between pages (`bitrix24_api.OffsetScan`:
    deduplicated by id, the head read again). Only published posts are returned;
  - `log.blogcomment.user.get` once per user (batched, 50 users per HTTP request): the API lists comments
    by author only. Newest first down to the author's cursor (the highest Feed comment id landed, kept per
    person key in the state `comment_cursors`), or, on the first run and on a backfill before the first
    day, down to the window's start. A comment's post is `post_id` (what the core source returns); a
    portal that answers the docs' `log_id` (a Feed entry, not the post) leaves the parent unresolved
    (`comments_parent_unresolved`: no thread, container or target). The post's author and container come
    from this run's posts, else from the posts landed earlier, else from a `POST_ID` look-up (author only;
    `feed:all` when the post is for all users, else no container). Comment `text` is empty when an
    administrator reads another user's comments (docs, confirmed in the core source): such a comment's
    length is unknown (NULL) and its mentions are lost; only the caller's own comments keep them;
  - `log.blogpost.getusers.important` for each important post (`UF_BLOG_POST_IMPRTNT`) of the window
    and of the last `important_readers_days` days (readers keep coming): a `view` by each reader (at
    most 500 per post, `readers_capped`), dated at the post: the API gives no read time.
Mentions are `[USER=<id>]Name[/USER]` in a post's `DETAIL_TEXT` or a comment's `text`: one `mention` per
distinct person but the author. That BBCode is documented for chat messages; that the Feed stores
mentions the same way is **unverified**. Questions: the configured question rules (`questions:`) on the
text with BBCode removed; `content_length` is the text's length with BBCode tags removed. Topics
(`topic_ids`, `pipelines.topics` with `ctx.settings.topics`): the taxonomy and `#hashtags` matched on the
post's `DETAIL_TEXT` or the comment's `text` without mentions, BBCode tags, `[CODE]` blocks and links;
the Feed answer has no tag names (`HAS_TAGS` says only that some exist, `CATEGORY_ID` gives their ids),
so there are no platform tags. A comment whose text the API withholds has no topics. Rows landed before
the column load with none.

What the API cannot give, and what follows for the metrics:
  - **likes** ("Нравится") on Feed posts and comments: no REST method lists them or their authors, so
    Bitrix24 contributes **no `reaction` activity**; reaction counts, reaction-based reach and the
    reaction edges of the network are missing for this source (replies and mentions still make edges);
  - **post recipients**: `log.blogpost.get` does not return them, so containers come only from the
    per-group `LOG_RIGHTS` reads (one more listing per workgroup and run); posts to departments or named
    people are one container, `feed:restricted`, and a post in several groups counts in one;
  - shares (`log.blogpost.share` has no read method), edit times, deletions (deleted posts simply
    disappear: a post landed before it was deleted stays), accepted answers and poll votes are not
    extracted; readers of ordinary posts are not available (only of important ones).

Limits: one leaky bucket for the portal (`requests_per_s`, 2 by default, and `burst`; Enterprise plans
allow 5/s), a per-method operating-time governor (`operating_limit_s`, `operating_headroom`), both in
`bitrix24_api`; the report says how often each was met (`query_limit_hits`, `operating_waits`).
Incremental state (`etl_source_state`, stream `feed`): `first_day`, `post_watermark` (the newest
`DATE_PUBLISH` landed; the next run reads from `overlap_hours` before it), `important` (post id -> its
day, for the readers' re-reads; author and container are read back from the landed posts),
`groups_seen` (workgroup ids, so that a deleted group stays a known container of its landed posts) and
`comment_cursors` (person key -> the last Feed comment id landed, one JSON value: an erasure or a key
rotation rewrites keys inside it like any text). The state is committed only after the landing is
durable, so a killed run reads again (and the landing replaces by id: nothing is taken twice).

Streams under raw/source=<name>/: `posts` (by the post's UTC day), `comments` (by their own day),
`views` (by the post's day), `groups` (containers snapshot at `end`), `users` (people snapshot at `end`);
every row keyed, no ids of people, no text. A re-read post replaces its earlier row; re-read readers
replace the post's earlier views.

This module must never write, log or return Feed text, names, user ids or emails.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines import lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.config import QuestionRules
from pipelines.connectors.errors import ApiError, AuthError, FatalError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.state import StateStore, open_state
from pipelines.model import ACTIVITIES, TS
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.bitrix24_api import (
    DEFAULT_OAUTH_URL,
    Bitrix24Api,
    CommentScan,
    OAuthAuth,
    OffsetScan,
    OneCall,
    TokenStore,
    WebhookAuth,
    iso,
    parse_datetime,
    result_items,
    run_scans,
    timezone,
)
from pipelines.topics import TopicRules, as_column

PLATFORM = "bitrix24"
STATE = "feed"
ALL_USERS = "feed:all"  # posts for all authorised users (HAS_SOCNET_ALL)
RESTRICTED = "feed:restricted"  # posts to people or departments only: the recipients are not readable
GROUP = "sg:"  # + the workgroup id
_MENTION = re.compile(r"\[USER=(\d+)\](.*?)\[/USER\]", re.I | re.S)
_TAG = re.compile(r"\[/?[A-Za-z*]+(?:=[^\]]*)?\]")
_CODE = re.compile(r"\[CODE\].*?\[/CODE\]", re.I | re.S)
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.I)
ACCOUNT_TYPES = {"employee": "member", "extranet": "external", "email": "external"}

POSTS = pa.schema([("post_id", pa.string()), ("container_id", pa.string()), ("created_at", TS),
                   ("actor_key", pa.string()), ("content_length", pa.int32()), ("is_question", pa.bool_()),
                   ("is_important", pa.bool_()), ("comment_count", pa.int32()),
                   ("mention_keys", pa.list_(pa.string())),
                   ("topic_ids", pa.string())])  # pipelines/topics.py ids, never text (landed before it: absent)
COMMENTS = pa.schema([("comment_id", pa.string()), ("post_id", pa.string()), ("log_id", pa.string()),
                      ("container_id", pa.string()), ("created_at", TS), ("actor_key", pa.string()),
                      ("parent_actor_key", pa.string()), ("content_length", pa.int32()),
                      ("mention_keys", pa.list_(pa.string())),
                      ("topic_ids", pa.string())])  # pipelines/topics.py ids, never text (landed before it: absent)
VIEWS = pa.schema([("post_id", pa.string()), ("container_id", pa.string()), ("created_at", TS),
                   ("actor_key", pa.string()), ("parent_actor_key", pa.string())])
USERS = pa.schema([("person_key", pa.string()), ("is_active", pa.bool_()), ("account_type", pa.string()),
                   ("department", pa.string())])
STREAMS = {"posts": POSTS, "comments": COMMENTS, "views": VIEWS}
KEY_OF = {"posts": "post_id", "comments": "comment_id", "views": "post_id"}


class Bitrix24Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auth: Literal["webhook", "oauth"] = Field("webhook", description="incoming webhook, or OAuth 2.0 with refresh")
    portal_url: str | None = Field(None, description="https://<portal>.bitrix24.com (webhook; OAuth: optional)")
    webhook_user_id: int | None = Field(None, ge=1, description="the id in the webhook URL /rest/<id>/<code>/")
    webhook_code_env: str | None = Field(None, description="environment variable holding the webhook code")
    client_id_env: str | None = Field(None, description="OAuth: variable holding the application's client id")
    client_secret_env: str | None = Field(None, description="OAuth: variable holding its client secret")
    refresh_token_env: str | None = Field(None, description="OAuth: variable holding the first refresh token")
    oauth_url: str = Field(DEFAULT_OAUTH_URL, description="OAuth token endpoint")
    token_file: str | None = Field(None, description="OAuth: where the rotating token pair is kept (mode 0600)")
    requests_per_s: float = Field(2.0, gt=0, le=1000, description="the leaky bucket's drain (Enterprise: 5)")
    burst: int = Field(25, ge=1, le=1000, description="requests in a burst (the portal allows 50; Enterprise 250)")
    operating_limit_s: float = Field(480.0, gt=0, description="per-method operating time allowed in 10 minutes")
    operating_headroom: float = Field(0.8, gt=0, le=1, description="share of it after which calls wait")
    operating_basket_s: float = Field(60.0, gt=0, le=600, description="one of the 10 baskets: the wait after "
                                      "a 429 OPERATION_TIME_LIMIT when no later reset is known")
    query_limit_wait_s: float = Field(2.0, ge=0, description="first pause after a 503 QUERY_LIMIT_EXCEEDED")
    batch_size: int = Field(50, ge=1, le=50, description="commands per batch request")
    department_level: Literal["top", "leaf"] = Field("top", description="a person's department: the top-level "
                                                     "unit below the company, or the unit itself")
    date_filter: Literal["auto", "on", "off"] = Field("auto", description="send LOG_DATE_FROM/TO (newer portals)")
    overlap_hours: float = Field(24.0, ge=0, le=24 * 31, description="posts re-read before the watermark")
    important_readers_days: int = Field(14, ge=0, le=366, description="days over which important posts' "
                                        "readers are read again")
    comment_page_size: int = Field(100, ge=1, le=100)
    portal_timezone: str = Field("UTC", description="time zone of dates without an offset (old portal format)")
    max_attempts: int = Field(8, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)

    @field_validator("portal_url", "oauth_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local = value.startswith(("http://127.0.0.1", "http://localhost"))
        if not value.startswith("https://") and not local:
            raise ValueError(f"{value!r} must be an https:// URL")
        return value.rstrip("/") if "/oauth/" not in value else value

    @field_validator("portal_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            timezone(value)
        except Exception:  # noqa: BLE001 - zoneinfo raises several kinds
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Moscow, or UTC)") from None
        return value

    @model_validator(mode="after")
    def _auth_fields(self) -> Bitrix24Options:
        if self.auth == "webhook":
            if self.portal_url is None or self.webhook_user_id is None:
                raise ValueError("auth webhook needs portal_url and webhook_user_id (the code comes from "
                                 "webhook_code_env or the source's Airflow connection)")
        elif self.token_file is None:
            raise ValueError("auth oauth needs token_file: every refresh returns a new refresh token, which must "
                             "be kept for the next run")
        return self


def options(ctx: SourceContext) -> Bitrix24Options:
    return Bitrix24Options.model_validate(ctx.source.options)


def connection_credentials(login: str | None, password: str | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `extract` keyword arguments from an Airflow connection of this source: a webhook (password: the
    code), or OAuth (login: client id, password: client secret, extra `refresh_token`)."""
    extra = extra or {}
    if extra.get("refresh_token"):
        return {"client_id": login, "client_secret": password, "refresh_token": extra.get("refresh_token")}
    return {"webhook_code": password}


def _env(name: str | None) -> str:
    return os.environ.get(name or "", "") if name else ""


def make_api(opts: Bitrix24Options, *, webhook_code: str | None = None, client_id: str | None = None,
             client_secret: str | None = None, refresh_token: str | None = None) -> Bitrix24Api:
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s)
    limits: dict[str, Any] = {"requests_per_s": opts.requests_per_s, "burst": opts.burst, "operating_limit_s": opts.operating_limit_s,
              "operating_headroom": opts.operating_headroom, "operating_basket_s": opts.operating_basket_s,
              "query_limit_wait_s": opts.query_limit_wait_s,
              "batch_size": opts.batch_size, "policy": policy, "timeout_s": opts.timeout_s}
    if opts.auth == "webhook":
        code = webhook_code or _env(opts.webhook_code_env)
        where = "the webhook code of the Airflow connection" if webhook_code else \
            f"the webhook code in ${opts.webhook_code_env} (option webhook_code_env)"
        if not code:
            raise AuthError(f"no Bitrix24 webhook code: {where} is unset or empty")
        return Bitrix24Api(WebhookAuth(opts.portal_url or "", opts.webhook_user_id or 0, code, source=where), **limits)
    from_conn = bool(client_id or client_secret or refresh_token)
    cid, secret = client_id or _env(opts.client_id_env), client_secret or _env(opts.client_secret_env)
    refresh = refresh_token or _env(opts.refresh_token_env)
    where = "the OAuth credentials of the Airflow connection" if from_conn else \
        f"the OAuth credentials in ${opts.client_id_env} / ${opts.client_secret_env} / ${opts.refresh_token_env}"
    if not cid or not secret or not refresh:
        raise AuthError(f"incomplete Bitrix24 OAuth credentials: {where} (client id, secret and refresh token)")
    auth = OAuthAuth(client_id=cid, client_secret=secret, refresh_token=refresh, source=where, oauth_url=opts.oauth_url,
                     portal_url=opts.portal_url, store=TokenStore(Path(opts.token_file or "")), policy=policy,
                     timeout_s=opts.timeout_s)
    return Bitrix24Api(auth, **limits)


# --- text features ----------------------------------------------------------------------------------
def mentioned_ids(text: str) -> list[str]:
    """User ids of `[USER=<id>]Name[/USER]` in `text`, in order, distinct."""
    return list(dict.fromkeys(m.group(1) for m in _MENTION.finditer(text or "")))


def shown_text(text: str) -> str:
    """The text as displayed: BBCode tags removed (a mention keeps its name)."""
    return _TAG.sub("", text or "")


def prose(text: str) -> str:
    """The author's own words: mentions and BBCode tags removed (what the question rules read)."""
    return _TAG.sub(" ", _MENTION.sub(" ", text or ""))


def topic_prose(text: str) -> str:
    """What the topics are matched on: the author's words (`prose`) without `[CODE]` blocks and links."""
    return _URL.sub(" ", prose(_CODE.sub(" ", text or "")))


def topic_ids(text: str, rules: TopicRules | None) -> str | None:
    """The `topic_ids` of a post's or comment's text; None without rules, text or topics."""
    if rules is None or not text:
        return None
    return as_column(rules.topics(topic_prose(text)))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A landed table in `schema`: columns added since it was landed (`topic_ids`) are null."""
    for name in schema.names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(schema.names).cast(schema)


def uf_value(field: Any) -> Any:
    """The value of a `UF_*` user field, given as its full descriptor (`{..., "VALUE": x}`) or bare."""
    return field.get("VALUE") if isinstance(field, Mapping) else field


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0) or \
        str(value).strip().upper() in ("1", "Y", "TRUE")


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).strip().isdigit() else None


def department_names(rows: Iterable[Mapping[str, Any]], level: str) -> dict[int, str]:
    """Department id -> the name a person placed in it gets (`department_level`, module doc)."""
    name: dict[int, str] = {}
    parent: dict[int, int | None] = {}
    for r in rows:
        did = _int(r.get("ID"))
        if did is None:
            continue
        name[did] = str(r.get("NAME") or "").strip()
        parent[did] = _int(r.get("PARENT")) or None
    if level == "leaf":
        return {d: n for d, n in name.items() if n}
    out: dict[int, str] = {}
    for did in name:
        node, seen = did, {did}
        while True:
            up = parent.get(node)
            if up is None or up not in name or parent.get(up) is None or up in seen:
                break  # node is a root, or its parent is (node is top-level), or the tree loops
            seen.add(up)
            node = up
        if name[node]:
            out[did] = name[node]
    return out


# --- the run ----------------------------------------------------------------------------------------
class _Run:
    def __init__(self, ctx: SourceContext, api: Bitrix24Api, store: StateStore, start: dt.date, end: dt.date,
                 opts: Bitrix24Options):
        self.ctx, self.api, self.store, self.start, self.end, self.opts = ctx, api, store, start, end, opts
        self.name = ctx.source.name
        self.tz = timezone(opts.portal_timezone)
        self.rules: QuestionRules = getattr(ctx.settings, "questions", None) or QuestionRules.model_validate({})
        self.topics: TopicRules | None = getattr(ctx.settings, "topics", None)
        self.emails: dict[str, str] = {}  # Bitrix24 user id -> email (memory only)
        self.email_keys: set[str] = set()
        self.notes: Counter[str] = Counter()

    def key(self, uid: Any) -> str | None:
        uid = str(uid).strip() if uid is not None else ""
        if not uid.isdigit() or uid == "0":
            return None
        email = self.emails.get(uid)
        k = self.ctx.pseudonymiser.person(PLATFORM, uid, email)
        if email and k:
            self.email_keys.add(k)
        return k

    def mentions(self, text: str, author: str | None) -> list[str]:
        return sorted({k for k in (self.key(u) for u in mentioned_ids(text)) if k and k != author})

    # --- people and containers ---------------------------------------------------------------------
    def check_admin(self) -> None:
        if self.api.call("user.admin").get("result") is not True:
            raise FatalError(f"{self.api.auth.source}: its user is not a portal administrator (user.admin is "
                             "false). Comments can only be read per author by an administrator; anyone else gets "
                             "their own comments for every author. Create the webhook (or install the app) as an "
                             "administrator.")

    def read_users(self) -> list[dict[str, Any]]:
        users = [u for page in self.api.keyset("user.get", {"sort": "ID", "order": "ASC", "ADMIN_MODE": True})
                 for u in page if _int(u.get("ID"))]
        for u in users:
            if isinstance(u.get("EMAIL"), str) and u["EMAIL"].strip():
                self.emails[str(u["ID"])] = u["EMAIL"].strip()
        return users

    def users_table(self, users: list[dict[str, Any]], names: Mapping[int, str]) -> pa.Table:
        rows = []
        for u in users:
            depts = u.get("UF_DEPARTMENT")
            depts = depts if isinstance(depts, list) else [depts] if depts not in (None, False, "") else []
            dept = next((names[d] for d in (_int(x) for x in depts) if d is not None and d in names), None)
            active = u.get("ACTIVE")
            rows.append({"person_key": self.key(u["ID"]),
                         "is_active": active is not False and str(active).upper() not in ("N", "FALSE", "0"),
                         "account_type": ACCOUNT_TYPES.get(str(u.get("USER_TYPE") or "employee"), "member"),
                         "department": dept})
        return pa.Table.from_pylist(rows, schema=USERS)

    def read_groups(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        groups = {str(g["ID"]): dict(g) for page in self.api.pages("sonet_group.get", {"ORDER": {"ID": "ASC"},
                                                                                 "IS_ADMIN": "Y"})
                  for g in page if isinstance(g, Mapping) and _int(g.get("ID"))}
        calls = [OneCall(f"m{gid}", "sonet_group.user.get", {"ID": gid}) for gid in groups]
        run_scans(self.api, calls)
        members = {c.key[1:]: len(result_items(c.answer.result, "sonet_group.user.get"))
                   for c in calls if c.answer is not None}
        return list(groups.values()), members

    def containers(self, groups: list[dict[str, Any]], members: Mapping[str, int], gone: Iterable[str] = ()
                   ) -> pd.DataFrame:
        """The containers snapshot: the two Feed audiences, every workgroup listed, and the groups earlier
        runs listed that are gone now (their landed posts still name them: private, counts unknown)."""
        rows: list[dict[str, Any]] = [
            {"source": self.name, "container_id": ALL_USERS, "kind": "feed", "visibility": "public"},
            {"source": self.name, "container_id": RESTRICTED, "kind": "feed", "visibility": "private"}]
        rows += [{"source": self.name, "container_id": f"{GROUP}{gid}", "kind": "group", "visibility": "private"}
                 for gid in sorted(gone, key=int)]
        for g in groups:
            gid = str(g["ID"])
            public = g.get("VISIBLE") == "Y" and g.get("OPENED") == "Y"
            count = members.get(gid, _int(g.get("NUMBER_OF_MEMBERS")))
            rows.append({"source": self.name, "container_id": f"{GROUP}{gid}", "kind": "group",
                         "visibility": "public" if public else "private", "member_count": count,
                         "created_at": parse_datetime(g.get("DATE_CREATE"), self.tz)})
        df = pd.DataFrame(rows, columns=["source", "container_id", "kind", "visibility", "member_count",
                                         "owner_department", "created_at"])
        df["member_count"] = df["member_count"].astype("Int32")
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df

    # --- posts ----------------------------------------------------------------------------------------
    def read_posts(self, lower: dt.datetime, upper: dt.datetime, groups: list[dict[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
        window: dict[str, Any] = {}
        if self.opts.date_filter != "off":
            window = {"LOG_DATE_FROM": iso(lower), "LOG_DATE_TO": iso(upper - dt.timedelta(seconds=1))}
        feed = OffsetScan("feed", "log.blogpost.get", window)
        per_group = [OffsetScan(f"g{g['ID']}", "log.blogpost.get", {**window, "LOG_RIGHTS": [f"SG{g['ID']}"]})
                     for g in sorted(groups, key=lambda g: int(g["ID"]))]
        run_scans(self.api, [feed, *per_group])
        group_of: dict[str, list[int]] = {}
        raw: dict[str, dict[str, Any]] = dict(feed.items)
        for scan in per_group:
            for pid, item in scan.items.items():
                group_of.setdefault(pid, []).append(int(scan.key[1:]))
                raw.setdefault(pid, item)  # a post only a group read found (moved, or not shown to the Feed)
        scans = [feed, *per_group]
        self.notes["pages"] += sum(s.pages for s in scans)
        self.notes["head_pages"] += sum(s.head_pages for s in scans)
        self.notes["posts_found_rereading_head"] += sum(s.head_new for s in scans)
        self.notes["next_not_advancing"] += sum(s.anomalies for s in scans)
        posts: dict[str, dict[str, Any]] = {}
        outside = older = 0
        for pid, r in raw.items():
            row = self.post_row(r)
            if row is None:
                continue
            if not lower <= row["created_at"] < upper:
                outside += 1
                older += row["created_at"] < lower
                continue
            gids = sorted(set(group_of.get(pid, [])))
            if gids:
                row["container_id"] = f"{GROUP}{gids[0]}"
                self.notes["posts_in_several_groups"] += len(gids) > 1
            posts[pid] = row
        if window and older:  # the portal predates LOG_DATE_FROM: it listed the whole Feed
            self.notes["log_date_filter_ignored"] += 1
        self.notes["posts_outside_window"] += outside
        return posts

    def post_row(self, r: Mapping[str, Any]) -> dict[str, Any] | None:
        pid = str(r.get("ID") or "").strip()
        if not pid.isdigit():
            raise ApiError("log.blogpost.get: a post without a numeric ID", code="unexpected_shape")
        if str(r.get("PUBLISH_STATUS") or "P") != "P":
            return None  # the core lists published posts only; a draft here is skipped, never counted
        created = parse_datetime(r.get("DATE_PUBLISH"), self.tz)
        if created is None:
            raise ApiError(f"log.blogpost.get: post {pid} has no parseable DATE_PUBLISH (ISO 8601 or "
                           "dd.mm.yyyy hh:mm:ss expected)", code="unexpected_shape")
        text = str(r.get("DETAIL_TEXT") or "")
        author = self.key(r.get("AUTHOR_ID"))
        return {"post_id": pid, "container_id": ALL_USERS if r.get("HAS_SOCNET_ALL") == "Y" else RESTRICTED,
                "created_at": created, "actor_key": author, "content_length": len(shown_text(text)),
                "is_question": self.rules.matches(prose(text)),
                "is_important": _truthy(uf_value(r.get("UF_BLOG_POST_IMPRTNT"))),
                "comment_count": _int(r.get("NUM_COMMENTS")), "mention_keys": self.mentions(text, author),
                "topic_ids": topic_ids(text, self.topics)}

    # --- comments ----------------------------------------------------------------------------------------
    def read_comments(self, users: list[dict[str, Any]], floor: dt.datetime | None, use_cursors: bool,
                      upper: dt.datetime) -> tuple[list[dict[str, Any]], dict[str, int]]:
        cursors = (self.store.get(STATE, "comment_cursors") or {}) if use_cursors else {}
        scans: list[CommentScan] = []
        author: dict[str, str] = {}  # scan key -> person key (batch keys are neutral: no pseudonym is sent)
        for u in users:
            k = self.key(u["ID"])
            if k is None:
                continue
            cursor = int(cursors.get(k) or 0)
            author[f"u{len(scans)}"] = k
            scans.append(CommentScan(f"u{len(scans)}", str(u["ID"]), cursor, limit=self.opts.comment_page_size,
                                     floor=floor if not cursor else None, tz=self.tz))
        run_scans(self.api, scans)
        self.notes["comment_pages"] += sum(s.pages for s in scans)
        out: list[dict[str, Any]] = []
        moved: dict[str, int] = {}
        owner: dict[int, str] = {}
        for s in scans:
            best = s.cursor
            for cid, c in sorted(s.rows.items()):
                if cid in owner:  # the caller's own comments under every author: not an administrator
                    raise FatalError("log.blogcomment.user.get returned the same comment for two authors: the caller "
                                     "reads its own comments for everyone, as a non-administrator does; use an "
                                     "administrator's webhook or app")
                owner[cid] = s.key
                row = self.comment_row(c, author[s.key])
                if row["created_at"] >= upper:
                    continue  # after the window: the next run reads it (the cursor stays below it)
                best = max(best, cid)
                if floor is not None and row["created_at"] < floor:
                    continue
                out.append(row)
            if best > s.cursor:
                moved[author[s.key]] = best
        return out, moved

    def comment_row(self, c: Mapping[str, Any], author: str) -> dict[str, Any]:
        cid = _int(c.get("comment_id"))
        event = f"c{cid}" if cid is not None else f"lc{c['id']}"
        created = parse_datetime(c.get("date"), self.tz)
        if created is None:
            raise ApiError(f"log.blogcomment.user.get: comment {event} has no parseable 'date'", code="unexpected_shape")
        text = str(c.get("text") or "")
        if not text:
            self.notes["comments_without_text"] += 1
        post_id, log_id = _int(c.get("post_id")), _int(c.get("log_id"))
        return {"comment_id": event, "post_id": str(post_id) if post_id is not None else None,
                "log_id": str(log_id) if log_id is not None else None, "container_id": None, "created_at": created,
                "actor_key": author, "parent_actor_key": None,
                "content_length": len(shown_text(text)) if text else None,
                "mention_keys": self.mentions(text, author) if text else [],
                "topic_ids": topic_ids(text, self.topics)}

    def resolve_parents(self, comments: list[dict[str, Any]], posts: Mapping[str, dict[str, Any]]) -> None:
        """Each comment's post author and container (module doc: this run, the lake, a POST_ID look-up)."""
        known: dict[str, tuple[str | None, str | None]] = {p: (r["actor_key"], r["container_id"]) for p, r in posts.items()}
        wanted = {c["post_id"] for c in comments if c["post_id"] is not None} - set(known)
        if wanted:
            base = lake.raw_dir(self.ctx.lake_dir, self.name, "posts")
            for day in reversed(lake.partition_days(base)):
                table = lake.read_partition(base, day)
                if table is None:
                    continue
                for r in table.select(["post_id", "actor_key", "container_id"]).to_pylist():
                    if r["post_id"] in wanted:
                        known[r["post_id"]] = (r["actor_key"], r["container_id"])
                        wanted.discard(r["post_id"])
                        self.notes["comment_parents_from_lake"] += 1
                if not wanted:
                    break
        if wanted:
            calls = [OneCall(f"p{p}", "log.blogpost.get", {"POST_ID": p}) for p in sorted(wanted)]
            run_scans(self.api, calls)
            for call in calls:
                rows = result_items(call.answer.result, "log.blogpost.get") if call.answer else []
                row = next((r for r in rows if isinstance(r, Mapping) and str(r.get("ID")) == call.key[1:]), None)
                if row is not None:
                    known[call.key[1:]] = (self.key(row.get("AUTHOR_ID")),
                                           ALL_USERS if row.get("HAS_SOCNET_ALL") == "Y" else None)
                    self.notes["comment_parents_from_api"] += 1
        for c in comments:
            found = known.get(c["post_id"]) if c["post_id"] is not None else None
            if found is None:
                self.notes["comments_parent_unresolved"] += 1
                continue
            c["parent_actor_key"], c["container_id"] = found

    # --- readers of important posts ------------------------------------------------------------------
    def read_views(self, posts: Mapping[str, dict[str, Any]]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
        """Readers of the important posts of this run and of the last `important_readers_days` days (their
        post, author and container from this run or from the landed posts of their day)."""
        horizon = (self.end - dt.timedelta(days=self.opts.important_readers_days)).isoformat()
        kept = {str(p): str(d) for p, d in (self.store.get(STATE, "important") or {}).items() if str(d) >= horizon}
        info: dict[str, dict[str, Any]] = {p: r for p, r in posts.items() if r["is_important"]}
        base = lake.raw_dir(self.ctx.lake_dir, self.name, "posts")
        for day in sorted({d for p, d in kept.items() if p not in info}):
            table = lake.read_partition(base, dt.date.fromisoformat(day))
            for r in table.to_pylist() if table is not None else []:
                if r["post_id"] in kept and r["post_id"] not in info and r["is_important"]:
                    info[r["post_id"]] = r
        # a post gone from the lake (erased author) or no longer important is read no more
        important = {p: r["created_at"].astimezone(dt.UTC).date().isoformat() for p, r in info.items()
                     if r["created_at"].astimezone(dt.UTC).date().isoformat() >= horizon or p in posts}
        calls = [OneCall(f"i{p}", "log.blogpost.getusers.important", {"POST_ID": p}) for p in sorted(important, key=int)]
        run_scans(self.api, calls)
        views: dict[str, list[dict[str, Any]]] = {}
        for call in calls:
            pid = call.key[1:]
            post = info[pid]
            readers = result_items(call.answer.result, "log.blogpost.getusers.important") if call.answer else []
            self.notes["readers_capped"] += len(readers) >= 500
            keys = sorted({k for k in (self.key(u) for u in readers) if k and k != post["actor_key"]})
            views[pid] = [{"post_id": pid, "container_id": post["container_id"], "created_at": post["created_at"],
                           "actor_key": k, "parent_actor_key": post["actor_key"]} for k in keys]
        return views, important

    # --- landing ----------------------------------------------------------------------------------------
    def replace(self, stream: str, rows: list[dict[str, Any]], ids: Iterable[str], days: Iterable[dt.date]) -> set[dt.date]:
        """Replace every earlier row of `ids` in `days` with `rows` (by their own day); rewrite only the
        partitions that changed."""
        schema, key = STREAMS[stream], KEY_OF[stream]
        base = lake.raw_dir(self.ctx.lake_dir, self.name, stream)
        by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for r in rows:
            by_day.setdefault(r["created_at"].astimezone(dt.UTC).date(), []).append(r)
        drop = pa.array(sorted(set(ids)), pa.string())
        written: set[dt.date] = set()
        for day in sorted(set(days) | set(by_day)):
            old = lake.read_partition(base, day)
            if old is None and day not in by_day:
                continue
            kept = conform(old, schema).filter(pc.invert(pc.is_in(old.column(key), drop))) if old is not None \
                else schema.empty_table()
            table = pa.concat_tables([kept, pa.Table.from_pylist(by_day.get(day, []), schema=schema)])
            order = [("created_at", "ascending"), (key, "ascending")]
            if stream == "views":
                order.append(("actor_key", "ascending"))
            table = table.sort_by(order)
            if old is not None and old.schema.names == schema.names and old.cast(schema).equals(table):
                continue
            lake.write_partition(base, day, table)
            written.add(day)
        return written

    def execute(self) -> ExtractReport:
        report = ExtractReport(source=self.name, days=[])
        first = self.store.get(STATE, "first_day")
        mark = self.store.get(STATE, "post_watermark")
        day0 = dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)
        backfill = mark is None or first is None or self.start.isoformat() < first
        lower = day0 if backfill else \
            min(day0, (parse_datetime(mark) or day0) - dt.timedelta(hours=self.opts.overlap_hours))
        upper = dt.datetime(self.end.year, self.end.month, self.end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        self.check_admin()
        users = self.read_users()
        names = department_names((d for page in self.api.pages("department.get", start_key="START") for d in page),
                                 self.opts.department_level)
        people = self.users_table(users, names)
        groups, members = self.read_groups()
        posts = self.read_posts(lower, upper, groups)
        floor = day0 if backfill else dt.datetime.fromisoformat(f"{first}T00:00:00+00:00")
        comments, cursors = self.read_comments(users, floor, not backfill, upper)
        self.resolve_parents(comments, posts)
        views, important = self.read_views(posts)
        written = self.replace("posts", list(posts.values()), posts, {r["created_at"].date() for r in posts.values()})
        written |= self.replace("comments", comments, [c["comment_id"] for c in comments], ())
        view_days = {dt.date.fromisoformat(important[p]) for p in views}
        written |= self.replace("views", [v for vs in views.values() for v in vs], views, view_days)
        seen = sorted({str(g["ID"]) for g in groups} | set(self.store.get(STATE, "groups_seen") or []), key=int)
        gone = set(seen) - {str(g["ID"]) for g in groups}
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "groups"), self.end,
                             pa.Table.from_pandas(self.containers(groups, members, gone), preserve_index=False))
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "users"), self.end, people)
        newest = max((r["created_at"] for r in posts.values()), default=None)
        old_mark = parse_datetime(mark) if mark else None
        changes: dict[tuple[str, str], Any] = {}
        if cursors:
            stored = self.store.get(STATE, "comment_cursors") or {}
            merged = {**stored, **{k: max(v, int(stored.get(k) or 0)) for k, v in cursors.items()}}
            if merged != stored:
                changes[(STATE, "comment_cursors")] = merged
        if newest is not None and (old_mark is None or newest > old_mark):
            changes[(STATE, "post_watermark")] = iso(newest)
        elif mark is None:
            changes[(STATE, "post_watermark")] = iso(lower)
        if seen != (self.store.get(STATE, "groups_seen") or []):
            changes[(STATE, "groups_seen")] = seen
        if important != (self.store.get(STATE, "important") or {}):
            changes[(STATE, "important")] = important
        if not first or self.start.isoformat() < first:
            changes[(STATE, "first_day")] = self.start.isoformat()
        self.store.commit(changes, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")
        actors = {r["actor_key"] for r in [*posts.values(), *comments] if r.get("actor_key")}
        report.days = sorted(written)
        report.rows = {"posts": len(posts), "comments": len(comments), "views": sum(len(v) for v in views.values()),
                       "users": people.num_rows, "groups": len(groups)}
        report.details = {
            "window_from": iso(lower), "window_to": iso(upper), "backfill": backfill,
            "log_date_filter": "off" if self.opts.date_filter == "off" else
            "ignored" if self.notes["log_date_filter_ignored"] else "sent",
            "posts_in_several_groups": self.notes["posts_in_several_groups"],
            "posts_outside_window": self.notes["posts_outside_window"],
            "posts_found_rereading_head": self.notes["posts_found_rereading_head"],
            "feed_pages": self.notes["pages"], "feed_head_pages": self.notes["head_pages"],
            "next_not_advancing": self.notes["next_not_advancing"], "comment_pages": self.notes["comment_pages"],
            "comments_without_text": self.notes["comments_without_text"],
            "comment_parents_from_lake": self.notes["comment_parents_from_lake"],
            "comment_parents_from_api": self.notes["comment_parents_from_api"],
            "comments_parent_unresolved": self.notes["comments_parent_unresolved"],
            "important_posts": len(important), "readers_capped": self.notes["readers_capped"],
            "days_rewritten_before_start": [d.isoformat() for d in sorted(written) if d < self.start],
            "identity_matched_share": round(len(actors & self.email_keys) / len(actors), 4) if actors else None,
            **self.api.stats(),
        }
        return report


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, webhook_code: str | None = None,
            client_id: str | None = None, client_secret: str | None = None, refresh_token: str | None = None,
            engine: sa.Engine | None = None) -> ExtractReport:
    """Land the Feed of `start`..`end` (UTC): the first run from `start`, later runs from the watermark
    (posts) and the per-author cursors (comments). The keyword credentials (from the source's Airflow
    connection, `connection_credentials`) override the environment variables of the options."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    api = make_api(opts, webhook_code=webhook_code, client_id=client_id, client_secret=client_secret,
                   refresh_token=refresh_token)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, api, store, start, end, opts).execute()
    finally:
        api.close()


# --- canonicalisation (pure over the landing) ------------------------------------------------------
def canonical_activities(posts: pa.Table | None, comments: pa.Table | None, views: pa.Table | None,
                         source: str) -> list[dict[str, Any]]:
    """Activities of one day: posts -> post (+ a mention per mentioned person); comments -> reply (target:
    the post's author when known, else the warehouse finds it through parent_id) and their mentions;
    readers of important posts -> view (at the post's time)."""
    base = {"source": source, "is_question": False, "is_edited": False, "is_deleted": False, "content_length": None,
            "parent_id": None, "target_key": None, "topic_ids": None}
    out: list[dict[str, Any]] = []
    for r in posts.to_pylist() if posts is not None else []:
        if not r["actor_key"]:
            continue
        thread = f"p{r['post_id']}"
        common = {**base, "occurred_at": r["created_at"], "container_id": r["container_id"], "thread_id": thread}
        out.append({**common, "event_id": thread, "actor_key": r["actor_key"], "verb": "post",
                    "content_length": r["content_length"], "is_question": bool(r["is_question"]),
                    "topic_ids": r.get("topic_ids")})
        for k in r["mention_keys"] or []:
            out.append({**common, "event_id": f"{thread}:mention:{k}", "actor_key": r["actor_key"], "verb": "mention",
                        "parent_id": thread, "target_key": k})
    for r in comments.to_pylist() if comments is not None else []:
        if not r["actor_key"]:
            continue
        parent = f"p{r['post_id']}" if r["post_id"] else f"l{r['log_id']}" if r["log_id"] else None
        common = {**base, "occurred_at": r["created_at"], "container_id": r["container_id"], "thread_id": parent}
        out.append({**common, "event_id": r["comment_id"], "actor_key": r["actor_key"], "verb": "reply",
                    "parent_id": parent if r["post_id"] else None, "target_key": r["parent_actor_key"],
                    "content_length": r["content_length"], "topic_ids": r.get("topic_ids")})
        for k in r["mention_keys"] or []:
            out.append({**common, "event_id": f"{r['comment_id']}:mention:{k}", "actor_key": r["actor_key"],
                        "verb": "mention", "parent_id": r["comment_id"], "target_key": k})
    for r in views.to_pylist() if views is not None else []:
        if r["actor_key"]:
            thread = f"p{r['post_id']}"
            out.append({**base, "event_id": f"{thread}:view:{r['actor_key']}", "occurred_at": r["created_at"],
                        "actor_key": r["actor_key"], "verb": "view", "container_id": r["container_id"],
                        "thread_id": thread, "parent_id": thread, "target_key": r["parent_actor_key"]})
    return out


def bitrix24_people(users: pa.Table) -> pd.DataFrame:
    """The source's people rows from a landed `users` snapshot (outside the HR directory)."""
    df = users.to_pandas()
    return platform_people(pd.DataFrame({"person_key": df["person_key"],
                                         "account_type": df["account_type"].fillna("member"),
                                         "is_deactivated": ~df["is_active"].fillna(True).astype(bool),
                                         "department": df["department"]}))


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    name = ctx.source.name
    parts = {s: lake.read_partition(lake.raw_dir(ctx.lake_dir, name, s), day) for s in STREAMS}
    out: dict[str, pd.DataFrame] = {}
    if any(t is not None for t in parts.values()):
        records = canonical_activities(parts["posts"], parts["comments"], parts["views"], name)
        frame = pd.DataFrame.from_records(records, columns=list(ACTIVITIES.names))
        out["activities"] = raw_activities_to_canonical(frame, name)
    groups = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "groups"), day)
    if groups is not None:
        out["containers"] = groups.to_pandas()
    users = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = bitrix24_people(users)
    return out

