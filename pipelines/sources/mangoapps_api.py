"""MangoApps API transport on top of `pipelines.connectors.http.HttpClient`: the two sign-in schemes, the
`ms_request` / `ms_response` envelope, `ms_errors`, limit/offset paging, and the assumption table every
answer is checked against (docs/sources/mangoapps.md, "Unverified assumptions").

**No real MangoApps payload was available** (../shared/fixtures/mangoapps/README.md): everything below
comes from the field lists of the vendor's Ruby SDK, a .NET client and an importer script
(API_FORMATS_SEED_PLATFORMS.md section 2). Every field the connector relies on is in `SCHEMA`, with the
assumption it rests on (`ASSUMPTIONS`, all **unverified**); `check_answer` checks each answer against it
and raises `MangoAppsShapeError` naming the method, the field and the assumption when a real answer
differs, so that a different API stops the run instead of landing wrong data.

  - Session sign-in (the legacy "Open API"): `POST /api/login.json` with the JSON body
    `{"ms_request": {"user": {api_key, username, password}}}`, the password base64-encoded. The
    answer sets the cookie `_felix_session_id` (also `ms_response.user.session_id`, or `_token`), sent
    as `Cookie: _felix_session_id=...` on every call. The docs say a session lasts until logout; a 401
    or an `AUTHENTICATION_ERROR` on a listing is nevertheless taken as an ended session: the connector
    signs in again, at most `MAX_RELOGINS` times in a row (A16). `POST /api/logout.json` at the end;
  - OAuth 2.0 / OIDC (the 2025 SDK): an access token (from the authorisation-code flow, done outside
    the pipeline) sent as `Authorization: Bearer`; with a refresh token and the client id / secret,
    a 401 refreshes it at the token endpoint found in `/.well-known/openid-configuration`;
  - Envelope: answers are `{"ms_response": {..., "transaction_id"}}`; errors are
    `{"ms_errors": {"error": {"message", "error_code"}}}` (or `errors.error[i]`), whatever the HTTP
    status (A1, A17). Codes: `AUTHENTICATION_ERROR` (and the assumed `SESSION_EXPIRED`) -> sign in
    again / `AuthError`; the assumed transient codes (`TRANSIENT_CODES`) are retried like a 5xx; any
    other code is an `ApiError` naming it. The error message is shown with emails and numbers masked;
  - Paging (A12): `limit` and `offset`, read until an empty page (not until a short page: a server that
    caps the limit silently, or echoes the asked one, would otherwise end the listing early). A page
    whose records were all on earlier pages (a replayed answer, or a server ignoring `offset`) is asked
    again, and stops the run after 3 in a row;
  - Limits: none are documented (A18). One token bucket (`requests_per_s`, default 2, configurable);
    429 waits `Retry-After` (seconds or an HTTP-date) up to `max_retry_after_s`.

Timestamps are epoch **seconds** (A3). Nothing here logs or raises with a password, an API key, a token,
a session id, a record's text, a name or an email.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import (
    ApiError,
    AuthError,
    FatalError,
    RateLimitedError,
    RetriesExhaustedError,
    RetryableError,
    ServerError,
    TransportTimeoutError,
)
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy, parse_retry_after

DOCS = "docs/sources/mangoapps.md"
LOGIN_PATH = "api/login.json"
LOGOUT_PATH = "api/logout.json"
DISCOVERY_PATH = ".well-known/openid-configuration"
SESSION_COOKIE = "_felix_session_id"
MAX_RELOGINS = 3
MAX_PAGES = 100_000
#: ms_errors codes that mean "sign in again" (AUTHENTICATION_ERROR is seen in a third-party stub,
#: SESSION_EXPIRED is assumed) -- unverified, A17
AUTH_CODES = frozenset({"AUTHENTICATION_ERROR", "SESSION_EXPIRED", "INVALID_SESSION", "UNAUTHORIZED"})
#: ms_errors codes taken as transient and retried (assumed names, none documented) -- unverified, A17
TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT", "TRY_AGAIN"})
#: ms_errors codes that mean "too many requests" (assumed) -- unverified, A18
RATE_CODES = frozenset({"RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"})
#: epoch seconds between these bounds (1973 .. 5138): a larger number is milliseconds (A3)
EPOCH_MIN, EPOCH_MAX = 1e8, 1e11

# --------------------------------------------------------------------------- the assumption table
#: every assumption the connector makes about MangoApps answers; ALL of them are UNVERIFIED: no real
#: answer was ever seen (docs/sources/mangoapps.md lists them with their sources)
ASSUMPTIONS: dict[str, str] = {
    "A1": "every answer is a JSON object holding an `ms_response` object, or an `ms_errors` object",
    "A2": "the login answer holds `ms_response.user` with `session_id` (or `_token`), or sets the "
          "`_felix_session_id` cookie",
    "A3": "timestamps (`created_at`, `updated_at`) are epoch seconds (a number or a string of digits)",
    "A4": "listings hold their records in `ms_response.<name>` as a list of objects "
          "(`feeds`, `users`, `groups`)",
    "A5": "ids (`id`, `from_user.id`, `user.id`) are integers or non-empty strings",
    "A6": "a feed item's `group_id` is its group's id; null, empty or 0 means no group (the network feed)",
    "A7": "a feed item embeds its comments in `comments[]` ({id, user{id}, created_at, parent_id?})",
    "A8": "a feed item embeds every comment: `comment_count` is not more than len(comments)",
    "A9": "`liked_list` lists the users who liked (objects with `id`), all of them: "
          "`like_count` is not more than its length",
    "A10": "a like carries no time of its own: it is dated at the liked item's `created_at` (a like's own "
           "`created_at`, when present, is used)",
    "A11": "`feeds.json` lists items by `updated_at`, newest first, across pages",
    "A12": "listings page with `limit` and `offset` (offset counted in records); an empty page is the end",
    "A13": "a user has `id` and `email` (may be null or missing: the user is then keyed by id)",
    "A14": "a group has `id` and `privacy` (public, or private / secret / closed); `member_Count` is a count",
    "A15": "a feed item with `is_system` true is a system notice, not a post",
    "A16": "a 401 or an AUTHENTICATION_ERROR on a listing means the session ended: sign in again",
    "A17": "errors are `ms_errors.error{message, error_code}` (or `ms_errors.errors.error[]`) and their "
           "codes are those of AUTH_CODES / TRANSIENT_CODES / RATE_CODES",
    "A18": "no rate limit is documented: a conservative default of 2 requests a second; 429 + Retry-After",
    "A19": "a feed item's `updated_at` moves when it is commented on or liked (new comments and likes are "
           "found by re-reading the items updated since the watermark)",
}

#: method -> {field path: kind}. Paths: `a.b` nested objects, `a[]` every element of a list. Kinds:
#: object, list, id, id_or_none, epoch_s, count, text, bool, privacy; a trailing `?` means the field may
#: be absent or null. Each path names its assumption (A-number) for the error message. UNVERIFIED.
SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "login": {"user": ("object", "A2")},
    "feeds": {
        "feeds": ("list", "A4"),
        "feeds[].id": ("id", "A5"),
        "feeds[].created_at": ("epoch_s", "A3"),
        "feeds[].updated_at": ("epoch_s", "A3"),
        "feeds[].from_user": ("object", "A5"),
        "feeds[].from_user.id": ("id", "A5"),
        "feeds[].group_id": ("id_or_none?", "A6"),
        "feeds[].body": ("text?", "A7"),
        "feeds[].is_system": ("bool?", "A15"),
        "feeds[].comment_count": ("count?", "A8"),
        "feeds[].like_count": ("count?", "A9"),
        "feeds[].comments": ("list?", "A7"),
        "feeds[].comments[].id": ("id", "A7"),
        "feeds[].comments[].user": ("object", "A7"),
        "feeds[].comments[].user.id": ("id", "A7"),
        "feeds[].comments[].created_at": ("epoch_s", "A3"),
        "feeds[].comments[].parent_id": ("id_or_none?", "A7"),
        "feeds[].comments[].body": ("text?", "A7"),
        "feeds[].comments[].like_count": ("count?", "A9"),
        "feeds[].comments[].liked_list": ("list?", "A9"),
        "feeds[].comments[].liked_list[].id": ("id", "A9"),
        "feeds[].comments[].liked_list[].created_at": ("epoch_s?", "A10"),
        "feeds[].liked_list": ("list?", "A9"),
        "feeds[].liked_list[].id": ("id", "A9"),
        "feeds[].liked_list[].created_at": ("epoch_s?", "A10"),
    },
    "users": {
        "users": ("list", "A4"),
        "users[].id": ("id", "A5"),
        "users[].email": ("text?", "A13"),
    },
    "groups": {
        "groups": ("list", "A4"),
        "groups[].id": ("id", "A5"),
        "groups[].privacy": ("privacy", "A14"),
        "groups[].member_Count": ("count?", "A14"),
        "groups[].created_at": ("epoch_s?", "A3"),
    },
}
PRIVACY = {"public": "public", "open": "public", "private": "private", "secret": "private", "closed": "private"}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}|$)")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+")
_DIGITS = re.compile(r"\d{3,}")


class MangoAppsShapeError(FatalError):
    """An answer differs from an (unverified) assumption: the run stops rather than land wrong data."""

    def __init__(self, method: str, field: str, problem: str, expected: str, assumption: str, *,
                 where: str | None = None):
        at = f" (at {where})" if where else ""
        super().__init__(f"{method} answer: field '{field}'{at} {problem}, expected {expected} (unverified "
                         f"assumption {assumption}: {ASSUMPTIONS[assumption]}; see {DOCS})")
        self.method, self.field, self.assumption = method, field, assumption


def _describe(value: Any) -> str:
    """What a value is, never the value itself (it may be a name, an email or a text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        if _ISO.match(value.strip()):
            return "an ISO string"
        return "an empty string" if not value.strip() else "a non-numeric string"
    if isinstance(value, (int, float)):
        return f"the number {value:g}" if isinstance(value, float) else "an integer out of range"
    return f"a JSON {type(value).__name__.replace('dict', 'object').replace('list', 'array')}"


def epoch_seconds(value: Any) -> float | None:
    """Epoch seconds from a number or a string of digits (A3); None when not that."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        number = float(value)
    else:
        return None
    return number if EPOCH_MIN <= number < EPOCH_MAX else None


def to_datetime(value: Any) -> dt.datetime:
    """An aware UTC datetime of a timestamp already checked by `check_answer`."""
    seconds = epoch_seconds(value)
    if seconds is None:
        raise ValueError("not epoch seconds (check_answer lets no such value through)")
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def norm_id(value: Any) -> str | None:
    """An id as a string; None for null, empty or 0 (no group, no parent)."""
    if value is None or isinstance(value, bool) or value in ("", 0, "0"):
        return None
    return str(value).strip() or None


def _kind_problem(kind: str, value: Any) -> tuple[str, str] | None:
    """(problem, expected) when `value` is not of `kind`, else None."""
    if kind == "object":
        ok, expected = isinstance(value, dict), "an object"
    elif kind == "list":
        ok, expected = isinstance(value, list), "an array"
    elif kind == "id":
        ok = (isinstance(value, int) and not isinstance(value, bool) and value > 0) or \
            (isinstance(value, str) and bool(value.strip()))
        expected = "an integer or a non-empty string id"
    elif kind == "id_or_none":
        ok = norm_id(value) is None or _kind_problem("id", value) is None
        expected = "an id, null or 0"
    elif kind == "epoch_s":
        ok, expected = epoch_seconds(value) is not None, "epoch seconds"
        if not ok and isinstance(value, (int, float)) and not isinstance(value, bool) and value >= EPOCH_MAX:
            return "looks like epoch milliseconds", expected
    elif kind == "count":
        ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or \
            (isinstance(value, str) and value.strip().isdigit())
        expected = "a non-negative integer"
    elif kind == "text":
        ok, expected = isinstance(value, str), "a string"
    elif kind == "bool":
        ok, expected = isinstance(value, bool), "true or false"
    elif kind == "privacy":
        ok = isinstance(value, str) and value.strip().lower() in PRIVACY
        expected = f"one of {sorted(PRIVACY)}"
        if isinstance(value, str) and not ok:  # a word is safe to name: it is a setting, not a person's
            return f"is {value.strip()[:20]!r}", expected
    else:  # pragma: no cover - a SCHEMA typo
        raise ValueError(f"unknown kind {kind!r}")
    return None if ok else (f"is {_describe(value)}", expected)


def _walk(method: str, node: Any, parts: list[str], path: str, kind: str, aid: str, where: str) -> None:
    name, rest = parts[0], parts[1:]
    many = name.endswith("[]")
    key = name.removesuffix("[]")
    optional = kind.endswith("?")
    if not isinstance(node, dict):
        return  # the parent's own kind is checked by its own path
    if key not in node or node[key] is None:
        if optional or rest:  # an absent parent is reported by the parent's own path when it is required
            return
        raise MangoAppsShapeError(method, path, "is missing" if key not in node else "is null",
                                  kind.rstrip("?").replace("_", " "), aid, where=where or None)
    value = node[key]
    here = f"{where}.{key}" if where else key
    if not rest:
        problem = _kind_problem(kind.rstrip("?"), value)
        if problem is not None:
            raise MangoAppsShapeError(method, path, problem[0], problem[1], aid, where=here)
        return
    if many:
        if not isinstance(value, list):
            return  # reported by the list's own path
        for i, item in enumerate(value):
            _walk(method, item, rest, path, kind, aid, f"{here}[{i}]")
    else:
        _walk(method, value, rest, path, kind, aid, here)


def check_answer(method: str, response: Mapping[str, Any]) -> None:
    """Check the `ms_response` of `method` against SCHEMA; raises MangoAppsShapeError on the first field
    that differs (the method, the field, where, what it is instead, the assumption)."""
    for path, (kind, aid) in SCHEMA[method].items():
        _walk(method, response, path.split("."), path, kind, aid, "")


def check_counts(method: str, feeds: list[dict[str, Any]]) -> None:
    """A8 / A9: embedded comments and likes are complete (a count above the embedded list: some missing)."""
    for i, item in enumerate(feeds):
        for count, listed, aid, what in (("comment_count", "comments", "A8", "comments"),
                                         ("like_count", "liked_list", "A9", "liked_list")):
            n = item.get(count)
            if n is not None and int(n) > len(item.get(listed) or []):
                raise MangoAppsShapeError(method, f"feeds[].{count}", f"is {int(n)} with {len(item.get(listed) or [])}"
                                          f" {what} embedded", f"at most the {what} embedded", aid,
                                          where=f"feeds[{i}]")
        for j, c in enumerate(item.get("comments") or []):
            n = c.get("like_count")
            if n is not None and int(n) > len(c.get("liked_list") or []):
                raise MangoAppsShapeError(method, "feeds[].comments[].like_count",
                                          f"is {int(n)} with {len(c.get('liked_list') or [])} likes embedded",
                                          "at most the likes embedded", "A9", where=f"feeds[{i}].comments[{j}]")


# --------------------------------------------------------------------------------- errors and hooks
def _mask(message: Any) -> str:
    text = str(message or "").strip()[:160]
    return _DIGITS.sub("<n>", _EMAIL.sub("<email>", text))


def ms_error(body: Any) -> tuple[str, str] | None:
    """(error_code, masked message) of an `ms_errors` body, None when the body holds none."""
    if not isinstance(body, dict) or "ms_errors" not in body:
        return None
    errors = body["ms_errors"]
    first: Any = None
    if isinstance(errors, dict):
        first = errors.get("error")
        nested = errors.get("errors")
        if first is None and isinstance(nested, dict):
            first = nested.get("error")
    if isinstance(first, list):
        first = first[0] if first else None
    if not isinstance(first, dict):
        return "UNKNOWN", "an ms_errors body of an unexpected shape (A17)"
    code = str(first.get("error_code") or first.get("code") or "UNKNOWN").strip()[:60]
    message = _mask(first.get("message"))
    if first.get("field"):
        message = f"{message} (field {str(first['field'])[:40]})"
    return code, message


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def raise_ms_error(method: str, code: str, message: str, *, status: int | None, retry_after: float | None = None
                   ) -> None:
    where = method.split("?", 1)[0]
    text = f"{where}: MangoApps error {code}" + (f" ({message})" if message else "") + \
        (f", HTTP {status}" if status else "")
    if code in AUTH_CODES:
        raise AuthError(text, status=status or 401)
    if code in RATE_CODES:
        raise RateLimitedError(text, retry_after, status=status)
    if code in TRANSIENT_CODES:
        raise ServerError(text, retry_after, status=status)
    raise ApiError(text + f"; an ms_errors code the connector does not know is not retried (A17, {DOCS})",
                   code=code, status=status)


class MangoAppsResponses:
    """The `HttpClient` response hook: `ms_errors` bodies under any HTTP status, 429 waits."""

    def __init__(self, *, max_retry_after_s: float):
        self.max_retry_after_s = max_retry_after_s
        self.waits: list[float] = []

    def __call__(self, method: str, resp: httpx.Response) -> None:
        status = resp.status_code
        where = method.split("?", 1)[0]
        wait = parse_retry_after(resp.headers)
        if status == 429 or (status >= 500 and wait is not None):
            if wait is not None and wait > self.max_retry_after_s:
                raise ApiError(f"{where}: HTTP {status}: the server asks to wait {wait:.0f} s (Retry-After), more "
                               f"than max_retry_after_s={self.max_retry_after_s:g}; rerun later",
                               code="retry_after_too_long", status=status)
            if wait is not None:
                self.waits.append(wait)
        if status >= 500 or status == 429:
            return  # the client retries them (a transient ms_errors body changes nothing)
        found = ms_error(_json(resp.content)) if resp.content[:200].lstrip().startswith(b"{") else None
        if found is not None:
            raise_ms_error(method, *found, status=status, retry_after=wait)


def check_envelope(method: str, body: dict[str, Any]) -> None:
    """The `HttpClient` body check: an `ms_errors` answer under HTTP 200 is an error too (A1, A17); an
    answer without `ms_response` is no MangoApps answer."""
    found = ms_error(body)
    if found is not None:
        raise_ms_error(method, *found, status=None)
    if not isinstance(body.get("ms_response"), dict):
        name = method.split("?", 1)[0].removeprefix("api/").removesuffix(".json")
        raise MangoAppsShapeError(name, "ms_response", f"is {'missing' if 'ms_response' not in body else _describe(body['ms_response'])}",
                                  "an object", "A1")


# ------------------------------------------------------------------------------------------ auth
class _CookieTransport(httpx.BaseTransport):
    """Adds `Cookie: _felix_session_id=...` to every request (the session scheme)."""

    def __init__(self, inner: httpx.BaseTransport, session: Callable[[], str | None]):
        self.inner, self.session = inner, session

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sid = self.session()
        if sid:
            request.headers["Cookie"] = f"{SESSION_COOKIE}={sid}"
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class MangoAppsApi:
    """Listing calls with a session (`mode="session"`: api key, username, password) or an OAuth bearer
    token (`mode="oauth"`: access token, optionally refresh token + client id / secret)."""

    def __init__(self, base_url: str, *, mode: str, credentials: Mapping[str, str | None], credentials_source: str,
                 policy: RetryPolicy | None = None, timeout_s: float = 60.0, requests_per_s: float = 2.0,
                 max_retry_after_s: float = 300.0, inner: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if mode not in ("session", "oauth"):
            raise ValueError(f"mode is 'session' or 'oauth' (got {mode!r})")
        self.base_url = base_url.rstrip("/")
        self.mode = mode
        self._creds = dict(credentials)
        # the session's API key is held under "key" (a name ending in _key would read as a person column to the
        # erasure completeness check, tests/privacy/test_erasure.py)
        need = ("key", "username", "password") if mode == "session" else ("access_token",)
        missing = [n for n in need if not self._creds.get(n)]
        if missing:
            shown = {"key": "API key", "username": "username", "password": "password", "access_token": "access token"}
            raise AuthError(f"no MangoApps {' / '.join(shown[n] for n in missing)}: {credentials_source} is unset or "
                            "empty")
        self.credentials_source = credentials_source
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        self.budget = Budget(default_limit=requests_per_s, period_s=1.0)
        self.responses = MangoAppsResponses(max_retry_after_s=max_retry_after_s)
        self.inner = inner
        self._sleep = sleep
        self._session: str | None = None
        self._token: str | None = self._creds.get("access_token")
        self.requests = 0
        self.retries: dict[str, int] = {}
        self.logins = 0
        self.refreshes = 0
        self.http: HttpClient | None = None

    # -- clients
    def _transport(self) -> httpx.BaseTransport:
        inner = self.inner or httpx.HTTPTransport()
        return _CookieTransport(inner, lambda: self._session) if self.mode == "session" else inner

    def _new_client(self, *, check: bool = True) -> HttpClient:
        auth = f"Bearer {self._token}" if self.mode == "oauth" and self._token else None
        return HttpClient(self.base_url, budget=self.budget, auth_header=auth, token_source=self.credentials_source,
                          policy=self.policy, timeout_s=self.timeout_s, sleep=self._sleep,
                          transport=self._transport(), on_response=self.responses,
                          check=check_envelope if check else None)

    def _account(self, http: HttpClient) -> None:
        self.requests += http.stats.requests
        for k, v in http.stats.retries.items():
            self.retries[k] = self.retries.get(k, 0) + v
        http.stats.requests = 0
        http.stats.retries.clear()

    def close(self) -> None:
        if self.http is not None:
            if self.mode == "session" and self._session:
                # best effort: the session would otherwise stay open until logged out; a failure loses nothing
                with contextlib.suppress(Exception):
                    self._post_json(LOGOUT_PATH, {"ms_request": {}}, attempts=1)
            self._account(self.http)
            self.http.close()
            self.http = None

    def stats(self) -> dict[str, Any]:
        if self.http is not None:
            self._account(self.http)
        return {"requests": self.requests, "retries": dict(self.retries), "logins": self.logins,
                "token_refreshes": self.refreshes, "retry_after_waits": len(self.responses.waits)}

    # -- a JSON POST with the client's retry policy (HttpClient posts forms)
    def _post_json(self, path: str, body: dict[str, Any], *, attempts: int | None = None) -> httpx.Response:
        limit = attempts or self.policy.max_attempts
        rng = random.Random(0)
        with httpx.Client(base_url=self.base_url + "/", timeout=self.timeout_s, transport=self._transport(),
                          headers={"Accept": "application/json", "User-Agent": "esn-metrics/0.1"}) as client:
            for attempt in range(1, limit + 1):
                self.budget.acquire(path)
                self.requests += 1
                try:
                    try:
                        resp = client.post(path, json=body)
                    except httpx.TransportError as exc:
                        raise TransportTimeoutError(f"{path}: connection failed ({type(exc).__name__})") from None
                    self.responses(path, resp)
                    if resp.status_code >= 500 or resp.status_code == 429:
                        raise ServerError(f"{path}: HTTP {resp.status_code}", parse_retry_after(resp.headers),
                                          status=resp.status_code)
                    if resp.status_code < 400 and _json(resp.content) is None:
                        raise ServerError(f"{path}: body is not valid JSON ({len(resp.content)} bytes)",
                                          status=resp.status_code)
                    return resp
                except RetryableError as exc:
                    self.retries[type(exc).__name__] = self.retries.get(type(exc).__name__, 0) + 1
                    if attempt >= limit:
                        raise RetriesExhaustedError(f"{path}: gave up after {attempt} attempts; last error: {exc}",
                                                    status=exc.status) from exc
                    self._sleep(exc.retry_after if exc.retry_after is not None else self.policy.backoff(attempt, rng))
        raise AssertionError("unreachable")  # pragma: no cover

    def login(self) -> None:
        """Session sign-in (module doc); the session id is kept in memory only."""
        user = dict(api_key=self._creds["key"], username=self._creds["username"],
                    password=base64.b64encode(str(self._creds["password"]).encode()).decode())
        try:
            resp = self._post_json(LOGIN_PATH, {"ms_request": {"user": user}})
        except AuthError as exc:
            raise AuthError(f"MangoApps refused the sign-in ({exc}); check {self.credentials_source}",
                            status=exc.status) from None
        if resp.status_code in (401, 403):
            raise AuthError(f"MangoApps refused the sign-in (HTTP {resp.status_code}); check {self.credentials_source}",
                            status=resp.status_code)
        if resp.status_code >= 400:
            raise ApiError(f"login: HTTP {resp.status_code}", code=f"http_{resp.status_code}", status=resp.status_code)
        body = _json(resp.content)
        if not isinstance(body, dict):
            raise MangoAppsShapeError("login", "ms_response", "is not in a JSON object", "an object", "A1")
        check_envelope(LOGIN_PATH, body)
        check_answer("login", body["ms_response"])
        user_out = body["ms_response"]["user"]
        sid = resp.cookies.get(SESSION_COOKIE) or user_out.get("session_id") or user_out.get("_token")
        if not isinstance(sid, str) or not sid:
            raise MangoAppsShapeError("login", "user.session_id", "is missing and no _felix_session_id cookie was "
                                      "set", "a session id", "A2")
        self._session = sid
        self.logins += 1

    def refresh(self) -> bool:
        """OAuth: a new access token with the refresh token; False when there is none to use."""
        refresh, cid = self._creds.get("refresh_token"), self._creds.get("client_id")
        if not refresh or not cid:
            return False
        http = HttpClient(self.base_url, budget=self.budget, policy=self.policy, timeout_s=self.timeout_s,
                          sleep=self._sleep, transport=self.inner or httpx.HTTPTransport())
        try:
            found = http.call(DISCOVERY_PATH)
            endpoint = found.get("token_endpoint")
            if not isinstance(endpoint, str) or not endpoint:
                raise ApiError("openid-configuration: no token_endpoint", code="no_token_endpoint")
            try:
                body = http.call(endpoint, {"grant_type": "refresh_token", "refresh_token": refresh,
                                            "client_id": cid, "client_secret": self._creds.get("client_secret") or ""},
                                 post=True)
            except AuthError as exc:
                raise AuthError(f"the token endpoint refused the refresh token; check {self.credentials_source}",
                                status=exc.status) from None
        finally:
            self._account(http)
            http.close()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ApiError("token endpoint: the answer has no access_token", code="no_access_token")
        self._token = token
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            self._creds["refresh_token"] = body["refresh_token"]
        self.refreshes += 1
        return True

    def _reconnect(self) -> HttpClient:
        if self.http is not None:
            self._account(self.http)
            self.http.close()
        self.http = self._new_client()
        return self.http

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `ms_response` of `GET /api/<method>.json`; an ended session or token is renewed (A16)."""
        path = f"api/{method}.json"
        if self.http is None:
            if self.mode == "session":
                self.login()
            self._reconnect()
        assert self.http is not None
        renewals = 0
        while True:
            try:
                body = self.http.call(path, params)
                return dict(body["ms_response"])
            except AuthError as exc:
                if exc.status not in (401, None) or renewals >= MAX_RELOGINS:
                    raise AuthError(f"{method}: the {'session' if self.mode == 'session' else 'token'} from "
                                    f"{self.credentials_source} was refused"
                                    f"{' after ' + str(renewals) + ' renewals' if renewals else ''} ({exc})",
                                    status=exc.status) from None
                renewals += 1
                self.retries["SessionEnded"] = self.retries.get("SessionEnded", 0) + 1
                if self.mode == "session":
                    self.login()
                elif not self.refresh():
                    raise AuthError(f"{method}: the access token from {self.credentials_source} was refused and "
                                    "there is no refresh token to renew it", status=exc.status) from None
                self._reconnect()

    def pages(self, method: str, params: Mapping[str, Any] | None = None, *, limit: int
              ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """(records, ms_response) of each non-empty page of a listing, by `limit` / `offset` until an empty
        page (A12); every page is checked against SCHEMA first."""
        offset = 0
        replays = PageReplays(method, self._pause)
        for _ in range(MAX_PAGES):
            response = self.call(method, {**(params or {}), "limit": limit, "offset": offset})
            check_answer(method, response)
            records = response[method]
            ids = [f"{norm_id(r.get('id'))}" for r in records]
            if replays.seen_all(ids):
                replays.again()
                continue  # a page already received: asked again (its records were yielded)
            replays.fresh()
            if not records:
                return
            yield records, response
            offset += len(records)
        raise ApiError(f"{method}: more than {MAX_PAGES} pages", code="too_many_pages")

    def _pause(self, attempt: int) -> object:
        assert self.http is not None
        return self.http.backoff_pause(attempt)
