"""Slack envelope, pagination and message minimisation against the real fixture payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import (
    ApiError,
    AuthError,
    ConnectorError,
    InvalidBodyError,
    MissingScopeError,
    RateLimitedError,
    RetriesExhaustedError,
)
from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.slack_api import SlackApi, make_check, next_cursor
from pipelines.connectors.slack_messages import canonical_activities, minimise, rows_table, ts_to_micros
from tests.connectors.conftest import API

FIXTURES = sorted(API.glob("*.json"))


def _load(path: Path) -> Any:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data.pop("_note", None)
    return data


def _messages(node: Any) -> list[dict[str, Any]]:
    """Every Slack message object nested anywhere in a payload."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "message" and isinstance(node.get("ts"), str):
            found.append(node)
        for v in node.values():
            found += _messages(v)
    elif isinstance(node, list):
        for v in node:
            found += _messages(v)
    return found


def _api(handler, **kw) -> SlackApi:
    api = SlackApi("https://slack.test/api", "xoxb-SECRET", budget=Budget(default_limit=1e9, period_s=1.0),
                   token_source="the token in $SLACK_BOT_TOKEN",
                   policy=RetryPolicy(max_attempts=kw.pop("attempts", 1), default_retry_after_s=0.0), sleep=lambda s: None)
    api.http._client = httpx.Client(base_url="https://slack.test/api/", transport=httpx.MockTransport(handler))
    return api


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_every_fixture_parses_or_is_rejected_with_a_clear_error(path: Path) -> None:
    data = _load(path)
    if isinstance(data, dict) and {"status", "body"} <= set(data):  # a whole HTTP exchange
        exchange = data

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(exchange["status"], headers=exchange.get("headers", {}), json=exchange["body"])
        with pytest.raises(ConnectorError) as exc:
            _api(handler).call("conversations.list")
        err = exc.value.__cause__ if isinstance(exc.value, RetriesExhaustedError) else exc.value
        if exchange["status"] == 429:
            assert isinstance(err, RateLimitedError) and err.retry_after == float(exchange["headers"]["retry-after"])
        else:
            assert isinstance(err, AuthError)
        return
    check = make_check("the token in $SLACK_BOT_TOKEN")
    if isinstance(data, dict) and data.get("ok") is True:
        check("any.method", data)  # accepted, warnings included
    elif isinstance(data, dict) and data.get("ok") is False:
        with pytest.raises(ConnectorError) as exc:
            check("any.method", data)
        assert data["error"] in str(exc.value) or "scope" in str(exc.value)
        assert "SECRET" not in str(exc.value)
    elif not _messages(data):
        # not an API body (docs excerpts, subtype lists): refused as a body, with the reason
        with pytest.raises(InvalidBodyError, match="no boolean 'ok'"):
            check("any.method", data if isinstance(data, dict) else {"payload": data})
    for msg in _messages(data):
        row = minimise(msg, "C1", lambda uid: f"k:{len(uid)}")
        assert row is not None
        text = msg.get("text") or ""
        assert not any(text and isinstance(v, str) and text in v for v in row.values() if len(text) > 3)
        assert row["content_length"] in (None, len(text))


def test_missing_scope_names_the_scope() -> None:
    with pytest.raises(MissingScopeError, match="channels:write") as exc:
        make_check("the token in $X")("conversations.join",
                                       {"ok": False, "error": "missing_scope", "needed": "channels:write"})
    assert exc.value.needed == "channels:write"


@pytest.mark.parametrize("code", ["invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"])
def test_auth_codes_are_fatal(code: str) -> None:
    with pytest.raises(AuthError, match=code):
        make_check("the token in $X")("users.list", {"ok": False, "error": code})


def test_ok_false_is_an_error_never_an_empty_page() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=_load(API / "openapi_conversations_history_error.json"))
    with pytest.raises(ConnectorError, match="channel_not_found"):
        list(_api(handler).items("conversations.history", {"channel": "C1"}, "messages"))
    assert len(calls) == 1  # fatal: not retried


def test_transient_ok_false_codes_are_retried() -> None:
    bodies = iter([{"ok": False, "error": "service_unavailable"}, {"ok": False, "error": "ratelimited"},
                   {"ok": True, "members": ["U1"]}])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(bodies))
    assert list(_api(handler, attempts=3).items("conversations.members", {}, "members")) == ["U1"]


