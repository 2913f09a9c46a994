"""Workspace exports and the Chatterjee XML archives into the Slack landing; expected counts come from
reading the files by hand (numbers in the comments) or with a regex independent of the importer."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines import lake
from pipelines.sources import load, slack_export
from tests.connectors.conftest import EXPORTS, make_ctx


def _import(tmp_path: Path, path: Path, start: dt.date, end: dt.date) -> pd.DataFrame:
    ctx = make_ctx(tmp_path, "slack_export", {"path": str(path)})
    module = load("slack_export")
    module.extract(ctx, start, end)
    frames = [module.canonicalise(ctx, d).get("activities") for d in lake.days_between(start, end)]
    return pd.concat([f for f in frames if f is not None], ignore_index=True)


def test_hfaran_2016_export(tmp_path: Path) -> None:
    acts = _import(tmp_path, EXPORTS / "export_hfaran_testarchive", dt.date(2016, 1, 14), dt.date(2016, 3, 29))
    counts = acts["verb"].value_counts().to_dict()
    # 158 messages: 94 bot_message, 8 channel_join, 3 bot_add, 1 file_comment (system), 49 plain
    # messages + 3 file_share by people = 52 posts; no threads
    assert counts.get("post") == 52 and "reply" not in counts
    # the only reaction is U0BMYT2FL's :botman: on a bot message: counted, with no person as target
    reactions = acts[acts["verb"] == "reaction"]
    assert len(reactions) == 1 and reactions["target_key"].isna().all()
    # 14 messages address another member as "<@U..>:"; joins and "uploaded a file" are not mentions
    assert counts.get("mention") == 14
    assert acts["is_edited"].sum() == 1  # the edited city list
    assert acts["event_id"].is_unique


def test_slackdump_export_threads_and_tombstone(tmp_path: Path) -> None:
    acts = _import(tmp_path, EXPORTS / "export_slackdump_obfuscated", dt.date(2025, 1, 10), dt.date(2025, 1, 24))
    posts = acts[acts["verb"] == "post"]
    replies = acts[acts["verb"] == "reply"]
    # 15 messages: 1 channel_join, 1 bot message (edited), 1 tombstone parent, 9 posts, 4 replies
    assert len(posts) == 10 and posts["is_deleted"].sum() == 1
    assert len(replies) == 4
    # each reply targets its parent's author, including the deleted parent's
    parents = posts.set_index("event_id")["actor_key"]
    assert (replies["target_key"].to_numpy() == parents.loc[replies["parent_id"]].to_numpy()).all()
    assert set(acts["verb"]) == {"post", "reply"}


def test_zip_export_equals_folder_export(tmp_path: Path) -> None:
    folder = EXPORTS / "export_slackdump_obfuscated"
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in folder.rglob("*"):
            z.write(p, Path("workspace") / p.relative_to(folder))
    days = (dt.date(2025, 1, 10), dt.date(2025, 1, 24))
    a = _import(tmp_path / "a", folder, *days)
    b = _import(tmp_path / "b", archive, *days)
    pd.testing.assert_frame_equal(a, b)


def test_thread_broadcast_counted_once_as_reply(tmp_path: Path) -> None:
    src = json.loads((EXPORTS / "export_zulip_fixtures" / "thread_with_broadcast_reply.json").read_text())
    folder = tmp_path / "export"
    (folder / "random").mkdir(parents=True)
    (folder / "channels.json").write_text(json.dumps([{"id": "C0RANDOM", "name": "random", "members": []}]))
    (folder / "users.json").write_text("[]")
    # the broadcast appears twice, as in history + replies
    (folder / "random" / "2015-06-12.json").write_text(json.dumps(src + [src[-1]]))
    acts = _import(tmp_path, folder, dt.date(2015, 6, 12), dt.date(2015, 6, 12))
    assert acts["verb"].value_counts().to_dict() == {"post": 1, "reply": 2}
    root_author = acts.loc[acts["verb"] == "post", "actor_key"].iloc[0]
    assert (acts.loc[acts["verb"] == "reply", "target_key"] == root_author).all()


def test_zulip_day_file_broadcast_mentions_are_not_people(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / "random").mkdir(parents=True)
    shutil.copy(EXPORTS / "export_zulip_fixtures" / "test_slack_importer_random_2018-01-20.json",
                folder / "random" / "2018-01-20.json")
    (folder / "channels.json").write_text(json.dumps([{"id": "C0RANDOM", "name": "random", "members": []}]))
    acts = _import(tmp_path, folder, dt.date(2018, 1, 20), dt.date(2018, 1, 20))
    # 11 messages: 3 channel_join; 7 plain messages + 1 file_share = 8 posts; <!channel>, @everyone and
    # the author's own "<@U..> uploaded a file" are no mentions
    assert acts["verb"].value_counts().to_dict() == {"post": 8}


def _xml_expected(path: Path) -> dict[str, int]:
    raw = path.read_text(encoding="utf-8")
    msgs = re.findall(r'<message conversation_id="(\d+)">\s*<ts>[^<]*</ts>\s*<user>([^<]*)</user>\s*<text>(.*?)</text>',
                      raw, re.S)
    conversations = {c for c, _, _ in msgs}
    mentions = 0
    for _, user, text in msgs:
        names = set(re.findall(r"<@([^>|\s]+)", html.unescape(text)))
        mentions += len(names - {user})
    return {"messages": len(msgs), "post": len(conversations), "reply": len(msgs) - len(conversations),
            "mention": mentions}


def test_chatterjee_xml_archive(tmp_path: Path) -> None:
    path = EXPORTS / "chatterjee_racket_2019_first120.xml"
    expected = _xml_expected(path)
    assert expected["messages"] == 120
    acts = _import(tmp_path, path, dt.date(2018, 12, 31), dt.date(2019, 1, 31))
    counts = acts["verb"].value_counts().to_dict()
    assert counts.get("post") == expected["post"]
    assert counts.get("reply") == expected["reply"]
    assert counts.get("mention", 0) == expected["mention"] and expected["mention"] > 0
    # names and text never land
    blob = "\n".join(str(v) for p in (tmp_path / "lake").rglob("*.parquet")
                     for col in pq.read_table(p).columns for v in col.to_pylist())
    assert "Priscila" not in blob and "reopen" not in blob


@pytest.mark.parametrize("bad", ["missing", "not_export", "bad_json"])
def test_bad_inputs_are_rejected_with_a_clear_error(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "in"
    if bad == "not_export":
        path.mkdir()
        (path / "readme.txt").write_text("x")
    elif bad == "bad_json":
        (path / "general").mkdir(parents=True)
        (path / "channels.json").write_text('[{"id": "C1", "name": "general"}]')
        (path / "general" / "2020-01-01.json").write_text('[{"ts": "1.1"')
    # by default a bad day file is quarantined and the rest imported (tests/badinput/test_exports.py);
    # bad_records=reject keeps the all-or-nothing import
    strict = {"bad_records": "reject"} if bad == "bad_json" else {}
    ctx = make_ctx(tmp_path, "slack_export", {"path": str(path), **strict})
    with pytest.raises(slack_export.ExportFormatError, match="does not exist|neither a Slack export|not valid JSON"):
        slack_export.extract(ctx, dt.date(2020, 1, 1), dt.date(2020, 1, 1))
    assert not (tmp_path / "lake").exists()  # nothing written


def test_export_landing_has_no_ids_emails_or_text(tmp_path: Path) -> None:
    folder = EXPORTS / "export_hfaran_testarchive"
    _import(tmp_path, folder, dt.date(2016, 1, 14), dt.date(2016, 3, 29))
    users = json.loads((folder / "users.json").read_text())
    needles = {u["id"] for u in users} | {u["profile"].get("email") for u in users if u["profile"].get("email")}
    needles |= {"Created an issue for a setup.py", "Had a chance to read any more papers"}
    blob = "\n".join(str(v) for p in (tmp_path / "lake").rglob("*.parquet")
                     for col in pq.read_table(p).columns for v in col.to_pylist())
    assert [n for n in needles if n and n in blob] == []
