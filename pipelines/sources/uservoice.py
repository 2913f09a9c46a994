"""The UserVoice source (kind "uservoice"): ideas (suggestions), their comments, supporters (votes) and
status updates through the Admin API v2, incremental by `updated_after`, with the account's users, forums
and statuses (`pipelines.sources.uservoice_api` for the transport; docs/sources/uservoice.md).

Each run lists `statuses`, `forums` and `users` whole (they are small and carry no change date the
connector relies on), then `suggestions`, `comments`, `supporters` and `status_updates` with
`updated_after` = the collection's watermark minus `overlap_s` (the first run: the start day's midnight)
and `updated_before` = the end day's next midnight. The overlap is re-read on purpose (clocks, ties,
inclusive/exclusive bounds are not documented) and deduplicated by id: a record read again replaces its
earlier row. A comment, vote or status update whose suggestion was not in this run's read has its
suggestion fetched by id (`suggestion_ids`), for the idea's author and forum (landed too: the latest
version of that idea). Watermarks (`ideas/watermark:<collection>`, the newest `updated_at` seen, or
`created_at` for status updates, which have no `updated_at`) and the first day are kept in the source's
state, committed only after the landing.

People: users are keyed through their email (`pseudonymiser.person("uservoice", id, email)`, the same
key as any other platform's account of that email), or their id when they have none; the `users`
stream (key, deactivated) is the platform's user listing (in_directory false, account type member).
Names, emails and job titles are never kept.

Canonical activities (pipelines.model): a suggestion is verb `idea` (is_idea, thread_id its own
event_id, container its forum, content_length = len(title) + len(body) with tags stripped; state
deleted or spam -> is_deleted); a comment is a `reply` (parent = thread = the idea, target = its
author); a supporter is a `vote` (actor `links.user`, target the idea's author); a status update is a
`status_change` (actor `links.user`, idea_status = the canonical status of `links.new_status`).
Event ids are `suggestion:<id>`, `comment:<id>`, `supporter:<id>`, `status_update:<id>`.

Topics (`topic_ids`, `pipelines.topics` with `ctx.settings.topics`): an idea's title and body and a
comment's body, tags stripped and links removed, are matched against the taxonomy and for `#hashtags`
while the record is in memory; only the ids are landed. A suggestion's `links.category` and
`links.labels[]` are ids (their names are in the `categories` / `labels` listings, not read), so there
are no platform tags. Rows landed before the column load with none.

Statuses are account-defined: `options.status_map` maps their names (case and spaces ignored) to one of
open / planned / in_progress / completed / declined. A status update to a status the map lacks stops the
run with `UnmappedStatusError` naming the status and the suggestion (`unmapped_status: error`, the
default: a silent guess would skew the idea-to-implementation rate), or counts as `open` with
`unmapped_status: open` (counted in the report, `unmapped_statuses`). A status update without a new
status (the status removed) is `open`.

Containers: one per forum (kind `community`, private when `is_public` is false). Categories are not
containers: a category is a subdivision of one forum and the container model has no parent, so the
idea's category id is kept on its raw row (`category_id`) and nothing else is made of it.

Streams under raw/source=<name>/: `ideas`, `comments`, `votes`, `status_changes` (by their own day of
creation), `forums` (containers snapshot at `end`), `users` (people snapshot at `end`). No text, no
names, no emails, no user ids: keys and lengths only.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Iterable
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines import lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.connectors.errors import AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.state import StateStore, open_state
from pipelines.errors import ConfigError
from pipelines.model import ACTIVITIES, IDEA_STATUSES, TS
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.uservoice_api import UserVoiceApi, api_datetime, link_id, parse_datetime
from pipelines.topics import TopicRules, as_column

PLATFORM = "uservoice"
STATE = "ideas"
DELETED_STATES = frozenset({"deleted", "spam"})
INACTIVE_USER_STATES = frozenset({"deleted", "blocked", "banned", "disabled"})  # (unverified names)
#: the classic default status names (unverified) and what they mean
DEFAULT_STATUS_MAP: dict[str, str] = {"under review": "open", "planned": "planned", "started": "in_progress",
                                      "completed": "completed", "declined": "declined"}
IdeaStatus = Literal["open", "planned", "in_progress", "completed", "declined"]
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.I)

IDEAS = pa.schema([("idea_id", pa.string()), ("container_id", pa.string()), ("category_id", pa.string()),
                   ("created_at", TS), ("actor_key", pa.string()), ("is_deleted", pa.bool_()),
                   ("content_length", pa.int32()),
                   ("topic_ids", pa.string())])  # pipelines/topics.py ids, never text (landed before it: absent)
COMMENTS = pa.schema([("comment_id", pa.string()), ("idea_id", pa.string()), ("container_id", pa.string()),
                      ("created_at", TS), ("actor_key", pa.string()), ("idea_actor_key", pa.string()),
                      ("is_deleted", pa.bool_()), ("content_length", pa.int32()),
                      ("topic_ids", pa.string())])  # pipelines/topics.py ids, never text (landed before it: absent)
VOTES = pa.schema([("vote_id", pa.string()), ("idea_id", pa.string()), ("container_id", pa.string()),
                   ("created_at", TS), ("actor_key", pa.string()), ("idea_actor_key", pa.string())])
CHANGES = pa.schema([("change_id", pa.string()), ("idea_id", pa.string()), ("container_id", pa.string()),
                     ("created_at", TS), ("actor_key", pa.string()), ("idea_actor_key", pa.string()),
                     ("idea_status", pa.string())])
STREAMS = {"ideas": IDEAS, "comments": COMMENTS, "votes": VOTES, "status_changes": CHANGES}
#: collection -> (stream, the record field of its watermark)
COLLECTIONS = {"suggestions": ("ideas", "updated_at"), "comments": ("comments", "updated_at"),
               "supporters": ("votes", "updated_at"), "status_updates": ("status_changes", "created_at")}
USERS = pa.schema([("person_key", pa.string()), ("is_deactivated", pa.bool_())])


class UnmappedStatusError(ConfigError):
    """A status update names a status that `options.status_map` does not map (and unmapped_status: error)."""


def status_key(name: str) -> str:
    return _SPACES.sub(" ", name.strip().lower())


class UserVoiceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subdomain: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$",
                                  description="the account: https://<subdomain>.uservoice.com")
    base_url: str | None = Field(None, description="overrides the URL made from subdomain (emulator, proxies)")
    client_id_env: str | None = Field(None, description="environment variable holding the API key (client id)")
    client_secret_env: str | None = Field(None, description="environment variable holding its secret")
    status_map: dict[str, IdeaStatus] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))  # type: ignore[arg-type]
    unmapped_status: Literal["error", "open"] = "error"
    per_page: int = Field(100, ge=1, le=100)
    overlap_s: float = Field(3600.0, ge=0, description="seconds re-read before each watermark")
    requests_per_s: float = Field(1.8, gt=0, description="110 requests a minute, as uservoice-to-aha")
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retry_after_s: float = Field(300.0, gt=0, description="a longer Retry-After stops the run")

    @field_validator("status_map")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, status in value.items():
            key = status_key(name)
            if not key:
                raise ValueError("status_map has an empty status name")
            if key in out and out[key] != status:
                raise ValueError(f"status_map maps {key!r} twice, to {out[key]!r} and {status!r}")
            out[key] = status
        return out

    @model_validator(mode="after")
    def _where(self) -> UserVoiceOptions:
        if self.subdomain is None and self.base_url is None:
            raise ValueError("set subdomain (https://<subdomain>.uservoice.com) or base_url")
        if (self.client_id_env is None) != (self.client_secret_env is None):
            raise ValueError("client credentials need both client_id_env and client_secret_env")
        return self

    @property
    def url(self) -> str:
        return self.base_url or f"https://{self.subdomain}.uservoice.com"


def options(ctx: SourceContext) -> UserVoiceOptions:
    return UserVoiceOptions.model_validate(ctx.source.options)


def make_api(opts: UserVoiceOptions, client_id: str | None = None, client_secret: str | None = None) -> UserVoiceApi:
    if client_id or client_secret:
        cid, secret, where = client_id or "", client_secret or "", "the client id and secret of the Airflow connection"
    elif opts.client_id_env and opts.client_secret_env:
        cid = os.environ.get(opts.client_id_env, "")
        secret = os.environ.get(opts.client_secret_env, "")
        where = f"the client credentials in ${opts.client_id_env} / ${opts.client_secret_env}"
    else:
        raise AuthError("no UserVoice client credentials: set client_id_env and client_secret_env, or pass them "
                        "from an Airflow connection (login = client id, password = secret)")
    if not cid or not secret:
        raise AuthError(f"no UserVoice client credentials: {where} is unset or empty")
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s)
    return UserVoiceApi(opts.url, cid, secret, credentials_source=where, policy=policy, timeout_s=opts.timeout_s,
                        requests_per_s=opts.requests_per_s, max_retry_after_s=opts.max_retry_after_s)


def _length(*texts: Any) -> int | None:
    parts = [_TAG.sub("", t) for t in texts if isinstance(t, str)]
    return sum(len(p) for p in parts) if parts else None


def prose(*texts: Any) -> str:
    """What the topics are matched on: the texts (title, body) with tags stripped, entities decoded and
    links removed."""
    parts = [html.unescape(_TAG.sub(" ", t)) for t in texts if isinstance(t, str)]
    return _URL.sub(" ", "\n".join(parts))


def topic_ids(rules: TopicRules | None, *texts: Any) -> str | None:
    """The `topic_ids` of an idea or a comment; None without rules or topics."""
    return as_column(rules.topics(prose(*texts))) if rules is not None else None


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A landed table in `schema`: columns added since it was landed (`topic_ids`) are null."""
    for name in schema.names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(schema.names).cast(schema)


