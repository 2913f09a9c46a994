"""The Viva Engage (Yammer) Data Export source (kind "yammer_export"): the bulk path.

Input: the export zip of CSVs (Messages.csv, Users.csv, Groups.csv, ...; UTF-8 with BOM; columns read
by header name, in any order, extra columns ignored), either
  - local: option `path` = one zip, or a folder of daily export zips (imported in name order), or
  - the export endpoint: option `base_url` (+ `token_env`, a verified admin's token): one
    `export?since=D&until=D+1` download per day of [start, end], the one-day range the docs recommend.
Every zip is parsed and checked completely first, before anything is written:
  - a file that cannot be read as an export (not a zip, no Messages.csv, a required column missing, an
    empty CSV) raises `ImportRejected` listing file, line and reason (the style of
    `pipelines.sources.file_import`), and nothing at all is written;
  - a CSV row that does not parse (wrong field count, CSV syntax, not UTF-8, a non-numeric id, a bad
    timestamp) is quarantined, the rest imported: `ExtractReport.details["quarantined"]` is
    {reason: count}, `details["quarantine_file"]` the JSON file of this run under
    `<lake>/quarantine/raw/source=<name>/` listing file (`<zip>!<csv>`), line and reason of each (never
    a value of the row). With the option `bad_records: reject` such rows reject the import instead,
    listing file, line and reason, and nothing is written (the behaviour before quarantines);
  - the zips are read as hostile (`pipelines.sources.safe_archive`): a member named with `..` or an
    absolute path, a symlink member, a symlinked zip in the export folder, a member over
    `max_member_bytes` (256 MiB, declared or actually inflated), an import over `max_total_bytes`
    (20 GiB), a member inflating more than `max_compression_ratio` (200) or whose size header / CRC
    lies: `ImportRejected` naming the zip / member, its size and the option to raise. One CSV is
    streamed at a time (never a whole zip or CSV decoded in memory).

Landing: the raw `messages` stream of `pipelines.sources.yammer_messages` (the REST source's, so both
canonicalise alike), merged by message id into the day partitions (an export may carry a new version
of an older message: a deletion, a best answer), and the `groups` containers snapshot at `end`.
Replies and best answers whose parent or thread starter is in an earlier export are resolved from the
landed partitions of the previous `lookback_days`.

Columns used. Messages.csv: id, thread_id, sender_id, created_at (required); replied_to_id, group_id,
in_private_conversation, deleted_at, body, message_type, sender_type, best_reply_id (optional;
`message_type` and `best_reply_id` are not in the columns verified from the Discourse importer: without
them no question and no best answer is seen). Users.csv: id, email (required); department, state,
deleted_at, suspended_at (optional): landed as the `users` stream at `end`, the source's people rows (a
user is deactivated when the state is not active or deleted_at / suspended_at is set). Groups.csv: id (private/privacy,
created_at optional). The export has no likes: this path lands no reactions (the REST source does).
Topics (`topic_ids`): the body without its `[[user:ID]]` / `[[tag:ID]]` tokens through the configured
taxonomy and `#hashtags` (`topics:` of the settings); the documented columns carry no topic names (a
`[[tag:ID]]` token is only a number, Topics.csv / Tags.csv are not read), so the platform's topics are not
seen on this path. Only the ids land.

This module must never write, log or return message text, user ids or emails: the body is only
measured (length, `[[user:ID]]` mentions), ids are keyed before landing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, Field, model_validator

from pipelines import lake
from pipelines.connectors.http import RetryPolicy
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.file_import_formats import ImportRejected, Problem, normalise_header
from pipelines.sources.safe_archive import (
    ArchiveError,
    Budget,
    ExportLimits,
    FolderTree,
    Limits,
    Quarantine,
    ZipTree,
)
from pipelines.sources.yammer import UserKeys, resolve_token
from pipelines.sources.yammer_api import YammerApi
from pipelines.sources.yammer_messages import (
    USER_TOKEN,
    USERS_SCHEMA,
    canonicalise_landing,
    conform_raw,
    containers_frame,
    native_id,
    parse_time,
    row,
    rows_table,
    token_free,
    topic_column,
    user_row,
)
from pipelines.topics import TopicRules

csv.field_size_limit(16 * 1024 * 1024)  # message bodies can be long; the default 128 KiB rejects them

REQUIRED = {"Messages.csv": ("id", "thread_id", "sender_id", "created_at"),
            "Users.csv": ("id", "email"), "Groups.csv": ("id",)}
TRUE = {"true", "t", "1", "yes"}
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, decoded with surrogateescape


class YammerExportOptions(ExportLimits):
    model_config = ConfigDict(extra="forbid")
    path: Path | None = Field(None, description="an export zip, or a folder of daily export zips")
    base_url: str | None = Field(None, description="REST base (https://www.yammer.com/api/v1) to call the "
                                 "export endpoint instead of reading files")
    token_env: str = Field("YAMMER_TOKEN", description="environment variable holding a verified admin's token")
    lookback_days: int = Field(90, ge=0, description="landed days searched for the parents of replies")
    rate_period_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _one_input(self) -> YammerExportOptions:
        if (self.path is None) == (self.base_url is None):
            raise ValueError("set exactly one of path (local export) or base_url (export endpoint)")
        return self


def options(ctx: SourceContext) -> YammerExportOptions:
    return YammerExportOptions.model_validate(ctx.source.options)


@dataclass
class Parsed:
    """Clear content of the exports, in memory only."""

    messages: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> latest row
    emails: dict[str, str] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> department, state, gone
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: int = 0
    rows_read: int = 0


@dataclass
class Found:
    """Problems of an import, in file order. `fatal`: a file that cannot be read as an export (always
    rejects). `bad`: rows that do not parse, each with a fixed reason (quarantine counts) and a `Problem`
    whose reason may quote the value (the message of `bad_records: reject`, never written)."""

    fatal: list[Problem] = field(default_factory=list)
    bad: list[tuple[Problem, str]] = field(default_factory=list)


@dataclass
class _In:
    """The problems of one file of one zip."""

    file: str
    found: Found

    def fatal(self, line: int | None, reason: str) -> None:
        self.found.fatal.append(Problem(self.file, line, reason))

    def bad(self, line: int, reason: str, detail: str | None = None) -> None:
        self.found.bad.append((Problem(self.file, line, detail or reason), reason))


def _records(stream: BinaryIO, required: tuple[str, ...], p: _In) -> Iterator[tuple[int, dict[str, str]]]:
    """(starting line, row by normalised header) of one CSV, streamed; a missing column is one fatal
    problem for the file, a row that does not parse one bad row."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        first = next(reader)
    except StopIteration:
        p.fatal(None, "empty file (no header row)")
        return
    except csv.Error as exc:
        p.fatal(1, f"CSV syntax: {exc}")
        return
    header = [normalise_header(h) for h in first]
    if _NOT_UTF8.search("".join(header)):
        p.fatal(1, "the header row is not UTF-8")
        return
    missing = [c for c in required if c not in header]
    if missing:
        p.fatal(1, f"missing column(s) {missing} (have {header[:12]})")
        return
    line = reader.line_num
    while True:
        start = line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            p.bad(start, "CSV syntax error", f"CSV syntax: {exc}")
            if reader.line_num == line:
                return  # no progress: nothing more can be read
            line = reader.line_num
            continue
        line = reader.line_num
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            p.bad(start, "field count differs from the header", f"{len(values)} fields, the header has {len(header)}")
            continue
        if _NOT_UTF8.search("\x00".join(values)):
            p.bad(start, "not UTF-8")
            continue
        yield start, dict(zip(header, values, strict=True))


