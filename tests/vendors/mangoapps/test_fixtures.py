"""Every MangoApps fixture (tests/data/mangoapps, hand-written from the documented field lists, see its
PROVENANCE.md) is parsed by the connector, or rejected with an error that names the method, the field and
the unverified assumption. Bodies are served by an httpx MockTransport under the real transport; a whole
extract runs over the fixture domain."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.connectors.errors import ApiError, AuthError, RetriesExhaustedError
from pipelines.connectors.http import RetryPolicy
from pipelines.sources import mangoapps
from pipelines.sources.mangoapps_api import MangoAppsApi, MangoAppsShapeError, to_datetime
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "mangoapps"
BASE = "https://acme.mangoapps.example"
DAY = dt.date(2024, 3, 2)
SESSION = "3f9c1e77a2b84d0c9e55"
Route = tuple[int, bytes, dict[str, str]]


def _load(name: str) -> Any:
    body = json.loads((DATA / name).read_text())
    body.pop("_note", None)
    return body


def _ok(name: str) -> Route:
    if name.endswith(".txt"):  # the excerpt: our comment lines dropped, the rest served as the body
        text = "\n".join(line for line in (DATA / name).read_text().splitlines() if not line.startswith("#"))
        return 200, text.encode(), {}
    return 200, json.dumps(_load(name)).encode(), {}


def _exchange(name: str) -> Route:
    x = _load(name)
    return x["status"], json.dumps(x["body"]).encode(), dict(x["headers"])


def _transport(routes: dict[str, Route | list[Route]], seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        path = request.url.path
        if path == "/api/logout.json":
            return httpx.Response(200, json={"ms_response": {"success": True}})
        offset = request.url.params.get("offset")
        key = f"{path}?offset={offset}" if offset is not None else path
        if key not in routes and offset not in (None, "0") and path.startswith("/api/"):
            name = path.removeprefix("/api/").removesuffix(".json")  # past the last page: an empty one
            return httpx.Response(200, json={"ms_response": {name: [], "transaction_id": "t-end"}})
        route = routes.get(key, routes.get(path, (404, b'{"ms_errors":{"error":{"error_code":"NOT_FOUND"}}}', {})))
        if isinstance(route, list):
            route = route.pop(0) if len(route) > 1 else route[0]
        status, content, headers = route
        return httpx.Response(status, content=content, headers=headers)
    return httpx.MockTransport(handler)


def _api(routes: dict[str, Route | list[Route]], seen: list[httpx.Request] | None = None, **kw: Any) -> MangoAppsApi:
    routes.setdefault("/api/login.json", _exchange("own_POST-login_session.json"))
    return MangoAppsApi(BASE, mode="session", credentials={"key": "k", "username": "ada", "password": "pw"},
                        credentials_source="the test credentials",
                        policy=RetryPolicy(max_attempts=kw.pop("attempts", 1), base_delay_s=0.0),
                        inner=_transport(routes, seen), sleep=lambda s: None, **kw)


def _records(api: MangoAppsApi, method: str, limit: int = 50) -> list[dict[str, Any]]:
    return [r for page, _ in api.pages(method, limit=limit) for r in page]


def test_login_sends_the_envelope_with_a_base64_password_then_the_session_cookie() -> None:
    seen: list[httpx.Request] = []
    api = _api({"/api/users.json": _ok("own_GET-users.json")}, seen)
    assert [u["id"] for u in _records(api, "users", 500)] == [4101, 4102, "4103"]
    login, call, _end = seen
    sent = json.loads(login.content)["ms_request"]["user"]
    assert login.method == "POST" and sent == {"api_key": "k", "username": "ada",
                                               "password": base64.b64encode(b"pw").decode()}
    assert call.headers["cookie"] == f"_felix_session_id={SESSION}"
    assert seen[-1].url.params["offset"] == "3"  # a short page is not taken as the last (A12)
    assert call.url.params["limit"] == "500" and call.url.params["offset"] == "0"


def test_feed_pages_follow_offset_until_a_short_page() -> None:
    seen: list[httpx.Request] = []
    api = _api({"/api/feeds.json?offset=0": _ok("own_GET-feeds_page1-limit2.json"),
                "/api/feeds.json?offset=2": _ok("own_GET-feeds_page2-last.json")}, seen)
    pages = list(api.pages("feeds", limit=2))
    assert [[r["id"] for r in p] for p, _ in pages] == [[9003, 9002], [9001]]
    assert [r.url.params["offset"] for r in seen[1:]] == ["0", "2", "3"]  # read until an empty page
    first = pages[0][0][0]
    assert to_datetime(first["comments"][1]["created_at"]) == dt.datetime(2024, 3, 5, 12, tzinfo=dt.UTC)  # "1709640000"


def test_groups_and_their_privacy_parse() -> None:
    api = _api({"/api/groups.json": _ok("own_GET-groups.json")})
    assert [g["privacy"] for g in _records(api, "groups", 100)] == ["public", "private", "Secret"]


@pytest.mark.parametrize(("name", "method", "pattern"), [
    ("own_GET-feeds_iso-timestamps_differs.json", "feeds",
     r"feeds answer: field 'feeds\[\]\.created_at' \(at feeds\[0\]\.created_at\) is an ISO string, expected epoch "
     r"seconds \(unverified assumption A3"),
    ("own_GET-feeds_milliseconds_differs.json", "feeds",
     r"feeds answer: field 'feeds\[\]\.updated_at' .* looks like epoch milliseconds, expected epoch seconds .*A3"),
    ("own_GET-feeds_no-from_user_differs.json", "feeds",
     r"feeds answer: field 'feeds\[\]\.from_user' .*is missing, expected object .*A5"),
    ("own_GET-feeds_bare-list_differs.json", "feeds",
     r"feeds answer: field 'ms_response' is missing, expected an object \(unverified assumption A1"),
    ("own_GET-groups_unknown-privacy_differs.json", "groups",
     r"groups answer: field 'groups\[\]\.privacy' .*is 'external', expected one of .*A14"),
])
def test_answers_unlike_the_assumptions_are_rejected_naming_the_field(name: str, method: str, pattern: str) -> None:
    api = _api({f"/api/{method}.json": _ok(name)})
    with pytest.raises(MangoAppsShapeError, match=pattern) as info:
        _records(api, method)
    assert "docs/sources/mangoapps.md" in str(info.value)
    # names, emails, bodies, ISO times; a privacy word is a setting and is named on purpose
    texts = [v for v in _strings(_load(name)) if len(v) > 5 and v != "external"]
    assert texts and [t for t in texts if t in str(info.value)] == []  # never in the message


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_a_comment_count_above_the_embedded_comments_stops_the_extract(tmp_path: Path, monkeypatch) -> None:
    routes: dict[str, Route | list[Route]] = {
        "/api/login.json": _exchange("own_POST-login_session.json"), "/api/users.json": _ok("own_GET-users.json"),
        "/api/groups.json": _ok("own_GET-groups.json"),
        "/api/feeds.json": _ok("own_GET-feeds_comment-count-exceeds_differs.json")}
    transport = _transport(routes)
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *a, **k: transport)
    ctx = make_ctx(tmp_path, "mangoapps", {"domain": "acme.mangoapps.example", "backoff_base_s": 0})
    with pytest.raises(MangoAppsShapeError, match=r"field 'feeds\[\]\.comment_count' \(at feeds\[0\]\) is 5 with 2 "
                                                   r"comments embedded, expected at most the comments embedded .*A8"):
        mangoapps.extract(ctx, DAY, DAY, username="ada", password="pw", api_key="k")
    assert not (ctx.lake_dir / "raw").exists() or not any((ctx.lake_dir / "raw").rglob("*.parquet"))


def test_the_truncated_excerpt_is_rejected_as_not_json() -> None:
    api = _api({"/api/feeds.json": _ok("own_GET-feeds_truncated.excerpt.txt")})
    with pytest.raises(RetriesExhaustedError, match=r"api/feeds\.json.*not valid JSON \(\d+ bytes, truncated"):
        _records(api, "feeds")


def test_wrong_password_is_an_auth_error_naming_the_code_and_the_credentials() -> None:
    api = _api({"/api/login.json": _exchange("own_POST-login_wrong-password.json")})
    with pytest.raises(AuthError, match=r"refused the sign-in .*AUTHENTICATION_ERROR.*check the test credentials"):
        _records(api, "users")


def test_validation_errors_are_fatal_and_name_the_code_with_numbers_masked() -> None:
    api = _api({"/api/users.json": _exchange("own_ms_errors_validation-errors-list.json")})
    with pytest.raises(ApiError, match=r"api/users\.json: MangoApps error INVALID_PARAMETER \(limit is not valid for "
                                       r"user <n> \(field limit\)\), HTTP 422") as info:
        _records(api, "users")
    assert info.value.code == "INVALID_PARAMETER" and "4101" not in str(info.value)


def test_an_ended_session_signs_in_again_once_then_the_call_succeeds() -> None:
    seen: list[httpx.Request] = []
    api = _api({"/api/users.json": [_exchange("own_401_session-ended.json"), _ok("own_GET-users.json")]}, seen)
    assert len(_records(api, "users", 500)) == 3
    assert [r.url.path for r in seen] == ["/api/login.json", "/api/users.json", "/api/login.json", "/api/users.json",
                                          "/api/users.json"]
    assert api.stats()["logins"] == 2


def test_a_rate_limited_answer_waits_its_retry_after() -> None:
    waits: list[float] = []
    api = _api({"/api/users.json": [_exchange("own_429_rate-limited.json"), _ok("own_GET-users.json")]}, attempts=3)
    api.budget.pause = lambda method, wait: waits.append(wait)  # type: ignore[method-assign, assignment]
    assert len(_records(api, "users", 500)) == 3
    assert waits == [2.0] and api.stats()["retry_after_waits"] == 1


def test_every_fixture_is_exercised_here() -> None:
    here = Path(__file__).read_text()
    names = sorted(p.name for p in DATA.iterdir() if p.name != "PROVENANCE.md")
    assert names and [n for n in names if n not in here] == []
    provenance = (DATA / "PROVENANCE.md").read_text()
    assert [n for n in names if n not in provenance] == [] and "hand-written" in provenance


def test_extract_over_the_fixture_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes: dict[str, Route | list[Route]] = {
        "/api/login.json": _exchange("own_POST-login_session.json"), "/api/users.json": _ok("own_GET-users.json"),
        "/api/groups.json": _ok("own_GET-groups.json"),
        "/api/feeds.json?offset=0": _ok("own_GET-feeds_page1-limit2.json"),
        "/api/feeds.json?offset=2": _ok("own_GET-feeds_page2-last.json")}
    transport = _transport(routes)
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *a, **k: transport)
    ctx = make_ctx(tmp_path, "mangoapps", {"domain": "acme.mangoapps.example", "backoff_base_s": 0, "feeds_limit": 2})
    last = DAY + dt.timedelta(days=3)
    report = mangoapps.extract(ctx, DAY, last, **mangoapps.connection_credentials("ada", "pw", {"api_key": "k"}))
    assert report.rows["posts"] == 2 and report.rows["users"] == 3 and report.rows["groups"] == 3
    assert report.details["system_items_skipped"] == 1 and report.details["feed_pages"] == 2
    acts = activities(mangoapps.canonicalise, ctx, DAY, last).set_index("event_id")
    p = ctx.pseudonymiser
    ada, bob, cy = p.email("ada@example.com"), p.email("bob@example.com"), p.native("mangoapps", "4103")
    post = acts.loc["feed:9003"]
    assert (post["verb"], post["actor_key"], post["container_id"], post["thread_id"], bool(post["is_question"])) == \
        ("post", ada, "51", "feed:9003", True)
    assert post["content_length"] == len("Can we book the quiet rooms from the calendar?")
    assert acts.loc["feed:9002", "container_id"] == "feed:network" and "feed:9001" not in acts.index
    reply = acts.loc["comment:7001"]
    assert (reply["verb"], reply["actor_key"], reply["target_key"], reply["parent_id"], reply["thread_id"]) == \
        ("reply", bob, ada, "feed:9003", "feed:9003")
    nested = acts.loc["comment:7002"]  # answers comment 7001: its target is that comment's author
    assert (nested["actor_key"], nested["target_key"], nested["parent_id"]) == (cy, bob, "comment:7001")
    likes = acts[acts["verb"] == "reaction"]
    assert sorted(zip(likes["actor_key"], likes["target_key"], likes["parent_id"], strict=True)) == sorted(
        [(bob, ada, "feed:9003"), (cy, ada, "feed:9003"), (ada, bob, "comment:7001")])
    # A10: a like has no time of its own, it is dated at the liked item's creation
    assert set(likes.loc[likes["parent_id"] == "feed:9003", "occurred_at"]) == {to_datetime(1709546400)}
    out = mangoapps.canonicalise(ctx, last)
    people = out["people"].set_index("person_key")
    assert set(people.index) == {ada, bob, cy} and not people["in_directory"].any()
    assert (people["account_type"] == "member").all() and not people["is_deactivated"].any()
    groups = out["containers"].set_index("container_id")
    assert groups["visibility"].to_dict() == {"51": "public", "52": "private", "53": "private", "feed:network": "public"}
    assert groups.loc["53", "member_count"] == 2 and groups.loc["feed:network", "kind"] == "feed"
    assert p.person("slack", "U0ADA", "ADA@example.com") == ada  # one key per email, whatever the platform
    needles = ["ada@example.com", "bob@example.com", "Ada Example", "quiet rooms", "Standing desks", "Which calendar",
               SESSION, "Quiet Rooms", "Skunkworks"]
    assert leaks(tmp_path, needles) == []


def test_a_server_ignoring_offset_stops_the_listing_as_a_replay() -> None:
    users = _ok("own_GET-users.json")
    api = _api({f"/api/users.json?offset={n}": users for n in (0, 3)})
    with pytest.raises(ApiError, match=r"users: the server answered 4 times in a row with a page already received") \
            as info:
        _records(api, "users", 3)
    assert info.value.code == "page_replayed"


def _domain(monkeypatch: pytest.MonkeyPatch, feeds_page1: dict[str, Any]) -> None:
    routes: dict[str, Route | list[Route]] = {
        "/api/login.json": _exchange("own_POST-login_session.json"), "/api/users.json": _ok("own_GET-users.json"),
        "/api/groups.json": _ok("own_GET-groups.json"),
        "/api/feeds.json?offset=0": (200, json.dumps(feeds_page1).encode(), {}),
        "/api/feeds.json?offset=2": _ok("own_GET-feeds_page2-last.json")}
    transport = _transport(routes)
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *a, **k: transport)


def test_an_unlike_seen_on_a_later_read_removes_the_landed_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = _load("own_GET-feeds_page1-limit2.json")
    _domain(monkeypatch, page)
    ctx = make_ctx(tmp_path, "mangoapps", {"domain": "acme.mangoapps.example", "backoff_base_s": 0, "feeds_limit": 2})
    last = DAY + dt.timedelta(days=3)
    creds: dict[str, Any] = {"username": "ada", "password": "pw", "api_key": "k"}
    mangoapps.extract(ctx, DAY, last, **creds)
    before = activities(mangoapps.canonicalise, ctx, DAY, last)
    cy = ctx.pseudonymiser.native("mangoapps", "4103")
    assert ((before["verb"] == "reaction") & (before["actor_key"] == cy)).sum() == 1
    item = page["ms_response"]["feeds"][0]  # Cy unlikes post 9003: the item's updated_at moves (A19)
    item["liked_list"] = [u for u in item["liked_list"] if str(u["id"]) != "4103"]
    item["like_count"], item["updated_at"] = 1, 1709650000
    _domain(monkeypatch, page)
    report = mangoapps.extract(ctx, last, last, **creds)
    assert report.rows["feed_items_read"] == 1 and report.days == [DAY + dt.timedelta(days=2)]
    after = activities(mangoapps.canonicalise, ctx, DAY, last)
    assert ((after["verb"] == "reaction") & (after["actor_key"] == cy)).sum() == 0
    gone = set(before["event_id"]) - set(after["event_id"])
    assert len(gone) == 1 and gone.pop().startswith("like:feed:9003:") and len(after) == len(before) - 1


def test_an_oauth_token_refused_without_a_refresh_token_names_what_to_do() -> None:
    api = MangoAppsApi(BASE, mode="oauth", credentials={"access_token": "t"}, credentials_source="$MA_TOKEN",
                       policy=RetryPolicy(max_attempts=1), sleep=lambda s: None,
                       inner=_transport({"/api/users.json": _exchange("own_401_session-ended.json")}))
    with pytest.raises(AuthError, match=r"users: the access token from \$MA_TOKEN was refused and there is no refresh"):
        _records(api, "users")


def test_every_schema_field_names_a_documented_assumption() -> None:
    from pipelines.sources.mangoapps_api import ASSUMPTIONS, SCHEMA

    docs = (Path(__file__).resolve().parents[3] / "docs" / "sources" / "mangoapps.md").read_text()
    used = {aid for fields in SCHEMA.values() for _, aid in fields.values()}
    assert used <= set(ASSUMPTIONS) and len(used) >= 10
    assert [a for a in ASSUMPTIONS if f"| {a} |" not in docs] == []  # each one in the docs' table
    assert all(path.split(".")[-1].split("[")[0] in json.dumps(_load("own_GET-feeds_page1-limit2.json"))
               for path in SCHEMA["feeds"] if path != "feeds[].comments[].liked_list[].created_at"
               and path != "feeds[].liked_list[].created_at")  # the fixture carries what the connector reads


def test_a_connection_without_its_api_key_is_refused_before_any_request(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, "mangoapps", {"domain": "acme.mangoapps.example"})
    with pytest.raises(AuthError, match=r"no MangoApps API key: the username, password and extra api_key of the "
                                        r"Airflow connection is unset or empty"):
        mangoapps.extract(ctx, DAY, DAY, **mangoapps.connection_credentials("ada", "pw", {}))
