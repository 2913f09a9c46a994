"""Salesforce REST transport on top of `pipelines.connectors.http.HttpClient`: SOQL paging, OAuth,
the org's daily API limit and its usage header.

Salesforce specifics the shared client cannot know, added through its response hook (`on_response`) so
that retries, backoff and timeouts stay the shared client's:
  - 403 with errorCode `REQUEST_LIMIT_EXCEEDED` is the org's rolling 24-hour API allocation, not a
    permission problem: it raises `DailyLimitExceeded` (fatal: retrying within minutes cannot clear
    it), which the source catches to stop cleanly and resume from its watermark next run;
  - `Sforce-Limit-Info: api-usage=N/M` is read on every response and kept (`usage`) for the report;
  - REST errors are arrays of `{message, errorCode}`: 400/404 raise `ApiError` with the errorCode;
    the OAuth token endpoint's `{"error", "error_description"}` raises `AuthError`. Every error carries
    the HTTP status; a session is refreshed on a 401 only (a 403 is a permission a new session lacks too).

SOQL: `query(soql)` yields pages, following `nextRecordsUrl` (a path relative to the instance) while
`done` is false, and child sub-queries (`(SELECT ... FROM FeedComments)`) are completed the same way.
Datetimes are `2011-07-07T00:37:00.000+0000`. Ids are 15 (case-sensitive) or 18 characters; `to18`
normalises. Nothing here logs or raises with a token, a secret or a record.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import ApiError, AuthError, FatalError, InvalidBodyError
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy

DEFAULT_VERSION = "62.0"
MAX_PAGES = 1_000_000
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class DailyLimitExceeded(FatalError):
    """The org's 24-hour API request allocation is used up (403 REQUEST_LIMIT_EXCEEDED)."""


