"""The Viva Engage (Yammer) REST source (kind "yammer"): the messages API, for small networks.

For large networks use the Data Export (`pipelines.sources.yammer_export`): the messages API gives 20
messages a request at 10 requests per 30 s, about 24,000 messages an hour.

Streams landed under raw/source=<name>/ (`pipelines.sources.yammer_messages` describes the row):
  messages/date=D   every message created on day D, minimised and pseudonymised as soon as received;
  groups/date=END   the containers snapshot (communities, All Company, private conversations);
  users/date=END    the network's users (`users.json`): key, department, deactivated (state not active).

Incremental logic. Yammer has no "changed since" feed: likes, best answers and deletions change old
messages silently (a late reply is a new message, in the feed whatever its thread's age). Each run
therefore walks the All feed (`messages.json`, newest first, `older_than` = the smallest id seen) back to
`sweep_start`, set by the revisit schedule (option `revisit`, tiers of `pipelines.connectors.revisit`: by
default the last 7 days every run, the last 91 days once a week, the last year every four weeks; never
before the first day ever extracted, and never after `start`), and replaces every day partition of
[sweep_start, end] with what it read: a swept day is always complete and current. Messages newer than
`end` (the run is for a past interval) are skipped. Completeness: each thread started inside the sweep is
tallied, its messages read against its reference's `stats.updates` (`pipelines.completeness`, report
entry `completeness`, with the tiers revisited). Limits: a like or best answer on a message older than
the oldest tier is not seen until a backfill of its day; one on an older message of a tier is seen on the
tier's next revisit.

Identity: user ids are keyed through the email of `users.json` (`pseudonymiser.person("yammer", id,
email)`), so the same person matches other platforms. Thread starters and replied-to messages are
resolved from the page, its `references` (users, threads, replied-to messages), the run's other
messages, and as a last resort `messages/<id>.json`. The best answer is read from the thread reference
field `best_reply_id` (unverified name: the public docs do not show how the best answer of a question
is exposed; check against a real network before relying on `answer_accepted` from this source).

Topics (`topic_ids`, `pipelines.sources.yammer_messages`): the prose `body.plain` through the configured
taxonomy (`topics:` of the settings), and the message's Viva Engage topics by name: the tag objects of
`body.rich`, the `tag` references of its `[[tag:ID]]` tokens, and for a thread starter the `topic`
references of its thread reference's `topics[]` (the shape of the client models: `{"type": "topic", "id":
..., "name": ...}`; no verbatim envelope with references was found). The names stay in memory; only ids land.

This module must never write, log or return message text, user ids or emails.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from pydantic import ConfigDict, Field

from pipelines import completeness, lake
from pipelines.connectors.errors import AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.revisit import RevisitOptions, RevisitTier
from pipelines.connectors.state import StateStore, open_state
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.yammer_api import DEFAULT_BASE_URL, YammerApi
from pipelines.sources.yammer_messages import (
    PLATFORM,
    TAG_TOKEN,
    USER_TOKEN,
    USERS_SCHEMA,
    canonicalise_landing,
    containers_frame,
    land_days,
    native_id,
    parse_time,
    rich_tags,
    row,
    topic_column,
    user_row,
)

STATE = "messages"


class YammerOptions(RevisitOptions):
    model_config = ConfigDict(extra="forbid")
    horizon_option: ClassVar[str] = "late_horizon_days"
    base_url: str = DEFAULT_BASE_URL
    token_env: str = Field("YAMMER_TOKEN", description="name of the environment variable holding the token")
    revisit: list[RevisitTier] | None = Field(None, description="revisit tiers for late likes, best answers "
                                              "and deletions (pipelines.connectors.revisit); default daily 7 d, "
                                              "weekly 91 d, every 28 days 365 d")
    late_horizon_days: int | None = Field(None, ge=0, le=90, description="deprecated: a single daily tier of "
                                          "this many days, nothing older revisited")
    rate_period_s: float = Field(10.0, gt=0, description="the docs' 10-second window; tests shrink it")
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(30.0, gt=0)



def options(ctx: SourceContext) -> YammerOptions:
    return YammerOptions.model_validate(ctx.source.options)


def resolve_token(token_env: str, token: str | None) -> tuple[str, str]:
    if token:
        return token, "the token passed by the caller (Airflow connection)"
    value = os.environ.get(token_env, "")
    if not value:
        raise AuthError(f"no Viva Engage token: the environment variable {token_env} (option token_env) is "
                        "unset or empty, and no Airflow connection token was passed")
    return value, f"the token in ${token_env}"


def make_api(opts: YammerOptions, token: str, token_source: str) -> YammerApi:
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s,
                         default_retry_after_s=min(5.0, opts.rate_period_s / 2))
    return YammerApi(opts.base_url, token, token_source=token_source, period_s=opts.rate_period_s,
                     policy=policy, timeout_s=opts.timeout_s)


class UserKeys:
    """Yammer user id -> person key, through the email when the directory gave one. Clear ids and
    emails live only in this object, in memory; `email_keyed` counts what can match other platforms."""

    def __init__(self, ctx: SourceContext):
        self._ps = ctx.pseudonymiser
        self._email: dict[str, str] = {}
        self.email_keys: set[str] = set()

    def learn(self, uid: str, email: str | None) -> None:
        if email:
            self._email[uid] = email

    def __call__(self, uid: Any) -> str | None:
        native = native_id(uid)
        if native is None:
            return None
        email = self._email.get(native)
        key = self._ps.person(PLATFORM, native, email)
        if email and key:
            self.email_keys.add(key)
        return key


@dataclass
class _Msg:
    """What the run keeps of a message until its row is built: ids and pointers, never text."""

    id: str
    sender: str | None


class _Run:
    def __init__(self, ctx: SourceContext, opts: YammerOptions, api: YammerApi, store: StateStore,
                 start: dt.date, end: dt.date):
        self.ctx, self.opts, self.api, self.store = ctx, opts, api, store
        self.start, self.end = start, end
        self.name = ctx.source.name
        self.keys = UserKeys(ctx)
        self.senders: dict[str, str | None] = {}  # message id -> sender id (clear, in memory only)
        self.lookups = 0
        first = store.get(STATE, "first_day")
        self.plan = opts.revisit_plan(start, end, dt.date.fromisoformat(first) if first else None)
        self.tally = completeness.Tally("yammer thread stats.updates")
        self.thread_seen: dict[str, int] = {}  # thread id -> its messages read in the feed (any day)
        self.starters: dict[str, dt.date] = {}  # thread id -> day of its starter, for starters in the sweep
        self.ref_names: dict[tuple[str, str], str] = {}  # (tag | topic, id) -> name (in memory only)

    def sweep_start(self) -> dt.date:
        """Where the feed walk stops: the oldest bound of the revisit tiers due on this run."""
        return self.plan.sweep_start

    def sender_of(self, message_id: str | None) -> str | None:
        if message_id is None:
            return None
        if message_id not in self.senders:
            self.lookups += 1
            found = self.api.message(message_id)
            self.senders[message_id] = native_id(found.get("sender_id")) if found else None
        return self.senders[message_id]

    def read_feed(self, sweep_start: dt.date) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Messages created in [sweep_start, end] and the thread references seen with them."""
        lo = dt.datetime(sweep_start.year, sweep_start.month, sweep_start.day, tzinfo=dt.UTC)
        hi = dt.datetime(self.end.year, self.end.month, self.end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        kept: list[dict[str, Any]] = []
        threads: dict[str, dict[str, Any]] = {}
        for page in self.api.feed({"threaded": "false"}):
            for ref in page.get("references") or []:
                if not isinstance(ref, dict) or ref.get("id") is None:
                    continue
                rid = native_id(ref["id"])
                if rid is None:
                    continue
                if ref.get("type") == "thread":
                    threads[rid] = ref
                elif ref.get("type") == "message":
                    self.senders.setdefault(rid, native_id(ref.get("sender_id")))
                else:
                    self.learn_name(rid, ref)
            oldest: dt.datetime | None = None
            for msg in page.get("messages") or []:
                created = parse_time(msg.get("created_at"))
                mid = native_id(msg.get("id"))
                if created is None or mid is None:
                    continue
                self.senders[mid] = native_id(msg.get("sender_id"))
                oldest = created if oldest is None else min(oldest, created)
                if created >= lo:
                    tid = native_id(msg.get("thread_id")) or mid
                    self.thread_seen[tid] = self.thread_seen.get(tid, 0) + 1
                    if tid == mid:
                        self.starters[tid] = created.date()
                if lo <= created < hi:
                    kept.append(msg)
            if oldest is not None and oldest < lo:
                break  # ids grow with time: everything further back is older still
        return kept, threads

    def learn_name(self, rid: str, ref: dict[str, Any]) -> None:
        """The name of a `tag` or `topic` reference (what a `[[tag:ID]]` token or a `topics[]` id means)."""
        name = ref.get("name") or ref.get("normalized_name")
        if ref.get("type") in ("tag", "topic") and isinstance(name, str) and name.strip():
            self.ref_names[(str(ref["type"]), rid)] = name

    def tags_of(self, msg: dict[str, Any], body: dict[str, Any], thread_ref: dict[str, Any] | None) -> list[str]:
        """The Viva Engage topic names of a message (module doc): its `body.rich` tag objects, its
        `[[tag:ID]]` tokens' references, its own `topics[]` and, for a starter, its thread's."""
        names = rich_tags(body.get("rich"))
        names += [n for n in (self.ref_names.get(("tag", t)) for t in TAG_TOKEN.findall(str(body.get("parsed") or "")))
                  if n]
        listed = [*(msg.get("topics") or []), *((thread_ref or {}).get("topics") or [])]
        for t in listed:
            if not isinstance(t, dict):
                continue
            name = t.get("name")
            tid = native_id(t.get("id"))
            if not isinstance(name, str) and tid is not None:
                name = self.ref_names.get((str(t.get("type") or "topic"), tid)) or self.ref_names.get(("topic", tid))
            if isinstance(name, str) and name.strip():
                names.append(name)
        return names

    def to_row(self, msg: dict[str, Any], threads: dict[str, dict[str, Any]]) -> dict[str, Any]:
        mid = native_id(msg["id"]) or ""
        thread = native_id(msg.get("thread_id")) or mid
        parent = native_id(msg.get("replied_to_id"))
        sender = native_id(msg.get("sender_id"))
        person = (msg.get("message_type") != "system" and not msg.get("system_message")
                  and msg.get("sender_type", "user") == "user" and sender is not None)
        body: dict[str, Any] = msg["body"] if isinstance(msg.get("body"), dict) else {}
        plain = str(body.get("plain") or "")
        mentioned = [*(msg.get("notified_user_ids") or []), *USER_TOKEN.findall(str(body.get("parsed") or ""))]
        likes = (msg.get("liked_by") or {}).get("names") or []
        ref = threads.get(thread) or {}
        best = native_id(ref.get("best_reply_id"))
        is_best = best is not None and best == mid and parent is not None
        starter_key = None
        if is_best:
            starter = native_id(ref.get("thread_starter_id")) or thread
            starter_key = self.keys(self.sender_of(starter))
        created = parse_time(msg.get("created_at"))
        assert created is not None  # filtered in read_feed
        topic_ids = None
        rules = self.ctx.settings.topics
        if person:  # the thread's topics go to its starter; the warehouse gives them to the replies
            topic_ids = topic_column(rules, plain, self.tags_of(msg, body, ref if mid == thread else None))
        return row(message_id=mid, thread_id=thread, replied_to_id=parent, group_id=native_id(msg.get("group_id")),
                   private=bool(msg.get("direct_message")), created_at=created, person=person,
                   actor_key=self.keys(sender), parent_actor_key=self.keys(self.sender_of(parent)) if parent else None,
                   thread_starter_key=starter_key, text_length=len(plain),
                   is_question=msg.get("message_type") == "question", is_best_answer=is_best, is_deleted=False,
                   mention_keys=[k for k in (self.keys(u) for u in mentioned) if k],
                   like_keys=[k for k in (self.keys(n.get("user_id")) for n in likes if isinstance(n, dict)) if k],
                   topic_ids=topic_ids)

    def execute(self) -> ExtractReport:
        listed = []
        for u in self.api.directory("users.json"):
            uid = native_id(u.get("id"))
            if uid:
                self.keys.learn(uid, u.get("email") or _primary_email(u))
                listed.append((uid, u))
        users = len(listed)
        user_rows = [user_row(self.keys(uid), state=u.get("state"), department=u.get("department"))
                     for uid, u in listed]
        groups = [{"id": native_id(g.get("id")), "private": g.get("privacy") == "private",
                   "members": (g.get("stats") or {}).get("members"),
                   "created_at": parse_time(g.get("created_at"))}
                  for g in self.api.directory("groups.json") if native_id(g.get("id"))]
        sweep_start = self.sweep_start()
        msgs, threads = self.read_feed(sweep_start)
        rows = [self.to_row(m, threads) for m in msgs]
        self.tally_threads(threads)
        written = land_days(self.ctx.lake_dir, self.name, rows, lake.days_between(sweep_start, self.end))
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "groups"), self.end,
                             pa.Table.from_pandas(containers_frame(self.name, groups), preserve_index=False))
        lake.write_partition(lake.raw_dir(self.ctx.lake_dir, self.name, "users"), self.end,
                             pa.Table.from_pylist(user_rows, schema=USERS_SCHEMA))
        self.commit_state()
        actors = {r["actor_key"] for r in rows if r["kind"] == "person" and r["actor_key"]}
        matched = len(actors & self.keys.email_keys)
        return ExtractReport(source=self.name, days=sorted(written), rows={
            "messages": len(rows), "groups": len(groups), "users": users}, details={
            "sweep_start": sweep_start.isoformat(), "days_rewritten": [d.isoformat() for d in written],
            "best_answers": sum(r["is_best_answer"] for r in rows), "questions": sum(r["is_question"] for r in rows),
            "message_lookups": self.lookups, "actors": len(actors),
            "identity_matched_share": round(matched / len(actors), 4) if actors else None,
            "http": self.api.http.stats.as_dict(), "rate": self.api.http.budget.usage(),
            "warnings": [self.plan.warning] if self.plan.warning else [],
            "completeness": completeness.report(self.tally, self.plan)})

    def tally_threads(self, threads: dict[str, dict[str, Any]]) -> None:
        """Replies read against `stats.updates` (the starter included) for every thread whose starter is in
        the sweep: the feed went back past the starter, so every message of the thread was offered."""
        for tid, day in sorted(self.starters.items()):
            stats = (threads.get(tid) or {}).get("stats")
            updates = stats.get("updates") if isinstance(stats, dict) else None
            announced = max(int(updates) - 1, 0) if isinstance(updates, int | float) else None
            self.tally.thread(day, self.plan.tier_of(day), announced, self.thread_seen.get(tid, 1) - 1)

    def commit_state(self) -> None:
        changes: dict[tuple[str, str], Any] = {}
        first = self.store.get(STATE, "first_day")
        if not first or self.start.isoformat() < first:
            changes[(STATE, "first_day")] = self.start.isoformat()
        last = self.store.get(STATE, "last_day")
        if not last or self.end.isoformat() > last:
            changes[(STATE, "last_day")] = self.end.isoformat()
        self.store.commit(changes, stamp=f"{self.start.isoformat()}..{self.end.isoformat()}")


