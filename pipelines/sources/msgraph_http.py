"""Microsoft Graph transport on top of the shared connector framework (`pipelines.connectors`).

What Graph needs that the generic `HttpClient` does not do by itself, added without copying it:
  - `@odata.nextLink` / `@odata.deltaLink` are followed *exactly as given*: every URL is registered in
    `Routes` under a short label (`channel-delta/17`) and `GraphTransport` swaps the label for the exact URL
    just before sending. (`HttpClient` now keeps an absolute URL's query string itself; the labels stay
    because they are what ends up in error messages and budget keys, so no Graph URL (team, channel or
    chat ids, opaque skip tokens) is ever put in an exception, and they carry each route's buckets);
  - headers on every Graph request: `Prefer: include-unknown-enum-members` (without it system events come
    back as `unknownFutureValue`) and the current bearer token, which can be refreshed once on a 401;
  - OAuth2 client credentials against the token endpoint (the token request goes through the same
    retrying client, without the bearer header);
  - the report functions' 302 to a short-lived pre-authenticated CSV URL, downloaded *without* the
    Authorization header and handed back to the client as JSON `{"csv": ...}`, so retries, budgets and
    error classification stay those of `HttpClient`;
  - Teams throttling scopes (`GraphBudget`): a request takes a token from the tenant-wide bucket, from its
    team's bucket (4 rps) and from its channel's or chat's bucket (1 rps); a 429 pauses all of them.
Throttling is decided on the HTTP status (429), never on `error.code` (`accessDenied` has been seen on a
429). This module never logs or raises with a token, a client secret, a URL or a body.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import ApiError, AuthError, InvalidBodyError
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy

GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PREFER = "include-unknown-enum-members"
_LABEL_HOST = "http://graph.route.invalid/"  # never resolved: the transport replaces every URL

#: documented Teams limits, requests per second (concepts/throttling-limits.md, API_FORMATS.md section 2)
LIMITS_PER_S: dict[str, float] = {
    "tenant": 30.0,  # "other GET API calls for Microsoft Teams" per app per tenant
    "channels_list": 60.0,  # GET /teams/{id}/channels
    "team": 4.0,  # per app on a given team
    "thread": 1.0,  # per app per tenant on a given channel or chat
    "directory": 30.0,
    "reports": 5.0,
    "token": 5.0,
}
MAX_PAGES = 1_000_000


def opaque(value: str) -> str:
    """Short stable tag of an id for budget keys and labels (never the id itself)."""
    return hashlib.sha1(value.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Route:
    url: str
    buckets: tuple[str, ...]
    bearer: bool = True  # send the Graph token (not to the token endpoint)
    expect: str = "object"  # object | collection | token | csv
    download: bool = False  # follow a 302 to a pre-authenticated download, without the token


class Routes:
    """Label -> exact URL, shared by the transport (to send), the budget (to throttle) and the body check."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, endpoint: str, route: Route) -> str:
        with self._lock:
            label = f"{endpoint}/{next(self._seq)}"
            self._routes[label] = route
        return label

    def get(self, label: str) -> Route | None:
        with self._lock:
            return self._routes.get(label)

    def drop(self, label: str) -> None:
        with self._lock:
            self._routes.pop(label, None)

    def check(self, label: str, body: dict[str, Any]) -> None:
        """Envelope rules per route: a collection page has a `value` list, a token answer an
        `access_token`, a report a `csv` whose rows all have the header's width (else it was cut)."""
        route = self.get(label)
        expect = route.expect if route else "object"
        endpoint = label.rsplit("/", 1)[0]
        if expect == "collection" and not isinstance(body.get("value"), list):
            raise InvalidBodyError(f"{endpoint}: 2xx but no 'value' list (keys {sorted(body)[:6]})")
        if expect == "token" and not isinstance(body.get("access_token"), str):
            raise InvalidBodyError(f"{endpoint}: token answer without 'access_token'")
        if expect == "csv":
            text = body.get("csv")
            if not isinstance(text, str):
                raise InvalidBodyError(f"{endpoint}: report download gave no CSV")
            rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
            if not rows or any(len(r) != len(rows[0]) for r in rows[1:] if r):
                raise InvalidBodyError(f"{endpoint}: report CSV is empty or cut (ragged rows)")


