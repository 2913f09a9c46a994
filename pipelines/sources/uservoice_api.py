"""UserVoice Admin API v2 transport on top of `pipelines.connectors.http.HttpClient`: the client
credentials token, cursor paging, and UserVoice's two forms of `Retry-After`.

  - Token: `POST /api/v2/oauth/token` (form: grant_type=client_credentials, client_id, client_secret of a
    "Trusted" API key) answers `{"access_token": "..."}` with no expiry and no refresh token. A 401 on an
    admin call means the token expired or was invalidated: a new token is fetched and the call asked
    again, up to `MAX_REFRESHES` times in a row (a new token refused at once is a real refusal: AuthError);
  - Lists: `GET /api/v2/admin/<collection>` answers `{"<collection>": [...], "links": {...},
    "list_meta": null, "pagination": {..., "cursor": "..."}, <sideloaded arrays>}`. `pages()` sends the
    previous page's `pagination.cursor` until there is none; a cursor handed out twice is a replayed
    page (`PageReplays`), dropped before it is yielded. A body without the collection's list is no
    transient fault: `ApiError` code `not_a_list`;
  - `Retry-After` (429, and 5xx when sent): the docs define it as "the unix epoch in seconds until the
    rate limit expires", while tap-uservoice sleeps it as seconds. Both are honoured: a number at or
    above `EPOCH_THRESHOLD` (1e9, September 2001) is an epoch time (wait = it minus now), a smaller one
    is seconds; an HTTP-date is accepted too. A wait beyond `max_retry_after_s` stops the run with an
    `ApiError` (code `retry_after_too_long`) instead of sleeping for days. `X-Rate-Limit-Remaining` /
    `-Limit` / `-Reset` are kept for the report;
  - Errors: the token endpoint's 400/401 is an `AuthError` naming the OAuth error; other 4xx on admin
    calls raise `ApiError` with the HTTP status and the body's first error key when it has one.

Timestamps are ISO 8601 UTC (`2017-02-24T16:27:36Z`, also with milliseconds); ids are integers and are
normalised to strings. Nothing here logs or raises with a token, a secret, a cursor or a record.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import ApiError, AuthError, RateLimitedError, ServerError
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy, parse_retry_after

TOKEN_PATH = "api/v2/oauth/token"
ADMIN = "api/v2/admin/"
EPOCH_THRESHOLD = 1e9  # a Retry-After at or above this is an epoch time, not seconds (2001-09-09)
MAX_REFRESHES = 3
MAX_PAGES = 1_000_000


def parse_datetime(value: Any) -> dt.datetime | None:
    """`2017-02-24T16:27:36Z` (or with a fraction, or an offset) as aware UTC; None if unparseable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo is not None else None