def _primary_email(user: dict[str, Any]) -> str | None:
    contact: dict[str, Any] = user["contact"] if isinstance(user.get("contact"), dict) else {}
    for e in contact.get("email_addresses") or []:
        if isinstance(e, dict) and e.get("type") == "primary" and e.get("address"):
            return str(e["address"])
    return None


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, token: str | None = None,
            engine: sa.Engine | None = None) -> ExtractReport:
    """Land [start, end] (UTC days) from the messages API; `token` comes from an Airflow connection in
    the DAG, otherwise from the environment variable named by the option `token_env`."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    value, where = resolve_token(opts.token_env, token)
    api = make_api(opts, value, where)
    try:
        from pipelines.warehouse import warehouse_url_of  # the connection when conn_id is set

        with open_state(warehouse_url_of(ctx.settings), ctx.source.name, engine) as store:
            return _Run(ctx, opts, api, store, start, end).execute()
    finally:
        api.close()


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    return canonicalise_landing(ctx.lake_dir, ctx.source.name, day)


def minimise_payload(msgs: Iterable[dict[str, Any]], ctx: SourceContext,
                     references: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Rows of REST message objects without calling the API (fixtures, replays): parents and thread
    starters are resolved from the given messages and references only."""
    run = _Run.__new__(_Run)
    run.ctx = ctx
    run.keys = UserKeys(ctx)
    run.lookups = 0
    run.ref_names = {}
    msgs = list(msgs)
    run.senders = {native_id(m.get("id")) or "": native_id(m.get("sender_id")) for m in msgs}
    threads: dict[str, dict[str, Any]] = {}
    for ref in references:
        rid = native_id(ref.get("id"))
        if rid and ref.get("type") == "thread":
            threads[rid] = ref
        elif rid and ref.get("type") == "message":
            run.senders.setdefault(rid, native_id(ref.get("sender_id")))
        elif rid:
            run.learn_name(rid, ref)

    def known(message_id: str | None) -> str | None:
        return run.senders.get(message_id) if message_id else None
    run.sender_of = known  # type: ignore[method-assign]
    out = []
    for m in msgs:
        if "thread_id" not in m or "sender_id" not in m and m.get("message_type") != "system":
            raise ValueError(f"not a message object (no thread_id / sender_id): type {m.get('type')!r}, "
                             f"keys {sorted(m)[:6]}")
        if parse_time(m.get("created_at")) is None or native_id(m.get("id")) is None:
            raise ValueError(f"message {m.get('id')!r}: missing id or unparseable created_at "
                             f"{m.get('created_at')!r} (expected '2013/06/25 18:14:45 +0000')")
        out.append(run.to_row(m, threads))
    return out