def _bucket_category(key: str) -> str:
    return key.split("@", 1)[0]


@dataclass
class GraphBudget(Budget):
    """`Budget` whose method keys are route labels: one request takes a token from every bucket of its
    route (tenant, team, thread), so the tightest documented limit wins. Limits are per `period_s`
    (1 s in production; tests shrink it)."""

    routes: Routes = field(default_factory=Routes)

    def __post_init__(self) -> None:
        if not self.limits:
            self.limits = dict(LIMITS_PER_S)

    def allowed_per_s(self, method: str) -> float:
        return self.limits.get(_bucket_category(method), self.default_limit) / self.period_s

    def keys(self, label: str) -> tuple[str, ...]:
        route = self.routes.get(label)
        return route.buckets if route else ("tenant",)

    def acquire(self, method: str) -> float:
        return sum(self.bucket(k).acquire() for k in self.keys(method))

    def pause(self, method: str, seconds: float) -> None:
        # the server does not say which scope was exceeded: pause every scope this request belongs to
        for k in self.keys(method):
            self.bucket(k).pause(seconds)

    def usage_by_category(self) -> dict[str, dict[str, float]]:
        """Per category (not per channel: the keys would be many): requests, worst utilisation, pauses."""
        out: dict[str, dict[str, float]] = {}
        for key, u in self.usage().items():
            agg = out.setdefault(_bucket_category(key), {"requests": 0, "buckets": 0, "max_utilisation": 0.0,
                                                          "pauses": 0})
            agg["requests"] += u["requests"]
            agg["buckets"] += 1
            agg["pauses"] += u["pauses"]
            agg["max_utilisation"] = max(agg["max_utilisation"], u["utilisation"])
        return out


class TokenHolder:
    def __init__(self) -> None:
        self.value: str | None = None


class GraphTransport(httpx.BaseTransport):
    """Sends each labelled request to its exact URL with the Graph headers; follows report redirects."""

    def __init__(self, routes: Routes, token: TokenHolder, inner: httpx.BaseTransport | None = None):
        self.routes = routes
        self.token = token
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        route = self.routes.get(request.url.path.lstrip("/"))
        if route is None:
            return httpx.Response(599, request=request)  # a programming error; never sent anywhere
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        if route.bearer:
            headers["Authorization"] = f"Bearer {self.token.value}"
            headers["Prefer"] = PREFER
        real = httpx.Request(request.method, httpx.URL(route.url), headers=headers, content=request.read(),
                             extensions=request.extensions)
        response = self.inner.handle_request(real)
        if route.download and response.status_code in (301, 302, 303, 307, 308):
            return self._download(request, response)
        return response

    def _download(self, request: httpx.Request, redirect: httpx.Response) -> httpx.Response:
        location = redirect.headers.get("location")
        redirect.close()
        if not location:
            return httpx.Response(502, request=request)  # retried: the next call gets a fresh redirect
        # the URL is pre-authenticated and on another host: never send the Graph token there
        dl = httpx.Request("GET", httpx.URL(location), headers={"Accept": "*/*", "User-Agent": "esn-metrics/0.1"},
                           extensions=request.extensions)
        response = self.inner.handle_request(dl)
        response.read()
        if response.status_code != 200:
            # an expired or refused download URL is not an auth problem of the Graph token: retry the call
            status = response.status_code if response.status_code >= 500 or response.status_code == 429 else 502
            return httpx.Response(status, headers={k: v for k, v in response.headers.items()
                                                   if k.lower() == "retry-after"}, request=request)
        text = response.content.decode("utf-8-sig", errors="replace")
        return httpx.Response(200, json={"csv": text, "contentType": response.headers.get("content-type")},
                              request=request)


@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    client_id: str
    client_secret: str
    where: str  # names where the secret came from, for error messages (never the secret)
    token_url: str | None = None
    access_token: str | None = None  # a token obtained elsewhere (no refresh possible)


def build_url(base_url: str, path: str, params: Mapping[str, Any] | None = None) -> str:
    """`base/path?$top=50&...`: OData's `$`, quotes and parentheses kept readable, spaces encoded."""
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    if params:
        safe = ":,()$'"
        url += "?" + "&".join(f"{quote(str(k), safe='$')}={quote(str(v), safe=safe)}" for k, v in params.items())
    return url


