"""Graph transport, message minimisation and usage-report parsing against the real fixture payloads: every
file of tests/data/msgraph parses or is rejected with a clear message."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.connectors.errors import AuthError, ConnectorError, RateLimitedError, RetriesExhaustedError
from pipelines.connectors.http import RetryPolicy
from pipelines.privacy import Pseudonymiser
from pipelines.sources.msgraph_http import Credentials, GraphBudget, GraphClient
from pipelines.sources.msgraph_messages import (
    MessageError,
    canonical_activities,
    classify,
    minimise,
    rows_table,
)
from pipelines.sources.usage_reports import REPORTS, ReportFormatError, parse_report

DATA = Path(__file__).resolve().parents[2] / "data" / "msgraph"
JSON_FILES = sorted(DATA.glob("*.json"))
CSV_FILES = sorted(DATA.glob("*.csv"))
PS = Pseudonymiser(b"test-key-not-a-secret")
GRAPH = "https://graph.microsoft.com/v1.0"


def _load(path: Path) -> Any:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data.pop("_note", None)
        data.pop("_source", None)
    return data


def _key(identity: dict[str, Any]) -> str | None:
    uid = identity.get("id")
    return PS.native("msgraph", uid) if isinstance(uid, str) and uid else None


def _client(handler: Callable[[httpx.Request], httpx.Response], *, attempts: int = 1,
            token: str | None = "fixture-token") -> GraphClient:
    creds = Credentials("tenant", "client", "s3cr3t-value", where="$MSGRAPH_CLIENT_SECRET",
                        token_url="https://login.test/tenant/oauth2/v2.0/token", access_token=token)
    return GraphClient(GRAPH, creds, budget=GraphBudget(default_limit=1e9, period_s=1.0),
                       policy=RetryPolicy(max_attempts=attempts, default_retry_after_s=0.0),
                       inner_transport=httpx.MockTransport(handler), sleep=lambda s: None)


def _messages(data: Any) -> list[dict[str, Any]]:
    """chatMessage objects of a payload: `value[]` of a page, a CLI array, with expanded replies."""
    items = data.get("value") if isinstance(data, dict) else data
    out = []
    for m in items or []:
        if isinstance(m, dict) and "createdDateTime" in m and "messageType" in m:
            out.append(m)
            out += [r for r in m.get("replies") or [] if isinstance(r, dict)]
    return out


@pytest.mark.parametrize("path", JSON_FILES, ids=[p.name for p in JSON_FILES])
def test_every_json_fixture_parses_or_is_rejected_with_a_clear_error(path: Path) -> None:
    data = _load(path)
    name = path.name
    if name.startswith("real_"):  # error bodies and exchanges: served with their status
        exchange = data if "status" in data else {"status": 401 if "401" in name else 429, "headers": {}, "body": data}

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(exchange["status"], headers=exchange["headers"], json=exchange["body"])
        with pytest.raises(ConnectorError) as exc:
            _client(handler).call(f"{GRAPH}/teams", endpoint="teams", buckets=("tenant",))
        err = exc.value.__cause__ if isinstance(exc.value, RetriesExhaustedError) else exc.value
        if exchange["status"] == 429:
            # throttling is decided on the status, whatever error.code says (accessDenied included)
            assert isinstance(err, RateLimitedError)
            assert err.retry_after == (5.0 if "Retry-After" in exchange["headers"] else None)
        else:
            assert isinstance(err, AuthError) and "MSGRAPH_CLIENT_SECRET" in str(err)
        assert "s3cr3t" not in str(err) and "fixture-token" not in str(err)
        return
    if name == "docs_report_302_redirect.json":
        return  # exercised by test_report_redirect_is_followed_without_the_token
    if name == "docs_teams_messaging_overview_snippets.json":
        return  # fragments: see test_identity_and_reference_fragments
    msgs = _messages(data)
    if name == "docs_channel_list_old_example.json" or name == "pnpcli_chat_list_items.json":
        assert msgs == [] and all(item.get("id") for item in (data.get("value") if isinstance(data, dict) else data))
        return
    assert msgs, f"{name}: no chatMessage found"
    kind = "chat" if "chat" in name else "channel"
    rows = [minimise(m, "19:x@thread.tacv2", kind, _key) for m in msgs]
    table = rows_table(rows)
    blob = json.dumps(table.to_pylist(), default=str)
    for m in msgs:
        text = ((m.get("body") or {}).get("content") or "")
        if len(text) >= 12:
            assert text not in blob
        user = ((m.get("from") or {}).get("user") or {}).get("id")
        if user:
            assert user not in blob
    canonical_activities(table, "msgraph")


def test_system_events_are_classified_with_and_without_the_prefer_header() -> None:
    for name in ("docs_channel_list_messages_prefer_include_unknown_enum.json",
                 "docs_channel_list_messages_no_prefer_header.json"):
        msgs = _messages(_load(DATA / name))
        kinds = [classify(m) for m in msgs]
        assert kinds == ["person", "person", "system"], name
        acts = canonical_activities(rows_table([minimise(m, "c", "channel", _key) for m in msgs]), "msgraph")
        assert {a["verb"] for a in acts} == {"post", "mention"}
        assert sum(a["verb"] == "post" for a in acts) == 2  # the system event is nobody's post


def test_expanded_replies_point_at_their_root_and_deleted_and_edited_are_flagged() -> None:
    data = _load(DATA / "docs_channel_list_messages_expand_replies.json")
    assert data["value"][0]["replies@odata.nextLink"].startswith(GRAPH)
    root = minimise(data["value"][0], "c", "channel", _key)
    replies = [minimise(r, "c", "channel", _key, root["actor_key"]) for r in data["value"][0]["replies"]]
    acts = canonical_activities(rows_table([root, *replies]), "msgraph")
    assert [a["verb"] for a in acts].count("reply") == 3
    assert all(a["parent_id"] == "c:1616963377068" for a in acts if a["verb"] == "reply")
    deleted = [minimise(m, "c", "channel", _key) for m in _messages(_load(DATA / "docs_beta_channel_messages_with_deleted.json"))]
    assert [r["kind"] for r in deleted] == ["person", "deleted"] and deleted[1]["actor_key"] is None
    edited = [minimise(m, "c", "chat", _key) for m in _messages(_load(DATA / "docs_beta_chat_messages_edited.json"))]
    assert [r["is_edited"] for r in edited] == [True, False, False]


def test_identity_and_reference_fragments() -> None:
    snip = _load(DATA / "docs_teams_messaging_overview_snippets.json")
    base = {"id": "1", "messageType": "message", "createdDateTime": "2022-01-18T23:41:57.573Z",
            "body": {"contentType": "html", "content": "<p>hi?</p>"}}
    kinds = {k: classify({**base, **v}) for k, v in snip.items() if k.startswith("from_") or k == "bot_on_behalf_of_user"}
    assert kinds["from_bot"] == kinds["from_outgoingWebhook"] == kinds["from_office365Connector"] == "bot"
    assert kinds["bot_on_behalf_of_user"] == "person" and kinds["from_emailUser"] == "person"
    reply = minimise({**base, "from": snip["from_aadUser"]["from"],
                      **snip["chat_reply_as_messageReference_attachment"], **snip["reactions"],
                      **snip["mention_team"]}, "chat:k", "chat", _key)
    assert reply["reply_to_id"] == "1622853091207" and reply["parent_actor_key"] is not None
    assert reply["mention_keys"] == []  # a team mention is not a person
    assert reply["reaction_types"] == ["like"] and reply["content_length"] > 0
    system = minimise({**base, "messageType": "systemEventMessage", **snip["system_event_member_role_updated"]},
                      "c", "channel", _key)
    assert system["kind"] == "system" and system["actor_key"] is None


def test_a_message_without_a_usable_timestamp_is_rejected_naming_the_field() -> None:
    with pytest.raises(MessageError, match="createdDateTime"):
        minimise({"id": "1", "createdDateTime": "yesterday"}, "c", "channel", _key)
    with pytest.raises(MessageError, match="'id'"):
        minimise({"createdDateTime": "2021-01-22T21:39:42.08Z"}, "c", "channel", _key)


def test_delta_links_are_followed_exactly_as_given() -> None:
    pages = [_load(DATA / f"docs_channel_messages_delta_{p}.json")
             for p in ("page1_nextlink", "page2_nextlink", "page3_deltalink")]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["Prefer"] == "include-unknown-enum-members"
        assert request.headers["Authorization"] == "Bearer fixture-token"
        return httpx.Response(200, json=pages[len(seen) - 1])
    first = f"{GRAPH}/teams/t/channels/c/messages/delta?$top=2"
    bodies = list(_client(handler).pages(first, endpoint="channel-delta", buckets=("tenant",)))
    assert seen == [first, pages[0]["@odata.nextLink"], pages[1]["@odata.nextLink"]]
    assert bodies[-1]["@odata.deltaLink"].startswith(GRAPH) and "$deltatoken=" in bodies[-1]["@odata.deltaLink"]


def test_an_expired_token_is_refreshed_once_then_the_run_fails() -> None:
    expired = _load(DATA / "real_401_InvalidAuthenticationToken_expired.json")
    calls = {"token": 0, "api": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.test":
            calls["token"] += 1
            assert "Authorization" not in request.headers
            return httpx.Response(200, json={"token_type": "Bearer", "access_token": f"tok{calls['token']}"})
        calls["api"] += 1
        return httpx.Response(401, headers=expired["headers"], json=expired["body"])
    client = _client(handler, token=None)
    with pytest.raises(AuthError, match="HTTP 401"):
        client.call(f"{GRAPH}/teams", endpoint="teams", buckets=("tenant",))
    assert calls == {"token": 2, "api": 2}


def test_report_redirect_is_followed_without_the_token() -> None:
    exchange = _load(DATA / "docs_report_302_redirect.json")
    csv_text = (DATA / "pnpcli_report_getTeamsUserActivityUserDetail_sample.csv").read_text()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "graph.microsoft.com":
            return httpx.Response(exchange["status"], headers=exchange["headers"])
        assert str(request.url) == exchange["headers"]["Location"]
        assert "Authorization" not in request.headers  # pre-authenticated URL on another host
        return httpx.Response(200, headers=exchange["download_response"]["headers"], content=csv_text.encode())
    body = _client(handler).call(f"{GRAPH}/reports/getTeamsUserActivityUserDetail(date=2022-10-26)",
                                 endpoint="report", buckets=("reports",), expect="csv", download=True)
    rows = parse_report(body["csv"], REPORTS["teams_user"], PS)
    assert len(rows) == 1 and rows[0]["posts"] == 2 and rows[0]["replies"] == 3


@pytest.mark.parametrize("path", CSV_FILES, ids=[p.name for p in CSV_FILES])
def test_every_report_csv_parses_by_header_name(path: Path) -> None:
    spec = next(s for s in REPORTS.values() if s.function in path.name)
    text = path.read_text()
    rows = parse_report(text, spec, PS)
    if "header" in path.name:
        assert rows == []
        return
    assert len(rows) == 1
    row = rows[0]
    assert row["concealed"]  # the pnp samples come from tenants with concealed names
    if spec.entity == "user":
        assert row["person_key"] is None
    if spec.function == "getTeamsUserActivityUserDetail":
        # real output has a different column order from the docs: values must come by name
        assert (row["team_chat_messages"], row["posts"], row["replies"], row["report_period"]) == (5, 2, 3, 7)
    if spec.function == "getYammerGroupsActivityDetail":
        assert row["member_count"] == 3 and row["posted"] is None  # empty cells are missing, not zero
    # the same data with the columns in the documented order parses to the same values
    header, *lines = text.strip().splitlines()
    cols = header.split(",")
    cells = [line.split(",") for line in lines]
    order = list(reversed(range(len(cols))))
    flipped = "\n".join([",".join(cols[i] for i in order)] + [",".join(c[i] for i in order) for c in cells])
    assert parse_report("\ufeff" + flipped, spec, PS) == rows


def test_a_report_missing_a_required_column_is_rejected_naming_it() -> None:
    text = (DATA / "pnpcli_report_getYammerActivityUserDetail_sample.csv").read_text()
    broken = text.replace("Posted Count", "Posts")
    with pytest.raises(ReportFormatError, match="Posted Count"):
        parse_report(broken, REPORTS["engage_user"], PS)
    with pytest.raises(ReportFormatError, match="row 2"):
        parse_report(text.rstrip() + ",extra\n", REPORTS["engage_user"], PS)