def test_pagination_follows_cursors_until_response_metadata_is_absent() -> None:
    pages = {None: "sdk_conversations_list_page1.json", "has_page2": "sdk_conversations_list_page2.json",
             "has_page3": "sdk_conversations_list_page3.json"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_load(API / pages[request.url.params.get("cursor")]))
    ids = [c["id"] for c in _api(handler).items("conversations.list", {}, "channels")]
    assert ids == ["C1", "C2", "C3"]


HISTORY_PAGES = {  # cursor asked -> (messages, next cursor); has_more ends it
    None: (["1", "2"], "c1"),
    "c1": (["3", "4"], "c2"),
    "c2": (["5"], None),
}


def _history_body(cursor: str | None) -> dict[str, Any]:
    texts, nxt = HISTORY_PAGES[cursor]
    body: dict[str, Any] = {"ok": True, "messages": [{"type": "message", "ts": t, "text": t} for t in texts],
                            "has_more": nxt is not None}
    if nxt is not None:
        body["response_metadata"] = {"next_cursor": nxt}
    return body


def _replaying(replays: dict[str | None, list[str | None]]):
    """A handler that answers `cursor` with the page of the cursors in `replays[cursor]` first (what a
    caching proxy replays), then with the right page; records the cursors asked."""
    asked: list[str | None] = []
    queued = {k: list(v) for k, v in replays.items()}

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        asked.append(cursor)
        stale = queued.get(cursor)
        served = stale.pop(0) if stale else cursor
        return httpx.Response(200, json=_history_body(served))
    return handler, asked


def _replay_api(handler, sleeps: list[float]) -> SlackApi:
    api = SlackApi("https://slack.test/api", "xoxb-SECRET", budget=Budget(default_limit=1e9, period_s=1.0),
                   token_source="the token in $SLACK_BOT_TOKEN",
                   policy=RetryPolicy(max_attempts=1, base_delay_s=0.5, jitter=0.0), sleep=sleeps.append)
    api.http._client = httpx.Client(base_url="https://slack.test/api/", transport=httpx.MockTransport(handler))
    return api


def test_a_replayed_page_is_dropped_and_asked_again_without_duplicates() -> None:
    handler, asked = _replaying({"c2": ["c1"]})  # asked for c2, the proxy first answers page c1 again
    sleeps: list[float] = []
    api = _replay_api(handler, sleeps)
    texts = [m["text"] for m in api.items("conversations.history", {"channel": "C1"}, "messages")]
    assert texts == ["1", "2", "3", "4", "5"]
    assert asked == [None, "c1", "c2", "c2"]
    assert sleeps == [0.5]  # the client's backoff before asking again
    assert api.http.stats.retries["ReplayedPage"] == 1


def test_a_replay_of_an_older_page_is_recognised_too() -> None:
    handler, asked = _replaying({"c2": [None, "c1"]})  # the first page, then the second, then the right one
    api = _replay_api(handler, [])
    texts = [m["text"] for m in api.items("conversations.history", {"channel": "C1"}, "messages")]
    assert texts == ["1", "2", "3", "4", "5"]
    assert asked == [None, "c1", "c2", "c2", "c2"]


def test_a_persistent_replay_stops_the_run_with_a_clear_message() -> None:
    handler, asked = _replaying({"c2": ["c1"] * 100})
    sleeps: list[float] = []
    api = _replay_api(handler, sleeps)
    got: list[str] = []
    with pytest.raises(ApiError) as exc:
        for m in api.items("conversations.history", {"channel": "C1"}, "messages"):
            got.append(m["text"])
    assert got == ["1", "2", "3", "4"]  # nothing yielded twice
    assert exc.value.code == "page_replayed"
    text = str(exc.value)
    assert "conversations.history" in text and "4 times in a row" in text and "asked again 3 times" in text
    assert "proxy" in text and "replaying" in text and "rerunning later is safe" in text
    assert "c2" not in text and "SECRET" not in text  # never a cursor or a token
    assert asked == [None, "c1"] + ["c2"] * 4
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the re-requests


def test_the_three_end_of_pagination_forms() -> None:
    assert next_cursor(_load(API / "sdk_conversations_list.json")) is None  # next_cursor ""
    assert next_cursor(_load(API / "sdk_conversations_list_page3.json")) is None  # no response_metadata
    assert next_cursor({"has_more": False, "response_metadata": {"next_cursor": "stale"}}) is None
    assert next_cursor(_load(API / "openapi_conversations_history_ok.json")) == "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz"


def test_warnings_are_kept_not_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_load(API / "slackapiref_conversations_join_with_warning.json"))
    api = _api(handler)
    api.call("conversations.join", {"channel": "C061EG9SL"}, post=True)
    assert any("already_in_channel" in w for w in api.warnings)


