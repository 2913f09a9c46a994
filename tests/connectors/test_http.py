"""The shared HTTP client: retries, Retry-After in any case, fatal vs retryable, budgets across threads;
replayed pages absorbed by every paging loop (Slack's are in test_slack_api)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from pipelines.connectors.budget import Budget, TokenBucket
from pipelines.connectors.errors import ApiError, AuthError, RetriesExhaustedError
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy, parse_retry_after


class FakeTime:
    """A clock that only moves when somebody sleeps: retries and budgets become instant and exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(responses: list, fake: FakeTime, **kw) -> HttpClient:
    seq = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(seq)
        if isinstance(item, Exception):
            raise item
        return item

    budget = Budget(default_limit=1e9, period_s=1.0, clock=fake.clock, sleep=fake.sleep)
    return HttpClient("https://api.example/", budget=budget, transport=httpx.MockTransport(handler),
                      sleep=fake.sleep, policy=RetryPolicy(max_attempts=kw.pop("attempts", 5), jitter=0.0), seed=1, **kw)


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_429_waits_exactly_retry_after_in_any_header_case(header: str) -> None:
    fake = FakeTime()
    c = client([httpx.Response(429, headers={header: "7"}, json={"ok": False, "error": "ratelimited"}),
                httpx.Response(200, json={"ok": True})], fake)
    assert c.call("m") == {"ok": True}
    assert sum(fake.sleeps) == pytest.approx(7.0, rel=1e-6)
    assert c.stats.retries["RateLimitedError"] == 1


def test_5xx_timeout_dropped_connection_and_truncated_body_are_retried_with_backoff() -> None:
    fake = FakeTime()
    req = httpx.Request("GET", "https://api.example/m")
    c = client([httpx.Response(503, text="<html>"), httpx.ReadTimeout("slow", request=req),
                httpx.RemoteProtocolError("peer closed", request=req),
                httpx.Response(200, content=b'{"ok":true,"mess'), httpx.Response(200, json={"ok": True, "x": 1})],
               fake)
    assert c.call("m") == {"ok": True, "x": 1}
    assert fake.sleeps == [1.0, 2.0, 4.0, 8.0]  # exponential, no jitter in this policy
    assert set(c.stats.retries) == {"ServerError", "TransportTimeoutError", "InvalidBodyError"}


def test_401_is_fatal_at_once_and_names_the_token_source_not_the_token() -> None:
    fake = FakeTime()
    c = client([httpx.Response(401, json={"error": "x"})], fake, auth_header="Bearer xoxb-SECRET",
               token_source="the token in $SLACK_BOT_TOKEN")
    with pytest.raises(AuthError) as exc:
        c.call("m")
    assert "$SLACK_BOT_TOKEN" in str(exc.value) and "SECRET" not in str(exc.value)
    assert fake.sleeps == [] and c.stats.requests == 1


def test_other_4xx_is_fatal() -> None:
    with pytest.raises(ApiError) as exc:
        client([httpx.Response(404)], FakeTime()).call("m")
    assert exc.value.status == 404 and exc.value.code == "http_404"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_carry_the_http_status(status: int) -> None:
    with pytest.raises(AuthError) as exc:
        client([httpx.Response(status)], FakeTime()).call("m")
    assert exc.value.status == status


def test_exhausted_retries_carry_the_last_status_and_errors_without_response_have_none() -> None:
    with pytest.raises(RetriesExhaustedError) as exc:
        client([httpx.Response(503)] * 2, FakeTime(), attempts=2).call("m")
    assert exc.value.status == 503
    assert AuthError("no token").status is None and ApiError("x", code="c").status is None


def test_an_absolute_url_is_sent_with_its_query_string_and_params_are_still_encoded() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True})

    budget = Budget(default_limit=1e9, period_s=1.0)
    with HttpClient("https://api.example/v1", budget=budget, transport=httpx.MockTransport(handler)) as c:
        c.call("https://api.example/v1/items?$skiptoken=abc%3D%3D&$top=5")  # a nextLink, as given
        c.call("items", {"limit": 2})
        c.call("items", {})
    assert seen == ["https://api.example/v1/items?$skiptoken=abc%3D%3D&$top=5",
                    "https://api.example/v1/items?limit=2", "https://api.example/v1/items"]


