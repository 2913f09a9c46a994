"""Topic ids of UserVoice ideas and comments (issue 18): computed from an idea's title and body and a
comment's body while the record is in memory; only the ids are landed, never the text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines import lake
from pipelines.sources import uservoice
from pipelines.topics import TopicRules, tag_id
from tests.vendors.yammer.helpers import make_ctx

DAY = dt.date(2026, 3, 2)
RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]},
    {"id": "sso", "name": "Single sign-on", "terms": ["single sign-on", "sso"], "tags": ["saml"]},
]})
OPTS = {"base_url": "http://127.0.0.1:9"}


def _run(tmp_path: Path, rules: TopicRules | None) -> uservoice._Run:
    ctx = make_ctx(tmp_path, "uservoice", OPTS)
    ctx.settings.topics = rules  # type: ignore[assignment]
    return uservoice._Run(ctx, uservoice.UserVoiceOptions.model_validate(OPTS), None, None,  # type: ignore[arg-type]
                          DAY, DAY)


def _read(title: str, body: str, comment: str) -> dict[str, dict[str, dict[str, Any]]]:
    at = "2026-03-02T10:00:00Z"
    return {"suggestions": {"1": {"id": 1, "title": title, "body": body, "body_mime_type": "text/html", "state": "approved",
                                  "created_at": at, "links": {"forum": 10, "category": 30, "labels": [5],
                                                              "created_by": 100}}},
            "comments": {"2": {"id": 2, "body": comment, "created_at": at, "links": {"suggestion": 1, "created_by": 101}}},
            "supporters": {"3": {"id": 3, "created_at": at, "links": {"suggestion": 1, "user": 102}}},
            "status_updates": {}}


def test_topics_come_from_title_body_and_comment_and_only_their_ids_are_kept(tmp_path: Path) -> None:
    read = _read("Single sign-on for the VPN", "<p>Please add it #saml &amp; see <a href='https://x/remote-access'>"
                 "https://x.example/remote access</a></p>", "remote access would help #mobile")
    rows = _run(tmp_path, RULES).rows(read)
    (idea,), (comment,), (vote,) = rows["ideas"], rows["comments"], rows["votes"]
    # title and body are prose; the hashtag #saml is the taxonomy's sso; tags and links are not prose
    assert idea["topic_ids"] == "tx:sso tx:vpn"
    assert comment["topic_ids"] == f"{tag_id('mobile')} tx:vpn"
    assert "topic_ids" not in vote  # a vote has no text
    plain = _run(tmp_path, RULES).rows(_read("Dark mode", "please", "+1"))
    assert plain["ideas"][0]["topic_ids"] is None and plain["comments"][0]["topic_ids"] is None
    bare = _run(tmp_path, None).rows(read)  # no rules, no topics
    assert bare["ideas"][0]["topic_ids"] is None and bare["comments"][0]["topic_ids"] is None

    parts = {s: pa.Table.from_pylist(rows[s], schema=uservoice.STREAMS[s]) for s in uservoice.STREAMS}
    got = {r["event_id"]: r for r in uservoice.canonical_activities(parts, "uv")}
    assert got["suggestion:1"]["topic_ids"] == "tx:sso tx:vpn" and got["comment:2"]["topic_ids"] == comment["topic_ids"]
    assert got["supporter:3"]["topic_ids"] is None
    assert "Single" not in str(got) and "remote" not in str(got)


def test_rows_landed_before_topic_ids_still_canonicalise_and_are_replaced(tmp_path: Path) -> None:
    run = _run(tmp_path, RULES)
    rows = run.rows(_read("VPN drops", "", "sso too"))
    for stream in ("ideas", "comments"):
        old = pa.schema([f for f in uservoice.STREAMS[stream] if f.name != "topic_ids"])
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "topic_ids"} for r in rows[stream]], schema=old)
        lake.write_partition(lake.raw_dir(run.ctx.lake_dir, run.name, stream), DAY, table)
    acts = uservoice.canonicalise(run.ctx, DAY)["activities"].set_index("event_id")
    assert sorted(acts.index) == ["comment:2", "suggestion:1"] and acts["topic_ids"].isna().all()
    run.land({"ideas": rows["ideas"], "comments": [], "votes": [], "status_changes": []})  # the idea read again
    acts = uservoice.canonicalise(run.ctx, DAY)["activities"].set_index("event_id")
    assert acts.loc["suggestion:1", "topic_ids"] == "tx:vpn" and pd.isna(acts.loc["comment:2", "topic_ids"])