def test_thread_broadcast_is_a_reply_to_the_root_author() -> None:
    msg = _load(API / "docs_thread_broadcast_message_event.json")
    row = minimise(msg, "C1", lambda u: "key-" + u[-3:])
    assert row["is_reply"] and row["is_broadcast"] and row["kind"] == "person"
    row["parent_actor_key"] = "key-456"  # from the root, as the connector fills it
    acts = canonical_activities(rows_table([row]), "slack")
    assert [(a["verb"], a["target_key"], a["parent_id"]) for a in acts] == [("reply", "key-456", "C1:1673464730.703009")]


def test_mentions_from_text_and_blocks_without_broadcasts_or_self() -> None:
    msg = {"type": "message", "user": "U1", "ts": "1.000001", "text": "hi <@U2|bob> <!channel> <#C9|x> <@U1> <@W3>",
           "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
               {"type": "user", "user_id": "U4"}, {"type": "user", "user_id": "U2"}]}]}]}
    row = minimise(msg, "C1", lambda u: "k" + u)
    assert row["mention_keys"] == ["kU2", "kW3", "kU4"]


def test_bots_and_system_messages_are_not_people_activity() -> None:
    key = lambda u: "k" + u  # noqa: E731
    bot = minimise({"type": "message", "subtype": "bot_message", "bot_id": "B1", "ts": "1.1", "text": "<@U2>",
                    "reactions": [{"name": "tada", "users": ["U3"], "count": 1}]}, "C1", key)
    join = minimise({"type": "message", "subtype": "channel_join", "user": "U2", "ts": "1.2",
                     "text": "<@U2> has joined the channel"}, "C1", key)
    acts = canonical_activities(rows_table([bot, join]), "slack")
    assert [(a["verb"], a["actor_key"], a["target_key"]) for a in acts] == [("reaction", "kU3", None)]


def test_tombstone_is_a_deleted_post_and_slackbot_is_nobody() -> None:
    key = lambda u: "k" + u  # noqa: E731
    t1 = minimise({"type": "message", "subtype": "tombstone", "hidden": True, "user": "U9", "ts": "5.000001",
                   "thread_ts": "5.000001", "reply_count": 1}, "C1", key)
    t2 = minimise({"type": "message", "subtype": "tombstone", "user": "USLACKBOT", "ts": "6.000001",
                   "thread_ts": "6.000001", "text": "This message was deleted."}, "C1", key)
    acts = canonical_activities(rows_table([t1, t2]), "slack")
    assert [(a["verb"], a["is_deleted"], a["actor_key"]) for a in acts] == [("post", True, "kU9")]


def test_question_ignores_question_marks_in_links_and_code() -> None:
    k = lambda u: "k"  # noqa: E731
    assert minimise({"ts": "1.1", "user": "U1", "text": "see <https://x.example/?a=1>"}, "C", k)["is_question"] is False
    assert minimise({"ts": "1.1", "user": "U1", "text": "```a?b```"}, "C", k)["is_question"] is False
    assert minimise({"ts": "1.1", "user": "U1", "text": "ready to ship?"}, "C", k)["is_question"] is True


def test_topics_come_from_the_prose_and_only_their_ids_are_kept() -> None:
    from pipelines.topics import TopicRules, tag_id

    rules = TopicRules.model_validate({"taxonomy": [{"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]}]})
    k = lambda u: "k" + u  # noqa: E731
    text = "Remote access is down again #outage, see <https://x.example/vpn|vpn status> ```vpn restart```"
    row = minimise({"ts": "1.1", "user": "U1", "text": text}, "C", k, topics=rules)
    assert row["topic_ids"] == f"{tag_id('outage')} tx:vpn"  # links and code are not prose
    assert minimise({"ts": "1.2", "user": "U1", "text": "lunch?"}, "C", k, topics=rules)["topic_ids"] is None
    assert minimise({"ts": "1.3", "user": "U1", "text": "vpn"}, "C", k)["topic_ids"] is None  # no rules, no topics
    bot = minimise({"ts": "1.4", "bot_id": "B1", "text": "vpn"}, "C", k, topics=rules)
    assert bot["topic_ids"] is None
    acts = canonical_activities(rows_table([row]), "slack")
    assert acts[0]["topic_ids"] == row["topic_ids"] and "Remote" not in str(acts)


def test_ts_is_kept_exact() -> None:
    assert ts_to_micros("1482960137.003543") == 1482960137003543
    assert ts_to_micros("1482960137.003544") - ts_to_micros("1482960137.003543") == 1
