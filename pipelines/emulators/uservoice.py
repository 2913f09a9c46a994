"""A local UserVoice Admin API v2 emulator: a real HTTP server on 127.0.0.1 serving a demo account
(`uservoice_account.build_account`).

Endpoints: `POST /api/v2/oauth/token` (form grant_type=client_credentials, client_id, client_secret;
answers `{"access_token": "..."}` and nothing else, as documented; wrong credentials: 401
`{"error": "invalid_client"}`, an assumed body), and `GET /api/v2/admin/<collection>` for `users`,
`forums`, `categories`, `statuses`, `suggestions`, `comments`, `supporters` and `status_updates`, with
`per_page` (1-100, default 20; otherwise 400), `cursor`, `updated_after` / `updated_before`
(`%Y-%m-%dT%H:%M:%SZ`; after is inclusive, before exclusive; status updates are filtered by their
`created_at`, having no `updated_at`), `suggestion_ids` (comma-separated; on suggestions and on the
collections linked to a suggestion) and, on suggestions, `includes=forums,users,statuses` (side-loaded
top-level arrays). Answers are the documented envelope: `{"<collection>": [...], "links": {<type map>},
"list_meta": null, "pagination": {"page", "per_page", "total_pages", "total_records", "cursor"}}`, the
cursor absent on the last page; a cursor is opaque and good for the rest of that listing. Ordered by id.

Tokens expire after `token_requests` authorised requests (then 401 `{"errors": {"unauthorized": ...}}`,
an assumed body) until a new one is fetched. A rate limit (`rate_limit` requests per `rate_period_s`,
sliding window, off by default) answers 429 with `Retry-After` in the form `retry_after_form` ("epoch":
the unix epoch second when the limit expires, as the docs define it; "seconds": a wait, as
tap-uservoice reads it) and `X-Rate-Limit-Limit/-Remaining/-Reset`. A fault rate (`Faults`, seeded,
`base.draw_fault`) injects 500/503s, timeouts, truncated bodies, 429s in both Retry-After forms and token
expiries. The data clock (`advance_to`) decides what exists. Never bind to anything but 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipelines.emulators.base import LoopbackServer, QuietHandler, SlidingWindow, draw_fault, utc_midnight
from pipelines.emulators.uservoice_account import Account, build_account
from pipelines.sources.demo_org import DemoOrg
from pipelines.sources.uservoice_api import parse_datetime

FAULT_KINDS = ("500", "503", "timeout", "truncated", "429_seconds", "429_epoch", "expired")
COLLECTIONS = ("users", "forums", "categories", "statuses", "suggestions", "comments", "supporters",
               "status_updates")
LINK_TYPES: dict[str, dict[str, str]] = {
    "suggestions": {"category": "categories", "created_by": "users", "forum": "forums", "labels": "labels",
                    "last_status_update": "status_updates", "parent_suggestion": "suggestions",
                    "status": "statuses", "ticket": "tickets"},
    "comments": {"suggestion": "suggestions", "created_by": "users"},
    "supporters": {"suggestion": "suggestions", "user": "users", "created_by": "users", "updated_by": "users"},
    "status_updates": {"suggestion": "suggestions", "user": "users", "old_status": "statuses",
                       "new_status": "statuses"},
    "users": {"teams": "teams", "external_users": "external_users", "current_nps_rating": "nps_ratings"},
    "forums": {"updated_by": "users"}, "categories": {"forum": "forums", "parent_category": "categories"},
    "statuses": {},
}


@dataclass
class Faults:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after_s: float = 0.05  # the seconds form of an injected 429
    timeout_delay_s: float = 0.6
    seed: int = 0


@dataclass
class ServerStats:
    requests: int = 0
    limited: int = 0
    expired: int = 0
    tokens: int = 0
    faults: Counter = field(default_factory=Counter)


class _BadRequest(Exception):
    def __init__(self, status: int, key: str, message: str):
        super().__init__(message)
        self.status, self.key = status, key


def _epoch(value: str, name: str) -> float:
    when = parse_datetime(value)
    if when is None:
        raise _BadRequest(400, name, f"{name} must be an ISO 8601 time such as 2017-02-24T16:27:36Z")
    return when.timestamp()


class UserVoiceEmulator(LoopbackServer):
    thread_name = "uv-emulator"

    def __init__(self, org: DemoOrg, *, account: Account | None = None, client_id: str = "emulator-key",
                 client_secret: str = "emulator-secret", token_requests: int = 40, rate_limit: int | None = None,
                 rate_period_s: float = 60.0, retry_after_form: str = "epoch", faults: Faults | None = None,
                 port: int = 0):
        if retry_after_form not in ("epoch", "seconds"):
            raise ValueError(f"retry_after_form is 'epoch' or 'seconds' (got {retry_after_form!r})")
        self.data = account or build_account(org)
        self.client_id, self.client_secret = client_id, client_secret
        self.token_requests = token_requests
        self.retry_after_form = retry_after_form
        self.window = SlidingWindow(rate_limit, rate_period_s) if rate_limit else None
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self._tokens: dict[str, int] = {}  # live token -> requests left
        self._cursors: dict[str, tuple[str, list[dict[str, Any]], int, int]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self.now = utc_midnight(self.data.end) + 86400 - 1
        self._listen(_handler(self), port)

    def advance_to(self, day: dt.date) -> None:
        with self._lock:
            self.now = utc_midnight(day) + 86400 - 1

    def issue_token(self) -> str:
        with self._lock:
            token = uuid.uuid4().hex[:16]
            self._tokens[token] = self.token_requests
            self.stats.tokens += 1
            return token

    def admission(self, auth: str | None) -> tuple[str, float] | None:
        """None to serve, else (refusal, wait): a fault kind, `limit` or `unauthorized`."""
        with self._lock:
            self.stats.requests += 1
            kind = draw_fault(self._rng, self.faults, self.stats.faults)
            if kind == "expired":
                self._tokens.clear()  # every token so far stops working
                return "unauthorized", 0.0
            if kind is not None:
                return kind, self.faults.retry_after_s
            token = auth.removeprefix("Bearer ") if auth and auth.startswith("Bearer ") else None
            if token is None or self._tokens.get(token, 0) <= 0:
                self._tokens.pop(token or "", None)
                self.stats.expired += 1
                return "unauthorized", 0.0
            self._tokens[token] -= 1
            if self.window is not None:
                wait = self.window.admit(time.time())
                if wait is not None:
                    self.stats.limited += 1
                    return "limit", wait
        return None

    def rate_headers(self) -> dict[str, str]:
        if self.window is None:
            return {}
        reset = math.ceil(time.time() + self.window.period)
        left = max(0, self.window.limit - len(self.window.times))
        return {"X-Rate-Limit-Limit": str(self.window.limit), "X-Rate-Limit-Remaining": str(left),
                "X-Rate-Limit-Reset": str(reset)}

    def retry_after(self, wait: float, form: str) -> str:
        if form == "epoch":
            return str(math.ceil(time.time() + wait))  # "the unix epoch in seconds until the rate limit expires"
        return f"{wait:.3f}".rstrip("0").rstrip(".") or "0"

    # --- listings -----------------------------------------------------------------------------------
    def records(self, collection: str, query: dict[str, str]) -> list[dict[str, Any]]:
        now, d = self.now, self.data
        url = "http://SUBDOMAIN.uservoice.com"
        if collection == "users":
            rows = list(d.users)
        elif collection == "forums":
            rows = list(d.forums)
        elif collection == "categories":
            rows = list(d.categories)
        elif collection == "statuses":
            rows = list(d.statuses)
        elif collection == "suggestions":
            rows = [i.render(now, url) for i in d.ideas if i.created <= now]
        elif collection == "comments":
            rows = [c.render() for c in d.comments() if c.created <= now]
        elif collection == "supporters":
            rows = [s.render() for s in d.supporters() if s.created <= now]
        else:
            rows = [u.render() for u in d.status_updates() if u.created <= now]
        stamp = "created_at" if collection == "status_updates" else "updated_at"
        lower = _epoch(query["updated_after"], "updated_after") if "updated_after" in query else None
        upper = _epoch(query["updated_before"], "updated_before") if "updated_before" in query else None
        if lower is not None or upper is not None:
            def inside(r: dict[str, Any]) -> bool:
                when = parse_datetime(r.get(stamp) or r.get("created_at"))
                t = when.timestamp() if when is not None else 0.0
                return (lower is None or t >= lower) and (upper is None or t < upper)
            rows = [r for r in rows if inside(r)]
        if "suggestion_ids" in query:
            try:
                wanted = {int(x) for x in query["suggestion_ids"].split(",") if x.strip()}
            except ValueError:
                raise _BadRequest(400, "suggestion_ids", "suggestion_ids must be comma-separated integers") from None
            if collection == "suggestions":
                rows = [r for r in rows if r["id"] in wanted]
            elif collection in ("comments", "supporters", "status_updates"):
                rows = [r for r in rows if r["links"]["suggestion"] in wanted]
        return sorted(rows, key=lambda r: r["id"])

    def page(self, collection: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            per_page = int(query.get("per_page", "20"))
        except ValueError:
            per_page = 0
        if not 1 <= per_page <= 100:
            raise _BadRequest(400, "per_page", "per_page must be an integer between 1 and 100")
        cursor = query.get("cursor")
        if cursor:
            found = self._cursors.get(cursor)
            if found is None or found[0] != collection:
                raise _BadRequest(400, "cursor", "invalid cursor")
            _, rows, offset, per_page = found
        else:
            rows, offset = self.records(collection, query), 0
        chunk = rows[offset:offset + per_page]
        end = offset + per_page
        pagination: dict[str, Any] = {"page": offset // per_page + 1, "per_page": per_page,
                                      "total_pages": max(1, math.ceil(len(rows) / per_page)),
                                      "total_records": len(rows)}
        if end < len(rows):
            token = uuid.uuid4().hex
            self._cursors[token] = (collection, rows, end, per_page)
            pagination["cursor"] = token
        body: dict[str, Any] = {"links": {f"{collection}.{k}": {"type": v} for k, v in LINK_TYPES[collection].items()},
                                collection: chunk, "list_meta": None, "pagination": pagination}
        includes = {x.strip() for x in query.get("includes", "").split(",") if x.strip()}
        if collection == "suggestions" and includes:
            body.update(self.sideload(chunk, includes))
        return body

    def sideload(self, chunk: list[dict[str, Any]], includes: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, link, source in (("forums", "forum", self.data.forums), ("users", "created_by", self.data.users),
                                   ("statuses", "status", self.data.statuses)):
            if name in includes:
                ids = {r["links"][link] for r in chunk}
                out[name] = [x for x in source if x["id"] in ids]
        return out


def _handler(emu: UserVoiceEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _reply(self, status: int, body: Any, *, raw: bytes | None = None,
                   content_type: str = "application/json; charset=utf-8", headers: dict[str, str] | None = None) -> None:
            self._send(status, raw if raw is not None else json.dumps(body).encode(), headers, content_type)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
            if urlsplit(self.path).path != "/api/v2/oauth/token":
                self._reply(404, {"errors": {"not_found": "no such endpoint"}})
                return
            with emu._lock:
                kind = draw_fault(emu._rng, emu.faults, emu.stats.faults)
            if kind in ("500", "503", "truncated"):
                self._reply(503, None, raw=b"<html>Service Unavailable</html>", content_type="text/html")
                return
            if (form.get("grant_type") != "client_credentials" or form.get("client_id") != emu.client_id
                    or form.get("client_secret") != emu.client_secret):
                self._reply(401, {"error": "invalid_client"})
                return
            self._reply(200, {"access_token": emu.issue_token()})

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            try:
                self._get()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _get(self) -> None:
            parts = urlsplit(self.path)
            refusal = emu.admission(self.headers.get("Authorization"))
            if refusal is not None:
                kind, wait = refusal
                if kind in ("500", "503"):
                    self._reply(int(kind), None, raw=b"<html>Service Unavailable</html>", content_type="text/html")
                elif kind == "timeout":
                    self._stall(emu.faults.timeout_delay_s)
                elif kind == "truncated":
                    self._reply(200, None, raw=b'{"links":{"suggestions.forum":{"type":"forums"}},"suggestions":[{"id"')
                elif kind == "unauthorized":
                    self._reply(401, {"errors": {"unauthorized": "the access token is invalid or expired"}},
                                headers={"WWW-Authenticate": "Bearer"})
                else:  # a 429: the rate limit, or an injected one in either form
                    form = {"429_epoch": "epoch", "429_seconds": "seconds"}.get(kind, emu.retry_after_form)
                    self._reply(429, {"errors": {"too_many_requests": "rate limit exceeded"}},
                                headers={"Retry-After": emu.retry_after(wait, form), **emu.rate_headers()})
                return
            prefix = "/api/v2/admin/"
            collection = parts.path.removeprefix(prefix) if parts.path.startswith(prefix) else ""
            if collection not in COLLECTIONS:
                self._reply(404, {"errors": {"not_found": "no such collection"}})
                return
            query = dict(parse_qsl(parts.query))
            with emu._lock:
                try:
                    body = emu.page(collection, query)
                except _BadRequest as err:
                    self._reply(err.status, {"errors": {err.key: str(err)}})
                    return
                headers = emu.rate_headers()
            self._reply(200, body, headers=headers)

    return Handler
