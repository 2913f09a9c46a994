"""Topic ids of Bitrix24 Feed posts and comments (issue 18): computed from the BBCode text's prose
(mentions, tags, [CODE] and links removed) while the answer is in memory; only the ids are landed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines import lake
from pipelines.sources import bitrix24
from pipelines.topics import TopicRules, tag_id
from tests.vendors.yammer.helpers import make_ctx

PORTAL = "https://portal.example"
RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]},
    {"id": "k8s", "name": "Kubernetes", "terms": ["kubernetes"], "tags": ["k8s"]},
]})
TS = dt.datetime(2026, 3, 17, 10, tzinfo=dt.UTC)


def _run(tmp_path: Path, rules: TopicRules | None) -> bitrix24._Run:
    opts = {"portal_url": PORTAL, "webhook_user_id": 1}
    ctx = make_ctx(tmp_path, "bitrix24", opts)
    ctx.settings.topics = rules  # type: ignore[assignment]
    return bitrix24._Run(ctx, None, None, TS.date(), TS.date(),  # type: ignore[arg-type]
                         bitrix24.Bitrix24Options.model_validate(opts))


def _post(text: str, pid: str = "217") -> dict[str, Any]:
    return {"ID": pid, "PUBLISH_STATUS": "P", "AUTHOR_ID": "1269", "DETAIL_TEXT": text,
            "DATE_PUBLISH": "2026-03-17T11:00:00+01:00", "HAS_SOCNET_ALL": "Y", "HAS_TAGS": "Y",
            "CATEGORY_ID": "9,11"}


def test_topics_come_from_the_prose_and_only_their_ids_are_kept(tmp_path: Path) -> None:
    run = _run(tmp_path, RULES)
    text = ("[B]Remote access[/B] is down for [USER=12]Vpn Kubernetes[/USER] #K8s #outage, see "
            "[URL=https://x.example/kubernetes]the status[/URL] https://x.example/vpn [CODE]kubernetes restart[/CODE]")
    post = run.post_row(_post(text))
    assert post is not None
    # the hashtag #K8s is the taxonomy's k8s; the mention's name, the link and the code are not prose;
    # CATEGORY_ID (tag ids without names) is not a tag
    assert post["topic_ids"] == f"{tag_id('outage')} tx:k8s tx:vpn"
    assert run.post_row(_post("lunch?", "218"))["topic_ids"] is None  # type: ignore[index]
    comment = run.comment_row({"id": 1, "comment_id": 4821, "post_id": 217, "date": "2026-03-17T12:00:00+01:00",
                               "text": "VPN again"}, "author-key")
    assert comment["topic_ids"] == "tx:vpn"
    # an administrator reading another user's comment gets no text: no topics
    hidden = run.comment_row({"id": 2, "comment_id": 4822, "post_id": 217, "date": "2026-03-17T12:00:00+01:00",
                              "text": ""}, "author-key")
    assert hidden["topic_ids"] is None
    bare = _run(tmp_path, None).post_row(_post(text))  # no rules, no topics
    assert bare is not None and bare["topic_ids"] is None

    posts = pa.Table.from_pylist([post], schema=bitrix24.POSTS)
    comments = pa.Table.from_pylist([comment], schema=bitrix24.COMMENTS)
    got = {r["event_id"]: r for r in bitrix24.canonical_activities(posts, comments, None, "b24")}
    assert got["p217"]["topic_ids"] == post["topic_ids"] and got["c4821"]["topic_ids"] == "tx:vpn"
    assert all(r["topic_ids"] is None for k, r in got.items() if ":mention:" in k)
    assert "Remote" not in str(got) and "VPN again" not in str(got)


def _old(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name != "topic_ids"])


def test_rows_landed_before_topic_ids_still_canonicalise_and_are_replaced(tmp_path: Path) -> None:
    run = _run(tmp_path, RULES)
    post = run.post_row(_post("kubernetes"))
    assert post is not None
    old_post = {k: v for k, v in post.items() if k != "topic_ids"}
    old_comment = {"comment_id": "c1", "post_id": "217", "log_id": None, "container_id": "feed:all",
                   "created_at": TS, "actor_key": "b", "parent_actor_key": post["actor_key"],
                   "content_length": 3, "mention_keys": []}
    for stream, row in (("posts", old_post), ("comments", old_comment)):
        base = lake.raw_dir(run.ctx.lake_dir, run.name, stream)
        lake.write_partition(base, TS.date(), pa.Table.from_pylist([row], schema=_old(bitrix24.STREAMS[stream])))
    acts = bitrix24.canonicalise(run.ctx, TS.date())["activities"].set_index("event_id")
    assert sorted(acts.index) == ["c1", "p217"] and acts["topic_ids"].isna().all()
    # a run that re-reads the post replaces its old row; the old comment is kept, without topics
    run.replace("posts", [post], ["217"], [TS.date()])
    acts = bitrix24.canonicalise(run.ctx, TS.date())["activities"].set_index("event_id")
    assert acts.loc["p217", "topic_ids"] == "tx:k8s" and pd.isna(acts.loc["c1", "topic_ids"])
    run.replace("comments", [], ["c9"], [TS.date()])  # an older partition with nothing to drop is rewritten whole
    comments = lake.read_partition(lake.raw_dir(run.ctx.lake_dir, run.name, "comments"), TS.date())
    assert comments is not None and comments.column_names == bitrix24.COMMENTS.names
