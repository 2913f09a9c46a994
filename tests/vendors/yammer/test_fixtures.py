"""Every Viva Engage fixture (tests/data/yammer, see its PROVENANCE.md) parses into privacy-safe rows,
or is rejected with a message that says why."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest

from pipelines.sources import yammer, yammer_export
from pipelines.sources.file_import_formats import ImportRejected
from pipelines.sources.yammer_messages import containers_frame, native_id, parse_time, rows_table
from tests.vendors.yammer.helpers import make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "yammer"


def _load(name: str) -> object:
    return json.loads((DATA / name).read_text())


def test_camel_messages_person_update_and_system_message(tmp_path: Path) -> None:
    payload = _load("camel_messages.json")
    ctx = make_ctx(tmp_path, "yammer", {})
    rows = yammer.minimise_payload(payload["messages"], ctx)
    update, system = rows
    assert update["kind"] == "person" and update["message_id"] == "305298242"
    assert update["thread_id"] == "305298242" and update["replied_to_id"] is None
    assert update["content_length"] == len("Testing yammer API...")
    assert update["created_at"].isoformat() == "2013-06-25T18:14:45+00:00"
    # the like is by the author himself: kept as a key, never as the id 1499642294
    assert update["like_keys"] == [update["actor_key"]] and "1499642294" not in str(rows)
    # the system message ("has #joined the network") has no sender: no activity, no text length
    assert system["kind"] == "system" and system["content_length"] is None
    table = rows_table(rows)
    assert "Testing" not in str(table.to_pylist()) and "redhat" not in str(table.to_pylist())


@pytest.mark.parametrize("name", ["pnpcli_message-get.json", "pnpcli_message-add.json", "pnpcli_message-list.json"])
def test_pnpcli_message_objects_keep_16_digit_ids_exactly(name: str, tmp_path: Path) -> None:
    payload = _load(name)
    msgs = payload if isinstance(payload, list) else [payload]
    rows = yammer.minimise_payload(msgs, make_ctx(tmp_path, "yammer", {}))
    assert [r["message_id"] for r in rows] == [str(m["id"]) for m in msgs]
    assert all(len(r["message_id"]) == 16 for r in rows)
    assert all(r["container_id"] == "31158067201" and r["kind"] == "person" for r in rows)
    assert native_id(2000337749565441.0) == "2000337749565441"  # a float read by pandas converts back exactly


def test_pnpcli_user_is_keyed_by_email_like_every_other_platform(tmp_path: Path) -> None:
    user = _load("pnpcli_user-get.json")
    ctx = make_ctx(tmp_path, "yammer", {})
    keys = yammer.UserKeys(ctx)
    keys.learn(str(user["id"]), user["email"])
    assert keys(user["id"]) == ctx.pseudonymiser.email("JohnDoe@contoso.onmicrosoft.com")
    assert yammer._primary_email(user) == user["email"]  # the contact block gives the same address


def test_pnpcli_group_becomes_a_community_container() -> None:
    group = _load("pnpcli_group-list.json")[0]
    frame = containers_frame("yammer", [{"id": native_id(group["id"]), "private": group["privacy"] == "private",
                                         "members": group["stats"]["members"],
                                         "created_at": parse_time(group["created_at"])}])
    row = frame[frame["container_id"] == "31158067201"].iloc[0]
    assert row["kind"] == "community" and row["visibility"] == "public" and row["member_count"] == 1
    assert "Contoso Hub" not in frame.to_string()  # names are never kept


def test_pnpcli_network_object_is_rejected_as_not_a_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a message object.*'network'"):
        yammer.minimise_payload(_load("pnpcli_network-list.json"), make_ctx(tmp_path, "yammer", {}))


def _zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in files.items():
            z.writestr(name, ("\ufeff" + text).encode())
    return out.getvalue()


def test_export_with_exactly_the_discourse_importer_columns_is_imported(tmp_path: Path) -> None:
    cols = _load("discourse_export_csv_columns_used.json")

    def header(name: str) -> str:
        return ",".join(c.split(" (")[0] for c in cols[name])
    messages = header("Messages.csv")  # includes message_type
    assert messages.startswith("id,thread_id,replied_to_id")
    values = {"id": "11", "thread_id": "11", "replied_to_id": "", "group_id": "7", "sender_id": "3",
              "created_at": "2019/01/02 10:00:00 +0000", "deleted_at": "null", "in_private_conversation": "false",
              "participants": "user:3", "body": "hello [[user:4]]", "attachments": "", "closed": "",
              "message_type": "question"}
    reply = {**values, "id": "12", "replied_to_id": "11", "sender_id": "4", "message_type": "update",
             "body": "an answer", "created_at": "2019-01-02T11:00:00Z"}
    row = ",".join(values[c] for c in messages.split(","))
    row2 = ",".join(reply[c] for c in messages.split(","))
    users = header("Users.csv")
    user_rows = [",".join({"id": uid, "email": f"u{uid}@example.org"}.get(c, "") for c in users.split(","))
                 for uid in ("3", "4")]
    path = tmp_path / "export.zip"
    path.write_bytes(_zip({"Messages.csv": f"{messages}\r\n{row}\r\n{row2}\r\n",
                           "Users.csv": "\r\n".join([users, *user_rows]) + "\r\n",
                           "Groups.csv": f"{header('Groups.csv')}\r\n7,Team,\r\n"}))
    ctx = make_ctx(tmp_path, "yammer_export", {"path": str(path)})

    day = dt.date(2019, 1, 2)
    report = yammer_export.extract(ctx, day, day)
    assert report.rows["messages"] == 2 and report.details["identity_matched_share"] == 1.0
    acts = yammer_export.canonicalise(ctx, day)["activities"].set_index("event_id")
    assert acts.loc["11", "verb"] == "post" and bool(acts.loc["11", "is_question"])
    assert acts.loc["12", "target_key"] == acts.loc["11", "actor_key"] == ctx.pseudonymiser.email("u3@example.org")
    assert acts.loc["11:mention:" + ctx.pseudonymiser.email("u4@example.org"), "verb"] == "mention"


@pytest.mark.parametrize(("messages", "reason"), [
    ("id,thread_id,sender_id\r\n1,1,3\r\n", r"Messages.csv:line 1: missing column\(s\) \['created_at'\]"),
    ("id,thread_id,sender_id,created_at\r\n1,1,3,yesterday\r\n", r"Messages.csv:line 2: created_at 'yesterday'"),
    ("id,thread_id,sender_id,created_at\r\n1,1,3,2019-01-02T10:00:00Z\r\n2,1,x7,2019-01-02T10:00:00Z\r\n",
     r"Messages.csv:line 3: sender_id 'x7' is not a numeric"),
    ('id,thread_id,sender_id,created_at,body\r\n1,1,3,2019-01-02T10:00:00Z,"two\r\nlines"\r\n2,1,3\r\n',
     r"Messages.csv:line 4: 3 fields, the header has 5"),
])
def test_malformed_export_is_rejected_with_file_line_and_reason_and_nothing_is_landed(
        tmp_path: Path, messages: str, reason: str) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(_zip({"Messages.csv": messages, "Users.csv": "id,email\r\n3,a@example.org\r\n"}))
    # a missing column always rejects; a bad row is quarantined by default (tests/badinput/test_exports.py),
    # bad_records=reject keeps the all-or-nothing import
    ctx = make_ctx(tmp_path, "yammer_export", {"path": str(path), "bad_records": "reject"})

    with pytest.raises(ImportRejected, match=reason):
        yammer_export.extract(ctx, dt.date(2019, 1, 1), dt.date(2019, 1, 3))
    assert not (tmp_path / "lake").exists()


def test_a_file_that_is_not_a_zip_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    path.write_bytes((DATA / "camel_messages.json").read_bytes())
    ctx = make_ctx(tmp_path, "yammer_export", {"path": str(path)})

    with pytest.raises(ImportRejected, match="export.zip: not a zip file"):
        yammer_export.extract(ctx, dt.date(2019, 1, 1), dt.date(2019, 1, 1))


def test_options_need_exactly_one_input() -> None:
    with pytest.raises(ValueError, match="exactly one of path"):
        yammer_export.YammerExportOptions.model_validate({})
