"""The Microsoft Teams source (kind "msgraph"): Graph extraction, incremental and throttled, landed pseudonymised.

Streams landed under raw/source=<name>/:
  messages/date=D   one row per channel post, channel reply and (option `include_chats`) chat message
                    created on day D, minimised by `pipelines.sources.msgraph_messages` as soon as it is
                    received: no body, no user id, no email, chat ids only as keyed hashes;
  reactions/date=X  one row per (message, reaction type, reactor) made on day X (the reaction's own
                    `createdDateTime`, never before its message): a reaction today to last week's
                    message is today's activity and leaves last week's figures alone (`land_reactions`);
  users/, containers/   snapshots dated at the end of the extracted range. The containers are the channels
                    and, with `include_chats`, every chat (kind `chat`, visibility `direct`, id `chat:<keyed
                    hash>`): the chats listed by the run and those of earlier runs (their watermarks are in
                    the state), so the validation finds every container a landed message names.

What is called, per team of `GET /teams` and channel of `GET /teams/{id}/channels`:
  1. `.../messages/delta`: the channel's change feed of root posts (new, edited, deleted, reacted to; Graph
     returns root posts only). The first run starts it with `$filter=lastModifiedDateTime gt <sweep start>`;
     the `@odata.deltaLink` of its last page is stored in `etl_source_state` and the next run starts from
     it. A link the server no longer accepts (410/400) restarts a filtered round;
  2. `.../messages?$expand=replies`, newest root first, down to the sweep start (set by the revisit
     schedule, option `revisit`, tiers of `pipelines.connectors.revisit`: by default the last 7 days every
     run, the last 91 days once a week, the last year every four weeks; `start` when earlier): the
     current state of every thread of the sweep, replies included
     (`replies@odata.nextLink` followed when a thread has more than the inlined replies). Graph has no
     channel-wide change feed for replies, so new, edited and deleted replies are found this way;
  3. `.../messages/{id}/replies` for roots that the delta round returned but that are older than the sweep.
Chats (`include_chats`, needs Chat.Read.All): chats are listed per user (`/users/{id}/chats`, app-only
permissions have no tenant-wide chat list), and each chat's messages are read with a `lastModifiedDateTime`
watermark (`$filter=lastModifiedDateTime gt W`, W stored per chat, minus a small overlap). Chats have no
`replyToId`: replies are read from `messageReference` attachments. A 403 on chats skips them (reported).

Landing is an upsert by (container, message id) into the day partition of `createdDateTime` (reactions:
of each reaction's `createdDateTime`, every earlier reaction row of a fetched message replaced): Graph keeps
deleted messages as tombstones (`deletedDateTime`), so a deletion arrives as an update and nothing ever
needs to be removed; days before the first extracted day are not landed. Days rewritten are reported, and
state is committed only after the partitions are fsynced. Completeness: each thread of the sweep is
tallied, its replies received against the root's `replies@odata.count` (roots read only through the delta
are not scored) (`pipelines.completeness`, report entry
`completeness`, with the tiers revisited). Limits: replies edited or added after their root's tier was last
revisited are seen on its next revisit, and after the oldest tier only by a backfill of those days; Graph's
delta covers the last 8 months only.

People: `users` (`GET /users`: id, mail / UPN, accountEnabled, userType, department) is landed as a person
key per user with `account_enabled`, `is_guest` (userType Guest: an Entra B2B guest) and the department
Entra holds; canonicalised into the source's people rows (outside the HR directory; the HR row of the same
email wins). Job titles and office locations are not kept.

Identity: users' emails (`mail`, else `userPrincipalName`, from `/users`) are hashed with
`Pseudonymiser.person("msgraph", id, email)`, so the same person matches Slack; `emailUser` identities use
their id, which is an email; other identities (guests, ACS, Skype) get a native-id key.

This module must never write, log or return message bodies, user ids, emails, tokens or secrets.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import ConfigDict, Field

from pipelines import completeness, lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.connectors.errors import ApiError, AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.revisit import RevisitOptions, RevisitTier
from pipelines.connectors.state import StateStore, open_state
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.msgraph_http import (
    GRAPH_BASE_URL,
    LIMITS_PER_S,
    Credentials,
    GraphBudget,
    GraphClient,
    opaque,
    thread_buckets,
)
from pipelines.sources.msgraph_messages import (
    MESSAGES_SCHEMA,
    PLATFORM,
    REACTIONS_SCHEMA,
    MessageError,
    canonical_activities,
    minimise,
    parse_time,
    reaction_rows,
    reactions_table,
    rows_table,
)

DELTA = "channel_delta"
#: marker file of the `reactions` stream: every landed message's reactions are in it (see `land_reactions`)
REACTIONS_READY = "_READY"
CHATS = "chat_watermark"
HISTORY = "history"


class GraphOptions(RevisitOptions):
    model_config = ConfigDict(extra="forbid")
    base_url: str = GRAPH_BASE_URL
    token_url: str | None = Field(None, description="default https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token")
    tenant_id_env: str = Field("MSGRAPH_TENANT_ID", description="environment variable holding the tenant id")
    client_id_env: str = Field("MSGRAPH_CLIENT_ID", description="environment variable holding the app's client id")
    client_secret_env: str = Field("MSGRAPH_CLIENT_SECRET", description="environment variable holding the secret")
    include_teams: list[str] = Field(default_factory=list, description="team ids or names; empty means all")
    exclude_teams: list[str] = Field(default_factory=list, description="team ids or names")
    include_chats: bool = Field(False, description="also 1:1 and group chats (Chat.Read.All)")
    page_size: int = Field(50, ge=1, le=50, description="$top of message lists (Graph's maximum is 50)")
    revisit: list[RevisitTier] | None = Field(None, description="late-reply revisit tiers "
                                              "(pipelines.connectors.revisit); default daily 7 d, weekly 91 d, "
                                              "every 28 days 365 d")
    late_reply_horizon_days: int | None = Field(None, ge=0, le=90, description="deprecated: a single daily "
                                                "tier of this many days, nothing older revisited")
    chat_overlap_s: int = Field(300, ge=0, description="re-read this much before a chat's watermark")
    rate_limits_per_s: dict[str, float] = Field(default_factory=dict, description="per-scope overrides")
    rate_period_s: float = Field(1.0, gt=0, description="length of Graph's 'second'; tests shrink it")
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(30.0, gt=0)



def options(ctx: SourceContext) -> GraphOptions:
    return GraphOptions.model_validate(ctx.source.options)


def resolve_credentials(opts: GraphOptions, *, tenant_id: str | None = None, client_id: str | None = None,
                        client_secret: str | None = None, access_token: str | None = None) -> Credentials:
    """Credentials from the caller (the DAG reads an Airflow connection) or from the environment variables
    named in the options. Messages name the variables, never their values."""
    if client_secret or access_token:
        where = "the credentials passed by the caller (Airflow connection)"
    else:
        where = f"${opts.client_secret_env} (with ${opts.tenant_id_env}, ${opts.client_id_env})"
    creds = Credentials(
        tenant_id=tenant_id or os.environ.get(opts.tenant_id_env, ""),
        client_id=client_id or os.environ.get(opts.client_id_env, ""),
        client_secret=client_secret or os.environ.get(opts.client_secret_env, ""),
        where=where, token_url=opts.token_url, access_token=access_token)
    if not access_token:
        missing = [env for env, v in ((opts.tenant_id_env, creds.tenant_id), (opts.client_id_env, creds.client_id),
                                      (opts.client_secret_env, creds.client_secret)) if not v]
        if missing:
            raise AuthError(f"no Graph credentials: the environment variable(s) {', '.join(missing)} are unset or "
                            "empty, and no Airflow connection credentials were passed")
    return creds


def make_budget(opts: GraphOptions) -> GraphBudget:
    return GraphBudget(limits={**LIMITS_PER_S, **opts.rate_limits_per_s}, period_s=opts.rate_period_s)


def make_client(opts: GraphOptions, creds: Credentials, budget: GraphBudget | None = None,
                transport: httpx.BaseTransport | None = None) -> GraphClient:
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s,
                         default_retry_after_s=min(5.0, opts.rate_period_s * 5))
    return GraphClient(opts.base_url, creds, budget=budget or make_budget(opts), policy=policy,
                       timeout_s=opts.timeout_s, inner_transport=transport)


#: the raw `users` stream: the key, the account's state and kind, the department Entra holds
USERS_SCHEMA = pa.schema([("person_key", pa.string()), ("account_enabled", pa.bool_()), ("is_guest", pa.bool_()),
                          ("department", pa.string())])


def graph_people(users: pa.Table) -> pd.DataFrame:
    """The source's people rows from a landed `users` snapshot (older snapshots have no department)."""
    df = users.to_pandas()
    guest = df["is_guest"].fillna(False).astype(bool) if "is_guest" in df.columns else False
    enabled = df["account_enabled"].fillna(True).astype(bool) if "account_enabled" in df.columns else True
    return platform_people(pd.DataFrame({
        "person_key": df["person_key"], "account_type": pd.Series("member", index=df.index).mask(guest, "guest"),
        "is_deactivated": ~pd.Series(enabled, index=df.index),
        "department": df["department"] if "department" in df.columns else None}))


