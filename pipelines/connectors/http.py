"""An httpx client for JSON APIs: per-method budget, retries with exponential backoff, Retry-After.

Every request first takes a token from the method's bucket (`budget.Budget`), so retries count against
the rate limit too. Failures are classified (`errors`): 429, 5xx, timeouts, dropped connections and
bodies that are not a JSON object are retried, waiting `Retry-After` when the server sent one (header
name in any case) and an exponentially growing, jittered delay otherwise; 401/403 and other 4xx stop at
once. Every HTTP error carries the response's `status`. A platform adds its own envelope rules through
`check` (Slack: `ok:false` is an error, never an empty page) and may look at every response first
through `on_response` (its headers, e.g. a usage header, or a status the platform means differently,
e.g. a 403 that is a quota, not a permission: the hook raises the connector error it means); the
headers of the last response are kept in `last_headers`. A GET without params sends the URL exactly as
given, query string included, so an absolute "next page" link can be followed as is. `PageReplays` is
what every paging loop uses to absorb a replayed page (a proxy or CDN answering with an earlier
response): the page is dropped, not yielded again, and re-requested after the client's backoff, a
bounded number of times. This module never logs or puts in an exception a token, a query string or a
body.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import (
    ApiError,
    AuthError,
    InvalidBodyError,
    RateLimitedError,
    RetriesExhaustedError,
    RetryableError,
    ServerError,
    TransportTimeoutError,
)

#: check(method, body) raises a connector error when the envelope says the call failed
BodyCheck = Callable[[str, dict[str, Any]], None]
#: on_response(method, response) sees every response before it is classified; it may raise a connector
#: error to classify the response itself (the body is read: `response.content` is available)
ResponseHook = Callable[[str, httpx.Response], None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 120.0
    jitter: float = 0.2  # +- fraction, so that parallel clients do not retry in lock step
    #: wait when a 429 has no Retry-After (Airbyte's Slack connector uses 5 s as well)
    default_retry_after_s: float = 5.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return max(0.0, delay * (1.0 + self.jitter * (2 * rng.random() - 1)))


def parse_retry_after(headers: Mapping[str, str] | httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header in any letter case: delta-seconds (Slack sends an
    integer; fractions are accepted) or an HTTP-date. None when absent or unparseable."""
    value = None
    if isinstance(headers, httpx.Headers):
        value = headers.get("retry-after")
    else:
        for k, v in headers.items():
            if k.lower() == "retry-after":
                value = v
                break
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


#: times in a row a replayed page is asked for again before the run stops (each after the backoff)
MAX_PAGE_REPLAYS = 3


@dataclass
class CallStats:
    requests: int = 0
    retries: Counter = field(default_factory=Counter)  # error class name -> count

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": dict(self.retries)}


