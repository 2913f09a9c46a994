"""Topic ids of Socialcast posts and replies (issue 18): computed from the prose and the message's
`tags[{name,url}]` while the archive is read; only the ids are landed, never the text or a tag."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines import lake
from pipelines.sources import socialcast_archive
from pipelines.sources.socialcast_formats import parse_message
from pipelines.topics import TopicRules, tag_id
from tests.vendors.yammer.helpers import make_ctx

DAY = dt.date(2016, 6, 1)
RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]},
    {"id": "k8s", "name": "Kubernetes", "terms": ["kubernetes"], "tags": ["k8s"]},
]})


def _message(mid: int, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "user": {"id": 7}, "message_type": "status_message", "body": "lunch today",
            "created_at": "2016-06-01T10:00:00+00:00", "comments": [], "likes": [], **extra}


def _comment(cid: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "user": {"id": 8}, "text": text, "created_at": "2016-06-01T11:00:00+00:00", **extra}


def test_topics_come_from_the_prose_and_the_tags_and_only_their_ids_are_kept() -> None:
    msg = _message(1, body="Remote access is down #outage", tags=[{"name": "K8s", "url": "https://x/tags/k8s"},
                                                                   {"name": "Cluster Ops", "url": "u"}],
                   html_body='<p>Remote access is down #outage <a href="https://x.example/vpn">status</a></p>'
                             "<pre>kubernetes restart</pre>",
                   comments=[_comment(11, "is it the VPN? see https://x.example/kubernetes"),
                             _comment(12, "thanks")])
    m = parse_message(msg, RULES)
    # the tag K8s is the taxonomy's k8s; another tag its hash; code and links are not prose
    assert m.topic_ids == " ".join(sorted(["tx:k8s", "tx:vpn", tag_id("outage"), tag_id("cluster ops")]))
    assert [c.topic_ids for c in m.comments] == ["tx:vpn", None]
    bare = parse_message(msg)  # no rules, no topics
    assert bare.topic_ids is None and {c.topic_ids for c in bare.comments} == {None}
    xml_tags = {"tag": {"name": "k8s"}}  # an untyped Rails <tags> with one <tag>
    assert parse_message(_message(2, tags=xml_tags), RULES).topic_ids == "tx:k8s"


def _run(tmp_path: Path, messages: list[dict[str, Any]], rules: TopicRules | None = RULES) -> Any:
    root = tmp_path / "archive"
    root.mkdir(exist_ok=True)
    (root / "messages.json").write_text(json.dumps({"messages": messages}))
    ctx = make_ctx(tmp_path, "socialcast_archive", {"path": str(root)})
    if rules is not None:
        ctx.settings.topics = rules
    socialcast_archive.extract(ctx, DAY, DAY)
    return ctx


def test_the_canonical_activities_carry_only_the_ids(tmp_path: Path) -> None:
    feed = _message(2, message_type="web_feed", body="kubernetes news", tags=[{"name": "k8s"}],
                    comments=[_comment(21, "our vpn too")])
    post = _message(1, body="kubernetes upgrade tonight", tags=[{"name": "ops"}],
                    comments=[_comment(11, "remote access will be off?")],
                    likes=[{"user": {"id": 9}, "created_at": "2016-06-01T12:00:00+00:00"}])
    ctx = _run(tmp_path, [post, feed])
    acts = socialcast_archive.canonicalise(ctx, DAY)["activities"].set_index("event_id")
    assert acts.loc["m1", "topic_ids"] == f"{tag_id('ops')} tx:k8s"
    assert acts.loc["m1:c11", "topic_ids"] == "tx:vpn"
    assert "m2" not in acts.index  # a system item is no post: no topics of its own
    assert acts.loc["m2:c21", "topic_ids"] == "tx:vpn"  # its comments are people's
    likes = acts[acts["verb"] == "reaction"]
    assert len(likes) == 1 and likes["topic_ids"].isna().all()
    cells = " ".join(map(str, acts.reset_index().to_numpy().ravel())).lower()
    assert not [w for w in ("kubernetes", "remote", "upgrade", "ops", "news") if w in cells]


def test_without_a_taxonomy_only_tags_and_hashtags_are_topics(tmp_path: Path) -> None:
    ctx = _run(tmp_path, [_message(1, body="vpn is down #outage", tags=[{"name": "vpn"}])], rules=None)
    acts = socialcast_archive.canonicalise(ctx, DAY)["activities"]
    assert acts["topic_ids"].tolist() == [" ".join(sorted([tag_id("vpn"), tag_id("outage")]))]


def test_events_landed_before_topic_ids_still_load_and_are_rewritten_by_a_rerun(tmp_path: Path) -> None:
    ctx = _run(tmp_path, [_message(1, body="kubernetes")])
    base = lake.raw_dir(ctx.lake_dir, ctx.source.name, "events")
    new = lake.read_partition(base, DAY)
    old_schema = pa.schema([f for f in socialcast_archive.EVENTS_SCHEMA if f.name != "topic_ids"])
    lake.write_partition(base, DAY, new.drop_columns(["topic_ids"]).cast(old_schema))
    acts = socialcast_archive.canonicalise(ctx, DAY)["activities"]
    assert acts["event_id"].tolist() == ["m1"] and acts["topic_ids"].isna().all()
    socialcast_archive.extract(ctx, DAY, DAY)  # an older partition is replaced, not compared and kept
    assert socialcast_archive.canonicalise(ctx, DAY)["activities"]["topic_ids"].tolist() == ["tx:k8s"]