def test_response_hook_and_last_headers() -> None:
    seen: list[tuple[str, int]] = []

    class Quota(ApiError):
        pass

    def hook(method: str, response: httpx.Response) -> None:
        seen.append((method, response.status_code))
        if response.status_code == 403 and b"QUOTA" in response.content:
            raise Quota(f"{method}: quota", code="quota", status=403)

    c = client([httpx.Response(200, headers={"X-Usage": "1/10"}, json={"ok": True}),
                httpx.Response(403, json=[{"errorCode": "QUOTA"}]), httpx.Response(403, json={})],
               FakeTime(), on_response=hook)
    assert c.last_headers is None
    assert c.call("m") == {"ok": True}
    assert c.last_headers is not None and c.last_headers["x-usage"] == "1/10"
    with pytest.raises(Quota):
        c.call("m")
    with pytest.raises(AuthError):  # the hook lets the default classification through
        c.call("m")
    assert seen == [("m", 200), ("m", 403), ("m", 403)]


def test_gives_up_after_max_attempts_with_the_last_error_chained() -> None:
    fake = FakeTime()
    c = client([httpx.Response(500)] * 3, fake, attempts=3)
    with pytest.raises(RetriesExhaustedError) as exc:
        c.call("m")
    assert "3 attempts" in str(exc.value) and exc.value.__cause__ is not None


