"""Slack workspace-export import: a folder or zip (users.json, channels.json, <channel>/<day>.json), and
the public Slack chat archives of Chatterjee et al. (MSR 2020, XML), into the Slack raw landing.

Lands the same streams as `pipelines.sources.slack` (`messages` per day, `users`, `conversations`,
`members` at the end of the range), minimised by `pipelines.connectors.slack_messages`, so both
canonicalise identically and the same person gets the same key (`pseudonymiser.person`, email first).
Export quirks handled: `created`/`last_set` as strings in old exports, `groups.json` (private channels),
channel folders named after the channel, replies inline in day files, broadcasts once per (channel, ts),
tombstones. The XML archives have no Slack thread pointers: a `conversation_id` (the dataset's automatic
disentanglement) becomes a thread whose first message is the parent, and user *names* (already
anonymised by the publishers) are the native ids, scoped by the team domain.

Options: `path` (folder, .zip, or .xml file / folder of .xml files), `format` (auto | export | xml),
include/exclude channel lists (ids or names). This module must never write text, names, user ids or
emails: everything goes through `minimise` and the pseudonymiser before landing.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pipelines import lake
from pipelines.connectors.slack_messages import PLATFORM, fill_parent_keys, minimise, rows_table, ts_day
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.slack import canonicalise_landing


class ExportFormatError(ValueError):
    """The input is not a Slack export or an archive of the supported XML format; the message says why."""


class SlackExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path
    format: Literal["auto", "export", "xml"] = "auto"
    include_channels: list[str] = Field(default_factory=list)
    exclude_channels: list[str] = Field(default_factory=list)


def options(ctx: SourceContext) -> SlackExportOptions:
    return SlackExportOptions.model_validate(ctx.source.options)


class _Tree:
    """Read-only view of an export folder or zip (a zip may hold everything under one top folder)."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() and zipfile.is_zipfile(path) else None
        self._prefix = ""
        if self._zip is not None:
            names = [n for n in self._zip.namelist() if n.endswith("channels.json")]
            if names:
                self._prefix = str(PurePosixPath(min(names, key=len)).parent).removeprefix(".")
                self._prefix = f"{self._prefix}/" if self._prefix else ""

    def read_json(self, rel: str) -> Any:
        try:
            if self._zip is not None:
                raw = self._zip.read(self._prefix + rel)
            else:
                raw = (self.path / rel).read_bytes()
        except (KeyError, FileNotFoundError):
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ExportFormatError(f"{self.path}: {rel} is not valid JSON ({exc.msg} at {exc.pos})") from None
        except UnicodeDecodeError:
            raise ExportFormatError(f"{self.path}: {rel} is not UTF-8 text") from None

    def day_files(self, folder: str) -> list[tuple[dt.date, str]]:
        out = []
        if self._zip is not None:
            prefix = f"{self._prefix}{folder}/"
            names = [n[len(prefix):] for n in self._zip.namelist() if n.startswith(prefix)]
        else:
            d = self.path / folder
            names = [p.name for p in d.iterdir()] if d.is_dir() else []
        for name in names:
            stem = name.removesuffix(".json")
            if name.endswith(".json") and "/" not in stem:
                try:
                    out.append((dt.date.fromisoformat(stem), f"{folder}/{name}"))
                except ValueError:
                    continue
        return sorted(out)


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


