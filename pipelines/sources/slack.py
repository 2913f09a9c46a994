"""The Slack source: Web API extraction, incremental and within rate limits, landed pseudonymised.

Streams landed under raw/source=<name>/:
  messages/date=D   one row per message of day D (top-level, replies, broadcasts once), minimised by
                    `pipelines.connectors.slack_messages` as soon as it is received: no text, no ids;
  users/, conversations/, members/   snapshots dated at the end of the extracted range. `users` is the
                    workspace's user listing (users.list): a person key per user with the account's
                    flags (bot or app, deleted, guest, Slack Connect stranger); canonicalised into the
                    source's people rows (`slack_people`: outside the directory, keyed by the email when
                    users.list gives it, so that the HR row of the same person matches). Slack profiles
                    have no department (only a free-text title, which is not kept).

Incremental logic. A run for [start, end] reads `conversations.history` once per channel over
[sweep_start, end], where sweep_start is set by the revisit schedule (option `revisit`, tiers of
`pipelines.connectors.revisit`: by default the last 7 days every run, the last 91 days once a week, the
last year every four weeks; never before the first day ever extracted). Threads whose parent is in
[start, end] are fetched with `conversations.replies`; older threads of the sweep only when their
`reply_count`/`latest_reply` differ from `etl_source_state` (late replies), so a daily run costs one
history sweep per channel plus exactly the changed threads, and a revisit run a longer sweep. Thread
state is kept as long as a tier may revisit the thread. Day partitions are merged: top-level rows of
swept channels and reply rows of re-fetched threads are replaced, everything else is kept; a partition
is rewritten only if it changed, and the days rewritten are reported so that they can be
re-canonicalised. State is committed after the partitions are fsynced. Completeness: each fetched
thread's replies are tallied against its `reply_count` (`pipelines.completeness`, report entry
`completeness`, with the tiers revisited). Limits: edits and reactions on replies of a thread that got
no new reply are not seen until a backfill of those days; a late reply is seen on the first revisit of
its thread's tier (a reply 40 days after its thread: the next weekly revisit), never when it comes after
the oldest tier.

This module must never write, log or return message text, user ids or emails: rows are minimised
and pseudonymised in memory before `lake.write_partition` is called.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from pydantic import ConfigDict, Field, field_validator

from pipelines import completeness, lake
from pipelines.canonical import platform_people, raw_activities_to_canonical
from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import ApiError, AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.revisit import RevisitOptions, RevisitTier
from pipelines.connectors.slack_api import DEFAULT_BASE_URL, SlackApi, method_limits
from pipelines.connectors.slack_messages import (
    MESSAGES_SCHEMA,
    PLATFORM,
    canonical_activities,
    day_to_ts,
    fill_parent_keys,
    minimise,
    rows_table,
    ts_day,
    ts_to_micros,
)
from pipelines.connectors.state import StateStore, open_state
from pipelines.sources import ExtractReport, SourceContext

THREADS = "threads"
HISTORY = "history"


class SlackOptions(RevisitOptions):
    model_config = ConfigDict(extra="forbid")
    base_url: str = DEFAULT_BASE_URL
    token_env: str = Field("SLACK_BOT_TOKEN", description="name of the environment variable holding the token")
    include_private: bool = Field(False, description="also private channels the bot is a member of (groups:read)")
    auto_join: bool = Field(False, description="join public channels the bot is not in (channels:join)")
    include_channels: list[str] = Field(default_factory=list, description="ids or names; empty means all")
    exclude_channels: list[str] = Field(default_factory=list, description="ids or names")
    page_size: int = Field(200, ge=1, le=999)
    strict: bool = Field(False, description="small pages and 1 history/replies request per minute")
    strict_page_size: int = Field(15, ge=1, le=999)
    strict_requests_per_minute: float = Field(1.0, gt=0)
    rate_limits_per_minute: dict[str, float] = Field(default_factory=dict, description="per-method overrides")
    rate_period_s: float = Field(60.0, gt=0, description="length of Slack's 'minute'; tests shrink it")
    revisit: list[RevisitTier] | None = Field(None, description="late-reply revisit tiers "
                                              "(pipelines.connectors.revisit); default daily 7 d, weekly 91 d, "
                                              "every 28 days 365 d")
    late_reply_horizon_days: int | None = Field(None, ge=0, le=90, description="deprecated: a single daily "
                                                "tier of this many days, nothing older revisited")
    fetch_members: bool = True
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(30.0, gt=0)

    @field_validator("rate_limits_per_minute")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v <= 0}
        if bad:
            raise ValueError(f"rate limits must be positive: {bad}")
        return value

    @property
    def history_limit(self) -> int:
        return self.strict_page_size if self.strict else self.page_size


def options(ctx: SourceContext) -> SlackOptions:
    return SlackOptions.model_validate(ctx.source.options)


def resolve_token(opts: SlackOptions, token: str | None) -> tuple[str, str]:
    """(token, where it came from). The DAG passes the password of an Airflow connection; the CLI
    relies on the environment variable named by `token_env`."""
    if token:
        return token, "the token passed by the caller (Airflow connection)"
    value = os.environ.get(opts.token_env, "")
    if not value:
        raise AuthError(f"no Slack token: the environment variable {opts.token_env} (option token_env) is "
                        "unset or empty, and no Airflow connection token was passed")
    return value, f"the token in ${opts.token_env}"


def make_budget(opts: SlackOptions) -> Budget:
    strict = opts.strict_requests_per_minute if opts.strict else None
    return Budget(limits=method_limits(opts.rate_limits_per_minute, strict_per_minute=strict),
                  period_s=opts.rate_period_s)


def make_api(opts: SlackOptions, token: str, token_source: str, budget: Budget | None = None) -> SlackApi:
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s,
                         default_retry_after_s=min(5.0, opts.rate_period_s / 12))
    return SlackApi(opts.base_url, token, budget=budget or make_budget(opts), token_source=token_source,
                    policy=policy, timeout_s=opts.timeout_s)


#: the raw `users` stream: no id, no name, no email; only the key and the account's flags
USERS_SCHEMA = pa.schema([("person_key", pa.string()), ("is_bot", pa.bool_()), ("is_deleted", pa.bool_()),
                          ("is_restricted", pa.bool_()), ("is_external", pa.bool_())])
#: Slack's own system user (Slackbot) is a bot, although users.list does not flag it `is_bot`
SLACKBOT = "USLACKBOT"


def user_flags(u: dict[str, Any]) -> dict[str, bool]:
    """The account flags of a users.list / users.json entry: bot (bots, apps, Slackbot), deleted
    (deactivated), restricted (multi- or single-channel guest), external (a Slack Connect stranger: a
    user of another organisation's workspace)."""
    return {"is_bot": bool(u.get("is_bot") or u.get("is_app_user") or u.get("id") == SLACKBOT),
            "is_deleted": bool(u.get("deleted")),
            "is_restricted": bool(u.get("is_restricted") or u.get("is_ultra_restricted")),
            "is_external": bool(u.get("is_stranger"))}


def slack_people(users: pa.Table) -> pd.DataFrame:
    """The source's people rows from a landed `users` snapshot: account type bot, external, guest or
    member (in that order of precedence), deactivated when the user is deleted. Snapshots landed before
    `is_external` existed read as not external."""
    df = users.to_pandas()
    flag = {c: (df[c].fillna(False).astype(bool) if c in df.columns else pd.Series(False, index=df.index))
            for c in USERS_SCHEMA.names[1:]}
    kind = pd.Series("member", index=df.index, dtype=object)
    kind = kind.mask(flag["is_restricted"], "guest").mask(flag["is_external"], "external").mask(flag["is_bot"], "bot")
    return platform_people(pd.DataFrame({"person_key": df["person_key"], "account_type": kind,
                                         "is_deactivated": flag["is_deleted"]}))


class UserKeys:
    """user id -> pseudonymous person key, via the email when users.list gave one, so that the same
    person matches across platforms. Clear ids and emails live only in this object, in memory."""

    def __init__(self, ctx: SourceContext):
        self._ps = ctx.pseudonymiser
        self._email: dict[str, str] = {}

    def learn(self, uid: str, email: str | None) -> None:
        if email:
            self._email[uid] = email

    def __call__(self, uid: str) -> str | None:
        return self._ps.person(PLATFORM, uid, self._email.get(uid)) if uid else None


@dataclass
class Counters:
    requests: int = 0
    replies_announced: int = 0
    replies_fetched: int = 0
    threads_fetched: int = 0
    threads_unchanged: int = 0
    threads_gone: int = 0
    channels: int = 0
    channels_joined: int = 0
    channels_skipped: list[str] = field(default_factory=list)


def _channel_selected(ch: dict[str, Any], opts: SlackOptions) -> bool:
    names = {ch.get("id"), ch.get("name")}
    if opts.include_channels and not names & set(opts.include_channels):
        return False
    return not names & set(opts.exclude_channels)


def _fsync_partition(path: Any) -> None:
    """write_partition renames; fsync file and directories so the state committed next is never ahead
    of what survives a crash."""
    for f in (path / "part-0.parquet", path, path.parent):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_top_level(row: dict[str, Any]) -> bool:
    return not row["is_reply"] or row["is_broadcast"]


class _Run:
    def __init__(self, ctx: SourceContext, opts: SlackOptions, api: SlackApi, store: StateStore,
                 start: dt.date, end: dt.date):
        self.ctx, self.opts, self.api, self.store = ctx, opts, api, store
        self.start, self.end = start, end
        self.name = ctx.source.name
        self.keys = UserKeys(ctx)
        self.n = Counters()
        self.state_changes: dict[tuple[str, str], Any] = {}
        first = store.get(HISTORY, "first_day")
        self.plan = opts.revisit_plan(start, end, dt.date.fromisoformat(first) if first else None)
        self.tally = completeness.Tally("slack reply_count")

    # --- directory -------------------------------------------------------------------------------
    def users(self) -> pa.Table:
        rows = []
        for u in self.api.items("users.list", {"limit": 200}, "members"):
            uid = u.get("id")
            if not uid:
                continue
            self.keys.learn(uid, (u.get("profile") or {}).get("email"))
            rows.append({"person_key": self.keys(uid), **user_flags(u)})
        return pa.Table.from_pylist(rows, schema=USERS_SCHEMA)

    def conversations(self) -> list[dict[str, Any]]:
        types = "public_channel,private_channel" if self.opts.include_private else "public_channel"
        chans = [c for c in self.api.items("conversations.list",
                                            {"types": types, "exclude_archived": "true", "limit": 200}, "channels")
                 if c.get("id") and _channel_selected(c, self.opts)]
        return sorted(chans, key=lambda c: c["id"])

    def members(self, channel: str) -> list[str]:
        out = []
        for uid in self.api.items("conversations.members", {"channel": channel, "limit": 200}, "members"):
            k = self.keys(str(uid))  # members are plain id strings
            if k:
                out.append(k)
        return out

    def ensure_member(self, ch: dict[str, Any]) -> bool:
        if ch.get("is_member", True):
            return True
        if self.opts.auto_join and not ch.get("is_private"):
            self.api.call("conversations.join", {"channel": ch["id"]}, post=True)
            self.n.channels_joined += 1
            return True
        self.n.channels_skipped.append(ch["id"])
        return False

    # --- messages --------------------------------------------------------------------------------
    def sweep_start(self) -> dt.date:
        """Where the history sweep starts: the oldest bound of the revisit tiers due on this run."""
        return self.plan.sweep_start

    def history(self, channel: str, sweep_start: dt.date) -> list[dict[str, Any]]:
        params = {"channel": channel, "oldest": day_to_ts(sweep_start),
                  "latest": day_to_ts(self.end + dt.timedelta(days=1)), "inclusive": "false",
                  "limit": self.opts.history_limit}
        rows = []
        for msg in self.api.items("conversations.history", params, "messages"):
            row = minimise(msg, channel, self.keys, self.ctx.settings.questions, self.ctx.settings.topics)
            if row is not None:
                rows.append(row)
        return rows

    def replies(self, channel: str, parent: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Replies of one thread up to the end of the range, or None when the thread is gone."""
        params = {"channel": channel, "ts": parent["ts"], "limit": min(self.opts.history_limit, 1000)}
        limit_us = ts_to_micros(day_to_ts(self.end + dt.timedelta(days=1)))
        fetched = []
        try:
            for msg in self.api.items("conversations.replies", params, "messages"):
                if msg.get("ts") == parent["ts"]:
                    continue  # the parent comes first in every page
                row = minimise(msg, channel, self.keys, self.ctx.settings.questions, self.ctx.settings.topics)
                if row is not None and row["is_reply"]:
                    fetched.append(row)
        except ApiError as exc:
            if exc.code == "thread_not_found":
                return None
            raise
        self.n.replies_announced += parent["reply_count"] or 0
        self.n.replies_fetched += len(fetched)
        self.n.threads_fetched += 1
        day = ts_day(parent["ts"])
        self.tally.thread(day, self.plan.tier_of(day), parent["reply_count"] or 0, len(fetched))
        fill_parent_keys(fetched, {(channel, parent["ts"]): parent["actor_key"]})
        return [r for r in fetched if ts_to_micros(r["ts"]) < limit_us]

    def thread_state(self, parent: dict[str, Any], landed: list[dict[str, Any]]) -> dict[str, Any]:
        """What the next run compares with: the parent's announced counters when everything announced
        was landed; otherwise the landed counters, so that the next run sees a difference and refetches."""
        announced = {"reply_count": parent["reply_count"] or 0, "latest_reply": parent["latest_reply"]}
        if len(landed) == announced["reply_count"]:
            return announced
        latest = max((r["ts"] for r in landed), key=ts_to_micros, default=None)
        return {"reply_count": len(landed), "latest_reply": latest}

    def execute(self) -> ExtractReport:
        report = ExtractReport(source=self.name, days=[])
        users = self.users()
        chans = self.conversations()
        sweep_start = self.sweep_start()
        known = self.store.load(THREADS)
        new_rows: list[dict[str, Any]] = []
        swept: set[str] = set()
        refetched: set[tuple[str, str]] = set()
        member_rows: list[dict[str, Any]] = []
        for ch in chans:
            cid = ch["id"]
            if not self.ensure_member(ch):
                continue
            if self.opts.fetch_members:
                member_rows += [{"container_id": cid, "person_key": k} for k in self.members(cid)]
            try:
                top = self.history(cid, sweep_start)
            except ApiError as exc:
                if exc.code in ("not_in_channel", "channel_not_found"):
                    self.n.channels_skipped.append(cid)
                    continue
                raise
            self.n.channels += 1
            swept.add(cid)
            new_rows += top
            seen_threads = set()
            for parent in top:
                if parent["is_reply"] or not parent["reply_count"]:
                    continue
                tkey = f"{cid}:{parent['ts']}"
                seen_threads.add(tkey)
                current = {"reply_count": parent["reply_count"], "latest_reply": parent["latest_reply"]}
                if ts_day(parent["ts"]) < self.start and known.get(tkey) == current:
                    # the state holds the announced counters only when all of them were landed
                    self.n.threads_unchanged += 1
                    day = ts_day(parent["ts"])
                    self.tally.unchanged(day, self.plan.tier_of(day), parent["reply_count"] or 0)
                    continue
                replies = self.replies(cid, parent)
                refetched.add((cid, parent["ts"]))
                if replies is None:
                    self.n.threads_gone += 1
                    self.state_changes[(THREADS, tkey)] = None
                    continue
                new_rows += replies
                self.state_changes[(THREADS, tkey)] = self.thread_state(parent, replies)
            # threads known from earlier runs whose parent vanished from the swept days: their replies
            # are gone too (Slack keeps a tombstone while replies remain)
            for tkey in known:
                tch, _, tts = tkey.partition(":")
                if tch == cid and tkey not in seen_threads and sweep_start <= ts_day(tts) <= self.end:
                    refetched.add((cid, tts))
                    self.n.threads_gone += 1
                    self.state_changes[(THREADS, tkey)] = None
        written = self.land_messages(new_rows, sweep_start, swept, refetched)
        report.days = sorted(written)
        self.land_snapshots(users, chans, member_rows)
        self.finish_state(known)
        report.rows = {"messages": len(new_rows), "users": users.num_rows, "conversations": len(chans),
                       "members": len(member_rows)}
        n = self.n
        report.details = {
            "sweep_start": sweep_start.isoformat(), "channels": n.channels, "channels_joined": n.channels_joined,
            "channels_skipped": len(n.channels_skipped),
            "replies_announced": n.replies_announced, "replies_fetched": n.replies_fetched,
            "threads_fetched": n.threads_fetched, "threads_unchanged": n.threads_unchanged,
            "threads_gone": n.threads_gone, "days_rewritten_before_start": [d.isoformat() for d in written
                                                                           if d < self.start],
            "http": self.api.http.stats.as_dict(), "rate": self.api.http.budget.usage(),
            "warnings": self.api.warnings[:50] + ([self.plan.warning] if self.plan.warning else []),
            "completeness": completeness.report(self.tally, self.plan),
        }
        return report

    def land_messages(self, new_rows: list[dict[str, Any]], sweep_start: dt.date, swept: set[str],
                      refetched: set[tuple[str, str]]) -> list[dt.date]:
        base = lake.raw_dir(self.ctx.lake_dir, self.name, "messages")
        by_day: dict[dt.date, dict[tuple[str, str], dict[str, Any]]] = {}
        for r in new_rows:
            by_day.setdefault(ts_day(r["ts"]), {})[(r["channel"], r["ts"])] = r  # (channel, ts) dedup
        written = []
        for day in lake.days_between(sweep_start, self.end):
            old_table = lake.read_partition(base, day)
            old = old_table.to_pylist() if old_table is not None else []
            kept = [r for r in old
                    if not (r["channel"] in swept and _is_top_level(r))
                    and not (r["is_reply"] and (r["channel"], r["thread_ts"]) in refetched)]
            merged = {(r["channel"], r["ts"]): r for r in kept}
            merged.update(by_day.get(day, {}))
            table = rows_table(list(merged.values()))
            in_range = self.start <= day <= self.end
            if old_table is not None and table.equals(old_table.cast(MESSAGES_SCHEMA)) and not in_range:
                continue
            _fsync_partition(lake.write_partition(base, day, table))
            written.append(day)
        return written

    def land_snapshots(self, users: pa.Table, chans: list[dict[str, Any]], members: list[dict[str, Any]]) -> None:
        def created(c: dict[str, Any]) -> pd.Timestamp | None:
            value = c.get("created")
            return pd.Timestamp(int(value), unit="s", tz="UTC") if value not in (None, "") else None
        conv = pd.DataFrame([{
            "source": self.name, "container_id": c["id"], "kind": "channel",
            "visibility": "private" if c.get("is_private") else "public",
            "member_count": c.get("num_members"), "owner_department": None, "created_at": created(c),
        } for c in chans], columns=["source", "container_id", "kind", "visibility", "member_count",
                                    "owner_department", "created_at"])
        conv["member_count"] = conv["member_count"].astype("Int32")
        for stream, table in (
            ("users", users),
            ("conversations", pa.Table.from_pandas(conv, preserve_index=False)),
            ("members", pa.Table.from_pylist(members, schema=pa.schema([("container_id", pa.string()),
                                                                         ("person_key", pa.string())]))),
        ):
            _fsync_partition(lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, stream), self.end, table))

    def finish_state(self, known: dict[str, Any]) -> None:
        first = self.store.get(HISTORY, "first_day")
        if not first or self.start.isoformat() < first:
            self.state_changes[(HISTORY, "first_day")] = self.start.isoformat()
        last = self.store.get(HISTORY, "last_day")
        if not last or self.end.isoformat() > last:
            self.state_changes[(HISTORY, "last_day")] = self.end.isoformat()
        # threads older than the oldest revisit tier will not be looked at again: forget them
        oldest = self.plan.oldest_kept()
        for tkey in known:
            if oldest is not None and ts_day(tkey.partition(":")[2]) < oldest \
                    and (THREADS, tkey) not in self.state_changes:
                self.state_changes[(THREADS, tkey)] = None
        self.store.commit(self.state_changes, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, token: str | None = None,
            engine: sa.Engine | None = None, budget: Budget | None = None) -> ExtractReport:
    """Land [start, end] (UTC days) from the Slack Web API. `token` comes from an Airflow connection
    in the DAG; otherwise the environment variable named by the option `token_env` is read."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    value, where = resolve_token(opts, token)
    api = make_api(opts, value, where, budget)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, opts, api, store, start, end).execute()
    finally:
        api.close()


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    """Canonical tables of `day` from the raw landing only (replayable without the API)."""
    return canonicalise_landing(ctx.lake_dir, ctx.source.name, day)


def canonicalise_landing(lake_dir: Any, name: str, day: dt.date) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    raw = lake.read_partition(lake.raw_dir(lake_dir, name, "messages"), day)
    if raw is not None:
        records = canonical_activities(raw, name)
        frame = pd.DataFrame.from_records(records, columns=_ACTIVITY_COLUMNS)
        out["activities"] = raw_activities_to_canonical(frame, name)
    containers = lake.read_partition(lake.raw_dir(lake_dir, name, "conversations"), day)
    if containers is not None:
        out["containers"] = containers.to_pandas()
    users = lake.read_partition(lake.raw_dir(lake_dir, name, "users"), day)
    if users is not None:
        out["people"] = slack_people(users)
    return out


_ACTIVITY_COLUMNS = ["source", "event_id", "occurred_at", "actor_key", "verb", "container_id", "thread_id",
                     "parent_id", "target_key", "content_length", "is_question", "is_edited", "is_deleted",
                     "topic_ids"]