def parse_zip(source: Path | IO[bytes], label: str, parsed: Parsed, found: Found, limits: Limits,
              budget: Budget) -> None:
    """Add one export zip to `parsed`, its problems to `found`; `ArchiveError` when it is unsafe."""
    try:
        z = ZipTree(source, limits, budget, label=label)
    except zipfile.BadZipFile:
        found.fatal.append(Problem(label, None, "not a zip file (truncated download, or not a Data Export)"))
        return
    with z:
        names = {n.rsplit("/", 1)[-1]: n for n in z.names() if not n.endswith("/")}  # zips use "/"
        if "Messages.csv" not in names:
            found.fatal.append(Problem(label, None, f"no Messages.csv in the zip (has {sorted(names)[:10]})"))
            return
        for fname in ("Users.csv", "Groups.csv", "Messages.csv"):
            if fname not in names:
                continue
            p = _In(f"{label}!{fname}", found)
            stream = z.open(names[fname])
            assert stream is not None  # a listed file member
            with stream:
                for line, rec in _records(stream, REQUIRED[fname], p):
                    parsed.rows_read += 1
                    _take(fname, line, rec, parsed, p)
    parsed.files += 1


def _take(fname: str, line: int, rec: dict[str, str], parsed: Parsed, p: _In) -> None:
    rid = native_id(rec.get("id"))
    if rid is None or not rid.isdigit():
        p.bad(line, "id is not a numeric Yammer id", f"id {rec.get('id')!r} is not a numeric Yammer id")
        return
    if fname == "Users.csv":
        email = (rec.get("email") or "").strip()
        if email and email.lower() != "null":
            parsed.emails[rid] = email
        gone = any((rec.get(c) or "").strip() not in ("", "null") for c in ("deleted_at", "suspended_at"))
        parsed.users[rid] = {"department": rec.get("department"), "state": rec.get("state"), "gone": gone}
        return
    if fname == "Groups.csv":
        private = (rec.get("private") or "").strip().lower() in TRUE or (rec.get("privacy") or "") == "private"
        parsed.groups[rid] = {"id": rid, "private": private, "members": None,
                              "created_at": parse_time(rec.get("created_at"))}
        return
    if parse_time(rec.get("created_at")) is None:
        p.bad(line, "created_at is not a timestamp", f"created_at {rec.get('created_at')!r} is not a timestamp")
        return
    for col in ("thread_id", "sender_id", "replied_to_id", "group_id", "best_reply_id"):
        v = native_id(rec.get(col))
        if v is not None and not v.isdigit():
            p.bad(line, f"{col} is not a numeric Yammer id", f"{col} {v!r} is not a numeric Yammer id")
            return
    if native_id(rec.get("sender_id")) is None:
        p.bad(line, "sender_id is empty")
        return
    if (rec.get("deleted_at") or "").strip() not in ("", "null") and parse_time(rec["deleted_at"]) is None:
        p.bad(line, "deleted_at is not a timestamp", f"deleted_at {rec['deleted_at']!r} is not a timestamp")
        return
    parsed.messages[rid] = rec  # a later version of the same message replaces the earlier one


