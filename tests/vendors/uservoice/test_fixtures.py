"""Every UserVoice fixture (tests/data/uservoice, hand-written, see its PROVENANCE.md) is parsed by the
connector, or rejected with an error that names what and where. Bodies are served by an httpx
MockTransport under the real transport; a whole extract runs over the fixture account."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.connectors.errors import ApiError, AuthError, RetriesExhaustedError
from pipelines.connectors.http import RetryPolicy
from pipelines.sources import uservoice
from pipelines.sources.uservoice_api import UserVoiceApi, parse_datetime
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "uservoice"
BASE = "https://example.uservoice.com"
ADMIN = "/api/v2/admin/"
DAY = dt.date(2024, 3, 4)


def _load(name: str) -> Any:
    body = json.loads((DATA / name).read_text())
    if isinstance(body, dict):
        body.pop("_note", None)
    return body


def _body(name: str) -> bytes:
    text = (DATA / name).read_text()
    if name.endswith(".txt"):  # the excerpts: drop our comment lines, serve the rest as the body
        text = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return text.encode()


Route = tuple[int, bytes, dict[str, str]]


def _transport(routes: dict[str, Route | list[Route]], seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        path = request.url.path
        if path == "/api/v2/oauth/token":
            return httpx.Response(200, content=_body("own_POST-oauth-token_access-token.json"))
        key = path + ("?cursor" if "cursor" in request.url.params else "")
        route = routes.get(key, routes.get(path, (404, b'{"errors":{"not_found":"no"}}', {})))
        if isinstance(route, list):
            route = route.pop(0) if len(route) > 1 else route[0]
        status, content, headers = route
        return httpx.Response(status, content=content, headers=headers)
    return httpx.MockTransport(handler)


def _api(routes: dict[str, Route | list[Route]], seen: list[httpx.Request] | None = None, **kw: Any) -> UserVoiceApi:
    return UserVoiceApi(BASE, "key", "secret", credentials_source="the test credentials",
                        policy=RetryPolicy(max_attempts=kw.pop("attempts", 1), base_delay_s=0.0),
                        inner=_transport(routes, seen), **kw)


def _ok(name: str) -> Route:
    return 200, _body(name), {}


def test_token_answer_has_only_an_access_token_and_is_sent_as_bearer() -> None:
    assert _load("own_POST-oauth-token_access-token.json").keys() == {"access_token"}
    seen: list[httpx.Request] = []
    api = _api({ADMIN + "statuses": _ok("own_GET-admin-statuses.json")}, seen)
    names = [s["name"] for s in api.records("statuses")]
    assert names == ["Under Review", "Planned", "Started", "Completed", "Declined"]
    token, call = seen
    assert token.method == "POST" and b"grant_type=client_credentials" in token.content
    assert call.headers["authorization"] == "Bearer 5f1c2e9a7b3d4c60"


def test_suggestion_pages_follow_the_cursor_and_keep_sideloads() -> None:
    seen: list[httpx.Request] = []
    api = _api({ADMIN + "suggestions": _ok("own_GET-admin-suggestions_page1-cursor.json"),
                ADMIN + "suggestions?cursor": _ok("own_GET-admin-suggestions_page2-last.json")}, seen)
    pages = list(api.pages("suggestions", {"per_page": 2, "includes": "forums,users"}))
    assert [[r["id"] for r in p] for p, _ in pages] == [[9001, 9002], [9003]]
    assert seen[-1].url.params["cursor"] == "Y3Vyc29yOjI=" and seen[-1].url.params["per_page"] == "2"
    assert [f["id"] for f in pages[0][1]["forums"]] == [41, 42]
    assert pages[0][1]["list_meta"] is None and "cursor" not in pages[1][1]["pagination"]
    assert parse_datetime(pages[1][0][0]["created_at"]) == dt.datetime(2024, 3, 5, 7, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(("name", "collection"), [("own_GET-admin-comments.json", "comments"),
                                                  ("own_GET-admin-supporters.json", "supporters"),
                                                  ("own_GET-admin-status_updates.json", "status_updates"),
                                                  ("own_GET-admin-users.json", "users"),
                                                  ("own_GET-admin-forums.json", "forums")])
def test_single_page_listings_parse(name: str, collection: str) -> None:
    api = _api({ADMIN + collection: _ok(name)})
    records = api.records(collection)
    assert len(records) == len(_load(name)[collection]) > 0
    assert all(parse_datetime(r["created_at"]) is not None for r in records)


@pytest.mark.parametrize("name", ["own_GET-admin-suggestions-includes_sideloaded-forums.excerpt.txt",
                                  "own_POST-admin-suggestions_created-suggestion.excerpt.txt"])
def test_truncated_docs_excerpts_are_rejected_as_not_json(name: str) -> None:
    api = _api({ADMIN + "suggestions": _ok(name)})
    with pytest.raises(RetriesExhaustedError, match=r"api/v2/admin/suggestions.*not valid JSON \(\d+ bytes, truncated"):
        api.records("suggestions")


def test_v1_list_shape_is_rejected_naming_the_collection() -> None:
    api = _api({ADMIN + "suggestions": _ok("own_v1_GET-suggestions_response_data.json")})
    with pytest.raises(ApiError, match="suggestions: the answer has no 'suggestions' list") as info:
        api.records("suggestions")
    assert info.value.code == "not_a_list"


def test_expired_token_is_fetched_again_once_then_the_call_succeeds() -> None:
    exchange = _load("own_401_token-expired.json")
    expired = (exchange["status"], json.dumps(exchange["body"]).encode(), exchange["headers"])
    seen: list[httpx.Request] = []
    api = _api({ADMIN + "statuses": [expired, _ok("own_GET-admin-statuses.json")]}, seen)
    assert len(api.records("statuses")) == 5
    assert [r.url.path.rsplit("/", 1)[-1] for r in seen] == ["token", "statuses", "token", "statuses"]
    assert api.stats()["tokens_fetched"] == 2


def test_a_token_refused_again_and_again_is_an_auth_error_naming_the_credentials() -> None:
    exchange = _load("own_401_token-expired.json")
    api = _api({ADMIN + "statuses": (401, json.dumps(exchange["body"]).encode(), {})})
    with pytest.raises(AuthError, match="statuses: HTTP 401: the token from the test credentials was refused after 3"):
        api.records("statuses")


def test_token_endpoint_refusal_names_the_oauth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})
    api = UserVoiceApi(BASE, "key", "wrong", credentials_source="$UV_ID / $UV_SECRET",
                       policy=RetryPolicy(max_attempts=1), inner=httpx.MockTransport(handler))
    with pytest.raises(AuthError, match=r"refused the client credentials \(invalid_client\); check \$UV_ID"):
        api.records("statuses")


def test_bad_request_names_the_parameter() -> None:
    api = _api({ADMIN + "suggestions": (400, b'{"errors":{"per_page":"must be between 1 and 100"}}', {})})
    with pytest.raises(ApiError, match="suggestions: HTTP 400 per_page") as info:
        api.records("suggestions", {"per_page": 500})
    assert info.value.status == 400


def test_extract_over_the_fixture_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes: dict[str, Route | list[Route]] = {
        ADMIN + "statuses": _ok("own_GET-admin-statuses.json"), ADMIN + "forums": _ok("own_GET-admin-forums.json"),
        ADMIN + "users": _ok("own_GET-admin-users.json"),
        ADMIN + "suggestions": _ok("own_GET-admin-suggestions_page1-cursor.json"),
        ADMIN + "suggestions?cursor": _ok("own_GET-admin-suggestions_page2-last.json"),
        ADMIN + "comments": _ok("own_GET-admin-comments.json"), ADMIN + "supporters": _ok("own_GET-admin-supporters.json"),
        ADMIN + "status_updates": _ok("own_GET-admin-status_updates.json")}
    transport = _transport(routes)
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *a, **k: transport)
    ctx = make_ctx(tmp_path, "uservoice", {"subdomain": "example", "backoff_base_s": 0})
    report = uservoice.extract(ctx, DAY, DAY + dt.timedelta(days=2), client_id="key", client_secret="secret")
    assert report.rows["ideas"] == 3 and report.rows["users"] == 3 and report.rows["forums"] == 2
    acts = activities(uservoice.canonicalise, ctx, DAY, DAY + dt.timedelta(days=2)).set_index("event_id")
    p = ctx.pseudonymiser
    ada, bob, cy = p.email("ada@example.com"), p.email("bob@example.com"), p.native("uservoice", "503")
    idea = acts.loc["suggestion:9001"]
    assert (idea["verb"], idea["actor_key"], idea["container_id"], idea["thread_id"], bool(idea["is_idea"])) == \
        ("idea", ada, "41", "suggestion:9001", True)
    assert idea["content_length"] == len("Quiet room booking") + len("Let us book the quiet rooms from the calendar.")
    assert acts.loc["suggestion:9002", "content_length"] == len("Standing desks") + len("More standing desks")
    assert bool(acts.loc["suggestion:9003", "is_deleted"])  # spam
    reply = acts.loc["comment:6002"]
    assert (reply["verb"], reply["actor_key"], reply["target_key"], reply["parent_id"]) == \
        ("reply", cy, ada, "suggestion:9001")
    vote = acts.loc["supporter:3002"]
    assert (vote["verb"], vote["actor_key"], vote["target_key"]) == ("vote", cy, ada)  # the voter, not the admin
    changes = acts[acts["verb"] == "status_change"]
    assert changes["idea_status"].to_dict() == {"status_update:7001": "open", "status_update:7002": "planned"}
    assert set(changes["actor_key"]) == {bob}
    assert acts.loc[acts["verb"] != "status_change", "idea_status"].isna().all()
    out = uservoice.canonicalise(ctx, DAY + dt.timedelta(days=2))
    people = out["people"].set_index("person_key")
    assert set(people.index) == {ada, bob, cy} and not people["in_directory"].any()
    assert bool(people.loc[cy, "is_deactivated"]) and (people["account_type"] == "member").all()
    forums = out["containers"].set_index("container_id")
    assert forums["kind"].eq("community").all() and forums["visibility"].to_dict() == {"41": "public", "42": "private"}
    assert p.person("slack", "U0ADA", "ADA@example.com") == ada  # one key per email, whatever the platform
    needles = ["ada@example.com", "bob@example.com", "Ada Example", "Quiet room booking", "phone booths", "g-501"]
    assert leaks(tmp_path, needles) == []


def test_a_replayed_cursor_page_is_dropped_and_asked_again() -> None:
    seen: list[httpx.Request] = []
    first = _ok("own_GET-admin-suggestions_page1-cursor.json")
    api = _api({ADMIN + "suggestions": first,
                ADMIN + "suggestions?cursor": [first, _ok("own_GET-admin-suggestions_page2-last.json")]}, seen)
    ids = [r["id"] for r in api.records("suggestions", {"per_page": 2})]
    assert ids == [9001, 9002, 9003]  # page 1's records once, though the server sent page 1 twice
    assert len(seen) == 4 and api.stats()["retries"] == {"ReplayedPage": 1}
