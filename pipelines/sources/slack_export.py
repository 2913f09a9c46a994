"""Slack workspace-export import: a folder or zip (users.json, channels.json, <channel>/<day>.json), and
the public Slack chat archives of Chatterjee et al. (MSR 2020, XML), into the Slack raw landing.

Lands the same streams as `pipelines.sources.slack` (`messages` per day, `users`, `conversations`,
`members` at the end of the range), minimised by `pipelines.connectors.slack_messages`, so both
canonicalise identically and the same person gets the same key (`pseudonymiser.person`, email first).
Export quirks handled: `created`/`last_set` as strings in old exports, `groups.json` (private channels),
channel folders named after the channel, replies inline in day files, broadcasts once per (channel, ts),
tombstones. The XML archives have no Slack thread pointers: a `conversation_id` (the dataset's automatic
disentanglement) becomes a thread whose first message is the parent, and user *names* (already
anonymised by the publishers) are the native ids, scoped by the team domain. `is_question` follows the
configured question rules (`questions:` of the settings, run on each message's prose as it is read);
reactions are dated at their message, as with the Web API (an export gives no reaction time either:
see `pipelines.connectors.slack_messages`).

People: the entries of users.json are the source's people rows (`pipelines.sources.slack.slack_people`:
outside the HR directory, account type bot / external / guest / member from the entry's flags, deleted
users deactivated), so an export imports and publishes on its own, without an HR file: its people are
counted with a NULL department (the segment cell 'unknown'); with an HR source, the same email gives the
same key and the HR row wins.

Options: `path` (folder, .zip, or .xml file / folder of .xml files), `format` (auto | export | xml),
include/exclude channel lists (ids or names), and the limits of `pipelines.sources.safe_archive`:
`max_member_bytes` (256 MiB, one day file / zip member), `max_total_bytes` (20 GiB, the whole import),
`max_compression_ratio` (200, zip members), `max_json_depth` (64), `bad_records` (quarantine | reject).

Hostile exports are contained (`pipelines.sources.safe_archive`):
  - every path read stays inside the export: a channel whose folder name (channels.json / groups.json
    `name`, else `id`) is not one plain folder name (`../../outside_dir`, `/etc`, `a/b`) is an
    `UnsafePath` error naming the channel and the name, for any channel of the export (a path escape is
    an attack: the whole export is suspect, nothing is imported); a symbolic link anywhere below the
    root (a day file, a channel folder) and a zip member with `..`, an absolute name or a link are
    refused the same way, naming the path.
  - a file or zip member over `max_member_bytes`, an import over `max_total_bytes`, a zip member
    inflating over `max_compression_ratio` or whose size header / CRC lies: `TooLarge` /
    `CorruptArchive` errors naming the member, its size and the option to raise. Files are read one at
    a time.
  - a record that does not parse is quarantined, the rest is imported: a message (bad or missing `ts`,
    a field of the wrong type), a whole day file (not JSON, not UTF-8, nested deeper than
    `max_json_depth`, not an array), a channel or user entry. `ExtractReport.details["quarantined"]` is
    {reason: count}, `details["quarantine_file"]` the JSON file of this run under
    `<lake>/quarantine/raw/source=<name>/` listing file, index (position in the file) and reason of each:
    never a value of the record (no text, user id or email). With `bad_records: reject` any such record
    rejects the import (`ExportFormatError` listing them) before anything is written. The top-level
    files (channels.json, groups.json, users.json) are not quarantined: one that is not valid JSON, too
    deep or not an array is an `ExportFormatError` naming it.
This module must never write text, names, user ids or emails: everything goes through `minimise` and the
pseudonymiser before landing.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from pydantic import ConfigDict, Field

from pipelines import lake
from pipelines.config import QuestionRules
from pipelines.connectors.slack_messages import (
    PLATFORM,
    fill_parent_keys,
    is_ts,
    minimise,
    rows_table,
    ts_day,
)
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.safe_archive import (
    DEFAULT_MAX_JSON_DEPTH,
    NOT_AN_ARRAY,
    BadJson,
    Budget,
    ExportLimits,
    FolderTree,
    Limits,
    Quarantine,
    UnsafePath,
    ZipTree,
    component_problem,
    iter_json_array,
    loads_json,
    open_tree,
)
from pipelines.sources.slack import USERS_SCHEMA, canonicalise_landing, user_flags
from pipelines.topics import TopicRules


class ExportFormatError(ValueError):
    """The input is not a Slack export or an archive of the supported XML format; the message says why."""


class SlackExportOptions(ExportLimits):
    model_config = ConfigDict(extra="forbid")
    path: Path
    format: Literal["auto", "export", "xml"] = "auto"
    include_channels: list[str] = Field(default_factory=list)
    exclude_channels: list[str] = Field(default_factory=list)
    max_json_depth: int = Field(DEFAULT_MAX_JSON_DEPTH, ge=2, description="deepest nesting of a JSON file")


def options(ctx: SourceContext) -> SlackExportOptions:
    return SlackExportOptions.model_validate(ctx.source.options)


class _Tree:
    """Read-only, confined view of an export folder or zip (a zip may hold everything under one top
    folder)."""

    def __init__(self, path: Path, limits: Limits, budget: Budget):
        self.path = path
        self.depth = limits.max_json_depth
        self._t = open_tree(path, limits, budget)
        self._prefix = ""
        if isinstance(self._t, ZipTree):
            names = [n for n in self._t.names() if n.endswith("channels.json")]
            if names:
                self._prefix = str(PurePosixPath(min(names, key=len)).parent).removeprefix(".")
                self._prefix = f"{self._prefix}/" if self._prefix else ""

    def name(self, rel: str) -> str:
        """The path of `rel` inside the export (zip member name, or relative to the folder)."""
        return self._prefix + rel

    def read(self, rel: str) -> bytearray | None:
        return self._t.read(self._prefix + rel)

    def read_json(self, rel: str) -> Any:
        """A top-level file (channels.json, ...): None when absent; anything but JSON is an error."""
        raw = self.read(rel)
        if raw is None:
            return None
        try:
            return loads_json(raw, self.depth)
        except BadJson as exc:
            raise ExportFormatError(f"{self.path}: {rel} is {exc}") from None

    def day_files(self, folder: str) -> list[tuple[dt.date, str]]:
        out = []
        for name in self._t.listdir(self._prefix + folder) or []:
            stem = name.removesuffix(".json")
            if name.endswith(".json") and "/" not in stem:
                try:
                    out.append((dt.date.fromisoformat(stem), f"{folder}/{name}"))
                except ValueError:
                    continue
        return sorted(out)

    def close(self) -> None:
        self._t.close()


def _selected(ch: dict[str, Any], opts: SlackExportOptions) -> bool:
    names = {ch.get("id"), ch.get("name")}
    if opts.include_channels and not names & set(opts.include_channels):
        return False
    return not names & set(opts.exclude_channels)


def _detect(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if path.suffix == ".xml" or (path.is_dir() and any(path.glob("*.xml")) and not (path / "channels.json").exists()):
        return "xml"
    if path.is_dir() and (path / "channels.json").exists():
        return "export"
    if path.is_file() and zipfile.is_zipfile(path):
        return "export"
    raise ExportFormatError(f"{path} is neither a Slack export (folder or zip with channels.json) nor an "
                            ".xml archive; set the option format explicitly if it is one")


class _Keys:
    def __init__(self, ctx: SourceContext, scope: str = ""):
        self._ps = ctx.pseudonymiser
        self._scope = scope
        self._email: dict[str, str] = {}

    def learn(self, uid: str, email: str | None) -> None:
        if email:
            self._email[uid] = email

    def __call__(self, uid: str) -> str | None:
        if not uid:
            return None
        return self._ps.person(PLATFORM, f"{self._scope}{uid}", self._email.get(uid))


def _is_id_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _epoch_problem(value: Any) -> bool:
    if value in (None, "", "0", 0):
        return False
    if isinstance(value, bool) or not isinstance(value, int | str):
        return True
    return not str(value).isdigit() or int(value) > 253402300799


def _channel_problem(ch: Any) -> str | None:
    """Why a channels.json / groups.json entry cannot be read (a fixed phrase), or None."""
    if not isinstance(ch, dict):
        return "channel entry is not a JSON object"
    if not isinstance(ch.get("id"), str) or not ch["id"]:
        return "channel id missing or not a string"
    if ch.get("name") is not None and not isinstance(ch["name"], str):
        return "channel name is not a string"
    if not _is_id_list(ch.get("members")):
        return "members is not a list of user ids"
    if _epoch_problem(ch.get("created")):
        return "created is not epoch seconds"
    return None


def _user_problem(u: Any) -> str | None:
    if not isinstance(u, dict):
        return "user entry is not a JSON object"
    if not isinstance(u.get("id"), str) or not u["id"]:
        return "user id missing or not a string"
    profile = u.get("profile")
    if profile is not None and not isinstance(profile, dict):
        return "profile is not a JSON object"
    if profile and profile.get("email") is not None and not isinstance(profile["email"], str):
        return "email is not a string"
    return None


_STRING_FIELDS = ("user", "parent_user_id", "subtype", "text", "latest_reply")


def _message_problem(msg: Any) -> str | None:
    """Why one element of a day file is not a message `minimise` can take (a fixed phrase), or None."""
    if not isinstance(msg, dict):
        return "message is not a JSON object"
    if msg.get("ts") is None:
        return "ts missing"
    if not is_ts(msg["ts"]):
        return "ts is not a Slack timestamp"
    if msg.get("thread_ts") not in (None, "") and not is_ts(msg["thread_ts"]):
        return "thread_ts is not a Slack timestamp"
    for name in _STRING_FIELDS:
        if msg.get(name) is not None and not isinstance(msg[name], str):
            return f"{name} is not a string"
    count = msg.get("reply_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int | str)
                              or not str(count).isdigit() or int(count) >= 2**31):
        return "reply_count is not a count"
    reactions = msg.get("reactions")
    if reactions is not None and not (isinstance(reactions, list) and all(
            isinstance(r, dict) and (r.get("name") is None or isinstance(r["name"], str))
            and _is_id_list(r.get("users")) for r in reactions)):
        return "reactions are malformed"
    return None


def _folder(ch: dict[str, Any], tree: _Tree, listing: str) -> str:
    """The folder of a channel's day files: one plain name inside the export, or `UnsafePath`."""
    folder = ch.get("name") or ch["id"]
    problem = component_problem(folder)
    if problem:
        raise UnsafePath(f"{tree.path}: {listing}", f"channel {ch['id']!r} has the folder name {folder!r}, "
                         f"which {problem}: it would read outside the export (a path escape: the export is "
                         "refused, nothing was imported)")
    return folder


