"""Hostile Slack and Viva Engage (Yammer) exports: every bad input has one asserted outcome, either a
clear error naming the path / member / option, or a quarantine (counts in the report, a JSON file
listing file, index and reason, the rest imported). Exports are built small in tmp_path."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines import lake
from pipelines.sources import slack_export, yammer_export
from pipelines.sources.file_import_formats import ImportRejected
from pipelines.sources.safe_archive import CorruptArchive, TooLarge, UnsafePath
from tests.connectors.conftest import make_ctx

DAY = dt.date(2020, 1, 1)
TS = "1577872800.000100"  # 2020-01-01T10:00:00Z
USERS = [{"id": "U0ALICE", "profile": {"email": "alice@example.org"}},
         {"id": "U0BOB", "profile": {"email": "bob@example.org"}}]
SECRET_TEXT = "the quarterly numbers are secret"


def _msg(i: int, user: str = "U0ALICE", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "ts": f"15778728{i:02d}.000100", "user": user, "text": f"{SECRET_TEXT} {i}", **extra}


def _export(root: Path, days: dict[str, Any] | None = None, *, channels: list[dict[str, Any]] | None = None,
            users: Any = None) -> Path:
    """A Slack export folder: channel "general" (C0GENERAL) with `days` {file name: JSON value or raw
    text}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "channels.json").write_text(json.dumps(channels or [{"id": "C0GENERAL", "name": "general",
                                                                 "members": ["U0ALICE", "U0BOB"]}]))
    (root / "users.json").write_text(users if isinstance(users, str) else json.dumps(users or USERS))
    (root / "general").mkdir(exist_ok=True)
    default = {"2020-01-01.json": [_msg(0), _msg(1, "U0BOB")]}
    for name, content in (default if days is None else days).items():
        (root / "general" / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return root


def _zip_of(folder: Path, target: Path, *, top: str = "workspace") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"{top}/{p.relative_to(folder).as_posix()}")
    return target


def _slack(tmp_path: Path, path: Path, **options: Any) -> tuple[Any, Any]:
    ctx = make_ctx(tmp_path, "slack_export", {"path": str(path), **options})
    return ctx, slack_export.extract(ctx, DAY, DAY)


def _activities(ctx: Any) -> pd.DataFrame:
    return slack_export.canonicalise(ctx, DAY)["activities"]


def _nothing_landed(tmp_path: Path) -> bool:
    return not (tmp_path / "lake").exists() or not list((tmp_path / "lake").rglob("*.parquet"))


def _quarantine(report: Any) -> dict[str, Any]:
    path = Path(report.details["quarantine_file"])
    assert path.is_file() and path.parent.name == f"source={report.source}"
    assert path.parent.parent.name == "raw" and path.parent.parent.parent.name == "quarantine"
    return json.loads(path.read_text())


def _no_clear_identifiers(doc: dict[str, Any]) -> None:
    blob = json.dumps(doc).lower()
    for needle in ("u0alice", "u0bob", "alice@example.org", "bob@example.org", SECRET_TEXT, "x7"):
        assert needle not in blob, needle


# ----------------------------------------------------------------------------- Slack: confinement
@pytest.mark.parametrize("packaging", ["folder", "zip"])
def test_channel_folder_name_escaping_the_export_is_an_error_naming_it(tmp_path: Path, packaging: str) -> None:
    root = _export(tmp_path / "in" / "deep" / "export",
                   channels=[{"id": "C0GENERAL", "name": "general"}, {"id": "C0EVIL", "name": "../../outside_dir"}])
    outside = tmp_path / "in" / "outside_dir"  # where ../../outside_dir of the folder export points
    outside.mkdir()
    (outside / "2020-01-01.json").write_text(json.dumps([_msg(5)]))
    path = root if packaging == "folder" else _zip_of(root, tmp_path / "export.zip")
    with pytest.raises(UnsafePath, match=r"channels\.json: channel 'C0EVIL' has the folder name "
                                         r"'\.\./\.\./outside_dir'.*path escape"):
        _slack(tmp_path, path)
    assert _nothing_landed(tmp_path)


@pytest.mark.parametrize("member", ["/etc/passwd", "workspace/../../outside_dir/2020-01-01.json",
                                    "C:/Windows/win.ini", "workspace\\..\\..\\evil.json"])