class UserKeys:
    """Graph identity -> pseudonymous person key, via the directory's email when known. Clear ids and emails
    live only in this object, in memory."""

    def __init__(self, ctx: SourceContext):
        self._ps = ctx.pseudonymiser
        self._email: dict[str, str] = {}

    def learn(self, uid: str, email: str | None) -> None:
        if email:
            self._email[uid] = email

    def uid(self, uid: str) -> str | None:
        return self._ps.person(PLATFORM, uid, self._email.get(uid)) if uid else None

    def __call__(self, identity: Mapping[str, Any]) -> str | None:
        uid = identity.get("id")
        if not isinstance(uid, str) or not uid:
            return None
        if identity.get("userIdentityType") == "emailUser" and "@" in uid:
            return self._ps.email(uid)
        return self.uid(uid)


@dataclass
class Counters:
    teams: int = 0
    channels: int = 0
    chats: int = 0
    chats_forbidden: bool = False
    delta_pages: int = 0
    delta_roots: int = 0
    delta_restarts: int = 0
    swept_roots: int = 0
    replies: int = 0
    threads_fetched: int = 0
    chat_messages: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)


def _selected(item: Mapping[str, Any], include: list[str], exclude: list[str]) -> bool:
    names = {item.get("id"), item.get("displayName")}
    if include and not names & set(include):
        return False
    return not names & set(exclude)


