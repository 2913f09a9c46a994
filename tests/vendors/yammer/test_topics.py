"""Topic ids of Viva Engage messages (pipelines/topics.py), REST and Data Export: computed from the prose and
the platform's topics (by name, so that a Viva Engage topic has the id of the same Slack `#name`), for
people's messages only; only the ids land, never a term, a tag name or the text; partitions landed before
`topic_ids` still canonicalise."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa

from pipelines import lake
from pipelines.sources import yammer, yammer_export
from pipelines.sources.yammer_messages import (
    MESSAGES_SCHEMA,
    canonical_activities,
    canonicalise_landing,
    land_days,
    rows_table,
    topic_column,
)
from pipelines.topics import TopicRules, tag_id
from tests.vendors.yammer.helpers import leaks, make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "yammer"

RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]},
    {"id": "api", "name": "APIs", "terms": ["api"]},
    {"id": "wfh", "name": "Working from home", "tags": ["remote work"]},
]})


def _msg(mid: int, text: str, *, thread: int | None = None, replied_to: int | None = None,
         parsed: str | None = None, rich: str | None = None, **extra: object) -> dict:
    return {"id": mid, "thread_id": thread or mid, "replied_to_id": replied_to, "sender_id": 1499642294,
            "sender_type": "user", "message_type": "update", "system_message": False, "privacy": "public",
            "created_at": "2024/03/05 10:00:00 +0000", "group_id": 77,
            "body": {"plain": text, "parsed": parsed if parsed is not None else text,
                     "rich": rich if rich is not None else text}, **extra}


def _ctx(tmp_path: Path, kind: str = "yammer", options: dict | None = None, rules: TopicRules | None = RULES):
    ctx = make_ctx(tmp_path, kind, options or {})
    if rules is not None:
        ctx.settings.topics = rules
    return ctx


def test_rest_topics_come_from_the_prose_and_the_viva_engage_topics_by_name(tmp_path: Path) -> None:
    rich = ("Remote access is down <span class='yammer-object' data-yammer-object='tag:14658' "
            "data-resource-id='14658' data-resource-model='tag'>#<a href='https://www.yammer.com/x/topics/25209'>"
            "Kubernetes</a></span>")
    starter = _msg(2000000000000001, "Remote access is down #Kubernetes", rich=rich,
                   parsed="Remote access is down [[tag:14658]] and [[tag:5]]")
    reply = _msg(2000000000000002, "same here", thread=2000000000000001, replied_to=2000000000000001)
    lunch = _msg(2000000000000003, "lunch?")
    refs = [{"type": "tag", "id": 5, "name": "Remote Work"},  # a tag the taxonomy lists: its topic
            {"type": "tag", "id": 14658, "name": "kubernetes"},
            {"type": "topic", "id": 99, "name": "Helm charts"},
            {"type": "thread", "id": 2000000000000001, "thread_starter_id": 2000000000000001,
             "topics": [{"id": 99, "type": "topic"}], "stats": {"updates": 2}}]
    rows = {r["message_id"]: r for r in yammer.minimise_payload([starter, reply, lunch], _ctx(tmp_path), refs)}
    first = rows["2000000000000001"]
    # the hashtag of the prose, the rich tag object and the [[tag:14658]] reference are one topic, with the
    # id of a Slack #kubernetes; the thread's topic goes to the starter only (the warehouse spreads it)
    assert first["topic_ids"] == " ".join(sorted([tag_id("kubernetes"), tag_id("helm charts"), "tx:vpn", "tx:wfh"]))
    assert tag_id("Kubernetes") == tag_id("#kubernetes")
    assert rows["2000000000000002"]["topic_ids"] is None
    assert rows["2000000000000003"]["topic_ids"] is None
    acts = canonical_activities(rows_table(rows.values()), "yammer")
    post = next(a for a in acts if a["event_id"] == "2000000000000001")
    assert post["topic_ids"] == first["topic_ids"]
    assert not [w for w in ("Remote", "remote access", "Helm", "kubernetes", "lunch") if w in str(acts)]


def test_rest_fixture_system_messages_get_no_topics_and_no_rules_give_none(tmp_path: Path) -> None:
    payload = json.loads((DATA / "camel_messages.json").read_text())
    rows = yammer.minimise_payload(payload["messages"], _ctx(tmp_path))
    person, system = rows
    assert person["kind"] == "person" and person["topic_ids"] == "tx:api"  # "Testing yammer API..."
    # the system message "has #joined the network" carries a tag object and a hashtag: no topic
    assert system["kind"] == "system" and system["topic_ids"] is None
    off = TopicRules.model_validate({"platform_tags": False, "hashtags": False})
    rows = yammer.minimise_payload(payload["messages"], _ctx(tmp_path / "off", rules=off))
    assert [r["topic_ids"] for r in rows] == [None, None]
    assert topic_column(None, "vpn #helm", ["helm"]) is None
    # the default rules (no taxonomy, platform tags and hashtags on): the fixture's person message has none
    assert yammer.minimise_payload(payload["messages"][:1], _ctx(tmp_path / "default", rules=None))[0][
        "topic_ids"] is None


def _zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in files.items():
            z.writestr(name, ("\ufeff" + text).encode())
    return out.getvalue()


HEADER = "id,thread_id,replied_to_id,group_id,sender_id,sender_type,created_at,deleted_at,body,message_type"


def _export(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "export.zip"
    path.write_bytes(_zip({"Messages.csv": "\r\n".join([HEADER, *lines]) + "\r\n",
                           "Users.csv": "id,email\r\n3,u3@example.org\r\n4,u4@example.org\r\n"}))
    return path


def test_export_topics_come_from_the_body_without_its_tokens_and_only_ids_land(tmp_path: Path) -> None:
    path = _export(tmp_path, [
        "11,11,,7,3,user,2019-01-02T10:00:00Z,,\"Remote access again [[user:4]] [[tag:5]] #Helm\",question",
        "12,11,11,7,4,user,2019-01-02T11:00:00Z,,\"a vpn restart fixed it\",update",
        "13,13,,7,3,user,2019-01-02T12:00:00Z,,\"has #joined the vpn group\",system",
        "14,14,,7,4,bot,2019-01-02T13:00:00Z,,\"vpn status: up\",update",
    ])
    ctx = _ctx(tmp_path, "yammer_export", {"path": str(path)})
    day = dt.date(2019, 1, 2)
    yammer_export.extract(ctx, day, day)
    raw = lake.read_partition(lake.raw_dir(ctx.lake_dir, "yammer_export", "messages"), day)
    got = dict(zip(raw.column("message_id").to_pylist(), raw.column("topic_ids").to_pylist(), strict=True))
    # [[tag:5]] is only a number in the export (no topic name in the documented columns): not a topic
    assert got == {"11": f"{tag_id('helm')} tx:vpn", "12": "tx:vpn", "13": None, "14": None}
    acts = yammer_export.canonicalise(ctx, day)["activities"].set_index("event_id")
    assert acts.loc["11", "topic_ids"] == got["11"] and acts.loc["12", "topic_ids"] == "tx:vpn"
    assert leaks(ctx.lake_dir, ["Remote access", "restart", "Helm", "joined", "status"]) == []
    rows, _ = yammer_export.build_rows(yammer_export.Parsed(messages={"1": {
        "id": "1", "thread_id": "1", "sender_id": "3", "created_at": "2019-01-02T10:00:00Z", "body": "vpn"}}),
        yammer.UserKeys(ctx), yammer_export._LandedKeys(tmp_path / "none", day, day))
    assert rows[0]["topic_ids"] is None  # no rules given: no topics


def _old_partition(ctx, day: dt.date) -> tuple[Path, dict]:
    """A `messages` partition as landed before `topic_ids` existed, and its row."""
    old_schema = pa.schema([f for f in MESSAGES_SCHEMA if f.name != "topic_ids"])
    when = dt.datetime(day.year, day.month, day.day, 9, tzinfo=dt.UTC)
    row = {"message_id": "10", "thread_id": "10", "replied_to_id": None, "container_id": "7",
           "visibility": "public", "created_at": when, "kind": "person", "actor_key": "k3",
           "parent_actor_key": None, "thread_starter_key": None, "content_length": 5, "is_question": False,
           "is_best_answer": False, "is_deleted": False, "mention_keys": [], "like_keys": []}
    base = lake.raw_dir(ctx.lake_dir, ctx.source.name, "messages")
    lake.write_partition(base, day, pa.Table.from_pylist([row], schema=old_schema))
    return base, row


def test_a_partition_landed_before_topic_ids_canonicalises_and_takes_new_rows(tmp_path: Path) -> None:
    day = dt.date(2019, 1, 2)
    path = _export(tmp_path, ["11,11,,7,3,user,2019-01-02T10:00:00Z,,\"vpn down\",update"])
    ctx = _ctx(tmp_path, "yammer_export", {"path": str(path)})
    base, _ = _old_partition(ctx, day)
    acts = canonicalise_landing(ctx.lake_dir, "yammer_export", day)["activities"]
    assert list(acts["event_id"]) == ["10"] and acts["topic_ids"].isna().all()
    # an import into that day merges with the old rows (their topic_ids null) instead of failing
    yammer_export.extract(ctx, day, day)
    raw = lake.read_partition(base, day)
    assert dict(zip(raw.column("message_id").to_pylist(), raw.column("topic_ids").to_pylist(), strict=True)) == {
        "10": None, "11": "tx:vpn"}
    # the REST landing compares a new read with an old partition: the same message, no topics, is unchanged
    other = dt.date(2019, 1, 3)
    _, old_row = _old_partition(ctx, other)
    assert land_days(ctx.lake_dir, "yammer_export", [{**old_row, "topic_ids": None}], [other]) == []
    assert land_days(ctx.lake_dir, "yammer_export", [{**old_row, "topic_ids": "tx:vpn"}], [other]) == [other]


def test_emulated_thread_topics_reach_their_starters_through_the_feed(tmp_path: Path) -> None:
    from pipelines.emulators.yammer import YammerEmulator
    from pipelines.emulators.yammer_network import TOPICS
    from pipelines.sources.demo_org import build_org
    from tests.vendors.yammer.helpers import activities

    start = dt.date(2026, 1, 5)
    end = start + dt.timedelta(days=6)
    rules = TopicRules.model_validate({"taxonomy": [{"id": "budget", "name": "Budget", "tags": ["budget planning"]}]})
    expected_id = {TOPICS["deploy"][0]: tag_id("Deployments"), TOPICS["budget"][0]: "tx:budget"}
    with YammerEmulator(build_org(60, 9, start, 7, 1.0), token="y", period_s=0.02) as emu:
        emu.advance_to(end)
        ctx = _ctx(tmp_path, "yammer", {"base_url": emu.url, "rate_period_s": 0.02}, rules=rules)
        yammer.extract(ctx, start, end, token="y")
        truth = {str(m.id): m for m in emu.visible_messages(end) if m.message_type != "system"}
    acts = activities(yammer.canonicalise, ctx, start, end)
    posts = acts[acts["verb"].isin(["post", "reply"])].set_index("event_id")["topic_ids"]
    got = {k: v if isinstance(v, str) else None for k, v in posts.items()}
    want = {mid: " ".join(sorted(expected_id[t] for t in m.topics)) or None
            for mid, m in truth.items() if mid in got}
    assert got == want and set(got) == set(truth)
    assert any(v and "tx:budget" in v for v in got.values()) and any(v and v.startswith("tag:") for v in got.values())
    assert all(got[mid] is None for mid, m in truth.items() if m.replied_to is not None)  # a thread's, not theirs
    assert leaks(ctx.lake_dir, ["Deployments", "Budget planning"]) == []