def _day_rows(tree: _Tree, rel: str, channel: str, keys: _Keys, bad: Quarantine,
              questions: QuestionRules | None = None, topics: TopicRules | None = None) -> list[dict[str, Any]]:
    """The rows of one day file, parsed one message at a time; a bad message is quarantined, a file that
    is not a JSON array (within the depth limit) is quarantined whole (then none of its rows)."""
    raw = tree.read(rel)
    if raw is None:
        return []
    messages = iter_json_array(raw, tree.depth)
    del raw  # the iterator holds the only reference: released once decoded
    rows: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []
    try:
        for i, msg in messages:
            problem = _message_problem(msg)
            if problem is None:
                try:
                    row = minimise(msg, channel, keys, questions, topics)
                except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
                    problem = f"malformed message ({type(exc).__name__})"
            if problem is not None:
                problems.append((i, problem))
            elif row is not None:
                rows.append(row)
    except BadJson as exc:
        reason = "not a JSON array of messages" if exc.reason == NOT_AN_ARRAY else exc.reason
        bad.add(tree.name(rel), None, reason, detail=str(exc) if exc.reason != NOT_AN_ARRAY else reason)
        return []
    for i, problem in problems:
        bad.add(tree.name(rel), i, problem, unit="message")
    return rows


def _users(tree: _Tree) -> Iterator[tuple[int, Any]]:
    """The entries of users.json one at a time (it can be large); absent: none."""
    raw = tree.read("users.json")
    if raw is None:
        return
    entries = iter_json_array(raw, tree.depth)
    del raw
    try:
        yield from entries
    except BadJson as exc:
        if exc.reason == NOT_AN_ARRAY and not tree.read_json("users.json"):
            return  # null, {} and the like: no users, as before
        what = "not a JSON array" if exc.reason == NOT_AN_ARRAY else str(exc)
        raise ExportFormatError(f"{tree.path}: users.json is {what}") from None