class HttpClient:
    """GET/POST JSON against `base_url/<method>`. `auth_header` is given as a value, `token_source`
    only names where it came from, for error messages."""

    def __init__(self, base_url: str, *, budget: Budget, auth_header: str | None = None,
                 token_source: str = "the configured token", policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0, check: BodyCheck | None = None,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 seed: int | None = None, on_response: ResponseHook | None = None):
        headers = {"Accept": "application/json", "User-Agent": "esn-metrics/0.1"}
        if auth_header:
            headers["Authorization"] = auth_header
        self._client = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers,
                                    timeout=timeout_s, transport=transport)
        self.budget = budget
        self.policy = policy or RetryPolicy()
        self.token_source = token_source
        self._check = check
        self._on_response = on_response
        #: headers of the last response received (any status), None before the first
        self.last_headers: httpx.Headers | None = None
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.stats = CallStats()

    def close(self) -> None:
        self._client.close()

    def backoff_pause(self, attempt: int, reason: str = "ReplayedPage") -> float:
        """Wait the policy's backoff for the `attempt`-th retry of something the caller retries itself
        (a replayed page), counted in `stats.retries[reason]`; returns the seconds waited."""
        self.stats.retries[reason] += 1
        wait = self.policy.backoff(attempt, self._rng)
        self._sleep(wait)
        return wait

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None, *, post: bool = False) -> dict[str, Any]:
        """The JSON object answered by `method`, after retries; raises a FatalError or
        RetriesExhaustedError."""
        attempt = 0
        while True:
            attempt += 1
            self.budget.acquire(method)
            self.stats.requests += 1
            try:
                return self._once(method, params, post)
            except RetryableError as exc:
                self.stats.retries[type(exc).__name__] += 1
                if isinstance(exc, RateLimitedError):
                    wait = exc.retry_after if exc.retry_after is not None else self.policy.default_retry_after_s
                    # the server's wait applies to every thread using this method's budget
                    self.budget.pause(method, wait)
                else:
                    wait = exc.retry_after if exc.retry_after is not None else self.policy.backoff(attempt, self._rng)
                if attempt >= self.policy.max_attempts:
                    raise RetriesExhaustedError(
                        f"{method}: gave up after {attempt} attempts; last error: {exc}", status=exc.status) from exc
                if not isinstance(exc, RateLimitedError):
                    self._sleep(wait)
                # for a 429 the paused bucket does the waiting in the next acquire()

    def _once(self, method: str, params: Mapping[str, Any] | None, post: bool) -> dict[str, Any]:
        try:
            if post:
                response = self._client.post(method, data=dict(params or {}))
            else:
                # no params: None, not {}, or httpx would drop the query string of an absolute URL
                response = self._client.get(method, params=dict(params) if params else None)
        except httpx.TimeoutException as exc:
            raise TransportTimeoutError(f"{method}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            # dropped connection, reset, incomplete chunked body: transient
            raise TransportTimeoutError(f"{method}: connection failed ({type(exc).__name__})") from None
        status = response.status_code
        self.last_headers = response.headers
        if self._on_response is not None:
            self._on_response(method, response)
        retry_after = parse_retry_after(response.headers)
        if status == 429:
            raise RateLimitedError(f"{method}: HTTP 429 rate limited (Retry-After {retry_after})", retry_after,
                                   status=status)
        if status >= 500:
            raise ServerError(f"{method}: HTTP {status}", retry_after, status=status)
        if status in (401, 403):
            raise AuthError(f"{method}: HTTP {status}: {self.token_source} was refused; check it is valid "
                            "and has the needed permissions", status=status)
        if status >= 400:
            raise ApiError(f"{method}: HTTP {status}", code=f"http_{status}", status=status)
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise InvalidBodyError(f"{method}: body is not valid JSON ({len(response.content)} bytes, "
                                   "truncated or not JSON)", status=status) from None
        if not isinstance(body, dict):
            raise InvalidBodyError(f"{method}: body is JSON but not an object ({type(body).__name__})",
                                   status=status)
        if self._check is not None:
            self._check(method, body)
        return body


class PageReplays:
    """Tells a replayed page from a new one in one paging loop, and bounds how often it is asked again.

    A page is a replay when the "next" it points to (a cursor, a next link, a records URL) was already
    handed out by an earlier page of the same loop: a proxy or CDN answered with a cached earlier
    response. Its items were yielded already, so the loop must check *before* yielding, drop the page
    and request the same page again. `replayed(nxt)` records a new `nxt` and returns False, or, for a
    replay, waits the client's backoff (`pause(n)`, n = replays in a row) and returns True; after
    `max_repeats` replays in a row it raises a fatal `ApiError` (code `page_replayed`) that says what
    happened. Loops whose replay test is not a repeated token (Viva Engage's `older_than`, page numbers)
    call `again()` / `fresh()` themselves.
    """

    def __init__(self, what: str, pause: Callable[[int], object], *, max_repeats: int = MAX_PAGE_REPLAYS):
        self.what = what  # the method or endpoint label, never a URL or a cursor
        self._pause = pause
        self.max_repeats = max_repeats
        self._seen: set[Hashable] = set()
        self.in_a_row = 0
        self.total = 0

    def replayed(self, nxt: Hashable | None) -> bool:
        """Whether the page pointing to `nxt` is a replay (see the class doc); None (the last page) never is."""
        if nxt is None or nxt not in self._seen:
            if nxt is not None:
                self._seen.add(nxt)
            self.fresh()
            return False
        self.again()
        return True

    def seen_all(self, keys: Iterable[Hashable]) -> bool:
        """Whether every key of a non-empty page was on earlier pages (for page-numbered lists); the keys
        of a page that is not all seen are recorded."""
        keys = list(keys)
        if keys and all(k in self._seen for k in keys):
            return True
        self._seen.update(keys)
        return False

    def fresh(self) -> None:
        """A new page came: the count of replays in a row starts again."""
        self.in_a_row = 0

    def again(self) -> None:
        """The page just received is a replay: wait the backoff before it is asked again, or raise once
        it has been replayed more than `max_repeats` times in a row."""
        self.in_a_row += 1
        self.total += 1
        if self.in_a_row > self.max_repeats:
            raise ApiError(
                f"{self.what}: the server answered {self.in_a_row} times in a row with a page already "
                f"received (asked again {self.max_repeats} times, with backoff): a server, proxy or CDN "
                "is replaying earlier responses instead of the next page. No item was taken twice; "
                "rerunning later is safe.",
                code="page_replayed")
        self._pause(self.in_a_row)
