"""Every Bitrix24 fixture (tests/data/bitrix24, see its PROVENANCE.md) is served as an answer through the
real transport (an httpx MockTransport under `Bitrix24Api`) and parsed, or rejected with an error that
names what is wrong and where."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pyarrow as pa
import pytest

from pipelines.connectors.errors import (
    ApiError,
    AuthError,
    FatalError,
    MissingScopeError,
    RetriesExhaustedError,
    ServerError,
)
from pipelines.connectors.http import RetryPolicy
from pipelines.sources import bitrix24
from pipelines.sources.bitrix24_api import (
    Bitrix24Api,
    BitrixApiError,
    CommentScan,
    ExpiredToken,
    OAuthAuth,
    OffsetScan,
    OneCall,
    QueryLimitExceeded,
    TokenStore,
    WebhookAuth,
    result_items,
    run_scans,
)
from tests.vendors.yammer.helpers import make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "bitrix24"
PORTAL = "https://portal.example"
Route = list[tuple[int, Any]]


def _load(name: str) -> Any:
    body = json.loads((DATA / name).read_text())
    if isinstance(body, dict):
        body.pop("_note", None)
    return body


def _api(routes: dict[str, Route], *, seen: list[tuple[str, dict[str, str]]] | None = None,
         slept: list[float] | None = None, attempts: int = 1, **kw: Any) -> Bitrix24Api:
    """An API whose method answers are `routes[method]`, served in order (the last one repeats)."""
    served: dict[str, int] = {}

    def answer(method: str) -> tuple[int, Any]:
        answers = routes.get(method, [(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})])
        i = served.get(method, 0)
        served[method] = i + 1
        return answers[min(i, len(answers) - 1)]

    def handler(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        form = dict(parse_qsl(request.content.decode()))
        if seen is not None:
            seen.append((method, form))
        if method == "batch" and "batch" not in routes:  # each command answered from its own route
            inner: dict[str, Any] = {"result": {}, "result_error": {}, "result_next": {}, "result_time": {}}
            for key, cmd in form.items():
                if key.startswith("cmd["):
                    status, one = answer(cmd.partition("?")[0])
                    slot = "result" if status == 200 else "result_error"
                    inner[slot][key[4:-1]] = one["result"] if status == 200 else one
            status, body = 200, {"result": inner}
        else:
            status, body = answer(method)
        return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def sleep(s: float) -> None:
        if slept is not None:
            slept.append(s)

    return Bitrix24Api(WebhookAuth(PORTAL, 1, "webhook-code", source="the test webhook"), requests_per_s=1000,
                       burst=1000, query_limit_wait_s=0.001, policy=RetryPolicy(max_attempts=attempts, base_delay_s=0.0),
                       inner=httpx.MockTransport(handler), sleep=sleep, **kw)


def _run(tmp_path: Path, api: Bitrix24Api, **options: Any) -> bitrix24._Run:
    opts = {"portal_url": PORTAL, "webhook_user_id": 1, **options}
    ctx = make_ctx(tmp_path, "bitrix24", opts)
    return bitrix24._Run(ctx, api, None, dt.date(2026, 3, 17), dt.date(2026, 3, 17),  # type: ignore[arg-type]
                         bitrix24.Bitrix24Options.model_validate(opts))


# --- Feed -----------------------------------------------------------------------------------------------
def test_feed_page_with_uf_fields_parses_into_one_post(tmp_path: Path) -> None:
    body = _load("docs_log.blogpost.get_posts-with-uf-fields.json")
    api = _api({"log.blogpost.get": [(200, body)]})
    scan = OffsetScan("feed", "log.blogpost.get", {})
    run_scans(api, [scan])
    assert list(scan.items) == ["217"] and scan.pages == 1 and scan.head_pages == 0  # total is not read
    row = _run(tmp_path, api).post_row(scan.items["217"])
    assert row is not None
    assert row["created_at"] == dt.datetime(2026, 3, 17, 14, 29, 15, tzinfo=dt.UTC)  # +01:00 -> UTC
    assert row["container_id"] == bitrix24.RESTRICTED  # HAS_SOCNET_ALL N; recipients are not in the answer
    assert row["is_important"] is False and row["comment_count"] == 0 and row["mention_keys"] == []
    assert row["content_length"] == len("The approval process will be updated starting November 1.")
    assert row["actor_key"] and "1269" not in row["actor_key"]


def test_comments_keyed_by_log_id_parse_with_an_unresolved_parent(tmp_path: Path) -> None:
    body = _load("docs_log.blogcomment.user.get_comments-and-files.json")
    api = _api({"log.blogcomment.user.get": [(200, body)]})
    scan = CommentScan("u0", "28")
    run_scans(api, [scan])
    assert list(scan.rows) == [4821] and scan.done  # a short page: the author has no more
    run = _run(tmp_path, api)
    row = run.comment_row(scan.rows[4821], "author-key")
    assert (row["comment_id"], row["post_id"], row["log_id"]) == ("c4821", None, "13579")
    assert row["created_at"] == dt.datetime(2025, 1, 28, 9, 5, 42, tzinfo=dt.UTC)
    assert row["content_length"] == len("I support the idea!")
    table = pa.Table.from_pylist([row], schema=bitrix24.COMMENTS)
    (reply,) = bitrix24.canonical_activities(None, table, None, "b24")
    assert (reply["verb"], reply["thread_id"], reply["parent_id"], reply["target_key"]) == ("reply", "l13579", None, None)


def test_important_post_readers_are_user_ids() -> None:
    api = _api({"log.blogpost.getusers.important": [(200, _load("docs_log.blogpost.getusers.important_reader-ids.json"))]})
    call = OneCall("i1", "log.blogpost.getusers.important", {"POST_ID": 217})
    run_scans(api, [call])
    assert call.answer is not None
    assert result_items(call.answer.result, "readers") == ["1269", "1271"]


@pytest.mark.parametrize(("name", "code", "text"), [
    ("docs_log.blogpost.getusers.important_error-400-wrong-post-id.json", "", "(no error code): Wrong post ID"),
    ("docs_log.blogcomment.add_error-400-empty-code.json", "", "(no error code): No blog module installed"),
    ("docs_log.blogpost.add_error-400-named-code.json", "SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR",
     "SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR: Blog post hasn't been added"),
    ("docs_error-codes_generic-error-shape.json", "ERROR_HANDLER_ALREADY_EXIST",
     "ERROR_HANDLER_ALREADY_EXIST: Handler already exists!"),
])
def test_method_errors_keep_the_code_even_when_empty_and_the_description(name: str, code: str, text: str) -> None:
    api = _api({"log.blogpost.getusers.important": [(400, _load(name))]})
    with pytest.raises(BitrixApiError) as info:
        api.call("log.blogpost.getusers.important", {"POST_ID": 0})
    assert info.value.code == code and info.value.status == 400
    assert str(info.value) == f"log.blogpost.getusers.important: HTTP 400 {text}"


@pytest.mark.parametrize("name", ["docs_event-ONLIVEFEEDPOSTADD_handler-payload.json",
                                  "docs_event-ONLIVEFEEDPOSTUPDATE_handler-payload.json",
                                  "docs_event-ONLIVEFEEDPOSTDELETE_handler-payload.json"])
def test_event_payloads_are_not_method_answers(name: str) -> None:
    # pushed to an event handler, which this source does not run (no public endpoint in a batch job)
    api = _api({"log.blogpost.get": [(200, _load(name))]})
    with pytest.raises(ApiError, match=r"log.blogpost.get: the answer has no 'result'"):
        api.call("log.blogpost.get", {"POST_ID": 209})


# --- people and containers -------------------------------------------------------------------------------
def test_users_and_departments_parse_into_people_rows(tmp_path: Path) -> None:
    api = _api({"user.get": [(200, _load("docs_user.get_users.json"))],
                "department.get": [(200, _load("docs_department.get_departments.json"))]})
    run = _run(tmp_path, api)
    users = run.read_users()
    assert [u["ID"] for u in users] == ["1", "3"]  # fewer than 50: the keyset read ends
    depts = [d for page in api.pages("department.get", start_key="START") for d in page]
    top = bitrix24.department_names(depts, "top")
    assert top == {15: "R&D", 2: "Accounting", 4: "Marketing and Advertising Department", 3: "Sales Department",
                   17: "Legal Department"}  # their parent (1) is not listed: they are the top level
    assert bitrix24.department_names(depts, "leaf") == top
    table = run.users_table(users, top)
    assert table.column("is_active").to_pylist() == [True, True]
    assert table.column("account_type").to_pylist() == ["member", "member"]
    assert table.column("department").to_pylist() == [None, None]  # department 1 is not in the tree read
    people = bitrix24.bitrix24_people(table)
    assert len(people) == 2 and not people["in_directory"].any()
    assert set(people["person_key"]) == {run.ctx.pseudonymiser.email("v.r.valeev@bitrix.com"),
                                         run.ctx.pseudonymiser.email("test@gmail.com")}


def test_workgroups_and_members_parse_into_containers(tmp_path: Path) -> None:
    api = _api({"sonet_group.get": [(200, _load("docs_sonet_group.get_groups.json"))],
                "sonet_group.user.get": [(200, _load("docs_sonet_group.user.get_members-roles.json"))]})
    run = _run(tmp_path, api)
    groups, members = run.read_groups()
    assert [g["ID"] for g in groups] == ["77", "79"] and members == {"77": 3, "79": 3}
    frame = run.containers(groups, {}).set_index("container_id")
    assert frame.loc["sg:77", "visibility"] == "private"  # VISIBLE Y but OPENED N: members only
    assert frame.loc["sg:77", "member_count"] == 12  # NUMBER_OF_MEMBERS without a member list
    assert frame.loc["sg:79", "created_at"] == dt.datetime(2026, 3, 19, 13, 15, 6, tzinfo=dt.UTC)
    assert frame.loc[bitrix24.ALL_USERS, "visibility"] == "public"


def test_a_real_page_whose_total_is_the_page_size_is_not_the_end() -> None:
    page = _load("sdk_socialnetwork.api.workgroup.list_real-page1-next50.json")
    last = {"result": {"workgroups": [{"id": "107"}]}, "total": 51}
    seen: list[tuple[str, dict[str, str]]] = []
    api = _api({"socialnetwork.api.workgroup.list": [(200, page), (200, last), (200, page)]}, seen=seen)
    scan = OffsetScan("w", "socialnetwork.api.workgroup.list", {}, id_field="id", list_key="workgroups")
    run_scans(api, [scan])
    assert len(scan.items) == 51  # total said 50
    assert [p.get("start") for _, p in seen] == ["0", "50", "0"]  # and the head read again: nothing new


def test_user_field_labels_are_no_user_list() -> None:
    api = _api({"user.get": [(200, _load("sdk_user.fields_real-field-labels-ru.json"))]})
    with pytest.raises(ApiError, match=r"user.get: the answer's result is a dict, not a list"):
        list(api.keyset("user.get", {}))


def test_a_real_batch_envelope_gives_each_command_its_result_next_and_time() -> None:
    api = _api({"batch": [(200, _load("sdk_batch_real-envelope-excerpt.json"))]})
    answers = api.run_batch({f"cmd{i}": ("crm.lead.list", {"start": 50 * (i + 1)}) for i in range(3)})
    assert [len(answers[f"cmd{i}"].result) for i in range(3)] == [2, 2, 2]
    assert [answers[f"cmd{i}"].next for i in range(3)] == [100, 150, 200]
    assert answers["cmd0"].total == 7531 and answers["cmd2"].time["duration"] > 0
    assert api.stats()["batches"] == 1 and api.stats()["requests"] == 1


# --- system errors and limits ------------------------------------------------------------------------------
EXPECTED: dict[str, tuple[type[Exception], bool]] = {  # code -> (error, retried first)
    "INTERNAL_SERVER_ERROR": (ServerError, True), "ERROR_UNEXPECTED_ANSWER": (ServerError, True),
    "QUERY_LIMIT_EXCEEDED": (QueryLimitExceeded, True), "ERROR_BATCH_METHOD_NOT_ALLOWED": (BitrixApiError, False),
    "ERROR_BATCH_LENGTH_EXCEEDED": (BitrixApiError, False), "NO_AUTH_FOUND": (AuthError, False),
    "INVALID_REQUEST": (BitrixApiError, False), "OVERLOAD_LIMIT": (FatalError, False),
    "ACCESS_DENIED": (AuthError, False), "INVALID_CREDENTIALS": (AuthError, False),
    "ERROR_MANIFEST_IS_NOT_AVAILABLE": (BitrixApiError, False), "insufficient_scope": (MissingScopeError, False),
    "expired_token": (ExpiredToken, False), "user_access_error": (AuthError, False), "PORTAL_DELETED": (FatalError, False),
}


@pytest.mark.parametrize("row", _load("docs_system-errors_table-derived.json")["rows"], ids=lambda r: r["error"])
def test_each_system_error_is_classified(row: dict[str, Any]) -> None:
    want, retried = EXPECTED[row["error"]]
    body = {"error": row["error"], "error_description": row["error_description"]}
    api = _api({"user.get": [(row["http_status"], body)]}, attempts=2)
    with pytest.raises(Exception) as info:
        api.call("user.get")
    exc = info.value
    if retried:
        assert isinstance(exc, RetriesExhaustedError) and type(exc.__cause__) is want
        assert api.stats()["requests"] == 2
    else:
        assert type(exc) is want, exc
        assert api.stats()["requests"] == 1  # fatal: not retried
    assert row["error"] in str(exc) and "webhook-code" not in str(exc)
    if want is MissingScopeError:
        assert exc.needed == "user" and "add it" in str(exc)  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [503, 200])
def test_query_limit_exceeded_pauses_and_the_call_goes_through(status: int) -> None:
    exchange = _load("issue_any-method_503-QUERY_LIMIT_EXCEEDED.json")
    ok = {"result": True, "time": {"operating": 0}}
    api = _api({"user.admin": [(status, exchange["body"]), (200, ok)]}, attempts=3)
    assert api.call("user.admin")["result"] is True
    stats = api.stats()
    assert stats["query_limit_hits"] == 1 and stats["retries"] == {"QueryLimitExceeded": 1}
    assert stats["rate_per_s"] < 1000  # and the client slowed down


def test_operation_time_limit_waits_for_the_methods_basket() -> None:
    exchange = _load("issue_any-method_429-OPERATION_TIME_LIMIT.json")
    now = 1_800_000_000.0
    reset = {"result": [], "time": {"operating": 1.0, "operating_reset_at": int(now) + 30}}
    slept: list[float] = []
    api = _api({"log.blogpost.get": [(200, reset), (exchange["status"], exchange["body"]), (200, reset)]},
               slept=slept, attempts=3, clock=lambda: now)
    api.call("log.blogpost.get")
    api.call("log.blogpost.get")  # the 429 arrives, the client waits for the reset, then gets through
    assert 31.0 in slept and api.stats()["retries"] == {"OperationTimeLimited": 1}


def test_operation_time_limit_without_a_known_reset_waits_one_basket() -> None:
    exchange = _load("issue_any-method_429-OPERATION_TIME_LIMIT.json")
    slept: list[float] = []
    api = _api({"log.blogpost.get": [(429, exchange["body"]), (200, {"result": []})]}, slept=slept, attempts=2,
               operating_basket_s=7.0)
    api.call("log.blogpost.get")
    assert 7.0 in slept


# --- OAuth ----------------------------------------------------------------------------------------------
def _token_transport(answers: list[tuple[int, Any]], seen: list[dict[str, str]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        status, body = answers[min(len(seen) - 1, len(answers) - 1)]
        return httpx.Response(status, json=body)
    return httpx.MockTransport(handler)


def test_the_documented_token_pair_is_taken_and_kept(tmp_path: Path) -> None:
    pair = _load("docs_oauth-token_token-pair.json")
    seen: list[dict[str, str]] = []
    store = TokenStore(tmp_path / "token.json")
    auth = OAuthAuth(client_id="app.1", client_secret="s3cret", refresh_token="first-refresh", source="the test app",
                     store=store, transport=_token_transport([(200, pair)], seen), clock=lambda: 1000.0)
    auth.before_call()
    assert seen[0]["grant_type"] == "refresh_token" and seen[0]["refresh_token"] == "first-refresh"
    assert auth.base_url() == "https://portal.bitrix24.com/rest/" and auth.params() == {"auth": pair["access_token"]}
    saved = json.loads((tmp_path / "token.json").read_text())
    assert saved["refresh_token"] == pair["refresh_token"] and saved["expires_at"] == 4600.0
    assert stat.S_IMODE(os.stat(tmp_path / "token.json").st_mode) == 0o600
    again = OAuthAuth(client_id="app.1", client_secret="s3cret", refresh_token="first-refresh", source="the test app",
                      store=store, transport=_token_transport([(500, {})], seen), clock=lambda: 2000.0)
    again.before_call()  # the kept pair is still valid: no refresh
    assert len(seen) == 1 and again.refresh_token == pair["refresh_token"]
    other = OAuthAuth(client_id="app.1", client_secret="s3cret", refresh_token="re-authorised", source="the test app",
                      store=store, transport=_token_transport([(200, pair)], seen), clock=lambda: 2000.0)
    assert other.refresh_token == "re-authorised"  # a new configured token wins over the file


def test_a_refused_refresh_names_the_code_and_the_credentials() -> None:
    seen: list[dict[str, str]] = []
    auth = OAuthAuth(client_id="app.1", client_secret="s3cret", refresh_token="r", source="$B24_REFRESH_TOKEN",
                     transport=_token_transport([(401, _load("docs_oauth-token_error-PAYMENT_REQUIRED.json"))], seen))
    with pytest.raises(AuthError, match=r"PAYMENT_REQUIRED: Payment required.*re-authorise.*\$B24_REFRESH_TOKEN") as info:
        auth.refresh()
    assert "s3cret" not in str(info.value)


def test_an_expired_token_is_refreshed_and_the_call_repeated() -> None:
    expired = {"error": "expired_token", "error_description": "The access token provided has expired"}
    calls: list[dict[str, str]] = []

    class FakeAuth:
        source, refreshes, token = "the test app", 0, "old"

        def base_url(self) -> str:
            return f"{PORTAL}/rest/"

        def params(self) -> dict[str, str]:
            return {"auth": self.token}

        def before_call(self) -> None:
            return None

        def refresh(self) -> bool:
            self.token, self.refreshes = "new", self.refreshes + 1
            return True

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        calls.append(form)
        if form["auth"] == "old":
            return httpx.Response(401, json=expired)
        return httpx.Response(200, json={"result": True})

    api = Bitrix24Api(FakeAuth(), requests_per_s=1000, burst=10, inner=httpx.MockTransport(handler))
    assert api.call("user.admin")["result"] is True
    assert [c["auth"] for c in calls] == ["old", "new"] and api.stats()["token_refreshes"] == 1

