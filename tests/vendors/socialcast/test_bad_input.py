"""Bad Socialcast archives: every one has one asserted outcome, a quarantine (counts, a JSON file naming
file, record and reason, the rest imported) or a refusal naming the file / record / member / option,
with nothing written. Archives are built small in tmp_path around one good message page."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipelines.sources import socialcast_archive
from pipelines.sources.file_import_formats import ImportRejected
from tests.vendors.yammer.helpers import make_ctx

DAY = dt.date(2016, 6, 1)
SECRET = "the merger talks are secret"


def _message(mid: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "user": {"id": 7, "name": "Ann Example"}, "message_type": "status_message",
            "body": f"{SECRET} {mid}", "created_at": "2016-06-01T10:00:00+00:00", "comments": [], "likes": [],
            **extra}


def _archive(root: Path, files: dict[str, Any]) -> Path:
    """A folder with `good.json` (two good messages) and `files` {relative name: JSON value or bytes}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "good.json").write_text(json.dumps({"messages": [_message(1), _message(2)]}))
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return root


def _run(tmp_path: Path, path: Path, **options: Any) -> tuple[Any, Any]:
    ctx = make_ctx(tmp_path, "socialcast_archive", {"path": str(path), **options})
    return ctx, socialcast_archive.extract(ctx, DAY, DAY)


def _quarantine(report: Any) -> dict[str, Any]:
    doc = json.loads(Path(report.details["quarantine_file"]).read_text())
    assert SECRET not in json.dumps(doc) and "Ann Example" not in json.dumps(doc)
    return doc


def _posts(ctx: Any) -> list[str]:
    acts = socialcast_archive.canonicalise(ctx, DAY)["activities"]
    return sorted(acts.loc[acts["verb"] == "post", "event_id"])


def _nothing_landed(tmp_path: Path) -> bool:
    return not list((tmp_path / "lake").rglob("*.parquet")) if (tmp_path / "lake").exists() else True


DEEP = b"[" * 100_000 + b"]" * 100_000
BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<messages type=\"array\"><message><body>&lol2;</body></message></messages>")


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "not valid JSON"),
    (b'{"messages": [], "x": "\xff\xfe"}', "not UTF-8 text"),
    (DEEP, "nested deeper than max_json_depth=64"),
    (BOMB, "XML with a DOCTYPE or entity declaration (refused: an API answer has none)"),
    (b"<messages><message><id>1</id></messages>", "not well-formed XML"),
    (b"<rss><channel/></rss>", "not a Socialcast API document"),
    (json.dumps({"errors": ["Unauthorized"]}).encode(), "not a Socialcast API document"),
    (json.dumps([1, 2, 3]).encode(), "not a Socialcast API document"),
    (json.dumps({"messages": {"id": 1}}).encode(), "messages is not a list"),
])
def test_a_file_that_is_no_api_document_is_quarantined_whole_and_the_rest_imported(
        tmp_path: Path, content: bytes, reason: str) -> None:
    ctx, report = _run(tmp_path, _archive(tmp_path / "a", {"bad.json" if content[:1] != b"<" else "bad.xml": content}))
    assert report.details["quarantined"] == {reason: 1}
    (record,) = _quarantine(report)["records"]
    assert record["file"] in ("bad.json", "bad.xml") and record["unit"] == "file" and record["index"] is None
    assert _posts(ctx) == ["m1", "m2"]


def test_xml_nested_too_deep_is_one_bad_record(tmp_path: Path) -> None:
    deep = b"<messages type=\"array\"><message>" + b"<a>" * 80 + b"x" + b"</a>" * 80 + b"</message></messages>"
    _, report = _run(tmp_path, _archive(tmp_path / "a", {"deep.xml": deep}))
    assert report.details["quarantined"] == {"nested deeper than max_json_depth=64": 1}


@pytest.mark.parametrize(("message", "reason", "detail"), [
    (_message(5, id="abc"), "message id missing or not an integer", "message id missing or not an integer"),
    (_message(5, user=None), "message has no user id", "message 5: no user id (no author)"),
    (_message(5, created_at="yesterday"), "message created_at missing or not a time",
     "message 5: created_at is not a time"),
    (_message(5, comments={"id": 3}), "message comments is not a list", "message 5: comments is not a list"),
    (_message(5, comments=[{"id": 9, "user": {"id": 8}, "created_at": "soon"}]),
     "comment created_at missing or not a time", "message 5, comment 0 (id 9): created_at is not a time"),
    (_message(5, likes=[{"id": 1, "user": {"name": "no id"}}]), "like has no user id",
     "message 5, like 0: no user id"),
    ("just a string", "message is not an object", "message is not an object"),
])
def test_a_bad_record_is_quarantined_naming_file_and_record_or_rejects_with_bad_records_reject(
        tmp_path: Path, message: Any, reason: str, detail: str) -> None:
    folder = _archive(tmp_path / "a", {"page2.json": {"messages": [_message(3), message]}})
    ctx, report = _run(tmp_path / "q", folder)
    assert report.details["quarantined"] == {reason: 1}
    (record,) = _quarantine(report)["records"]
    assert (record["file"], record["unit"], record["index"], record["reason"]) == ("page2.json", "message", 1, reason)
    posts = _posts(ctx)
    # a bad comment or like is set aside alone: its message stays
    assert "m3" in posts and ("m5" in posts) == reason.startswith(("like", "comment"))

    with pytest.raises(ImportRejected, match=re.escape(f"page2.json:message 1: {detail}")):
        _run(tmp_path / "r", folder, bad_records="reject")
    assert _nothing_landed(tmp_path / "r")


