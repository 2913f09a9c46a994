"""Topic ids of Chatter posts and comments (pipelines/topics.py): computed at extraction from the prose (a
SOQL Body without its HTML; a Chatter REST body's Text segments) and the Chatter tags (Hashtag segments,
`capabilities.topics`), by name, so that a Chatter `#frogs` has the id of a Slack `#frogs`; system items get
none; only the ids land, never the text; partitions landed before `topic_ids` still canonicalise."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa

from pipelines import lake
from pipelines.sources import salesforce
from pipelines.topics import TopicRules, tag_id
from tests.vendors.salesforce.test_record_containers import GROUP, INSTANCE, USERS, _item, _run
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "salesforce"
DAY = dt.date(2026, 2, 2)
RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]},
    {"id": "amphibians", "name": "Amphibians", "tags": ["frogs"]},
]})


def _ctx(tmp_path: Path, rules: TopicRules | None = RULES):
    ctx = make_ctx(tmp_path, "salesforce", {"token_env": "SF_UNUSED", "instance_url": INSTANCE})
    if rules is not None:
        ctx.settings.topics = rules
    return ctx


def _with(n: int, body: str, comments: list[str], *, kind: str = "TextPost") -> dict:
    item = _item(n, GROUP, DAY, 0)
    item["Type"], item["Body"], item["IsRichText"] = kind, body, True
    first = item["FeedComments"]["records"][0]
    item["FeedComments"]["records"] = [
        {**first, "Id": f"0D7Dm{n:07d}{i:03d}AAA", "CommentBody": text} for i, text in enumerate(comments)]
    return item


def test_soql_items_and_comments_get_the_ids_of_their_prose_and_hashtags(tmp_path: Path) -> None:
    run = salesforce._Run(_ctx(tmp_path), None, None, DAY, DAY)  # type: ignore[arg-type]
    item, comments, _ = run.rows(_with(1, "<p>Remote access is down again <b>#Outage</b></p>",
                                       ["try the VPN client &amp; reboot", "thanks!", "I love #frogs"]))
    assert item["topic_ids"] == f"{tag_id('outage')} tx:vpn"
    assert [c["topic_ids"] for c in comments] == ["tx:vpn", None, "tx:amphibians"]  # the taxonomy covers #frogs
    system, _, _ = run.rows(_with(2, "changed the VPN owner #outage", [], kind="TrackedChange"))
    assert system["kind"] == "system" and system["topic_ids"] is None
    acts = salesforce.canonical_activities(pa.Table.from_pylist([item], schema=salesforce.ITEMS),
                                           pa.Table.from_pylist(comments, schema=salesforce.COMMENTS), None, "sf")
    assert {a["event_id"]: a["topic_ids"] for a in acts} == {
        item["item_id"]: item["topic_ids"], **{c["comment_id"]: c["topic_ids"] for c in comments}}
    assert not [w for w in ("Remote", "Outage", "reboot", "frogs", "thanks") if w in str(acts)]
    off = TopicRules.model_validate({"platform_tags": False, "hashtags": False})
    quiet = salesforce._Run(_ctx(tmp_path / "off", off), None, None, DAY, DAY)  # type: ignore[arg-type]
    item, comments, _ = quiet.rows(_with(3, "#Outage", ["#frogs"]))
    assert item["topic_ids"] is None and comments[0]["topic_ids"] is None
    assert salesforce.topic_ids(None, {"Body": "vpn #outage"}, "Body") is None  # no rules, no topics


def test_chatter_rest_hashtag_segments_and_topics_are_tags_by_name() -> None:
    item = json.loads((DATA / "restforce_chatter_feed-items_get_id_success_response.json").read_text())
    comment = json.loads((DATA / "restforce_chatter_comments_get_id_success_response.json").read_text())
    prose, tags = salesforce.prose_and_tags(item, "Body")  # "I love " + Hashtag frogs
    assert prose.strip() == "I love" and tags == ["frogs"]
    plain = TopicRules.model_validate({})
    assert salesforce.topic_ids(plain, item, "Body") == tag_id("frogs") == tag_id("#frogs")
    assert salesforce.topic_ids(RULES, comment, "CommentBody") == "tx:amphibians"
    # the Hashtag segment is the platform's tag: kept with hashtags off, dropped with platform tags off
    assert salesforce.topic_ids(TopicRules.model_validate({"hashtags": False}), item, "Body") == tag_id("frogs")
    assert salesforce.topic_ids(TopicRules.model_validate({"platform_tags": False}), item, "Body") is None
    element = {"body": {"text": "ping @Ann about the VPN", "messageSegments": [
        {"type": "Text", "text": "ping "}, {"type": "Mention", "text": "@Ann", "name": "Ann"},
        {"type": "Text", "text": " about the VPN"}]},
        "capabilities": {"topics": {"items": [{"id": "0TOD0000000001", "name": "Quarter Close"}]}}}
    assert salesforce.topic_ids(RULES, element, "Body") == f"{tag_id('quarter close')} tx:vpn"
    assert "Ann" not in salesforce.prose_and_tags(element, "Body")[0]  # a mention's name is not prose


def test_partitions_landed_before_topic_ids_canonicalise_and_take_new_rows(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    when = dt.datetime(2026, 2, 2, 9, tzinfo=dt.UTC)
    old_items = pa.schema([f for f in salesforce.ITEMS if f.name != "topic_ids"])
    old_comments = pa.schema([f for f in salesforce.COMMENTS if f.name != "topic_ids"])
    lake.write_partition(lake.raw_dir(ctx.lake_dir, "salesforce", "feed_items"), DAY, pa.Table.from_pylist(
        [{"item_id": "0D5Dm9999999999AAA", "container_id": GROUP, "created_at": when, "actor_key": "k1",
          "kind": "person", "is_question": False, "is_deleted": False, "content_length": 5}], schema=old_items))
    lake.write_partition(lake.raw_dir(ctx.lake_dir, "salesforce", "feed_comments"), DAY, pa.Table.from_pylist(
        [{"comment_id": "0D7Dm9999999999AAA", "item_id": "0D5Dm9999999999AAA", "container_id": GROUP,
          "created_at": when, "actor_key": "k2", "item_actor_key": "k1", "is_best_answer": False,
          "is_deleted": False, "content_length": 3}], schema=old_comments))
    acts = salesforce.canonicalise(ctx, DAY)["activities"]
    assert sorted(acts["verb"]) == ["post", "reply"] and acts["topic_ids"].isna().all()
    # a run landing a new item into those days merges with the old rows instead of failing
    _run(ctx, [_with(7, "remote access again", ["same on the vpn"])], DAY)
    acts = activities(salesforce.canonicalise, ctx, DAY, DAY).set_index("event_id")
    got = {k: v if isinstance(v, str) else None for k, v in acts["topic_ids"].items()}
    assert got == {
        "0D5Dm0000000007AAA": "tx:vpn", "0D5Dm9999999999AAA": None,
        "0D7Dm0000007000AAA": "tx:vpn", "0D7Dm9999999999AAA": None,
        **{k: None for k in acts.index if k.startswith("0I0")}}
    assert leaks(ctx.lake_dir, ["remote access", "same on the", USERS[0]["Email"]]) == []