def to18(sf_id: str) -> str:
    """The 18-character, case-insensitive form of a 15- or 18-character Salesforce id."""
    if len(sf_id) == 18:
        return sf_id
    if len(sf_id) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters (got {len(sf_id)})")
    suffix = ""
    for chunk in (sf_id[0:5], sf_id[5:10], sf_id[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += _ID_CHARS[bits]
    return sf_id + suffix


def parse_datetime(value: Any) -> dt.datetime | None:
    """`2011-07-07T00:37:00.000+0000` (SOQL) or `...Z` (Chatter REST) as aware UTC; None if unparseable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+0000"
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return dt.datetime.strptime(text, fmt).astimezone(dt.UTC)
        except ValueError:
            continue
    return None


def soql_datetime(value: dt.datetime) -> str:
    """A SOQL datetime literal (no quotes), UTC."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_usage(value: str | None) -> tuple[int, int] | None:
    m = _USAGE.search(value or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _error_codes(content: bytes) -> list[str]:
    try:
        body = json.loads(content)
    except ValueError:
        return []
    if isinstance(body, list):
        return [str(e.get("errorCode")) for e in body if isinstance(e, dict) and e.get("errorCode")]
    return []


class SalesforceResponses:
    """The `HttpClient` response hook: reads the usage header and turns Salesforce's error bodies into
    connector errors (module doc)."""

    def __init__(self) -> None:
        self.usage: tuple[int, int] | None = None

    def __call__(self, method: str, resp: httpx.Response) -> None:
        usage = parse_usage(resp.headers.get("sforce-limit-info"))
        if usage is not None:
            self.usage = usage
        status = resp.status_code
        if status not in (400, 403, 404):
            return
        path = resp.request.url.path
        codes = _error_codes(resp.content)
        where = path.rsplit("/", 1)[-1] if "/query/" in path else path
        if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
            shown = f"{self.usage[0]}/{self.usage[1]}" if self.usage else "unknown"
            raise DailyLimitExceeded(f"{where}: the org's daily API request limit is exceeded "
                                     f"(REQUEST_LIMIT_EXCEEDED, last api-usage {shown})", status=status)
        if path.endswith("/oauth2/token"):
            try:
                err = json.loads(resp.content).get("error")
            except (ValueError, AttributeError):
                err = None
            raise AuthError(f"the token endpoint refused the client credentials ({err or status})", status=status)
        if status == 403:
            raise AuthError(f"{where}: HTTP 403 {codes[:1] or ''}: the user lacks a permission", status=status)
        code = codes[0] if codes else f"http_{status}"
        raise ApiError(f"{where}: HTTP {status} {code}", code=code, status=status)


TokenFn = Callable[[], tuple[str, str]]  # () -> (access token, instance url)


class SalesforceApi:
    """SOQL over REST. `token_fn` gives (token, instance url); called again once on a 401 when
    `refreshable` (client credentials), since a session can expire mid-run."""

    def __init__(self, token_fn: TokenFn, *, token_source: str, version: str = DEFAULT_VERSION,
                 refreshable: bool = False, policy: RetryPolicy | None = None, timeout_s: float = 60.0,
                 requests_per_s: float = 10.0, inner: httpx.BaseTransport | None = None):
        self._token_fn = token_fn
        self.token_source = token_source
        self.version = version
        self.refreshable = refreshable
        self.policy = policy
        self.timeout_s = timeout_s
        # Salesforce has no per-second limit, only the daily allocation: the budget only keeps us polite
        self.budget = Budget(default_limit=requests_per_s, period_s=1.0)
        self.responses = SalesforceResponses()
        self.inner = inner  # tests serve recorded bodies through it
        self.requests = 0
        self.retries: dict[str, int] = {}
        self.http = self._client()

    def _client(self) -> HttpClient:
        token, instance = self._token_fn()
        if not token:
            raise AuthError(f"no Salesforce access token: {self.token_source} is empty")
        return HttpClient(instance, budget=self.budget, auth_header=f"Bearer {token}",
                          token_source=self.token_source, policy=self.policy, timeout_s=self.timeout_s,
                          transport=self.inner or httpx.HTTPTransport(), on_response=self.responses)

    def close(self) -> None:
        self._account()
        self.http.close()

    def _account(self) -> None:
        self.requests += self.http.stats.requests
        for k, v in self.http.stats.retries.items():
            self.retries[k] = self.retries.get(k, 0) + v
        self.http.stats.requests = 0
        self.http.stats.retries.clear()

    def stats(self) -> dict[str, Any]:
        self._account()
        usage = self.responses.usage
        return {"requests": self.requests, "retries": dict(self.retries),
                "api_usage": f"{usage[0]}/{usage[1]}" if usage else None,
                "api_remaining": usage[1] - usage[0] if usage else None}

    def call(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self.http.call(path.lstrip("/"), params)
        except AuthError as exc:
            if not self.refreshable or exc.status != 401:
                raise
            self._account()
            self.http.close()
            self.refreshable = False  # refresh once, then fail
            self.http = self._client()
            return self.http.call(path.lstrip("/"), params)

    def _pause(self, attempt: int) -> object:
        return self.http.backoff_pause(attempt)  # `self.http` is replaced when the session is refreshed

    def query(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Pages of records of `soql`, each record's child sub-queries completed. A page whose
        `nextRecordsUrl` was already handed out is a replay of an earlier page (a proxy answering from
        its cache): it is dropped before it is yielded and the same URL is asked again after the
        backoff, a few times (`PageReplays`), then an `ApiError` (code `page_replayed`)."""
        endpoint = "queryAll" if include_deleted else "query"
        path: str = f"services/data/v{self.version}/{endpoint}"
        params: dict[str, Any] | None = {"q": soql}
        replays = PageReplays("query", self._pause)
        for _ in range(MAX_PAGES):
            body = self.call(path, params)
            records = body.get("records")
            if not isinstance(records, list):
                # a well-formed object of another shape is no transient fault: retrying cannot help
                raise ApiError("query: the answer has no 'records' list (not a SOQL query result)",
                               code="not_a_query_result")
            nxt = body.get("nextRecordsUrl")
            nxt = None if body.get("done", True) or not nxt else str(nxt)
            if replays.replayed(nxt):
                continue  # ask the same page again: its records were yielded already
            for r in records:
                self._complete_children(r)
            yield records
            if nxt is None:
                return
            path, params = nxt, None
        raise ApiError(f"query: more than {MAX_PAGES} pages", code="too_many_pages")

    def _complete_children(self, record: dict[str, Any]) -> None:
        for name, value in record.items():
            if isinstance(value, dict) and isinstance(value.get("records"), list):
                replays = PageReplays(f"query ({name})", self._pause)
                replays.replayed(value.get("nextRecordsUrl"))  # the first link, from the parent's page
                while value.get("done") is False and value.get("nextRecordsUrl"):
                    more = self.call(str(value["nextRecordsUrl"]))
                    nxt = more.get("nextRecordsUrl")
                    if replays.replayed(None if more.get("done", True) or not nxt else str(nxt)):
                        continue  # the same page of children again: its records were added already
                    value["records"].extend(more.get("records") or [])
                    value["done"] = more.get("done", True)
                    value["nextRecordsUrl"] = nxt


def client_credentials(login_url: str, client_id: str, client_secret: str, *, policy: RetryPolicy | None = None,
                       timeout_s: float = 30.0) -> tuple[str, str]:
    """(access token, instance url) from the OAuth 2.0 client credentials flow."""
    http = HttpClient(login_url, budget=Budget(default_limit=5.0, period_s=1.0), policy=policy,
                      timeout_s=timeout_s, transport=httpx.HTTPTransport(), on_response=SalesforceResponses())
    try:
        body = http.call("services/oauth2/token", {"grant_type": "client_credentials", "client_id": client_id,
                                                    "client_secret": client_secret}, post=True)
    finally:
        http.close()
    token, instance = body.get("access_token"), body.get("instance_url")
    if not isinstance(token, str) or not isinstance(instance, str):
        raise InvalidBodyError("token endpoint: no access_token / instance_url")
    return token, instance