def _fsync_partition(path: Any) -> None:
    """write_partition renames; fsync file and directories so the state committed next is never ahead of
    what survives a crash."""
    for f in (path / "part-0.parquet", path, path.parent):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _count(value: Any) -> int | None:
    """An `@odata.count` as announced, or None when absent or not a count."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _iso(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


class _Run:
    def __init__(self, ctx: SourceContext, opts: GraphOptions, api: GraphClient, store: StateStore,
                 start: dt.date, end: dt.date):
        self.ctx, self.opts, self.api, self.store = ctx, opts, api, store
        self.start, self.end = start, end
        self.name = ctx.source.name
        self.keys = UserKeys(ctx)
        self.n = Counters()
        self.state: dict[tuple[str, str], Any] = {}
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.chat_created: dict[str, Any] = {}  # chat container id -> createdDateTime, of this run's chats
        first = store.get(HISTORY, "first_day")
        self.first_day = min(start, dt.date.fromisoformat(first)) if first else start
        self.plan = opts.revisit_plan(start, end, dt.date.fromisoformat(first) if first else None)
        self.sweep_start = self.plan.sweep_start
        self.tally = completeness.Tally("graph replies@odata.count")

    # --- rows ------------------------------------------------------------------------------------
    def keep(self, msg: Any, container_id: str, kind: str, parent_actor: str | None = None) -> dict[str, Any] | None:
        try:
            row = minimise(msg, container_id, kind, self.keys, parent_actor, self.ctx.settings.questions,
                           self.ctx.settings.topics)
        except MessageError as exc:
            # counted by reason, never stored: the payload may hold personal data
            reason = str(exc).split(" ", 1)[0]
            self.n.rejected[reason] = self.n.rejected.get(reason, 0) + 1
            return None
        self.rows[(container_id, row["message_id"])] = row
        self.n.by_kind[row["kind"]] = self.n.by_kind.get(row["kind"], 0) + 1
        return row

    # --- directory -------------------------------------------------------------------------------
    def users(self) -> pa.Table:
        url = self.api.url("users", {"$select": "id,userPrincipalName,mail,accountEnabled,userType,department",
                                     "$top": 999})
        rows = []
        self.user_ids: list[str] = []
        for u in self.api.items(url, endpoint="users", buckets=("directory",)):
            uid = u.get("id")
            if not isinstance(uid, str) or not uid:
                continue
            self.user_ids.append(uid)
            self.keys.learn(uid, u.get("mail") or u.get("userPrincipalName"))
            dept = u.get("department")
            rows.append({"person_key": self.keys.uid(uid), "account_enabled": u.get("accountEnabled") is not False,
                         "is_guest": u.get("userType") == "Guest",
                         "department": dept.strip() or None if isinstance(dept, str) else None})
        return pa.Table.from_pylist(rows, schema=USERS_SCHEMA)

    def teams(self) -> list[dict[str, Any]]:
        teams = [t for t in self.api.items(self.api.url("teams"), endpoint="teams", buckets=("tenant",))
                 if t.get("id") and _selected(t, self.opts.include_teams, self.opts.exclude_teams)]
        return sorted(teams, key=lambda t: t["id"])

    def channels(self, team: Mapping[str, Any]) -> list[dict[str, Any]]:
        tid = team["id"]
        url = self.api.url(f"teams/{tid}/channels")
        return sorted((c for c in self.api.items(url, endpoint="channels",
                                                 buckets=("channels_list", f"team@{opaque(tid)}")) if c.get("id")),
                      key=lambda c: c["id"])

    # --- channels --------------------------------------------------------------------------------
    def delta(self, tid: str, cid: str) -> list[dict[str, Any]]:
        """Root posts changed since the stored deltaLink (or since the sweep start on the first run)."""
        skey = f"{opaque(tid)}:{opaque(cid)}"
        base = f"teams/{tid}/channels/{cid}/messages/delta"
        initial = self.api.url(base, {"$top": self.opts.page_size,
                                      "$filter": f"lastModifiedDateTime gt {_iso(self.sweep_start)}"})
        link = self.store.get(DELTA, skey) or initial
        buckets = thread_buckets(tid, cid)
        for attempt in (1, 2):
            roots: list[dict[str, Any]] = []
            try:
                for body in self.api.pages(link, endpoint="channel-delta", buckets=buckets):
                    self.n.delta_pages += 1
                    roots += [m for m in body["value"] if isinstance(m, dict)]
                    if body.get("@odata.deltaLink"):
                        self.state[(DELTA, skey)] = body["@odata.deltaLink"]
            except ApiError as exc:
                # 410 Gone / 400: the sync state expired or is unknown; restart a filtered round once
                if attempt == 1 and link != initial and exc.code in ("http_410", "http_400"):
                    self.n.delta_restarts += 1
                    link = initial
                    continue
                raise
            self.n.delta_roots += len(roots)
            return roots
        return []

    def replies(self, tid: str, cid: str, root_id: str, first_url: str | None = None) -> list[dict[str, Any]]:
        url = first_url or self.api.url(f"teams/{tid}/channels/{cid}/messages/{root_id}/replies",
                                        {"$top": self.opts.page_size})
        return [m for m in self.api.items(url, endpoint="channel-replies", buckets=thread_buckets(tid, cid))
                if isinstance(m, dict)]

    def tally_thread(self, root: Mapping[str, Any], announced: int | None, received: int) -> None:
        try:
            day = parse_time(root.get("createdDateTime"), "createdDateTime").date()
        except MessageError:
            return
        self.tally.thread(day, self.plan.tier_of(day), announced, received)

    def sweep(self, tid: str, cid: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """(root, replies) of every root created since the sweep start, newest first."""
        url = self.api.url(f"teams/{tid}/channels/{cid}/messages", {"$top": self.opts.page_size,
                                                                     "$expand": "replies"})
        limit = dt.datetime(self.sweep_start.year, self.sweep_start.month, self.sweep_start.day, tzinfo=dt.UTC)
        out = []
        for body in self.api.pages(url, endpoint="channel-messages", buckets=thread_buckets(tid, cid)):
            older = 0
            for root in body["value"]:
                try:
                    created = parse_time(root.get("createdDateTime"), "createdDateTime")
                except MessageError:
                    self.keep(root, cid, "channel")  # counted as rejected
                    continue
                if created < limit:
                    older += 1
                    continue
                replies = [r for r in root.get("replies") or [] if isinstance(r, dict)]
                more = root.get("replies@odata.nextLink")
                if isinstance(more, str) and more:
                    seen = {r.get("id") for r in replies}
                    replies += [r for r in self.replies(tid, cid, str(root.get("id")), more) if r.get("id") not in seen]
                self.tally_thread(root, _count(root.get("replies@odata.count")), len(replies))
                out.append((root, replies))
            if older and older == len(body["value"]):
                break  # newest first: every later page is older still
        return out

    def channel(self, tid: str, cid: str) -> None:
        changed = self.delta(tid, cid)
        swept = self.sweep(tid, cid)
        self.n.swept_roots += len(swept)
        swept_ids = {str(root.get("id")) for root, _ in swept}
        first = dt.datetime(self.first_day.year, self.first_day.month, self.first_day.day, tzinfo=dt.UTC)
        threads: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for root in changed:
            if str(root.get("id")) in swept_ids:
                continue  # the sweep read it later, with its replies
            try:
                if parse_time(root.get("createdDateTime"), "createdDateTime") < first:
                    continue  # threads of roots before the first extracted day are never landed
            except MessageError:
                self.keep(root, cid, "channel")  # counted as rejected
                continue
            # not scored: an old root comes back only when it changes, so a score over such roots would
            # depend on which run saw the change (a rerun after a kill that committed the deltaLink would not)
            threads.append((root, self.replies(tid, cid, str(root.get("id")))))
            self.n.threads_fetched += 1
        for root, replies in threads + swept:
            row = self.keep(root, cid, "channel")
            parent_actor = row["actor_key"] if row is not None and row["kind"] == "person" else None
            for reply in replies:
                if self.keep(reply, cid, "channel", parent_actor) is not None:
                    self.n.replies += 1

    # --- chats -----------------------------------------------------------------------------------
    def chats(self) -> list[str]:
        found: dict[str, Any] = {}
        for uid in self.user_ids:
            url = self.api.url(f"users/{uid}/chats", {"$top": 50})
            try:
                for chat in self.api.items(url, endpoint="user-chats", buckets=("tenant",)):
                    if chat.get("id"):
                        found[str(chat["id"])] = chat.get("createdDateTime")
            except AuthError as exc:
                if exc.status != 403:
                    raise
                self.n.chats_forbidden = True  # Chat.Read.All not granted: chats are optional
                return []
        self.chat_created = {self.chat_key(cid): created for cid, created in found.items()}
        return sorted(found)

    def chat_key(self, chat_id: str) -> str:
        """The container id of a chat: a keyed hash (a chat id names its members' conversation)."""
        return "chat:" + self.ctx.pseudonymiser.key_for("msgraph-chat:" + chat_id)

    def chat_containers(self) -> list[dict[str, Any]]:
        """A containers row per chat, so that every container an activity names is listed (the validation
        checks activities against the snapshot): the chats listed by this run, and the chats of earlier
        runs (their watermarks are in the state) whose messages are still in the lake."""
        keys = {k: None for k in (f"chat:{skey}" for skey in self.store.load(CHATS))}
        keys.update(self.chat_created)
        return [{"source": self.name, "container_id": k, "kind": "chat", "visibility": "direct",
                 "member_count": None, "owner_department": None, "created_at": created}
                for k, created in sorted(keys.items())]

    def chat(self, chat_id: str) -> None:
        hashed = self.chat_key(chat_id)
        skey = hashed.removeprefix("chat:")
        stored = self.store.get(CHATS, skey)
        since = (parse_time(stored, "watermark") - dt.timedelta(seconds=self.opts.chat_overlap_s)) if stored else \
            dt.datetime(self.sweep_start.year, self.sweep_start.month, self.sweep_start.day, tzinfo=dt.UTC)
        url = self.api.url(f"chats/{chat_id}/messages", {
            "$top": self.opts.page_size, "$orderby": "lastModifiedDateTime desc",
            "$filter": f"lastModifiedDateTime gt {since.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"})
        newest = stored
        for msg in self.api.items(url, endpoint="chat-messages", buckets=thread_buckets(None, chat_id)):
            row = self.keep(msg, hashed, "chat")
            if row is None:
                continue
            self.n.chat_messages += 1
            mod = row["last_modified_at"] or row["created_at"]
            stamp = mod.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if newest is None or parse_time(newest, "watermark") < mod:
                newest = stamp
        if newest and newest != stored:
            self.state[(CHATS, skey)] = newest
        self.n.chats += 1

    # --- run -------------------------------------------------------------------------------------
    def execute(self) -> ExtractReport:
        users = self.users()
        containers = []
        for team in self.teams():
            self.n.teams += 1
            tid = team["id"]
            for ch in self.channels(team):
                self.n.channels += 1
                self.channel(tid, ch["id"])
                private = ch.get("membershipType") == "private" or team.get("visibility") == "private"
                containers.append({"source": self.name, "container_id": ch["id"], "kind": "channel",
                                   "visibility": "private" if private else "public", "member_count": None,
                                   "owner_department": None, "created_at": ch.get("createdDateTime")})
        if self.opts.include_chats:
            for chat_id in self.chats():
                self.chat(chat_id)
        containers += self.chat_containers()
        written = self.land()
        self.land_snapshots(users, containers)
        self.finish_state()
        n = self.n
        report = ExtractReport(source=self.name, days=sorted(written))
        report.rows = {"messages": len(self.rows), "users": users.num_rows, "containers": len(containers)}
        report.details = {
            "sweep_start": self.sweep_start.isoformat(), "teams": n.teams, "channels": n.channels,
            "chats": n.chats, "chats_forbidden": n.chats_forbidden, "delta_pages": n.delta_pages,
            "delta_roots": n.delta_roots, "delta_restarts": n.delta_restarts, "swept_roots": n.swept_roots,
            "replies": n.replies, "threads_fetched": n.threads_fetched, "chat_messages": n.chat_messages,
            "by_kind": dict(n.by_kind), "rejected": dict(n.rejected), "token_refreshes": self.api.refreshes,
            "days_rewritten_before_start": [d.isoformat() for d in written if d < self.start],
            # reactions made after the interval (a past day extracted later): published by the run of their day
            "reaction_days_after_end": [d.isoformat() for d in written if d > self.end],
            "http": self.api.http.stats.as_dict(), "rate": self.api.budget.usage_by_category(),
            "warnings": [self.plan.warning] if self.plan.warning else [],
            "completeness": completeness.report(self.tally, self.plan),
        }
        return report

    def land(self) -> list[dt.date]:
        """Upsert the fetched messages into their creation days and their reactions into the days they were
        made (`land_reactions`, first: see there); returns the days written, of both streams."""
        base = lake.raw_dir(self.ctx.lake_dir, self.name, "messages")
        by_day: dict[dt.date, dict[tuple[str, str], dict[str, Any]]] = {}
        for k, r in self.rows.items():
            day = r["created_at"].date()
            if day >= self.first_day:  # before the first extracted day nothing is kept (no partial days)
                by_day.setdefault(day, {})[k] = r
        days = set(by_day) | set(lake.days_between(self.start, self.end))
        written = set(self.land_reactions(by_day))
        for day in sorted(days):
            old_table = lake.read_partition(base, day)
            merged = {(r["container_id"], r["message_id"]): r for r in (old_table.to_pylist() if old_table else [])}
            merged.update(by_day.get(day, {}))
            table = rows_table(list(merged.values()))
            in_range = self.start <= day <= self.end
            if old_table is not None and not in_range and table.equals(old_table.cast(MESSAGES_SCHEMA)):
                continue
            _fsync_partition(lake.write_partition(base, day, table))
            written.add(day)
        return sorted(written)

    def land_reactions(self, by_day: Mapping[dt.date, Mapping[tuple[str, str], dict[str, Any]]]) -> list[dt.date]:
        """The `reactions` stream: each reaction in the partition of the day it was made. A fetched message
        replaces all its earlier reaction rows, in every day its landed row (the previous version) or its
        new row names, so a removed reaction goes and a re-made one moves. Written *before* the messages:
        a kill in between leaves the old message rows, whose reaction days the rerun reads again (the
        other order would lose the days of reactions removed meanwhile). A lake landed before this stream
        existed gets it derived once from every landed message, then the marker `REACTIONS_READY` says
        so (`canonicalise` reads reactions from the stream only once it is there, never from both)."""
        base = lake.raw_dir(self.ctx.lake_dir, self.name, "reactions")
        messages = lake.raw_dir(self.ctx.lake_dir, self.name, "messages")
        old: dict[tuple[str, str], dict[str, Any]] = {}
        new: dict[tuple[str, str], dict[str, Any]] = {k: r for rows in by_day.values() for k, r in rows.items()}
        ready = base / REACTIONS_READY
        legacy_days: list[dt.date] = []
        if not ready.exists():
            for day in lake.partition_days(messages):
                table = lake.read_partition(messages, day)
                rows = table.to_pylist() if table is not None else []
                for r in rows:
                    new.setdefault((r["container_id"], r["message_id"]), r)
                if any(reaction_rows(r) for r in rows):
                    legacy_days.append(day)
            # the days whose canonical activities still hold reactions dated at the message are staged again
            lake.pending(self.ctx.lake_dir, self.name, "raw").add(legacy_days)
        for day, fetched in by_day.items():  # the landed version of each fetched message (one day at a time)
            table = lake.read_partition(messages, day)
            for r in table.to_pylist() if table is not None else []:
                k = (r["container_id"], r["message_id"])
                if k in fetched:
                    old[k] = r
        rows_by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for r in new.values():
            for x in reaction_rows(r):
                rows_by_day.setdefault(x["reacted_at"].date(), []).append(x)
        affected = set(rows_by_day) | {x["reacted_at"].date() for r in old.values() for x in reaction_rows(r)}
        keys = pa.array(sorted(f"{c}\x1f{m}" for c, m in new))
        written = []
        for day in sorted(affected):
            old_table = lake.read_partition(base, day)
            kept = REACTIONS_SCHEMA.empty_table()
            if old_table is not None:
                old_table = old_table.cast(REACTIONS_SCHEMA)
                ids = pc.binary_join_element_wise(old_table.column("container_id"), old_table.column("message_id"),
                                                  "\x1f")
                kept = old_table.filter(pc.invert(pc.is_in(ids, keys)))
            table = reactions_table(kept.to_pylist() + rows_by_day.get(day, []))
            if old_table is not None and table.equals(old_table):
                continue
            if old_table is None and table.num_rows == 0:
                continue
            _fsync_partition(lake.write_partition(base, day, table))
            written.append(day)
        if not ready.exists():
            base.mkdir(parents=True, exist_ok=True)
            ready.write_text("the reactions of every landed message are in this stream\n")
            for f in (ready, base):
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        return sorted(set(written) | set(legacy_days))

    def land_snapshots(self, users: pa.Table, containers: list[dict[str, Any]]) -> None:
        conv = pd.DataFrame(containers, columns=["source", "container_id", "kind", "visibility", "member_count",
                                                 "owner_department", "created_at"])
        conv["member_count"] = conv["member_count"].astype("Int32")
        conv["created_at"] = pd.to_datetime(conv["created_at"], utc=True, errors="coerce", format="ISO8601")
        for stream, table in (("users", users), ("containers", pa.Table.from_pandas(conv, preserve_index=False))):
            _fsync_partition(lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, stream), self.end, table))

    def finish_state(self) -> None:
        self.state[(HISTORY, "first_day")] = self.first_day.isoformat()
        last = self.store.get(HISTORY, "last_day")
        if not last or self.end.isoformat() > last:
            self.state[(HISTORY, "last_day")] = self.end.isoformat()
        self.store.commit(self.state, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, tenant_id: str | None = None,
            client_id: str | None = None, client_secret: str | None = None, access_token: str | None = None,
            engine: sa.Engine | None = None, budget: GraphBudget | None = None,
            transport: httpx.BaseTransport | None = None) -> ExtractReport:
    """Land [start, end] (UTC days) from Microsoft Graph. In the DAG the credentials come from an Airflow
    connection (login = client id, password = secret, extra tenant id); otherwise from the environment
    variables named by the options."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    creds = resolve_credentials(opts, tenant_id=tenant_id, client_id=client_id, client_secret=client_secret,
                                access_token=access_token)
    api = make_client(opts, creds, budget, transport)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, opts, api, store, start, end).execute()
    finally:
        api.close()


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    """Canonical tables of `day` from the raw landing only (replayable without the API)."""
    return canonicalise_landing(ctx.lake_dir, ctx.source.name, day)


_ACTIVITY_COLUMNS = ["source", "event_id", "occurred_at", "actor_key", "verb", "container_id", "thread_id",
                     "parent_id", "target_key", "content_length", "is_question", "is_edited", "is_deleted",
                     "topic_ids"]


def canonicalise_landing(lake_dir: Any, name: str, day: dt.date) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    raw = lake.read_partition(lake.raw_dir(lake_dir, name, "messages"), day)
    reactions_dir = lake.raw_dir(lake_dir, name, "reactions")
    legacy = not (reactions_dir / REACTIONS_READY).exists()
    reactions = None if legacy else lake.read_partition(reactions_dir, day)
    if raw is not None or reactions is not None:
        records = canonical_activities(raw, name, reactions, legacy=legacy)
        frame = pd.DataFrame.from_records(records, columns=_ACTIVITY_COLUMNS)
        out["activities"] = raw_activities_to_canonical(frame, name)
    containers = lake.read_partition(lake.raw_dir(lake_dir, name, "containers"), day)
    if containers is not None:
        out["containers"] = containers.to_pandas()
    users = lake.read_partition(lake.raw_dir(lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = graph_people(users)
    return out