def api_datetime(value: dt.datetime) -> str:
    """The `updated_after` / `updated_before` form, `%Y-%m-%dT%H:%M:%SZ` (UTC, whole seconds, floored)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a UserVoice `Retry-After`: seconds, an epoch time (module doc) or an HTTP-date;
    None when absent or unparseable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return parse_retry_after({"Retry-After": text}, now=now)
    if number != number or number < 0:  # NaN or negative
        return None
    return max(0.0, number - now) if number >= EPOCH_THRESHOLD else number


def link_id(record: Mapping[str, Any], name: str) -> str | None:
    """The id under `record["links"][name]` as a string (ids are integers), None when absent."""
    links = record.get("links")
    value = links.get(name) if isinstance(links, Mapping) else None
    if isinstance(value, Mapping):  # tolerate {"id": ...} objects
        value = value.get("id")
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value)


def _error_key(content: bytes) -> str | None:
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    for key in ("error", "code"):
        if isinstance(body.get(key), str):
            return str(body[key])[:60]
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        return str(next(iter(errors)))[:60]
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0].get("code") or errors[0].get("error") or errors[0].get("message")
        return str(first)[:60] if first else None
    return None


class UserVoiceResponses:
    """The `HttpClient` response hook: rate-limit headers, both Retry-After forms, error bodies."""

    def __init__(self, *, max_retry_after_s: float, clock: Callable[[], float] = time.time):
        self.max_retry_after_s = max_retry_after_s
        self.clock = clock
        self.remaining: int | None = None
        self.limit: int | None = None
        self.waits: list[float] = []  # the Retry-After waits honoured, in seconds

    def __call__(self, method: str, resp: httpx.Response) -> None:
        for name, attr in (("x-rate-limit-remaining", "remaining"), ("x-rate-limit-limit", "limit")):
            value = resp.headers.get(name)
            if value is not None and value.strip().isdigit():
                setattr(self, attr, int(value))
        status = resp.status_code
        where = method.removeprefix(ADMIN).split("?", 1)[0]
        if status == 429 or (status >= 500 and resp.headers.get("retry-after") is not None):
            wait = retry_after_seconds(resp.headers.get("retry-after"), self.clock())
            if wait is None:
                reset = resp.headers.get("x-rate-limit-reset")  # epoch seconds
                wait = retry_after_seconds(reset, self.clock()) if reset else None
            if wait is not None and wait > self.max_retry_after_s:
                raise ApiError(f"{where}: HTTP {status}: the server asks to wait {wait:.0f} s (Retry-After), more "
                               f"than max_retry_after_s={self.max_retry_after_s:g}; rerun later",
                               code="retry_after_too_long", status=status)
            if wait is not None:
                self.waits.append(wait)
            if status == 429:
                raise RateLimitedError(f"{where}: HTTP 429 rate limited (wait {wait})", wait, status=status)
            raise ServerError(f"{where}: HTTP {status}", wait, status=status)
        if method == TOKEN_PATH and status in (400, 401, 403):
            raise AuthError(f"the token endpoint refused the client credentials "
                            f"({_error_key(resp.content) or f'HTTP {status}'})", status=status)
        if status in (400, 404, 405, 409, 422):
            code = _error_key(resp.content) or f"http_{status}"
            raise ApiError(f"{where}: HTTP {status} {code}", code=code, status=status)


class UserVoiceApi:
    """Admin API v2 calls with a client-credentials token, fetched at the first call and again on a 401."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, credentials_source: str,
                 policy: RetryPolicy | None = None, timeout_s: float = 60.0, requests_per_s: float = 1.8,
                 max_retry_after_s: float = 300.0, inner: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time):
        if not client_id or not client_secret:
            raise AuthError(f"no UserVoice client credentials: {credentials_source} is empty")
        self.base_url = base_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self.credentials_source = credentials_source
        self.policy = policy
        self.timeout_s = timeout_s
        # the shared client keeps a bucket per endpoint; the calls are sequential, one collection after another,
        # so the account-wide rate stays near `requests_per_s` (UserVoice's limit is per account and minute)
        self.budget = Budget(default_limit=requests_per_s, period_s=1.0)
        self.responses = UserVoiceResponses(max_retry_after_s=max_retry_after_s, clock=clock)
        self.inner = inner  # tests serve recorded bodies through it
        self._sleep = sleep
        self.requests = 0
        self.retries: dict[str, int] = {}
        self.tokens_fetched = 0
        self.http: HttpClient | None = None

    def _new_client(self, auth: str | None) -> HttpClient:
        return HttpClient(self.base_url, budget=self.budget, auth_header=auth, token_source=self.credentials_source,
                          policy=self.policy, timeout_s=self.timeout_s, sleep=self._sleep,
                          transport=self.inner or httpx.HTTPTransport(), on_response=self.responses)

    def _fetch_token(self) -> str:
        http = self._new_client(None)
        try:
            body = http.call(TOKEN_PATH, {"grant_type": "client_credentials", "client_id": self._client_id,
                                          "client_secret": self._client_secret}, post=True)
        except AuthError as exc:
            raise AuthError(f"{exc}; check {self.credentials_source}", status=exc.status) from None
        finally:
            self._account(http)
            http.close()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ApiError("oauth/token: the answer has no access_token", code="no_access_token")
        self.tokens_fetched += 1
        return token

    def _account(self, http: HttpClient) -> None:
        self.requests += http.stats.requests
        for k, v in http.stats.retries.items():
            self.retries[k] = self.retries.get(k, 0) + v
        http.stats.requests = 0
        http.stats.retries.clear()

    def close(self) -> None:
        if self.http is not None:
            self._account(self.http)
            self.http.close()
            self.http = None

    def stats(self) -> dict[str, Any]:
        if self.http is not None:
            self._account(self.http)
        return {"requests": self.requests, "retries": dict(self.retries), "tokens_fetched": self.tokens_fetched,
                "rate_limit_remaining": self.responses.remaining, "rate_limit": self.responses.limit,
                "retry_after_waits": len(self.responses.waits)}

    def _refresh(self) -> HttpClient:
        if self.http is not None:
            self._account(self.http)
            self.http.close()
        self.http = self._new_client(f"Bearer {self._fetch_token()}")
        return self.http

    def call(self, collection: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON object of `GET /api/v2/admin/<collection>`; a 401 fetches a new token (module doc)."""
        http = self.http or self._refresh()
        refreshes = 0
        while True:
            try:
                return http.call(ADMIN + collection, params)
            except AuthError as exc:
                if exc.status != 401 or refreshes >= MAX_REFRESHES:
                    raise AuthError(f"{collection}: HTTP {exc.status}: the token from {self.credentials_source} "
                                    f"was refused{' after ' + str(refreshes) + ' new tokens' if refreshes else ''}",
                                    status=exc.status) from None
                refreshes += 1
                self.retries["TokenExpired"] = self.retries.get("TokenExpired", 0) + 1
                http = self._refresh()

    def _pause(self, attempt: int) -> object:
        assert self.http is not None
        return self.http.backoff_pause(attempt)

    def pages(self, collection: str, params: Mapping[str, Any] | None = None
              ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """(records, whole body) of each page of `collection`, following `pagination.cursor`."""
        base = dict(params or {})
        query: dict[str, Any] = dict(base)
        replays = PageReplays(collection, self._pause)
        for _ in range(MAX_PAGES):
            body = self.call(collection, query)
            records = body.get(collection)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ApiError(f"{collection}: the answer has no '{collection}' list of records (not a UserVoice v2 "
                               "list answer)", code="not_a_list")
            pagination = body.get("pagination")
            cursor = pagination.get("cursor") if isinstance(pagination, dict) else None
            cursor = str(cursor) if cursor not in (None, "") else None
            if replays.replayed(cursor):
                continue  # the same page again: its records were yielded already
            yield records, body
            if cursor is None:
                return
            query = {**base, "cursor": cursor}
        raise ApiError(f"{collection}: more than {MAX_PAGES} pages", code="too_many_pages")

    def records(self, collection: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [r for page, _ in self.pages(collection, params) for r in page]
