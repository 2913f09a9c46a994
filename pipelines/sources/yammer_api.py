"""Viva Engage (Yammer) REST v1 transport on top of `pipelines.connectors.http.HttpClient`.

The shared client only accepts JSON *objects*; Yammer answers `users.json` and `groups.json` with JSON
arrays and the Data Export with a zip. Rather than duplicate the retry logic, an httpx transport
adapter wraps such bodies into objects (`{"items": [...]}`, `{"zip_base64": "..."}`) before the client
sees them, so arrays and exports get the same retries, backoff and Retry-After handling as everything
else. A truncated array or zip is passed through unchanged, so the client classifies it as an invalid
body and retries it. (A native `HttpClient` option for array and binary bodies would be cleaner: noted
for the connector framework's owner.) The zip is held in memory: fine for daily exports, not for a
multi-gigabyte one-off export, which should be downloaded by hand and imported from the file.

Rate limits (developer docs): messages 10 requests per 30 s, everything else 10 per 10 s, per user and
app. Nothing here logs or raises with a token, a URL query or a body.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import ApiError, AuthError, InvalidBodyError
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy

DEFAULT_BASE_URL = "https://www.yammer.com/api/v1"
PAGE_SIZE = 20  # the messages API caps a page at about 20
DIRECTORY_PAGE = 50  # users.json and groups.json give 50 per page
MAX_PAGES = 1_000_000

_STRIP = {"content-length", "content-encoding", "transfer-encoding"}


def _headers(resp: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _STRIP]


class ObjectBodyTransport(httpx.BaseTransport):
    """Wraps JSON arrays and complete zips of 200 responses into JSON objects (see module doc)."""

    def __init__(self, inner: httpx.BaseTransport | None = None):
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = self.inner.handle_request(request)
        if resp.status_code != 200:
            return resp
        try:
            content = resp.read()
        finally:
            resp.close()
        wrapped: dict[str, Any] | None = None
        if content[:2] == b"PK":
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as z:
                    if z.testzip() is None:
                        wrapped = {"zip_base64": base64.b64encode(content).decode()}
            except zipfile.BadZipFile:
                wrapped = None
        elif content.lstrip()[:1] == b"[":
            try:
                items = json.loads(content)
            except ValueError:
                items = None
            if isinstance(items, list):
                wrapped = {"items": items}
        if wrapped is None:
            return httpx.Response(200, headers=_headers(resp), content=content, request=request)
        headers = [(k, v) for k, v in _headers(resp) if k.lower() != "content-type"]
        return httpx.Response(200, headers=[*headers, ("content-type", "application/json")],
                              content=json.dumps(wrapped).encode(), request=request)

    def close(self) -> None:
        self.inner.close()


def method_limits(period_s: float) -> tuple[dict[str, float], float]:
    """(per-method limits per `period_s`, default limit): messages 10 per 3 periods, others 10."""
    return {"messages.json": 10 / 3}, 10.0


class YammerApi:
    """The Viva Engage REST calls the source makes; `inner` is the transport under the body adapter
    (tests serve bodies through it)."""

    def __init__(self, base_url: str, token: str, *, token_source: str, period_s: float = 10.0,
                 policy: RetryPolicy | None = None, timeout_s: float = 30.0,
                 budget: Budget | None = None, sleep: Callable[[float], None] | None = None,
                 inner: httpx.BaseTransport | None = None):
        if not token:
            raise AuthError(f"no Viva Engage token: {token_source} is empty or unset")
        limits, default = method_limits(period_s)
        kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self.http = HttpClient(base_url, budget=budget or Budget(limits=limits, default_limit=default,
                                                                 period_s=period_s),
                               auth_header=f"Bearer {token}", token_source=token_source, policy=policy,
                               timeout_s=timeout_s, transport=ObjectBodyTransport(inner), **kwargs)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.http.call(method, params)

    def directory(self, method: str) -> Iterator[dict[str, Any]]:
        """Every item of a page-numbered list (`users.json`, `groups.json`). A full page whose every id
        was on earlier pages is a replay (a proxy ignoring the page number): dropped and asked again
        after the backoff, a few times, then an `ApiError` (code `page_replayed`)."""
        replays = PageReplays(method, self.http.backoff_pause)
        page = 1
        for _ in range(MAX_PAGES):
            body = self.call(method, {"page": page})
            items = body.get("items")
            if not isinstance(items, list):
                raise InvalidBodyError(f"{method}: expected a JSON array")
            objects = [i for i in items if isinstance(i, dict)]
            ids = [str(i["id"]) if i.get("id") is not None else None for i in objects]
            if None not in ids and replays.seen_all(ids):
                replays.again()
                continue  # the same page number again: its items were yielded already
            replays.fresh()
            yield from objects
            if len(items) < DIRECTORY_PAGE:
                return
            page += 1
        raise ApiError(f"{method}: more than {MAX_PAGES} pages", code="too_many_pages")

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message, or None when it no longer exists (deleted, or not visible to the token)."""
        try:
            return self.call(f"messages/{message_id}.json")
        except ApiError as exc:
            if exc.code in ("http_404", "http_410"):
                return None
            raise

    def feed(self, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Pages of `messages.json` going back in time with `older_than` (the smallest id seen).
        Stops when `meta.older_available` is false or a page is empty; the caller stops earlier when it
        has gone back far enough. A page that does not go back (no id below `older_than`) is a replay of
        an earlier page (a proxy answering from its cache): it is dropped before it is yielded and the
        same `older_than` is asked again after the backoff, a few times, then an `ApiError` (code
        `page_replayed`) stops the run."""
        older: int | None = None
        replays = PageReplays("messages.json", self.http.backoff_pause)
        for _ in range(MAX_PAGES):
            query = {**params, "limit": PAGE_SIZE}
            if older is not None:
                query["older_than"] = older
            body = self.call("messages.json", query)
            messages = body.get("messages")
            if not isinstance(messages, list):
                raise InvalidBodyError("messages.json: no 'messages' list")
            ids = [int(m["id"]) for m in messages if isinstance(m, dict) and m.get("id") is not None]
            if older is not None and ids and min(ids) >= older:
                replays.again()
                continue  # ask the same older_than again: this page was yielded already
            replays.fresh()
            yield body
            meta: dict[str, Any] = body["meta"] if isinstance(body.get("meta"), dict) else {}
            if not ids or meta.get("older_available") is False:
                return
            older = min(ids)
        raise ApiError(f"messages.json: more than {MAX_PAGES} pages", code="too_many_pages")

    def export(self, params: Mapping[str, Any]) -> bytes:
        body = self.call("export", params)
        data = body.get("zip_base64")
        if not isinstance(data, str):
            raise InvalidBodyError("export: the answer is not a zip")
        return base64.b64decode(data)
