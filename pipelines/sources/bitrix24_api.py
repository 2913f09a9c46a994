"""Bitrix24 REST transport on top of `pipelines.connectors.http.HttpClient`: the two auth modes, the
portal's two limits, the error shapes, `batch`, and the list-paging primitives the source builds on.

Auth (`WebhookAuth`, `OAuthAuth`):
  - an incoming webhook calls `https://<portal>/rest/<user id>/<code>/<method>`: the code is a secret
    in the URL path, so no URL is ever logged or put in an error (the shared client never does);
  - OAuth 2.0 calls `<client_endpoint><method>` with `auth=<access token>` in the form body. Access
    tokens live 1 hour: one is refreshed before it is due (`REFRESH_MARGIN_S`) and on a 401
    `expired_token`, then the call is repeated once. A refresh answers a NEW refresh token (docs
    `settings/oauth/auto-renewal.md`: "save the new pair"), so the pair is written at once to the
    token file (`TokenStore`, mode 0600, atomic) before it is used: a run killed after a refresh does not
    lose the only valid refresh token. The file remembers a fingerprint of the refresh token it grew from
    (`seed`): when the configured refresh token changes (the app was authorised again), the file is
    ignored and the new token is used.
Limits (`limits.md`):
  - the leaky bucket per portal and source IP (2 requests/s drained, 50 in a burst; Enterprise 5 / 250):
    every HTTP request of the run takes a token from ONE bucket (`PortalBudget`), `batch` counting as one
    request. The bucket starts empty, so a run never opens with a burst on a counter an earlier run (or
    another integration on the same IP) may still hold up. HTTP 503 `QUERY_LIMIT_EXCEEDED` (also when it
    comes with HTTP 200, which some third-party code claims; the body is always read) pauses the bucket,
    longer at each 503 in a row, and lowers the client's rate by a fifth (never below 0.5/s): the docs'
    "decrease request frequency and retry with increasing delay";
  - the operating time: each method's summed execution time over 10 one-minute baskets. Every answer's
    `time.operating` / `time.operating_reset_at` (and each `batch` command's `result_time`) is read;
    once a method has used `headroom` of `operating_limit_s`, its next call waits until the oldest
    basket is dropped (`OperatingTime`), so the portal's HTTP 429 `OPERATION_TIME_LIMIT` is not reached
    in the first place; when it is (another integration of the same app), the call waits for
    `operating_reset_at` of that method's last answer and retries.
Errors: the shape is `{"error": CODE, "error_description": TEXT}`; method errors are HTTP 400 and
often have an EMPTY code (`{"error":"","error_description":"Wrong post ID"}`), so the description is
kept too (`BitrixApiError`, digits runs masked: an error never carries an id). Auth problems
(`NO_AUTH_FOUND`, `invalid_token`, `INVALID_CREDENTIALS`, `insufficient_scope`, ...) are fatal and name
where the credentials came from; `INTERNAL_SERVER_ERROR` / 5xx are retried by the shared client.
Paging: `start`/`next` pages of 50 (`next` absent on the last page; `total` is NOT trusted: a real
portal answered `next:50, total:50` on a longer list, fixture `sdk_socialnetwork...next50.json`), a
`result` that PHP may encode as an object with numeric keys instead of a list (`result_items`), keyset
reads by `>ID` with `start=-1` (`settings/performance/huge-data.md`), and `batch` of up to 50 commands
whose per-command errors are retried one by one (`run_batch`). Nothing here logs or raises with a token,
a webhook code, a parameter value or a record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import tempfile
import time
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from pipelines.connectors.budget import Budget, TokenBucket
from pipelines.connectors.errors import (
    ApiError,
    AuthError,
    FatalError,
    InvalidBodyError,
    MissingScopeError,
    RateLimitedError,
    RetriesExhaustedError,
    RetryableError,
    ServerError,
)
from pipelines.connectors.http import HttpClient, RetryPolicy

DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"
PAGE = 50  # the fixed page size of the start/next list methods
BATCH_MAX = 50  # commands in one `batch` (more end in ERROR_BATCH_LENGTH_EXCEEDED)
REFRESH_MARGIN_S = 120.0  # refresh an access token this long before it is due
MAX_PAGES = 1_000_000
#: error codes that name a credentials problem (fatal: fix the webhook, the app or the user's rights)
AUTH_CODES = frozenset({"NO_AUTH_FOUND", "invalid_token", "INVALID_CREDENTIALS", "WRONG_AUTH_TYPE", "ACCESS_DENIED",
                        "user_access_error", "authorization_error", "PAYMENT_REQUIRED", "invalid_client",
                        "invalid_grant", "APPLICATION_NOT_FOUND"})
SERVER_CODES = frozenset({"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"})
_DIGITS = re.compile(r"\d{3,}")
_PORTAL_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$")


# --- errors -------------------------------------------------------------------------------------------
class BitrixApiError(ApiError):
    """A method error (HTTP 400 and the like). `code` may be empty, as Bitrix24 often sends; the
    description is then what tells errors apart."""

    def __init__(self, message: str, code: str, description: str, *, status: int | None = None):
        super().__init__(message, code, status=status)
        self.description = description


class QueryLimitExceeded(RateLimitedError):
    """HTTP 503 `QUERY_LIMIT_EXCEEDED`: the portal's leaky bucket is full."""