def test_json_that_is_not_an_object_is_invalid() -> None:
    c = client([httpx.Response(200, json=[1, 2]), httpx.Response(200, json={"ok": True})], FakeTime())
    assert c.call("m") == {"ok": True}
    assert c.stats.retries["InvalidBodyError"] == 1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"rEtRy-AfTeR": "30"}) == 30.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "0.25"})) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    fake = FakeTime()
    b = TokenBucket(10.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(21):
        b.acquire()
    assert fake.now == pytest.approx(2.0)  # first token is there, then one every 0.1 s


def test_pause_blocks_the_whole_bucket() -> None:
    fake = FakeTime()
    b = TokenBucket(100.0, clock=fake.clock, sleep=fake.sleep)
    b.acquire()
    b.pause(3.0)
    b.acquire()
    assert fake.now >= 3.0


def test_budget_shared_between_threads_keeps_the_total_rate() -> None:
    budget = Budget(limits={"m": 200.0}, period_s=1.0, safety=1.0)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [budget.acquire("m") for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # 100 requests at 200/s need at least 99/200 s whatever the number of threads
    assert elapsed >= 0.99 * 99 / 200
    assert budget.usage()["m"]["requests"] == 100


# --- replayed pages: every paging loop drops a replay, asks again a few times, then stops clearly ------
def test_page_replays_tells_a_replay_from_a_new_page_and_bounds_the_repeats() -> None:
    pauses: list[int] = []
    r = PageReplays("m", pauses.append, max_repeats=2)
    assert not r.replayed("a") and not r.replayed("b") and not r.replayed(None)
    assert r.replayed("a") and r.replayed("b")  # two in a row: each waits the backoff
    assert pauses == [1, 2]
    assert not r.replayed("c")  # a new page: the count starts again
    assert r.replayed("c") and pauses == [1, 2, 1]
    assert r.replayed("c")
    with pytest.raises(ApiError, match="m: the server answered 3 times in a row") as exc:
        r.replayed("c")
    assert exc.value.code == "page_replayed"
    assert not r.seen_all([]) and not r.seen_all(["x", "y"]) and r.seen_all(["y", "x"])


class Replaying:
    """A server of numbered pages that, when asked for page `at`, first answers `times` times with the
    page before it (what a caching proxy replays); records the pages asked."""

    def __init__(self, at: int, times: int):
        self.at, self.left = at, times
        self.asked: list[int] = []

    def page(self, asked: int) -> int:
        self.asked.append(asked)
        if asked == self.at and self.left > 0:
            self.left -= 1
            return asked - 1
        return asked


def _graph(server: Replaying, last: int = 2):
    from pipelines.sources.msgraph_http import Credentials, GraphBudget, GraphClient

    base = "https://graph.test/v1.0/teams/T/channels/C/messages"

    def handler(request: httpx.Request) -> httpx.Response:
        n = server.page(int(request.url.params.get("$skiptoken", "0")))
        body: dict = {"value": [{"id": f"m{n}a"}, {"id": f"m{n}b"}]}
        if n < last:
            body["@odata.nextLink"] = f"{base}?$skiptoken={n + 1}"
        else:
            body["@odata.deltaLink"] = f"{base}/delta?$deltatoken=x"
        return httpx.Response(200, json=body)
    creds = Credentials("tenant", "client", "secret", where="$MSGRAPH_CLIENT_SECRET", access_token="tok")
    api = GraphClient("https://graph.test/v1.0", creds, budget=GraphBudget(default_limit=1e9, period_s=1.0),
                      policy=RetryPolicy(max_attempts=1, jitter=0.0), inner_transport=httpx.MockTransport(handler),
                      sleep=lambda s: None)
    return api, base


def test_graph_a_replayed_next_link_page_is_absorbed_without_duplicates() -> None:
    server = Replaying(at=2, times=1)
    api, base = _graph(server)
    ids = [m["id"] for m in api.items(base, endpoint="channel-messages", buckets=("tenant",))]
    assert ids == ["m0a", "m0b", "m1a", "m1b", "m2a", "m2b"]
    assert server.asked == [0, 1, 2, 2]


def test_graph_a_persistent_replay_fails_naming_the_endpoint_never_the_url() -> None:
    server = Replaying(at=2, times=100)
    api, base = _graph(server)
    with pytest.raises(ApiError) as exc:
        list(api.items(base, endpoint="channel-messages", buckets=("tenant",)))
    assert exc.value.code == "page_replayed"
    assert "channel-messages" in str(exc.value) and "replaying" in str(exc.value)
    assert "graph.test" not in str(exc.value) and "skiptoken" not in str(exc.value)
    assert server.asked == [0, 1, 2, 2, 2, 2]


def _yammer_feed(server: Replaying, last: int = 2):
    from pipelines.sources.yammer_api import YammerApi

    def handler(request: httpx.Request) -> httpx.Response:
        older = request.url.params.get("older_than")
        n = server.page(0 if older is None else (1000 - int(older)) // 10 + 1)
        # page n holds ids 1000 - 10n - 1 down to 1000 - 10n - 2: every page is older than the one before
        ids = [1000 - 10 * n - 1, 1000 - 10 * n - 2]
        return httpx.Response(200, json={"messages": [{"id": i} for i in ids],
                                         "meta": {"older_available": n < last}})
    return YammerApi("https://yammer.test/api/v1", "tok", token_source="$YAMMER_TOKEN", sleep=lambda s: None,
                     budget=Budget(default_limit=1e9, period_s=1.0),
                     policy=RetryPolicy(max_attempts=1, jitter=0.0), inner=httpx.MockTransport(handler))


def test_yammer_a_replayed_older_than_page_is_absorbed_without_duplicates() -> None:
    server = Replaying(at=1, times=2)
    ids = [m["id"] for page in _yammer_feed(server).feed({}) for m in page["messages"]]
    assert ids == [999, 998, 989, 988, 979, 978]
    assert server.asked == [0, 1, 1, 1, 2]


def test_yammer_a_persistent_replay_fails_with_the_clear_message() -> None:
    server = Replaying(at=2, times=100)
    got: list[int] = []
    with pytest.raises(ApiError) as exc:
        for page in _yammer_feed(server).feed({}):
            got += [m["id"] for m in page["messages"]]
    assert got == [999, 998, 989, 988]
    assert exc.value.code == "page_replayed" and "messages.json" in str(exc.value)
    assert "rerunning later is safe" in str(exc.value)


def test_yammer_a_directory_page_replayed_is_asked_again() -> None:
    from pipelines.sources.yammer_api import DIRECTORY_PAGE, YammerApi

    server = Replaying(at=2, times=1)

    def handler(request: httpx.Request) -> httpx.Response:
        n = server.page(int(request.url.params["page"]))
        size = DIRECTORY_PAGE if n < 3 else 3
        return httpx.Response(200, json=[{"id": n * 100 + i} for i in range(size)])
    api = YammerApi("https://yammer.test/api/v1", "tok", token_source="$YAMMER_TOKEN", sleep=lambda s: None,
                    budget=Budget(default_limit=1e9, period_s=1.0),
                    policy=RetryPolicy(max_attempts=1), inner=httpx.MockTransport(handler))
    ids = [u["id"] for u in api.directory("users.json")]
    assert len(ids) == len(set(ids)) == 2 * DIRECTORY_PAGE + 3
    assert server.asked == [1, 2, 2, 3]


def _salesforce(server: Replaying, last: int = 2, children: dict | None = None):
    from pipelines.sources.salesforce_api import SalesforceApi

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/services/data/v62.0/query/01g-"):
            n = server.page(int(path.rsplit("-", 1)[1]))
        elif path.startswith("/children/"):
            assert children is not None
            return httpx.Response(200, json=children[path])
        else:
            n = server.page(0)
        body: dict = {"done": n >= last, "records": [{"Id": f"r{n}"}]}
        if n < last:
            body["nextRecordsUrl"] = f"/services/data/v62.0/query/01g-{n + 1}"
        return httpx.Response(200, json=body)
    return SalesforceApi(lambda: ("tok", "https://sf.test"), token_source="the test token",
                         policy=RetryPolicy(max_attempts=1, base_delay_s=0.0, jitter=0.0),
                         inner=httpx.MockTransport(handler))


def test_salesforce_a_replayed_next_records_url_page_is_absorbed_without_duplicates() -> None:
    server = Replaying(at=2, times=3)  # the bound: three replays in a row are still absorbed
    ids = [r["Id"] for page in _salesforce(server).query("SELECT Id FROM FeedItem") for r in page]
    assert ids == ["r0", "r1", "r2"]
    assert server.asked == [0, 1, 2, 2, 2, 2]


def test_salesforce_a_persistent_replay_fails_with_the_clear_message() -> None:
    server = Replaying(at=1, times=100)
    with pytest.raises(ApiError) as exc:
        list(_salesforce(server).query("SELECT Id FROM FeedItem"))
    assert exc.value.code == "page_replayed" and str(exc.value).startswith("query: ")
    assert "01g" not in str(exc.value)
    assert server.asked == [0, 1, 1, 1, 1]


def test_salesforce_a_replayed_page_of_child_records_is_not_added_twice() -> None:
    from pipelines.sources.salesforce_api import SalesforceApi

    page1 = {"done": False, "nextRecordsUrl": "/children/2", "records": [{"Id": "c2"}]}
    page2 = {"done": True, "records": [{"Id": "c3"}]}
    answers = iter([page1, page1, page2])  # /children/2 is first answered with /children/1's page

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/children/"):
            return httpx.Response(200, json=next(answers))
        return httpx.Response(200, json={"done": True, "records": [
            {"Id": "p1", "FeedComments": {"done": False, "nextRecordsUrl": "/children/1", "records": [{"Id": "c1"}]}}]})
    api = SalesforceApi(lambda: ("tok", "https://sf.test"), token_source="the test token",
                        policy=RetryPolicy(max_attempts=1, base_delay_s=0.0), inner=httpx.MockTransport(handler))
    (page,) = list(api.query("SELECT Id, (SELECT Id FROM FeedComments) FROM FeedItem"))
    assert [c["Id"] for c in page[0]["FeedComments"]["records"]] == ["c1", "c2", "c3"]