def _inputs(opts: YammerExportOptions, start: dt.date, end: dt.date, token: str | None, limits: Limits,
            budget: Budget) -> Iterator[tuple[str, Path | IO[bytes]]]:
    """(label, zip) of every export to read: a path (the configured zip), or an open file / buffer."""
    if opts.path is not None:
        if opts.path.is_dir():
            folder = FolderTree(opts.path, limits, budget)
            zips = [n for n in folder.listdir("") or [] if PurePath(n).suffix.lower() == ".zip"]
            if not zips:
                raise ImportRejected([Problem(str(opts.path), None, "folder holds no .zip export")])
            for name in zips:
                f = folder.open_raw(name)  # a link in the folder is refused (UnsafePath)
                if f is None:
                    continue
                with f:
                    yield name, f
        elif opts.path.is_file():
            yield opts.path.name, opts.path
        else:
            raise ImportRejected([Problem(str(opts.path), None, "option path: file does not exist")])
        return
    assert opts.base_url is not None
    value, where = resolve_token(opts.token_env, token)
    policy = RetryPolicy(max_attempts=opts.max_attempts, base_delay_s=opts.backoff_base_s,
                         default_retry_after_s=min(5.0, opts.rate_period_s / 2))
    api = YammerApi(opts.base_url, value, token_source=where, period_s=opts.rate_period_s, policy=policy,
                    timeout_s=opts.timeout_s)
    try:
        for day in lake.days_between(start, end):
            nxt = day + dt.timedelta(days=1)
            yield f"export-{day.isoformat()}.zip", io.BytesIO(api.export({
                "since": f"{day.isoformat()}T00:00:00+00:00", "until": f"{nxt.isoformat()}T00:00:00+00:00",
                "model": "Message", "include": "csv"}))
    finally:
        api.close()