def test_zip_member_with_an_absolute_or_dotdot_name_refuses_the_zip(tmp_path: Path, member: str) -> None:
    archive = _zip_of(_export(tmp_path / "export"), tmp_path / "export.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(zipfile.ZipInfo(member), json.dumps([_msg(5)]))
    with pytest.raises(UnsafePath, match=rf"export\.zip: member {re.escape(repr(member))} "
                                         r"(is an absolute path|has a '\.\.' component).*refused"):
        _slack(tmp_path, archive)
    assert _nothing_landed(tmp_path)


def test_zip_symlink_member_refuses_the_zip(tmp_path: Path) -> None:
    archive = _zip_of(_export(tmp_path / "export"), tmp_path / "export.zip")
    link = zipfile.ZipInfo("workspace/general/2020-01-02.json")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(link, "../../../../etc/passwd")
    with pytest.raises(UnsafePath, match=r"member 'workspace/general/2020-01-02\.json' is a symbolic link"):
        _slack(tmp_path, archive)


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_symlinked_day_file_is_refused_naming_it(tmp_path: Path, target: str) -> None:
    root = _export(tmp_path / "export")
    secret = tmp_path / "secret.json" if target == "outside" else root / "general" / "2020-01-01.json"
    if target == "outside":
        secret.write_text(json.dumps([_msg(7)]))
    (root / "general" / "2020-01-02.json").symlink_to(secret)  # any link is refused, even one staying inside
    with pytest.raises(UnsafePath, match=r"export/general/2020-01-02\.json: a symbolic link: links are refused"):
        _slack(tmp_path, root)
    assert _nothing_landed(tmp_path)


def test_symlinked_channel_folder_is_refused_naming_it(tmp_path: Path) -> None:
    root = _export(tmp_path / "export", days={})
    (root / "general").rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "2020-01-01.json").write_text(json.dumps([_msg(1)]))
    (root / "general").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePath, match=r"export/general: a symbolic link"):
        _slack(tmp_path, root)
    assert _nothing_landed(tmp_path)


def test_a_fifo_as_day_file_is_refused_and_does_not_block(tmp_path: Path) -> None:
    root = _export(tmp_path / "export")
    os.mkfifo(root / "general" / "2020-01-01.json.tmp")
    (root / "general" / "2020-01-01.json").unlink()
    (root / "general" / "2020-01-01.json.tmp").rename(root / "general" / "2020-01-01.json")
    with pytest.raises(UnsafePath, match=r"general/2020-01-01\.json: not a regular file"):
        _slack(tmp_path, root)


# ----------------------------------------------------------------------------- Slack: bad records
@pytest.mark.parametrize(("bad", "reason"), [
    ({"ts": "not-a-ts"}, "ts is not a Slack timestamp"),
    ({"ts": None}, "ts missing"),
    ({"ts": 1577872801.0001}, "ts is not a Slack timestamp"),
    ({"ts": "99999999999999.1"}, "ts is not a Slack timestamp"),
    ({"thread_ts": {"nested": True}}, "thread_ts is not a Slack timestamp"),
    ({"user": ["U0ALICE"]}, "user is not a string"),
    ({"reply_count": "many"}, "reply_count is not a count"),
    ({"reactions": [{"name": {"e": "alice@example.org"}, "users": ["U0BOB"]}]}, "reactions are malformed"),
])
def test_one_bad_message_is_quarantined_and_the_rest_imported(tmp_path: Path, bad: dict[str, Any],
                                                              reason: str) -> None:
    broken = {k: v for k, v in {**_msg(2), **bad}.items() if v is not None}
    root = _export(tmp_path / "export", {"2020-01-01.json": [_msg(0), broken, _msg(1, "U0BOB")]})
    ctx, report = _slack(tmp_path, root)
    assert report.details["quarantined"] == {reason: 1}
    assert report.rows["messages"] == 2
    acts = _activities(ctx)
    assert sorted(acts["occurred_at"].dt.second) == [0, 1]  # both good messages landed
    doc = _quarantine(report)
    assert doc["records"] == [{"file": "general/2020-01-01.json", "unit": "message", "index": 1, "reason": reason}]
    assert doc["quarantined"] == {reason: 1} and doc["interval"] == [DAY.isoformat()] * 2
    _no_clear_identifiers(doc)