def _export_rows(ctx: SourceContext, opts: SlackExportOptions, end: dt.date, budget: Budget, bad: Quarantine):
    tree = _Tree(opts.path, Limits.of(opts), budget)
    try:
        return _read_export(ctx, opts, end, tree, bad)
    finally:
        tree.close()


def _read_export(ctx: SourceContext, opts: SlackExportOptions, end: dt.date, tree: _Tree, bad: Quarantine):
    channels_raw = tree.read_json("channels.json")
    if not isinstance(channels_raw, list):
        raise ExportFormatError(f"{opts.path}: channels.json is missing or not a JSON array")
    private = tree.read_json("groups.json") or []
    if not isinstance(private, list):
        raise ExportFormatError(f"{opts.path}: groups.json is not a JSON array")
    keys = _Keys(ctx)
    user_rows = []
    for i, u in _users(tree):
        problem = _user_problem(u)
        if problem:
            bad.add(tree.name("users.json"), i, problem, unit="entry")
            continue
        keys.learn(u["id"], (u.get("profile") or {}).get("email"))
        user_rows.append({"person_key": keys(u["id"]), **user_flags(u)})
    listed = []
    for listing, entries, is_private in (("channels.json", channels_raw, False), ("groups.json", private, True)):
        for i, ch in enumerate(entries):
            problem = _channel_problem(ch)
            if problem:
                bad.add(tree.name(listing), i, problem, unit="entry")
                continue
            listed.append((ch, is_private, _folder(ch, tree, listing)))  # every folder checked first
    chans = []
    rows: list[dict[str, Any]] = []
    members = []
    for ch, is_private, folder in listed:
        if not _selected(ch, opts):
            continue
        chans.append({**ch, "is_private": bool(ch.get("is_private", is_private))})
        members += [{"container_id": ch["id"], "person_key": keys(m)} for m in ch.get("members") or []]
        for day, rel in tree.day_files(folder):
            if day > end + dt.timedelta(days=1):  # day files are local days: keep a day of margin
                continue
            rows += _day_rows(tree, rel, ch["id"], keys, bad, ctx.settings.questions, ctx.settings.topics)
    return rows, chans, members, user_rows