class _LandedKeys:
    """message id -> author key of messages landed in the previous `lookback_days` (keys only)."""

    def __init__(self, base: Path, first: dt.date, last: dt.date):
        self.base, self.first, self.last = base, first, last
        self._map: dict[str, str | None] | None = None

    def get(self, message_id: str) -> str | None:
        if self._map is None:
            self._map = {}
            for day in lake.partition_days(self.base):
                if self.first <= day <= self.last:
                    t = lake.read_partition(self.base, day)
                    if t is not None:
                        ids = t.column("message_id").to_pylist()
                        self._map.update(zip(ids, t.column("actor_key").to_pylist(), strict=True))
        return self._map.get(message_id)


def build_rows(parsed: Parsed, keys: UserKeys, landed: _LandedKeys,
               topics: TopicRules | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Keyed rows of the parsed messages, and the best answers (reply id -> asker key) whose reply row
    is not among them. `topics`: the configured topic rules (`ctx.settings.topics`), no topics when None."""
    def author(mid: str | None) -> str | None:
        if mid is None:
            return None
        rec = parsed.messages.get(mid)
        return keys(rec.get("sender_id")) if rec is not None else landed.get(mid)

    best: dict[str, str] = {}
    for rec in parsed.messages.values():
        reply = native_id(rec.get("best_reply_id"))
        if reply and native_id(rec.get("replied_to_id")) is None:
            asker = keys(rec.get("sender_id"))
            if asker:
                best[reply] = asker
    rows = []
    for mid, rec in parsed.messages.items():
        created = parse_time(rec["created_at"])
        assert created is not None  # checked by _take
        parent = native_id(rec.get("replied_to_id"))
        body = rec.get("body") or ""
        mtype = (rec.get("message_type") or "").strip().lower()
        person = mtype != "system" and (rec.get("sender_type") or "user").strip().lower() in ("user", "")
        rows.append(row(
            message_id=mid, thread_id=native_id(rec.get("thread_id")), replied_to_id=parent,
            group_id=native_id(rec.get("group_id")),
            private=(rec.get("in_private_conversation") or "").strip().lower() in TRUE, created_at=created,
            person=person, actor_key=keys(rec.get("sender_id")), parent_actor_key=author(parent),
            thread_starter_key=best.get(mid), text_length=len(body), is_question=mtype == "question",
            is_best_answer=mid in best, is_deleted=(rec.get("deleted_at") or "").strip() not in ("", "null"),
            mention_keys=[k for k in (keys(u) for u in USER_TOKEN.findall(body)) if k], like_keys=[],
            topic_ids=topic_column(topics, token_free(body)) if person else None))
    return rows, {r: a for r, a in best.items() if r not in parsed.messages}


def _merge(base: Path, day: dt.date, rows: list[dict[str, Any]], best: dict[str, str]) -> bool:
    """Upsert `rows` into the day partition and mark best answers found in it; True when it changed."""
    old = lake.read_partition(base, day)
    merged: dict[str, dict[str, Any]] = {}
    if old is not None:
        merged = {r["message_id"]: r for r in conform_raw(old).to_pylist()}
    merged.update({r["message_id"]: r for r in rows})
    for mid, asker in best.items():
        r = merged.get(mid)
        if r is not None and r["replied_to_id"] is not None:
            r["is_best_answer"], r["thread_starter_key"] = True, asker
    table = rows_table(merged.values())
    if old is not None and conform_raw(old).equals(table):
        return False
    lake.write_partition(base, day, table)
    return True


def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, token: str | None = None) -> ExtractReport:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    name = ctx.source.name
    parsed = Parsed()
    found = Found()
    limits = Limits.of(opts)
    budget = Budget(limits)
    try:
        for label, source in _inputs(opts, start, end, token, limits, budget):
            parse_zip(source, label, parsed, found, limits, budget)
    except ArchiveError as exc:  # unsafe or too large: the export is refused
        raise ImportRejected([Problem(exc.where, None, exc.reason)]) from exc
    reject = opts.bad_records == "reject"
    if found.fatal or (reject and found.bad):
        raise ImportRejected(found.fatal + ([p for p, _ in found.bad] if reject else []))  # before any write
    bad = Quarantine(name, str(opts.path or opts.base_url), opts.bad_records)
    for problem, reason in found.bad:
        bad.add(problem.file, problem.line, reason, unit="line")
    quarantine_file = bad.write(ctx.lake_dir, start, end)
    keys = UserKeys(ctx)
    for uid, email in parsed.emails.items():
        keys.learn(uid, email)
    base = lake.raw_dir(ctx.lake_dir, name, "messages")
    landed = _LandedKeys(base, start - dt.timedelta(days=opts.lookback_days), end)
    rows, pending_best = build_rows(parsed, keys, landed, ctx.settings.topics)
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for r in rows:
        by_day.setdefault(r["created_at"].date(), []).append(r)
    if pending_best:
        # best answers chosen now for replies landed by an earlier import: their days are rewritten too
        for day in lake.partition_days(base):
            if start - dt.timedelta(days=opts.lookback_days) <= day <= end and day not in by_day:
                t = lake.read_partition(base, day)
                if t is not None and pc.any(pc.is_in(t.column("message_id"),
                                                     pa.array(list(pending_best)))).as_py():
                    by_day[day] = []
    written = [d for d in sorted(by_day) if _merge(base, d, by_day[d], pending_best)]
    lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "groups"), end,
                         pa.Table.from_pandas(containers_frame(name, parsed.groups.values()), preserve_index=False))
    if parsed.users:  # an export without Users.csv rows leaves the last users snapshot in force
        lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "users"), end, pa.Table.from_pylist(
            [user_row(keys(uid), **u) for uid, u in sorted(parsed.users.items())], schema=USERS_SCHEMA))
    actors = {r["actor_key"] for r in rows if r["kind"] == "person" and r["actor_key"]}
    matched = len(actors & keys.email_keys)
    unresolved = sum(1 for r in rows if r["replied_to_id"] and r["parent_actor_key"] is None)
    return ExtractReport(source=name, days=written, rows={"messages": len(rows), "groups": len(parsed.groups),
                                                          "users": len(parsed.emails)}, details={
        "files": parsed.files, "csv_rows": parsed.rows_read,
        "days_outside_interval": sorted({d.isoformat() for d in by_day if not start <= d <= end}),
        "deleted": sum(r["is_deleted"] for r in rows), "questions": sum(r["is_question"] for r in rows),
        "best_answers": len([r for r in rows if r["is_best_answer"]]) + len(pending_best),
        "replies_without_known_parent": unresolved, "actors": len(actors),
        "identity_matched_share": round(matched / len(actors), 4) if actors else None,
        **bad.details(quarantine_file), "bytes_read": budget.total})


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    return canonicalise_landing(ctx.lake_dir, ctx.source.name, day)