@pytest.mark.parametrize(("content", "reason"), [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than max_json_depth=64"),
    (json.dumps([_msg(3, blocks=[{"elements": json.loads("[" * 80 + "]" * 80)}])]),
     "nested deeper than max_json_depth=64"),
    ('[{"ts": "1577872803.000100", "text": "cut', "not valid JSON"),
    (json.dumps([_msg(3), _msg(4)])[:-1] + ', {"ts": ', "not valid JSON"),  # good messages first: none kept
    (b"[\xff\xfe]".decode("latin-1"), "not valid JSON"),
    ('{"messages": []}', "not a JSON array of messages"),
])
def test_a_bad_day_file_is_quarantined_whole_and_the_other_days_imported(tmp_path: Path, content: str,
                                                                         reason: str) -> None:
    root = _export(tmp_path / "export", {"2020-01-01.json": [_msg(0)], "2019-12-31.json": content})
    ctx, report = _slack(tmp_path, root)
    assert report.details["quarantined"] == {reason: 1}
    assert report.rows["messages"] == 1 and len(_activities(ctx)) == 1
    doc = _quarantine(report)
    assert doc["records"] == [{"file": "general/2019-12-31.json", "unit": "file", "index": None, "reason": reason}]
    _no_clear_identifiers(doc)