def _created(record: dict[str, Any], what: str) -> dt.datetime:
    when = parse_datetime(record.get("created_at"))
    if when is None:
        raise ValueError(f"{what} {record.get('id')}: unparseable created_at")
    return when


class _Run:
    def __init__(self, ctx: SourceContext, opts: UserVoiceOptions, api: UserVoiceApi, store: StateStore,
                 start: dt.date, end: dt.date):
        self.ctx, self.opts, self.api, self.store, self.start, self.end = ctx, opts, api, store, start, end
        self.name = ctx.source.name
        self.emails: dict[str, str] = {}
        self.email_keys: set[str] = set()
        self.statuses: dict[str, str] = {}  # status id -> name
        self.unmapped: dict[str, int] = {}
        self.orphans = 0  # comments, votes, status updates whose suggestion the API no longer answers
        self.topics: TopicRules | None = getattr(ctx.settings, "topics", None)

    def key(self, uid: str | None) -> str | None:
        if not uid:
            return None
        email = self.emails.get(uid)
        k = self.ctx.pseudonymiser.person(PLATFORM, uid, email)
        if email and k:
            self.email_keys.add(k)
        return k

    def status_of(self, update: dict[str, Any], idea_id: str) -> str:
        sid = link_id(update, "new_status")
        if sid is None:
            return "open"  # the status was removed (unverified: never seen in a payload)
        name = self.statuses.get(sid)
        mapped = self.opts.status_map.get(status_key(name)) if name is not None else None
        if mapped is not None:
            return mapped
        shown = repr(name) if name is not None else f"id {sid} (not in the statuses listing)"
        if self.opts.unmapped_status == "open":
            self.unmapped[name or f"id {sid}"] = self.unmapped.get(name or f"id {sid}", 0) + 1
            return "open"
        raise UnmappedStatusError(
            f"source {self.name!r}: UserVoice status {shown} (status update {update.get('id')} of suggestion "
            f"{idea_id}) is not in options.status_map (known: {sorted(self.opts.status_map)}); map it to one of "
            f"{', '.join(IDEA_STATUSES)}, or set options.unmapped_status: open")

    def bounds(self, collection: str, first: str | None) -> dt.datetime:
        day0 = dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)
        mark = parse_datetime(self.store.get(STATE, f"watermark:{collection}"))
        if mark is None or (first and self.start.isoformat() < first):
            return day0
        return mark - dt.timedelta(seconds=self.opts.overlap_s)

    def execute(self) -> ExtractReport:
        first = self.store.get(STATE, "first_day")
        upper = dt.datetime(self.end.year, self.end.month, self.end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        per = {"per_page": self.opts.per_page}
        self.statuses = {str(s["id"]): str(s.get("name") or "") for s in self.api.records("statuses", per)
                         if s.get("id") is not None}
        forums = self.api.records("forums", per)
        listed = self.api.records("users", per)
        for u in listed:
            if u.get("id") is not None and isinstance(u.get("email_address"), str) and u["email_address"].strip():
                self.emails[str(u["id"])] = u["email_address"]
        users = pa.Table.from_pylist(
            [{"person_key": self.key(str(u["id"])), "is_deactivated": str(u.get("state") or "") in INACTIVE_USER_STATES}
             for u in listed if u.get("id") is not None], schema=USERS)
        read: dict[str, dict[str, dict[str, Any]]] = {}
        lowers: dict[str, dt.datetime] = {}
        marks: dict[str, str] = {}
        for collection, (_, stamp) in COLLECTIONS.items():
            lowers[collection] = lower = self.bounds(collection, first)
            got: dict[str, dict[str, Any]] = {}
            newest: dt.datetime | None = None
            for r in self.api.records(collection, {**per, "updated_after": api_datetime(lower),
                                                   "updated_before": api_datetime(upper)}):
                if r.get("id") is None:
                    continue
                got[str(r["id"])] = r  # the overlap and replays: the last copy read wins
                when = parse_datetime(r.get(stamp)) or parse_datetime(r.get("created_at"))
                if when is not None and (newest is None or when > newest):
                    newest = when
            read[collection] = got
            if newest is not None:
                marks[collection] = newest.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ideas = read["suggestions"]
        missing = sorted({sid for c in ("comments", "supporters", "status_updates") for r in read[c].values()
                          if (sid := link_id(r, "suggestion")) is not None and sid not in ideas}, key=_numeric)
        for i in range(0, len(missing), self.opts.per_page):
            chunk = missing[i:i + self.opts.per_page]
            for r in self.api.records("suggestions", {**per, "suggestion_ids": ",".join(chunk)}):
                if r.get("id") is not None:
                    ideas[str(r["id"])] = r
        rows = self.rows(read)
        written = self.land(rows)
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "forums"), self.end,
                             pa.Table.from_pandas(self.containers(forums), preserve_index=False))
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "users"), self.end, users)
        changes: dict[tuple[str, str], Any] = {}
        for collection in COLLECTIONS:
            if collection in marks:
                changes[(STATE, f"watermark:{collection}")] = marks[collection]
            elif self.store.get(STATE, f"watermark:{collection}") is None:
                changes[(STATE, f"watermark:{collection}")] = lowers[collection].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not first or self.start.isoformat() < first:
            changes[(STATE, "first_day")] = self.start.isoformat()
        self.store.commit(changes, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")
        actors = {r["actor_key"] for rs in rows.values() for r in rs if r.get("actor_key")}
        report = ExtractReport(source=self.name, days=written)
        report.rows = {**{s: len(rs) for s, rs in rows.items()}, "users": users.num_rows, "forums": len(forums)}
        report.details = {
            "watermark_from": {c: api_datetime(v) for c, v in lowers.items()},
            "watermark_to": {c: marks.get(c) for c in COLLECTIONS},
            "suggestions_fetched_by_id": len(missing),
            "skipped_without_suggestion": self.orphans,
            "idea_statuses": dict(sorted(pd.Series([r["idea_status"] for r in rows["status_changes"]],
                                                   dtype="object").value_counts().items())),
            "unmapped_statuses": dict(sorted(self.unmapped.items())),
            "days_rewritten_before_start": [d.isoformat() for d in written if d < self.start],
            "identity_matched_share": round(len(actors & self.email_keys) / len(actors), 4) if actors else None,
            **self.api.stats(),
        }
        return report

    def rows(self, read: dict[str, dict[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        ideas: dict[str, dict[str, Any]] = {}
        for sid, s in read["suggestions"].items():
            ideas[sid] = {"idea_id": sid, "container_id": link_id(s, "forum"), "category_id": link_id(s, "category"),
                          "created_at": _created(s, "suggestion"), "actor_key": self.key(link_id(s, "created_by")),
                          "is_deleted": str(s.get("state") or "") in DELETED_STATES,
                          "content_length": _length(s.get("title"), s.get("body")),
                          "topic_ids": topic_ids(self.topics, s.get("title"), s.get("body"))}
        out: dict[str, list[dict[str, Any]]] = {"ideas": list(ideas.values()), "comments": [], "votes": [],
                                                "status_changes": []}

        def parent(record: dict[str, Any]) -> dict[str, Any] | None:
            sid = link_id(record, "suggestion")
            idea = ideas.get(sid) if sid is not None else None
            self.orphans += idea is None
            return idea

        for cid, c in read["comments"].items():
            idea = parent(c)
            if idea is None:
                continue  # its suggestion is gone (not answered by id): nothing to attach it to (counted)
            out["comments"].append({"comment_id": cid, "idea_id": idea["idea_id"], "container_id": idea["container_id"],
                                    "created_at": _created(c, "comment"), "actor_key": self.key(link_id(c, "created_by")),
                                    "idea_actor_key": idea["actor_key"],
                                    "is_deleted": idea["is_deleted"] or str(c.get("state") or "") in DELETED_STATES,
                                    "content_length": _length(c.get("body")),
                                    "topic_ids": topic_ids(self.topics, c.get("body"))})
        for vid, v in read["supporters"].items():
            idea = parent(v)
            if idea is None:
                continue
            out["votes"].append({"vote_id": vid, "idea_id": idea["idea_id"], "container_id": idea["container_id"],
                                 "created_at": _created(v, "supporter"),
                                 "actor_key": self.key(link_id(v, "user") or link_id(v, "created_by")),
                                 "idea_actor_key": idea["actor_key"]})
        for uid, u in read["status_updates"].items():
            idea = parent(u)
            if idea is None:
                continue
            out["status_changes"].append({"change_id": uid, "idea_id": idea["idea_id"],
                                          "container_id": idea["container_id"],
                                          "created_at": _created(u, "status update"),
                                          "actor_key": self.key(link_id(u, "user")), "idea_actor_key": idea["actor_key"],
                                          "idea_status": self.status_of(u, idea["idea_id"])})
        return out

    def containers(self, forums: Iterable[dict[str, Any]]) -> pd.DataFrame:
        rows = [{"source": self.name, "container_id": str(f["id"]), "kind": "community",
                 "visibility": "private" if f.get("is_public") is False or f.get("is_private") is True else "public",
                 "member_count": None, "created_at": parse_datetime(f.get("created_at"))}
                for f in forums if f.get("id") is not None]
        df = pd.DataFrame(rows, columns=["source", "container_id", "kind", "visibility", "member_count",
                                         "owner_department", "created_at"])
        df["member_count"] = df["member_count"].astype("Int32")
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df

    def land(self, rows: dict[str, list[dict[str, Any]]]) -> list[dt.date]:
        """Each stream's new rows replace the rows with the same id in their day (a record's day, its
        creation, never moves); only partitions that changed are rewritten."""
        written: set[dt.date] = set()
        for stream, schema in STREAMS.items():
            base = lake.raw_dir(self.ctx.lake_dir, self.name, stream)
            by_day: dict[dt.date, list[dict[str, Any]]] = {}
            for r in rows[stream]:
                by_day.setdefault(r["created_at"].date(), []).append(r)
            id_col = schema.names[0]
            for day, new in sorted(by_day.items()):
                old = lake.read_partition(base, day)
                ids = pa.array(sorted({r[id_col] for r in new}), pa.string())
                kept = conform(old, schema).filter(pc.invert(pc.is_in(old.column(id_col), ids))) \
                    if old is not None else schema.empty_table()
                table = pa.concat_tables([kept, pa.Table.from_pylist(new, schema=schema)])
                table = table.sort_by([("created_at", "ascending"), (id_col, "ascending")])
                if old is not None and old.schema.names == schema.names and old.cast(schema).equals(table):
                    continue
                lake.write_partition(base, day, table)
                written.add(day)
        return sorted(written)


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, client_id: str | None = None,
            client_secret: str | None = None, engine: sa.Engine | None = None) -> ExtractReport:
    """Land UserVoice changes up to the end of `end` (UTC): the first run from `start`, later runs from the
    watermarks. `client_id` / `client_secret` (an Airflow connection's login / password) override the
    options' environment variables."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    api = make_api(opts, client_id, client_secret)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, opts, api, store, start, end).execute()
    finally:
        api.close()


def canonical_activities(parts: dict[str, pa.Table | None], source: str) -> list[dict[str, Any]]:
    """Activities of one day from the raw streams (module doc)."""
    base = {"source": source, "is_question": False, "is_edited": False, "is_deleted": False, "is_idea": False,
            "content_length": None, "idea_status": None, "target_key": None, "topic_ids": None}

    def rows(stream: str) -> list[dict[str, Any]]:
        table = parts.get(stream)
        return [r for r in table.to_pylist() if r["actor_key"]] if table is not None else []

    out: list[dict[str, Any]] = []
    for r in rows("ideas"):
        eid = f"suggestion:{r['idea_id']}"
        out.append({**base, "event_id": eid, "occurred_at": r["created_at"], "actor_key": r["actor_key"],
                    "verb": "idea", "container_id": r["container_id"], "thread_id": eid, "parent_id": None,
                    "content_length": r["content_length"], "is_deleted": bool(r["is_deleted"]), "is_idea": True,
                    "topic_ids": r.get("topic_ids")})
    for stream, verb, prefix, id_col in (("comments", "reply", "comment", "comment_id"),
                                         ("votes", "vote", "supporter", "vote_id"),
                                         ("status_changes", "status_change", "status_update", "change_id")):
        for r in rows(stream):
            idea = f"suggestion:{r['idea_id']}"
            row = {**base, "event_id": f"{prefix}:{r[id_col]}", "occurred_at": r["created_at"],
                   "actor_key": r["actor_key"], "verb": verb, "container_id": r["container_id"], "thread_id": idea,
                   "parent_id": idea}
            if verb == "reply":
                row.update(target_key=r["idea_actor_key"], content_length=r["content_length"],
                           is_deleted=bool(r["is_deleted"]), topic_ids=r.get("topic_ids"))
            elif verb == "vote":
                row.update(target_key=r["idea_actor_key"])
            else:
                row.update(idea_status=r["idea_status"])
            out.append(row)
    return out


def uservoice_people(users: pa.Table) -> pd.DataFrame:
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
    forums = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "forums"), day)
    if forums is not None:
        out["containers"] = forums.to_pandas()
    users = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = uservoice_people(users)
    return out