def _iso_to_ts(value: str) -> str:
    when = dt.datetime.fromisoformat(value.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # the archives' timestamps are UTC (collected by a bot)
    epoch = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return f"{epoch.days * 86400 + epoch.seconds}.{epoch.microseconds:06d}"


def _xml_files(path: Path, limits: Limits, budget: Budget) -> Iterator[tuple[str, bytes]]:
    """(name, content) of the archive file, or of the .xml files of a folder (links refused, sizes bounded)."""
    if path.is_file():
        real = path.resolve()  # the configured path itself may be a link: the operator's choice
        files = [real.name]
        tree = FolderTree(real.parent, limits, budget)
    else:
        tree = FolderTree(path, limits, budget)
        files = [n for n in tree.listdir("") or [] if n.endswith(".xml")]
    for name in files:
        raw = tree.read(name)
        if raw is not None:
            yield name, bytes(raw)


def _xml_rows(ctx: SourceContext, opts: SlackExportOptions, budget: Budget, bad: Quarantine):
    rows: list[dict[str, Any]] = []
    chans = []
    people: dict[str, str | None] = {}
    for fname, raw in _xml_files(opts.path, Limits.of(opts), budget):
        f = opts.path / fname if opts.path.is_dir() else opts.path
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as exc:
            raise ExportFormatError(f"{f}: not well-formed XML ({exc})") from None
        del raw
        if root.tag != "slack":
            raise ExportFormatError(f"{f}: root element is <{root.tag}>, expected <slack>")
        team = (root.findtext("team_domain") or "").strip()
        name = (root.findtext("channel_name") or "").strip()
        cid = f"{team}/{name}"
        if not _selected({"id": cid, "name": name}, opts):
            continue
        keys = _Keys(ctx, scope=f"{team}:")
        chans.append({"id": cid, "name": name, "is_private": False})
        threads: dict[str, tuple[str, str]] = {}  # conversation id -> (parent ts, parent user)
        msgs = []
        for i, m in enumerate(root.iter("message")):
            ts, user = m.findtext("ts"), (m.findtext("user") or "").strip()
            if not ts or not user:
                bad.add(fname, i, "message lacks <ts> or <user>", unit="message")
                continue
            try:
                when = _iso_to_ts(ts)
            except ValueError:
                bad.add(fname, i, "ts is not an ISO timestamp", unit="message")
                continue
            msgs.append((when, user, m.get("conversation_id"), m.findtext("text") or ""))
        for ts, user, conv, text in sorted(msgs, key=lambda x: (int(x[0].split(".")[0]), x[0])):
            msg: dict[str, Any] = {"type": "message", "ts": ts, "user": user, "text": text}
            if conv is not None:
                parent = threads.setdefault(conv, (ts, user))
                msg["thread_ts"] = parent[0]
                if parent[0] != ts:
                    msg["parent_user_id"] = parent[1]
            row = minimise(msg, cid, keys, ctx.settings.questions, ctx.settings.topics)
            if row is not None:
                rows.append(row)
                people.setdefault(row["actor_key"] or "", None)
    # the archives list no users: their authors are members of the archived community
    user_rows = [{"person_key": k, "is_bot": False, "is_deleted": False, "is_restricted": False,
                  "is_external": False} for k in people if k]
    return rows, chans, [], user_rows


def _created(c: dict[str, Any]) -> pd.Timestamp | None:
    value = c.get("created")
    # old exports write epoch seconds as strings ("1452837318")
    return pd.Timestamp(int(value), unit="s", tz="UTC") if value not in (None, "", "0", 0) else None


def extract(ctx: SourceContext, start: dt.date, end: dt.date) -> ExtractReport:
    opts = options(ctx)
    if not opts.path.exists():
        raise ExportFormatError(f"{opts.path} does not exist (option path)")
    fmt = _detect(opts.path, opts.format)
    budget = Budget(Limits.of(opts))
    bad = Quarantine(ctx.source.name, str(opts.path), opts.bad_records)
    rows, chans, members, user_rows = (_xml_rows(ctx, opts, budget, bad) if fmt == "xml"
                                       else _export_rows(ctx, opts, end, budget, bad))
    if bad.items and opts.bad_records == "reject":
        raise ExportFormatError(f"{opts.path}: {len(bad.items)} bad record(s), nothing was imported (option "
                                f"bad_records=reject; the default quarantines them):\n  {bad.lines()}")
    quarantine_file = bad.write(ctx.lake_dir, start, end)
    parents = {(r["channel"], r["ts"]): r["actor_key"] for r in rows if not r["is_reply"]}
    fill_parent_keys(rows, parents)
    by_day: dict[dt.date, dict[tuple[str, str], dict[str, Any]]] = {}
    for r in rows:
        day = ts_day(r["ts"])
        if start <= day <= end:
            by_day.setdefault(day, {})[(r["channel"], r["ts"])] = r  # broadcasts once per (channel, ts)
    name = ctx.source.name
    base = lake.raw_dir(ctx.lake_dir, name, "messages")
    landed = 0
    for day in lake.days_between(start, end):
        table = rows_table(list(by_day.get(day, {}).values()))
        lake.write_partition(base, day, table)
        landed += table.num_rows
    conv = pd.DataFrame([{"source": name, "container_id": c["id"], "kind": "channel",
                          "visibility": "private" if c.get("is_private") else "public",
                          "member_count": len(c.get("members") or []) or None, "owner_department": None,
                          "created_at": _created(c)} for c in chans],
                        columns=["source", "container_id", "kind", "visibility", "member_count",
                                 "owner_department", "created_at"])
    conv["member_count"] = conv["member_count"].astype("Int32")
    conv["created_at"] = pd.to_datetime(conv["created_at"], utc=True)
    snapshots = {
        "conversations": pa.Table.from_pandas(conv, preserve_index=False),
        "members": pa.Table.from_pylist(members, schema=pa.schema([("container_id", pa.string()),
                                                                   ("person_key", pa.string())])),
        "users": pa.Table.from_pylist(user_rows, schema=USERS_SCHEMA),
    }
    for stream, table in snapshots.items():
        lake.write_partition(lake.raw_dir(ctx.lake_dir, name, stream), end, table)
    return ExtractReport(source=name, days=lake.days_between(start, end),
                         rows={"messages": landed, **{k: v.num_rows for k, v in snapshots.items()}},
                         details={"format": fmt, "messages_read": len(rows), "channels": len(chans),
                                  **bad.details(quarantine_file), "bytes_read": budget.total})


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    return canonicalise_landing(ctx.lake_dir, ctx.source.name, day)