class OperationTimeLimited(RetryableError):
    """HTTP 429 `OPERATION_TIME_LIMIT`: the method's operating time is used up until a basket resets."""


class ExpiredToken(AuthError):
    """HTTP 401 `expired_token`: the OAuth access token is older than its hour."""


def _mask(text: str) -> str:
    """An error description as it may be shown: digit runs (ids) masked, at most 200 characters."""
    return _DIGITS.sub("<n>", str(text or ""))[:200]


def _scope_of(method: str) -> str:
    return {"log": "log", "sonet_group": "sonet_group", "user": "user", "department": "department"}.get(
        method.split(".", 1)[0], "basic")


# --- dates ------------------------------------------------------------------------------------------
def parse_datetime(value: Any, tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
    """Aware UTC from ISO 8601 with an offset (`2026-03-17T15:29:15+01:00`, the REST format), from ISO
    without one or the portal format `21.10.2015 17:00:50` (old docs), both in the portal's time zone
    `tz`; None when empty or unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    m = _PORTAL_DATE.match(text)
    try:
        if m:
            d, mo, y, h, mi, s = m.groups()
            t = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=tz)
        else:
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=tz)
    except ValueError:
        return None
    return t.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    """The ISO 8601 form Bitrix24 filters take, with an explicit +00:00 offset."""
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def timezone(name: str) -> dt.tzinfo:
    if name.upper() in ("UTC", "Z"):
        return dt.UTC
    return zoneinfo.ZoneInfo(name)


# --- parameters -------------------------------------------------------------------------------------
def flatten(params: Mapping[str, Any] | None, prefix: str = "") -> list[tuple[str, str]]:
    """PHP `http_build_query` form of nested parameters: `{"FILTER": {">ID": 5}, "LOG_RIGHTS": ["SG1"]}`
    -> `FILTER[>ID]=5`, `LOG_RIGHTS[0]=SG1`. True/False are 1/0 (PHP's casts); None is left out."""
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            out += flatten(value, name)
        elif isinstance(value, list | tuple):
            out += flatten({str(i): v for i, v in enumerate(value)}, name)
        elif isinstance(value, bool):
            out.append((name, "1" if value else "0"))
        else:
            out.append((name, str(value)))
    return out


def command(method: str, params: Mapping[str, Any] | None) -> str:
    """One `batch` command: `method?query`, the query PHP-encoded."""
    query = urlencode(flatten(params))
    return f"{method}?{query}" if query else method


# --- envelopes --------------------------------------------------------------------------------------
def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def error_of(body: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(code, description) when `body` is Bitrix24's error shape (the code may be empty), else None."""
    if not isinstance(body, Mapping) or "result" in body:
        return None
    if "error" not in body and "error_description" not in body:
        return None
    code = body.get("error")
    return (str(code) if isinstance(code, str) else "", str(body.get("error_description") or ""))


def result_items(value: Any, what: str) -> list[Any]:
    """A list result: a JSON list, or the object with numeric keys PHP makes of a list with holes (the
    Feed method drops unpublished posts from a page after selecting it); an empty PHP array `[]` or
    `{}` is no items. Anything else is an `ApiError` naming `what`."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(str(k).lstrip("-").isdigit() for k in value):
        return [value[k] for k in sorted(value, key=lambda k: int(k))]
    raise ApiError(f"{what}: the answer's result is a {type(value).__name__}, not a list", code="unexpected_shape")


def mapping(value: Any) -> dict[str, Any]:
    """A PHP associative array that may arrive as `[]` when empty."""
    if isinstance(value, dict):
        return value
    if value in (None, []):
        return {}
    if isinstance(value, list):  # an array with keys 0..n-1 is a JSON list
        return {str(i): v for i, v in enumerate(value)}
    raise ApiError(f"batch: expected an object, got a {type(value).__name__}", code="unexpected_shape")


def next_start(value: Any) -> int | None:
    """`next` as an int, None when absent or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# --- limits -----------------------------------------------------------------------------------------
class PortalBudget(Budget):
    """One leaky bucket for the whole portal (every method, every thread of the run): Bitrix24 counts the
    app's HTTP requests, not per method. Starts empty (module doc); `limited()` is called on each 503."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, min_rate: float = 0.5):
        super().__init__(default_limit=rate, period_s=1.0, clock=clock, sleep=sleep)
        self.portal = TokenBucket(rate * self.safety, capacity=max(1, burst), clock=clock, sleep=sleep)
        self.portal.pause(0.0)  # empty: no opening burst
        self.min_rate = min(min_rate, rate * self.safety)
        self.in_a_row = 0
        self.hits = 0

    def bucket(self, method: str) -> TokenBucket:
        return self.portal

    def limited(self, base_wait_s: float) -> float:
        """A 503 arrived: lower the rate by a fifth, and the pause to take (doubling in a row, <= 60 s)."""
        self.hits += 1
        self.in_a_row += 1
        self.portal.rate = max(self.min_rate, self.portal.rate * 0.8)
        return min(60.0, base_wait_s * 2 ** (self.in_a_row - 1))

    def ok(self) -> None:
        self.in_a_row = 0

    def usage(self) -> dict[str, dict[str, float]]:
        st = self.portal.stats
        return {"portal": {"requests": st.requests, "achieved_per_s": st.achieved_per_s(),
                           "allowed_per_s": self.portal.rate, "waited_s": st.waited_s, "pauses": st.paused}}


@dataclass
class OperatingTime:
    """Each method's operating time as the portal reported it (module doc): `before(method)` waits when
    the method has used `headroom` of `limit_s`, until the oldest basket resets."""

    limit_s: float = 480.0
    headroom: float = 0.8
    basket_s: float = 60.0  # one basket: the wait after a 429 when no future reset is known
    max_wait_s: float = 660.0  # 10 baskets of a minute, and some clock skew
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    seen: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # method -> (operating, reset_at)
    resets: dict[str, float] = field(default_factory=dict)  # method -> the last reset it reported
    waits: int = 0
    waited_s: float = 0.0
    peak: dict[str, float] = field(default_factory=dict)

    def observe(self, method: str, timing: Any) -> None:
        if not isinstance(timing, Mapping):
            return
        operating = timing.get("operating")
        if not isinstance(operating, int | float) or isinstance(operating, bool):
            return
        reset = timing.get("operating_reset_at")
        reset_at = float(reset) if isinstance(reset, int | float) and not isinstance(reset, bool) else None
        self.seen[method] = (float(operating), reset_at)
        if reset_at is not None:
            self.resets[method] = reset_at
        self.peak[method] = max(self.peak.get(method, 0.0), float(operating))

    def wait_s(self, method: str) -> float:
        operating, reset_at = self.seen.get(method, (0.0, None))
        if operating < self.headroom * self.limit_s or reset_at is None:
            return 0.0
        # `operating_reset_at` is a whole second: one more second so the basket has surely gone
        return min(self.max_wait_s, max(0.0, reset_at + 1.0 - self.clock()))

    def before(self, method: str) -> float:
        wait = self.wait_s(method)
        operating, _ = self.seen.get(method, (0.0, None))
        if wait > 0:
            self.waits += 1
            self.waited_s += wait
            self.sleep(wait)
        if operating >= self.headroom * self.limit_s:
            self.seen[method] = (operating, None)  # waited for this reset: the next answer tells the rest
        return wait

    def blocked_wait(self, method: str) -> float:
        """The wait after a 429 of `method`: until the reset its last answer announced, or, when that has
        passed (the error persists) or none is known, one basket (the docs: wait for the next reset)."""
        reset_at = self.resets.get(method)
        wait = reset_at + 1.0 - self.clock() if reset_at is not None else 0.0
        return min(self.max_wait_s, wait if wait >= 1.0 else self.basket_s)


# --- responses --------------------------------------------------------------------------------------
class Bitrix24Responses:
    """The `HttpClient` response hook: Bitrix24's error bodies (whatever the status) become connector
    errors (module doc); a success resets the 503 streak."""

    def __init__(self, budget: PortalBudget, operating: OperatingTime, *, token_source: str,
                 query_limit_wait_s: float):
        self.budget, self.operating = budget, operating
        self.token_source = token_source
        self.query_limit_wait_s = query_limit_wait_s
        self.total_mismatch = 0

    def __call__(self, method: str, resp: httpx.Response) -> None:
        status = resp.status_code
        err = error_of(_json_object(resp.content))
        if err is None:
            if status < 400:
                self.budget.ok()
            return  # a success, or a non-JSON error body the shared client classifies by status
        raise self.classify(method, status, *err)

    def classify(self, method: str, status: int | None, code: str, description: str) -> Exception:
        shown = f"{code or '(no error code)'}: {_mask(description)}" if description else code or "(no error code)"
        where = f"{method}: HTTP {status} {shown}" if status else f"{method}: {shown}"
        if code == "QUERY_LIMIT_EXCEEDED":
            return QueryLimitExceeded(f"{where} (the portal's request rate limit)",
                                      self.budget.limited(self.query_limit_wait_s), status=status)
        if code == "OPERATION_TIME_LIMIT":
            return OperationTimeLimited(f"{where} (the method's operating-time limit)",
                                        self.operating.blocked_wait(method), status=status)
        if code == "expired_token":
            return ExpiredToken(f"{where}: the access token has expired", status=status or 401)
        if code == "insufficient_scope":
            scope = _scope_of(method)
            return MissingScopeError(f"{where}: {self.token_source} lacks the scope {scope!r}; add it to the "
                                     "webhook or the application", scope, status=status)
        if code in AUTH_CODES or status in (401, 403):
            return AuthError(f"{where}: {self.token_source} was refused; check it is valid, that its user is a "
                             "portal administrator and that it has the scopes log, sonet_group, user, department",
                             status=status)
        if code == "OVERLOAD_LIMIT":
            return FatalError(f"{where}: the portal's REST API is blocked by Bitrix24 (a manual block); "
                              "ask Bitrix24 support to lift it", status=status)
        if code == "PORTAL_DELETED":
            return FatalError(f"{where}: the portal is closed or deleted", status=status)
        if code in SERVER_CODES or (status is not None and status >= 500):
            return ServerError(where, None, status=status)
        return BitrixApiError(where, code, _mask(description), status=status)


# --- auth ---------------------------------------------------------------------------------------------
class Auth(Protocol):
    source: str  # where the credentials came from, for messages (never the secret)
    refreshes: int

    def base_url(self) -> str: ...

    def params(self) -> dict[str, str]: ...

    def before_call(self) -> None: ...

    def refresh(self) -> bool: ...


class WebhookAuth:
    """An incoming webhook: the code is in the URL path; nothing to refresh."""

    def __init__(self, portal_url: str, user_id: int | str, code: str, *, source: str):
        if not code:
            raise AuthError(f"no Bitrix24 webhook code: {source} is empty")
        self._base = f"{portal_url.rstrip('/')}/rest/{user_id}/{code}/"
        self.source = source
        self.refreshes = 0

    def base_url(self) -> str:
        return self._base

    def params(self) -> dict[str, str]:
        return {}

    def before_call(self) -> None:
        return None

    def refresh(self) -> bool:
        return False


class TokenStore:
    """The OAuth token pair on disk (module doc): JSON, mode 0600, replaced atomically and fsynced."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise AuthError(f"the Bitrix24 token file {self.path} is unreadable ({type(exc).__name__}); remove it "
                            "to start again from the configured refresh token") from None
        return data if isinstance(data, dict) else None

    def save(self, data: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(dict(data), fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _seed(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:16]


class OAuthAuth:
    """OAuth 2.0 with a refresh token (module doc). `transport` lets tests serve the token endpoint."""

    def __init__(self, *, client_id: str, client_secret: str, refresh_token: str, source: str,
                 oauth_url: str = DEFAULT_OAUTH_URL, portal_url: str | None = None, store: TokenStore | None = None,
                 policy: RetryPolicy | None = None, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.time):
        if not client_id or not client_secret or not refresh_token:
            raise AuthError(f"incomplete Bitrix24 OAuth credentials: {source} (client id, secret and refresh "
                            "token are all needed)")
        self.client_id, self.client_secret = client_id, client_secret
        self.oauth_url, self.portal_url = oauth_url, portal_url
        self.source, self.store, self.policy, self.timeout_s = source, store, policy, timeout_s
        self.transport, self.clock = transport, clock
        self.seed = _seed(refresh_token)
        self.refresh_token = refresh_token
        self.access_token: str | None = None
        self.expires_at = 0.0
        self.endpoint: str | None = None
        self.refreshes = 0
        saved = store.load() if store is not None else None
        if saved and saved.get("seed") == self.seed and isinstance(saved.get("refresh_token"), str):
            self.refresh_token = saved["refresh_token"]
            self.access_token = saved.get("access_token") if isinstance(saved.get("access_token"), str) else None
            self.expires_at = float(saved.get("expires_at") or 0.0)
            self.endpoint = saved.get("client_endpoint") if isinstance(saved.get("client_endpoint"), str) else None

    def base_url(self) -> str:
        if self.endpoint:
            return self.endpoint
        if self.portal_url:
            return f"{self.portal_url.rstrip('/')}/rest/"
        self.refresh()  # the token answer names the portal's REST endpoint
        return self.endpoint or ""

    def params(self) -> dict[str, str]:
        return {"auth": self.access_token} if self.access_token else {}

    def before_call(self) -> None:
        if self.access_token is None or self.expires_at - self.clock() < REFRESH_MARGIN_S:
            self.refresh()

    def refresh(self) -> bool:
        budget = Budget(default_limit=2.0, period_s=1.0)
        http = HttpClient(self.oauth_url, budget=budget, token_source=self.source, policy=self.policy,
                          timeout_s=self.timeout_s, transport=self.transport or httpx.HTTPTransport(),
                          on_response=_oauth_errors(self.source))
        try:
            body = http.call("", {"grant_type": "refresh_token", "client_id": self.client_id,
                                  "client_secret": self.client_secret, "refresh_token": self.refresh_token})
        finally:
            http.close()
        token, refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(token, str) or not token or not isinstance(refresh, str) or not refresh:
            raise InvalidBodyError("the OAuth token endpoint answered without access_token / refresh_token")
        expires_in = body.get("expires_in")
        ttl = float(expires_in) if isinstance(expires_in, int | float | str) and str(expires_in).isdigit() else 3600.0
        self.access_token, self.refresh_token = token, refresh
        self.expires_at = self.clock() + ttl
        endpoint = body.get("client_endpoint")
        if isinstance(endpoint, str) and endpoint.startswith(("http://", "https://")):
            self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.refreshes += 1
        if self.store is not None:  # before the token is used: the old refresh token may be dead now
            self.store.save({"seed": self.seed, "refresh_token": refresh, "access_token": token,
                             "expires_at": self.expires_at, "client_endpoint": self.endpoint})
        return True


def _oauth_errors(source: str) -> Callable[[str, httpx.Response], None]:
    def hook(method: str, resp: httpx.Response) -> None:
        err = error_of(_json_object(resp.content))
        if err is None:
            return
        code, description = err
        if resp.status_code >= 500 and code not in AUTH_CODES:
            raise ServerError(f"OAuth token endpoint: HTTP {resp.status_code}", None, status=resp.status_code)
        raise AuthError(f"the OAuth token endpoint refused the refresh ({code or resp.status_code}: "
                        f"{_mask(description)}); re-authorise the application and update {source}",
                        status=resp.status_code)
    return hook


# --- the client ---------------------------------------------------------------------------------------
@dataclass
class Answer:
    """One method's answer: its result and the paging / timing fields beside it."""

    result: Any
    next: int | None = None
    total: Any = None
    time: Any = None


class Bitrix24Api:
    """Calls on one portal within its limits (module doc). `inner` lets tests serve recorded bodies."""

    def __init__(self, auth: Auth, *, requests_per_s: float = 2.0, burst: int = 25,
                 operating_limit_s: float = 480.0, operating_headroom: float = 0.8, operating_basket_s: float = 60.0,
                 query_limit_wait_s: float = 2.0,
                 batch_size: int = BATCH_MAX, policy: RetryPolicy | None = None, timeout_s: float = 60.0,
                 inner: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        self.auth = auth
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        self.batch_size = max(1, min(BATCH_MAX, batch_size))
        self.budget = PortalBudget(requests_per_s, burst, sleep=sleep)
        self.operating = OperatingTime(operating_limit_s, operating_headroom, basket_s=operating_basket_s,
                                       clock=clock, sleep=sleep)
        self.responses = Bitrix24Responses(self.budget, self.operating, token_source=auth.source,
                                           query_limit_wait_s=query_limit_wait_s)
        self.inner = inner
        self._sleep = sleep
        self._rng = random.Random(0)  # backoff jitter of retried batch commands
        self.requests = 0
        self.batches = 0
        self.retries: dict[str, int] = {}
        self.total_mismatches = 0
        auth.before_call()
        self._base = auth.base_url()
        self.http = self._client()

    def _client(self) -> HttpClient:
        return HttpClient(self._base, budget=self.budget, token_source=self.auth.source, policy=self.policy,
                          timeout_s=self.timeout_s, transport=self.inner or httpx.HTTPTransport(),
                          on_response=self.responses, sleep=self._sleep)

    def close(self) -> None:
        self._account()
        self.http.close()

    def _account(self) -> None:
        self.requests += self.http.stats.requests
        for k, v in self.http.stats.retries.items():
            self.retries[k] = self.retries.get(k, 0) + v
        self.http.stats.requests = 0
        self.http.stats.retries.clear()

    def _retry(self, reason: str) -> None:
        self.retries[reason] = self.retries.get(reason, 0) + 1

    def stats(self) -> dict[str, Any]:
        self._account()
        return {"requests": self.requests, "batches": self.batches, "retries": dict(self.retries),
                "query_limit_hits": self.budget.hits, "rate_per_s": round(self.budget.portal.rate, 3),
                "operating_waits": self.operating.waits, "operating_waited_s": round(self.operating.waited_s, 3),
                "operating_peak_s": {k: round(v, 3) for k, v in sorted(self.operating.peak.items())},
                "token_refreshes": self.auth.refreshes, "total_mismatches": self.total_mismatches}

    def _switch_endpoint(self) -> None:
        base = self.auth.base_url()
        if base != self._base:  # the token answer named another REST endpoint for the portal
            self._account()
            self.http.close()
            self._base = base
            self.http = self._client()

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The whole answer of `method` (an object with `result`), after retries and one token refresh."""
        return self._post(method, dict(flatten(params)), (method,))

    def _post(self, method: str, form: Mapping[str, str], methods: Sequence[str]) -> dict[str, Any]:
        for m in methods:  # slow down before a method's operating time runs out (module doc)
            self.operating.before(m)
        self.auth.before_call()
        self._switch_endpoint()
        try:
            body = self.http.call(method, {**form, **self.auth.params()}, post=True)
        except ExpiredToken:
            if not self.auth.refresh():
                raise
            self._switch_endpoint()
            body = self.http.call(method, {**form, **self.auth.params()}, post=True)
        if "result" not in body:
            raise ApiError(f"{method}: the answer has no 'result'", code="unexpected_shape")
        if method != "batch":  # the outer batch call is not counted in operating time
            self.operating.observe(method, body.get("time"))
        return body

    def answer(self, method: str, params: Mapping[str, Any] | None = None) -> Answer:
        body = self.call(method, params)
        return Answer(body.get("result"), next_start(body.get("next")), body.get("total"), body.get("time"))

    # --- batch --------------------------------------------------------------------------------------
    def run_batch(self, calls: Mapping[str, tuple[str, Mapping[str, Any] | None]]) -> dict[str, Answer]:
        """Each call's answer, through `batch` (chunks of `batch_size`; one call alone goes direct). A
        command that failed with a retryable code (rate, operating time, server error) is sent again
        in a later batch, with the wait its code asks for, up to the policy's attempts; any other
        command error raises, naming the method."""
        out: dict[str, Answer] = {}
        todo = dict(calls)
        attempts: dict[str, int] = {}
        while todo:
            chunk = dict(list(todo.items())[:self.batch_size])
            if len(chunk) == 1:
                (key, (method, params)), = chunk.items()
                out[key] = self.answer(method, params)
                del todo[key]
                continue
            answers, errors = self._batch_once(chunk)
            for key, ans in answers.items():
                out[key] = ans
                del todo[key]
            waits = []
            for key, exc in errors.items():
                attempts[key] = attempts.get(key, 0) + 1
                if not exc.retryable:
                    raise exc
                self._retry(type(exc).__name__)
                if attempts[key] >= self.policy.max_attempts:
                    raise RetriesExhaustedError(f"{chunk[key][0]} in batch: gave up after {attempts[key]} attempts; "
                                                f"last error: {exc}", status=exc.status) from exc
                if isinstance(exc, QueryLimitExceeded):
                    self.budget.pause("batch", exc.retry_after or 1.0)
                elif isinstance(exc, OperationTimeLimited):
                    waits.append(exc.retry_after or self.operating.basket_s)  # until the method's basket resets
                else:
                    waits.append(self.policy.backoff(attempts[key], self._rng))
            if waits:
                self._sleep(max(waits))
        return out

    def _batch_once(self, chunk: Mapping[str, tuple[str, Mapping[str, Any] | None]]
                    ) -> tuple[dict[str, Answer], dict[str, Any]]:
        form = {"halt": "0", **{f"cmd[{key}]": command(method, params) for key, (method, params) in chunk.items()}}
        self.batches += 1
        body = self._post("batch", form, sorted({m for m, _ in chunk.values()}))
        res = body.get("result")
        if not isinstance(res, Mapping):
            raise ApiError("batch: the answer's result is not an object", code="unexpected_shape")
        results, errors = mapping(res.get("result")), mapping(res.get("result_error"))
        nexts, totals, times = mapping(res.get("result_next")), mapping(res.get("result_total")), \
            mapping(res.get("result_time"))
        answers: dict[str, Answer] = {}
        failed: dict[str, Any] = {}
        for key, (method, _) in chunk.items():
            self.operating.observe(method, times.get(key))
            if key in errors:
                err = errors[key] if isinstance(errors[key], Mapping) else {"error": str(errors[key])}
                code = err.get("error")
                failed[key] = self.responses.classify(method, None, str(code) if isinstance(code, str) else "",
                                                      str(err.get("error_description") or ""))
            elif key in results:
                answers[key] = Answer(results[key], next_start(nexts.get(key)), totals.get(key), times.get(key))
            else:
                failed[key] = InvalidBodyError(f"{method} in batch: neither a result nor an error came back")
        return answers, failed

    # --- paging -------------------------------------------------------------------------------------
    def pages(self, method: str, params: Mapping[str, Any] | None = None, *, start_key: str = "start",
              list_key: str | None = None) -> Iterator[list[Any]]:
        """Offset pages following `next` (never `total`): a page may be short and still have a next."""
        start = 0
        for _ in range(MAX_PAGES):
            ans = self.answer(method, {**(params or {}), start_key: start})
            value = ans.result.get(list_key) if list_key and isinstance(ans.result, Mapping) else ans.result
            yield result_items(value, method)
            if ans.next is None:
                return
            if ans.next <= start:
                raise ApiError(f"{method}: 'next' does not advance ({ans.next} after start {start})",
                               code="next_not_advancing")
            start = ans.next
        raise ApiError(f"{method}: more than {MAX_PAGES} pages", code="too_many_pages")

    def keyset(self, method: str, params: Mapping[str, Any] | None = None, *, id_key: str = "ID",
               filter_key: str = "FILTER") -> Iterator[list[dict[str, Any]]]:
        """Pages by `>ID` with `start=-1` (no total counted), ascending, until a page of fewer than 50."""
        last = 0
        base = dict(params or {})
        flt = dict(base.pop(filter_key, None) or {})
        for _ in range(MAX_PAGES):
            ans = self.answer(method, {**base, filter_key: {**flt, f">{id_key}": last}, "start": -1})
            rows = [dict(r) for r in result_items(ans.result, method) if isinstance(r, Mapping)]
            ids = [int(r[id_key]) for r in rows if str(r.get(id_key, "")).isdigit()]
            yield rows
            if len(rows) < PAGE or not ids:
                return
            if max(ids) <= last:
                raise ApiError(f"{method}: the {id_key} filter did not advance", code="keyset_not_advancing")
            last = max(ids)
        raise ApiError(f"{method}: more than {MAX_PAGES} pages", code="too_many_pages")


# --- scans: listings read through `batch`, several at a time ------------------------------------------
class Scan(Protocol):
    key: str
    done: bool

    def request(self) -> tuple[str, Mapping[str, Any]] | None: ...

    def feed(self, answer: Answer) -> None: ...


def run_scans(api: Bitrix24Api, scans: Sequence[Scan]) -> None:
    """Drive every scan to its end: each round sends the next request of every unfinished scan in as
    few `batch` calls as the batch size allows (a scan alone goes direct)."""
    for _ in range(MAX_PAGES):
        pending: dict[str, tuple[Scan, tuple[str, Mapping[str, Any]]]] = {}
        for s in scans:
            req = None if s.done else s.request()
            if req is None:
                s.done = True
            else:
                pending[s.key] = (s, req)
        if not pending:
            return
        answers = api.run_batch({k: req for k, (_, req) in pending.items()})
        for k, ans in answers.items():
            pending[k][0].feed(ans)
    raise ApiError("scans: more than the allowed number of rounds", code="too_many_pages")


class OneCall:
    """A call that is not a listing (`sonet_group.user.get`, `getusers.important`, `POST_ID` look-ups)."""

    def __init__(self, key: str, method: str, params: Mapping[str, Any]):
        self.key, self.method, self.params = key, method, dict(params)
        self.done = False
        self.answer: Answer | None = None

    def request(self) -> tuple[str, Mapping[str, Any]] | None:
        return (self.method, self.params)

    def feed(self, answer: Answer) -> None:
        self.answer = answer
        self.done = True


class OffsetScan:
    """A `start`/`next` listing read to its end, deduplicated by id (the latest copy of a row wins), then,
    when it took more than one page, read again from its head until a page brings no new id.

    Why: `log.blogpost.get` is ordered by the last update of a post (`LOG_UPDATE DESC`), so a post that
    gets a comment while the scan runs jumps to the head: the rows it passes over shift by one (read
    twice: deduplicated) and the post itself lands on a page already read (missed, unless the head is
    read again). `total` is never used; a short page does not end the scan (the Feed drops unpublished
    posts from a page after cutting it), only a missing `next` does. `next` that does not advance ends
    the scan and is counted (`anomalies`)."""

    def __init__(self, key: str, method: str, params: Mapping[str, Any], *, id_field: str = "ID",
                 list_key: str | None = None, start_key: str = "start", reread_head: bool = True):
        self.key, self.method, self.params = key, method, dict(params)
        self.id_field, self.list_key, self.start_key = id_field, list_key, start_key
        self.reread_head = reread_head
        self.items: dict[str, dict[str, Any]] = {}
        self.start = 0
        self.head = False
        self.done = False
        self.pages = 0
        self.head_pages = 0
        self.head_new = 0  # ids first seen while re-reading the head: posts that moved during the scan
        self.anomalies = 0

    def request(self) -> tuple[str, Mapping[str, Any]] | None:
        return (self.method, {**self.params, self.start_key: self.start})

    def feed(self, answer: Answer) -> None:
        value = answer.result.get(self.list_key) if self.list_key and isinstance(answer.result, Mapping) \
            else answer.result
        new = 0
        for row in result_items(value, self.method):
            if not isinstance(row, Mapping):
                raise ApiError(f"{self.method}: a row of the result is a {type(row).__name__}, not an object",
                               code="unexpected_shape")
            rid = row.get(self.id_field)
            if rid is None or not str(rid).strip():
                raise ApiError(f"{self.method}: a row without {self.id_field!r}", code="unexpected_shape")
            new += str(rid) not in self.items
            self.items[str(rid)] = dict(row)
        self.pages += 1
        advances = answer.next is not None and answer.next > self.start
        if answer.next is not None and not advances:
            self.anomalies += 1
        if not self.head:
            if advances:
                self.start = answer.next or 0
                return
            if self.reread_head and self.pages > 1:
                self.head, self.start = True, 0
                return
            self.done = True
            return
        self.head_pages += 1
        self.head_new += new
        if new and advances:
            self.start = answer.next or 0
            return
        self.done = True


class CommentScan:
    """One author's Feed comments (`log.blogcomment.user.get`), newest first, down to `cursor` (the
    highest Feed comment id an earlier run landed) or to `floor` (a page reaching comments older than the
    window's start ends the scan).

    The scan pages with `LAST_ID` (`ID < x`, ordered `ID DESC` in the core source) and never with
    `FIRST_ID`, under which the core sets no order, so `LIMIT` would cut an arbitrary subset."""

    method = "log.blogcomment.user.get"

    def __init__(self, key: str, user_id: str, cursor: int = 0, *, limit: int = 100,
                 floor: dt.datetime | None = None, tz: dt.tzinfo = dt.UTC):
        self.key, self.user_id, self.cursor, self.limit = key, user_id, cursor, limit
        self.floor, self.tz = floor, tz
        self.last: int | None = None
        self.rows: dict[int, dict[str, Any]] = {}
        self.done = False
        self.pages = 0

    def request(self) -> tuple[str, Mapping[str, Any]] | None:
        params: dict[str, Any] = {"USER_ID": self.user_id, "LIMIT": self.limit}
        if self.last is not None:
            params["LAST_ID"] = self.last
        return (self.method, params)

    def feed(self, answer: Answer) -> None:
        res = answer.result
        value = res.get("comments") if isinstance(res, Mapping) else res
        if isinstance(res, Mapping) and "comments" not in res:
            raise ApiError(f"{self.method}: the result has no 'comments'", code="unexpected_shape")
        rows = result_items(value if value is not None else [], self.method)
        ids: list[int] = []
        oldest: dt.datetime | None = None
        for c in rows:
            if not isinstance(c, Mapping) or not str(c.get("id", "")).strip().isdigit():
                raise ApiError(f"{self.method}: a comment without a numeric 'id' (the Feed comment id the "
                               "LAST_ID cursor pages on)", code="unexpected_shape")
            cid = int(c["id"])
            ids.append(cid)
            when = parse_datetime(c.get("date"), self.tz)
            if when is not None and (oldest is None or when < oldest):
                oldest = when
            if cid > self.cursor:
                self.rows[cid] = dict(c)
        self.pages += 1
        low = min(ids) if ids else None
        if (low is None or len(rows) < self.limit or low <= self.cursor
                or (self.floor is not None and oldest is not None and oldest < self.floor)
                or (self.last is not None and low >= self.last)):
            self.done = True
            return
        self.last = low