class GraphClient:
    """GET/POST Graph through `HttpClient` with labelled routes, bearer refresh on 401, nextLink paging."""

    def __init__(self, base_url: str, credentials: Credentials, *, budget: GraphBudget,
                 policy: RetryPolicy | None = None, timeout_s: float = 30.0,
                 inner_transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 seed: int | None = None):
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.routes = budget.routes
        self.budget = budget
        self.token = TokenHolder()
        self.http = HttpClient(_LABEL_HOST, budget=budget, token_source=credentials.where, policy=policy,
                               timeout_s=timeout_s, check=self.routes.check, sleep=sleep, seed=seed,
                               transport=GraphTransport(self.routes, self.token, inner_transport))
        self.refreshes = 0
        self.token.value = credentials.access_token or self._fetch_token()

    def close(self) -> None:
        self.http.close()

    def _token_url(self) -> str:
        return self.credentials.token_url or TOKEN_URL.format(tenant=self.credentials.tenant_id)

    def _fetch_token(self) -> str:
        c = self.credentials
        if not (c.tenant_id and c.client_id and c.client_secret):
            raise AuthError(f"incomplete Graph credentials: {c.where} must give a tenant id, a client id and a "
                            "client secret")
        label = self.routes.add("token", Route(self._token_url(), ("token",), bearer=False, expect="token"))
        try:
            body = self.http.call(label, {"grant_type": "client_credentials", "client_id": c.client_id,
                                          "client_secret": c.client_secret, "scope": GRAPH_SCOPE}, post=True)
        except ApiError as exc:
            # AAD answers 400 invalid_client / unauthorized_client for a wrong id, secret or tenant
            raise AuthError(f"the token endpoint refused the client credentials from {c.where} ({exc.code}); "
                            "check the tenant id, the client id and that the secret has not expired") from None
        finally:
            self.routes.drop(label)
        return str(body["access_token"])

    def call(self, url: str, *, endpoint: str, buckets: tuple[str, ...], expect: str = "object",
             download: bool = False) -> dict[str, Any]:
        """The JSON object at the absolute `url`, sent exactly as given. A 401 refreshes the token once."""
        label = self.routes.add(endpoint, Route(url, buckets, expect=expect, download=download))
        try:
            try:
                return self.http.call(label)
            except AuthError as exc:
                if exc.status != 401 or self.credentials.access_token or self.refreshes >= 1:
                    raise
                # an expired token: get a new one once, then fail for good
                self.refreshes += 1
                self.token.value = self._fetch_token()
                return self.http.call(label)
        finally:
            self.routes.drop(label)

    def pages(self, url: str, *, endpoint: str, buckets: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        """Each page body of a collection, following `@odata.nextLink` exactly; the last page is the one
        without it (it may carry `@odata.deltaLink`). A page whose nextLink was already handed out is a
        replay of an earlier page (a proxy answering from its cache): it is dropped before it is yielded
        and the same link is asked again after the backoff, a few times (`PageReplays`), then the run
        stops with an `ApiError` (code `page_replayed`)."""
        replays = PageReplays(endpoint, self.http.backoff_pause)
        for _ in range(MAX_PAGES):
            body = self.call(url, endpoint=endpoint, buckets=buckets, expect="collection")
            nxt = body.get("@odata.nextLink")
            nxt = nxt if isinstance(nxt, str) and nxt else None
            if replays.replayed(nxt):
                continue  # ask `url` again: this page's items were yielded already
            yield body
            if nxt is None:
                return
            url = nxt
        raise ApiError(f"{endpoint}: more than {MAX_PAGES} pages", code="too_many_pages")

    def items(self, url: str, *, endpoint: str, buckets: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        for body in self.pages(url, endpoint=endpoint, buckets=buckets):
            yield from body["value"]

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return build_url(self.base_url, path, params)


def team_buckets(team_id: str) -> tuple[str, ...]:
    return ("tenant", f"team@{opaque(team_id)}")


def thread_buckets(team_id: str | None, thread_id: str) -> tuple[str, ...]:
    scope = ("tenant", f"team@{opaque(team_id)}") if team_id else ("tenant",)
    return (*scope, f"thread@{opaque(thread_id)}")