def _export_rows(ctx: SourceContext, opts: SlackExportOptions, end: dt.date):
    tree = _Tree(opts.path)
    channels_raw = tree.read_json("channels.json")
    if not isinstance(channels_raw, list):
        raise ExportFormatError(f"{opts.path}: channels.json is missing or not a JSON array")
    private = tree.read_json("groups.json") or []
    keys = _Keys(ctx)
    users = tree.read_json("users.json") or []
    if not isinstance(users, list):
        raise ExportFormatError(f"{opts.path}: users.json is not a JSON array")
    user_rows = []
    for u in users:
        if isinstance(u, dict) and u.get("id"):
            keys.learn(u["id"], (u.get("profile") or {}).get("email"))
            user_rows.append({"person_key": keys(u["id"]), "is_bot": bool(u.get("is_bot")),
                              "is_deleted": bool(u.get("deleted")), "is_restricted": bool(u.get("is_restricted"))})
    chans = []
    rows: list[dict[str, Any]] = []
    members = []
    for ch, is_private in [(c, False) for c in channels_raw] + [(g, True) for g in private]:
        if not isinstance(ch, dict) or not ch.get("id") or not _selected(ch, opts):
            continue
        chans.append({**ch, "is_private": bool(ch.get("is_private", is_private))})
        members += [{"container_id": ch["id"], "person_key": keys(m)} for m in ch.get("members") or []]
        for day, rel in tree.day_files(ch.get("name") or ch["id"]):
            if day > end + dt.timedelta(days=1):  # day files are local days: keep a day of margin
                continue
            msgs = tree.read_json(rel)
            if not isinstance(msgs, list):
                raise ExportFormatError(f"{opts.path}: {rel} is not a JSON array of messages")
            for msg in msgs:
                if isinstance(msg, dict):
                    row = minimise(msg, ch["id"], keys)
                    if row is not None:
                        rows.append(row)
    return rows, chans, members, user_rows


def _iso_to_ts(value: str) -> str:
    when = dt.datetime.fromisoformat(value.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # the archives' timestamps are UTC (collected by a bot)
    epoch = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return f"{epoch.days * 86400 + epoch.seconds}.{epoch.microseconds:06d}"


def _xml_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.xml"))


def _xml_rows(ctx: SourceContext, opts: SlackExportOptions):
    rows: list[dict[str, Any]] = []
    chans = []
    people: dict[str, str | None] = {}
    for f in _xml_files(opts.path):
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as exc:
            raise ExportFormatError(f"{f}: not well-formed XML ({exc})") from None
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
        for m in root.iter("message"):
            ts, user = m.findtext("ts"), (m.findtext("user") or "").strip()
            if not ts or not user:
                raise ExportFormatError(f"{f}: a <message> lacks <ts> or <user>")
            msgs.append((_iso_to_ts(ts), user, m.get("conversation_id"), m.findtext("text") or ""))
        for ts, user, conv, text in sorted(msgs, key=lambda x: (int(x[0].split(".")[0]), x[0])):
            msg: dict[str, Any] = {"type": "message", "ts": ts, "user": user, "text": text}
            if conv is not None:
                parent = threads.setdefault(conv, (ts, user))
                msg["thread_ts"] = parent[0]
                if parent[0] != ts:
                    msg["parent_user_id"] = parent[1]
            row = minimise(msg, cid, keys)
            if row is not None:
                rows.append(row)
                people.setdefault(row["actor_key"] or "", None)
    user_rows = [{"person_key": k, "is_bot": False, "is_deleted": False, "is_restricted": False}
                 for k in people if k]
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
    rows, chans, members, user_rows = (_xml_rows(ctx, opts) if fmt == "xml" else _export_rows(ctx, opts, end))
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
        "users": pa.Table.from_pylist(user_rows, schema=pa.schema([
            ("person_key", pa.string()), ("is_bot", pa.bool_()), ("is_deleted", pa.bool_()),
            ("is_restricted", pa.bool_())])),
    }
    for stream, table in snapshots.items():
        lake.write_partition(lake.raw_dir(ctx.lake_dir, name, stream), end, table)
    return ExtractReport(source=name, days=lake.days_between(start, end),
                         rows={"messages": landed, **{k: v.num_rows for k, v in snapshots.items()}},
                         details={"format": fmt, "messages_read": len(rows), "channels": len(chans)})


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    return canonicalise_landing(ctx.lake_dir, ctx.source.name, day)