def test_json_lines_files_are_read_line_by_line_and_a_bad_line_is_one_record(tmp_path: Path) -> None:
    lines = "\n".join([json.dumps(_message(11)), "{broken", json.dumps(_message(12))]) + "\n"
    ctx, report = _run(tmp_path, _archive(tmp_path / "a", {"messages-0001.json": lines.encode()}))
    assert report.details["quarantined"] == {"line is not valid JSON": 1}
    (record,) = _quarantine(report)["records"]
    assert (record["unit"], record["index"]) == ("line", 2)
    assert _posts(ctx) == ["m1", "m11", "m12", "m2"]


def test_other_files_are_ignored_and_counted(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "a", {"attachments/report.pdf": b"%PDF-1.4", ".hidden.json": b"{",
                                       "__MACOSX/good.json": b"\x00\x05"})
    _, report = _run(tmp_path, folder)
    assert report.details["files_ignored"] == 3 and report.details["quarantined"] == {}


def test_an_archive_without_any_api_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    with pytest.raises(ImportRejected, match="no Socialcast API file"):
        _run(tmp_path, empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.json").write_text('{"errors": []}')
    with pytest.raises(ImportRejected, match=r"none of its 1 .json / .xml file\(s\).*\n  a.json: not a Socialcast"):
        _run(tmp_path, bad)
    with pytest.raises(ImportRejected, match="no such file or folder"):
        _run(tmp_path, tmp_path / "missing")
    assert _nothing_landed(tmp_path)


def test_a_zip_member_escaping_the_archive_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("good.json", json.dumps({"messages": [_message(1)]}))
        z.writestr("../../etc/evil.json", "{}")
    with pytest.raises(ImportRejected, match=r"archive.zip: member '../../etc/evil.json' has a '..' component"):
        _run(tmp_path, path)
    assert _nothing_landed(tmp_path)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_symbolic_link_in_the_folder_is_refused(tmp_path: Path, what: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"messages": [_message(9)]}))
    folder = _archive(tmp_path / "a", {})
    os.symlink(outside / "secret.json" if what == "file" else outside,
               folder / ("linked.json" if what == "file" else "linked"))
    with pytest.raises(ImportRejected, match=r"linked(\.json)?: a symbolic link"):
        _run(tmp_path, folder)
    assert _nothing_landed(tmp_path)


def test_a_file_over_max_member_bytes_is_refused_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match="good.json: .*max_member_bytes=100 bytes"):
        _run(tmp_path, _archive(tmp_path / "a", {}), max_member_bytes=100)


def test_a_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("messages.json", b" " * (8 * 1024 * 1024))
    with pytest.raises(ImportRejected, match="max_compression_ratio"):
        _run(tmp_path, path)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValidationError, match="base_url"):
        socialcast_archive.SocialcastArchiveOptions.model_validate({"path": "x", "base_url": "https://x"})


def test_one_file_may_be_imported_alone(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "a", {})
    ctx, _ = _run(tmp_path, folder / "good.json")
    assert _posts(ctx) == ["m1", "m2"]


def test_a_later_run_replaces_exactly_its_days(tmp_path: Path) -> None:
    folder = _archive(tmp_path / "a", {})
    ctx, first = _run(tmp_path, folder)
    assert first.days == [DAY]
    (folder / "good.json").write_text(json.dumps({"messages": [_message(1)]}))  # message 2 gone from the archive
    again = socialcast_archive.extract(ctx, DAY, DAY)
    assert again.details["days_rewritten"] == [DAY.isoformat()] and _posts(ctx) == ["m1"]
    (folder / "good.json").write_text(json.dumps({"messages": [_message(1, created_at="2016-07-01T10:00:00Z")]}))
    moved = socialcast_archive.extract(ctx, DAY, DAY)  # its only message now lies after the interval
    assert moved.details["outside_interval"]["after"] == 1 and moved.details["outside_interval"]["examples"] == ["m1"]
    assert socialcast_archive.canonicalise(ctx, DAY)["activities"].empty