def test_bad_records_reject_lists_them_and_writes_nothing(tmp_path: Path) -> None:
    root = _export(tmp_path / "export", {"2020-01-01.json": [_msg(0), {**_msg(2), "ts": "not-a-ts"}],
                                         "2019-12-31.json": "[[["})
    with pytest.raises(slack_export.ExportFormatError,
                       match=r"(?s)2 bad record\(s\), nothing was imported.*general/2019-12-31\.json: not valid "
                             r"JSON.*general/2020-01-01\.json: message 1: ts is not a Slack timestamp"):
        _slack(tmp_path, root, bad_records="reject")
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize(("users", "match"), [
    ('[{"id": "U0ALICE"', r"users\.json is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, r"users\.json is nested deeper than max_json_depth=64"),
    ('{"U0ALICE": {}}', r"users\.json is not a JSON array"),
])
def test_a_bad_top_level_file_is_an_error_naming_it(tmp_path: Path, users: str, match: str) -> None:
    root = _export(tmp_path / "export", users=users)
    with pytest.raises(slack_export.ExportFormatError, match=match):
        _slack(tmp_path, root)
    assert _nothing_landed(tmp_path)


def test_bad_channel_and_user_entries_are_quarantined(tmp_path: Path) -> None:
    channels = [{"id": "C0GENERAL", "name": "general"}, {"id": "C0RANDOM", "name": "random", "members": "all"},
                "C0NOTANOBJECT"]
    root = _export(tmp_path / "export", channels=channels, users=[*USERS, {"id": 42}])
    ctx, report = _slack(tmp_path, root)
    assert report.details["quarantined"] == {"channel entry is not a JSON object": 1,
                                             "members is not a list of user ids": 1,
                                             "user id missing or not a string": 1}
    assert report.rows["conversations"] == 1 and report.rows["messages"] == 2
    assert [(r["file"], r["index"]) for r in _quarantine(report)["records"]] == [
        ("users.json", 2), ("channels.json", 1), ("channels.json", 2)]


def test_each_run_writes_its_own_quarantine_file(tmp_path: Path) -> None:
    root = _export(tmp_path / "export", {"2020-01-01.json": [_msg(0), {**_msg(1), "ts": "x"}]})
    _, first = _slack(tmp_path, root)
    _, second = _slack(tmp_path, root)
    assert first.details["quarantine_file"] != second.details["quarantine_file"]
    assert len(list(Path(first.details["quarantine_file"]).parent.glob("*.json"))) == 2


def test_a_clean_export_reports_nothing_quarantined(tmp_path: Path) -> None:
    _, report = _slack(tmp_path, _export(tmp_path / "export"))
    assert report.details["quarantined"] == {} and report.details["quarantine_file"] is None
    assert not (tmp_path / "lake" / "quarantine").exists()


# ----------------------------------------------------------------------------- Slack: sizes
@pytest.mark.parametrize("packaging", ["folder", "zip"])
def test_a_day_file_over_max_member_bytes_is_an_error_naming_it_and_the_option(tmp_path: Path,
                                                                               packaging: str) -> None:
    root = _export(tmp_path / "export", {"2020-01-01.json": [_msg(i) for i in range(40)]})
    path = root if packaging == "folder" else _zip_of(root, tmp_path / "export.zip")
    size = (root / "general" / "2020-01-01.json").stat().st_size
    with pytest.raises(TooLarge, match=rf"general/2020-01-01\.json: (declares )?{size} bytes.*max_member_bytes=2000"):
        _slack(tmp_path, path, max_member_bytes=2000)
    assert _nothing_landed(tmp_path)


def test_an_import_over_max_total_bytes_is_an_error(tmp_path: Path) -> None:
    root = _export(tmp_path / "export", {f"2020-01-0{d}.json": [_msg(i) for i in range(30)] for d in (1, 2)})
    with pytest.raises(TooLarge, match=r"this import has read .* more than max_total_bytes=3000"):
        _slack(tmp_path, root, max_total_bytes=3000)


def _zeros_zip(path: Path, size: int) -> Path:
    root = _export(path.parent / "src")
    _zip_of(root, path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("workspace/general/2019-12-31.json", b"[" + b" " * size + b"]")
    return path


def test_a_zip_member_with_a_high_compression_ratio_is_an_error(tmp_path: Path) -> None:
    archive = _zeros_zip(tmp_path / "bomb.zip", 3 * 1024 * 1024)
    with pytest.raises(TooLarge, match=r"bomb\.zip!workspace/general/2019-12-31\.json: declares 3\.0 MiB from "
                                       r".*max_compression_ratio=200"):
        _slack(tmp_path, archive)


def test_a_zip_member_whose_size_header_lies_is_stopped(tmp_path: Path) -> None:
    archive = _zeros_zip(tmp_path / "liar.zip", 3 * 1024 * 1024)
    data = bytearray(archive.read_bytes())
    name = b"workspace/general/2019-12-31.json"
    # the uncompressed size of the member, in its local header and in the central directory: 100 bytes
    for pos, sig, field in ((data.index(name) - 30, b"PK\x03\x04", 22), (data.rindex(name) - 46, b"PK\x01\x02", 24)):
        assert data[pos:pos + 4] == sig
        struct.pack_into("<I", data, pos + field, 100)
    archive.write_bytes(bytes(data))
    assert zipfile.ZipFile(archive).getinfo(name.decode()).file_size == 100
    with pytest.raises(CorruptArchive, match=r"liar\.zip!workspace/general/2019-12-31\.json: .*CRC"):
        _slack(tmp_path, archive)
    assert _nothing_landed(tmp_path)


# ----------------------------------------------------------------------------- Viva Engage export
MESSAGES_HEADER = "id,thread_id,replied_to_id,sender_id,created_at,body"


def _yammer_zip(path: Path, messages: str, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Messages.csv", ("\ufeff" + messages).encode())
        z.writestr("Users.csv", "\ufeffid,email\r\n3,alice@example.org\r\n4,bob@example.org\r\n".encode())
        for name, data in (extra or {}).items():
            z.writestr(zipfile.ZipInfo(name), data)
    return path


def _yammer(tmp_path: Path, path: Path, **options: Any) -> tuple[Any, Any]:
    ctx = make_ctx(tmp_path, "yammer_export", {"path": str(path), **options})
    return ctx, yammer_export.extract(ctx, DAY, DAY)


GOOD_ROWS = ("11,11,,3,2020-01-01T10:00:00Z,hello [[user:4]]\r\n"
             "12,11,11,4,2020-01-01T11:00:00Z,an answer\r\n")


@pytest.mark.parametrize(("row", "line", "reason"), [
    ("13,11,11,x7,2020-01-01T12:00:00Z,bad sender\r\n", 4, "sender_id is not a numeric Yammer id"),
    ("13,11,11,4,yesterday,bad time\r\n", 4, "created_at is not a timestamp"),
    ("13,11,11\r\n", 4, "field count differs from the header"),
    ("abc,11,,3,2020-01-01T12:00:00Z,x\r\n", 4, "id is not a numeric Yammer id"),
])
def test_yammer_broken_csv_row_is_quarantined_with_file_and_line(tmp_path: Path, row: str, line: int,
                                                                 reason: str) -> None:
    path = _yammer_zip(tmp_path / "export.zip", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}{row}")
    ctx, report = _yammer(tmp_path, path)
    assert report.details["quarantined"] == {reason: 1}
    assert report.rows["messages"] == 2
    acts = yammer_export.canonicalise(ctx, DAY)["activities"]
    assert set(acts["verb"]) == {"post", "reply", "mention"}
    doc = _quarantine(report)
    assert doc["records"] == [{"file": "export.zip!Messages.csv", "unit": "line", "index": line, "reason": reason}]
    _no_clear_identifiers(doc)


def test_yammer_bad_rows_with_reject_keep_the_all_or_nothing_import(tmp_path: Path) -> None:
    path = _yammer_zip(tmp_path / "export.zip", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}13,11,11,4,yesterday,x\r\n")
    with pytest.raises(ImportRejected, match=r"export\.zip!Messages\.csv:line 4: created_at 'yesterday'"):
        _yammer(tmp_path, path, bad_records="reject")
    assert not (tmp_path / "lake").exists()


def test_yammer_row_that_is_not_utf8_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Messages.csv", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}".encode() +
                   b"13,11,11,4,2020-01-01T12:00:00Z,caf\xe9\r\n")
    _, report = _yammer(tmp_path, path)
    assert report.details["quarantined"] == {"not UTF-8": 1} and report.rows["messages"] == 2


@pytest.mark.parametrize(("member", "match"), [
    ("../Messages.csv", r"member '\.\./Messages\.csv' has a '\.\.' component"),
    ("/abs/Users.csv", r"member '/abs/Users\.csv' is an absolute path"),
])
def test_yammer_zip_with_an_escaping_member_is_rejected_naming_it(tmp_path: Path, member: str, match: str) -> None:
    path = _yammer_zip(tmp_path / "export.zip", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}", {member: b"id\r\n"})
    with pytest.raises(ImportRejected, match=match):
        _yammer(tmp_path, path)
    assert not (tmp_path / "lake").exists()


def test_yammer_member_over_max_member_bytes_is_rejected_naming_it(tmp_path: Path) -> None:
    path = _yammer_zip(tmp_path / "export.zip", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}")
    size = zipfile.ZipFile(path).getinfo("Messages.csv").file_size
    with pytest.raises(ImportRejected, match=rf"export\.zip!Messages\.csv: declares {size} bytes uncompressed, more "
                                             r"than max_member_bytes=100 bytes; raise the option max_member_bytes"):
        _yammer(tmp_path, path, max_member_bytes=100)
    assert not (tmp_path / "lake").exists()


def test_yammer_symlinked_zip_in_the_export_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _yammer_zip(folder / "2020-01-01.zip", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}")
    (folder / "2020-01-02.zip").symlink_to(_yammer_zip(tmp_path / "other.zip", f"{MESSAGES_HEADER}\r\n"))
    with pytest.raises(ImportRejected, match=r"exports/2020-01-02\.zip: a symbolic link"):
        _yammer(tmp_path, folder)


def test_yammer_zip_bomb_member_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Messages.csv", MESSAGES_HEADER.encode() + b"\r\n" + b"\r\n" * (3 * 1024 * 1024))
    with pytest.raises(ImportRejected, match=r"export\.zip!Messages\.csv: .*max_compression_ratio=200"):
        _yammer(tmp_path, path)


def test_yammer_clean_export_reports_nothing_quarantined(tmp_path: Path) -> None:
    ctx, report = _yammer(tmp_path, _yammer_zip(tmp_path / "export.zip", f"{MESSAGES_HEADER}\r\n{GOOD_ROWS}"))
    assert report.details["quarantined"] == {} and report.details["quarantine_file"] is None
    assert lake.partition_days(lake.raw_dir(ctx.lake_dir, "yammer_export", "messages")) == [DAY]

