"""A local MangoApps API emulator: a real HTTP server on 127.0.0.1 serving a demo domain
(`mangoapps_network.build_network`), in the shapes the connector assumes (all **unverified**: no real
MangoApps payload was available; docs/sources/mangoapps.md).

Endpoints:
  - `POST /api/login.json`, JSON `{"ms_request": {"user": {"api_key", "username", "password"}}}`, the
    password base64-encoded: answers `{"ms_response": {"user": {id, name, email, session_id}, "transaction_id"}}`
    and sets the cookie `_felix_session_id`; wrong credentials: 401 with `{"ms_errors": {"error":
    {"message": " Login id or Password is Incorrect.", "error_code": "AUTHENTICATION_ERROR"}}}` (the
    third-party stub's words); `POST /api/logout.json` ends the session;
  - OAuth: `GET /.well-known/openid-configuration` (issuer, authorization_endpoint, token_endpoint) and
    `POST /oauth/token` (form `grant_type=refresh_token`); `issue_bearer()` hands a test its first token;
  - `GET /api/users.json`, `/api/groups.json`, `/api/feeds.json` with `limit` (at most 500 / 100 / 50,
    more is a 400 `INVALID_PARAMETER`: assumed) and `offset`; `ms_response.<name>` lists, the feeds
    newest-updated first with the answer's `limit`, `unread_counts` and `mangoapps_version`.
Sessions (cookie) and bearer tokens end after `session_requests` authorised requests (401 +
`AUTHENTICATION_ERROR`, assumed) until the client signs in again. A rate limit (`rate_limit` requests
per `rate_period_s`, sliding window, off by default) answers 429 with `Retry-After` (seconds) and an
`ms_errors` `RATE_LIMIT_EXCEEDED` body (assumed). A fault rate (`Faults`, seeded, `base.draw_fault`)
injects 500s, 502s, timeouts, truncated bodies, 429s, transient `ms_errors` under HTTP 200
(`INTERNAL_SERVER_ERROR`, assumed) and ended sessions. `timestamp_style` ("epoch", "epoch_string",
"iso", "ms") serves times otherwise, to show the connector stopping on an API unlike its assumptions.
The data clock (`advance_to`) decides what exists. Never bind to anything but 127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipelines.emulators.base import (
    FaultPlan,
    LoopbackServer,
    QuietHandler,
    SlidingWindow,
    draw_fault,
    utc_midnight,
)
from pipelines.emulators.mangoapps_network import Network, build_network
from pipelines.sources.demo_org import DemoOrg

FAULT_KINDS = ("500", "502", "timeout", "truncated", "429", "ms_errors", "expired")
MAX_LIMIT = {"users": 500, "groups": 100, "feeds": 50}
VERSION = "23.4.1 (emulated)"


@dataclass
class Faults(FaultPlan):
    kinds: tuple[str, ...] = FAULT_KINDS


@dataclass
class ServerStats:
    requests: int = 0
    limited: int = 0
    expired: int = 0
    logins: int = 0
    logouts: int = 0
    refreshes: int = 0
    faults: Counter = field(default_factory=Counter)


def ms_errors(code: str, message: str) -> dict[str, Any]:
    return {"ms_errors": {"error": {"message": message, "error_code": code}}}


class MangoAppsEmulator(LoopbackServer):
    thread_name = "mangoapps-emulator"

    def __init__(self, org: DemoOrg, *, network: Network | None = None, api_key: str = "emulator-api-key",
                 username: str = "admin@demo-corp.example", password: str = "emulator-password",
                 client_id: str = "emulator-client", session_requests: int = 40, rate_limit: int | None = None,
                 rate_period_s: float = 60.0, timestamp_style: str = "epoch", faults: Faults | None = None,
                 port: int = 0):
        self.data = network or build_network(org)
        self.api_key, self.username, self.password, self.client_id = api_key, username, password, client_id
        self.session_requests = session_requests
        self.timestamp_style = timestamp_style
        self.window = SlidingWindow(rate_limit, rate_period_s) if rate_limit else None
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self._sessions: dict[str, int] = {}  # live session id or bearer token -> requests left
        self._refresh_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self.now = utc_midnight(self.data.end) + 86400 - 1
        self._listen(_handler(self), port)

    def advance_to(self, day: dt.date) -> None:
        with self._lock:
            self.now = utc_midnight(day) + 86400 - 1

    def _new_secret(self) -> str:
        secret = uuid.uuid4().hex
        self._sessions[secret] = self.session_requests
        return secret

    def issue_bearer(self) -> tuple[str, str]:
        """(access token, refresh token) for the OAuth tests: what the authorisation-code flow would give."""
        with self._lock:
            refresh = uuid.uuid4().hex
            self._refresh_tokens.add(refresh)
            return self._new_secret(), refresh

    def draw(self) -> str | None:
        with self._lock:
            return draw_fault(self._rng, self.faults, self.stats.faults)

    def admission(self, secret: str | None) -> tuple[str, float] | None:
        """None to serve, else (refusal, wait): a fault kind, `limit` or `unauthorized`."""
        with self._lock:
            self.stats.requests += 1
            kind = draw_fault(self._rng, self.faults, self.stats.faults)
            if kind == "expired":
                self._sessions.clear()  # every session and token so far ends
                return "unauthorized", 0.0
            if kind is not None:
                return kind, self.faults.retry_after_s
            if secret is None or self._sessions.get(secret, 0) <= 0:
                self._sessions.pop(secret or "", None)
                self.stats.expired += 1
                return "unauthorized", 0.0
            self._sessions[secret] -= 1
            if self.window is not None:
                wait = self.window.admit(time.time())
                if wait is not None:
                    self.stats.limited += 1
                    return "limit", wait
        return None

    # --- listings -----------------------------------------------------------------------------------
    def listing(self, name: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", "20"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            raise _BadRequest("limit and offset must be integers") from None
        if not 1 <= limit <= MAX_LIMIT[name] or offset < 0:
            raise _BadRequest(f"limit must be between 1 and {MAX_LIMIT[name]}")
        now, d = self.now, self.data
        tid = uuid.uuid4().hex[:12]
        if name == "users":
            return {"users": d.users[offset:offset + limit], "transaction_id": tid}
        if name == "groups":
            return {"groups": d.groups[offset:offset + limit], "transaction_id": tid}
        live = [i for i in d.items if i.created <= now]
        live.sort(key=lambda i: (-i.updated(now), -i.id))
        chunk = [d.render(i, now, self.timestamp_style) for i in live[offset:offset + limit]]
        return {"feeds": chunk, "unread_counts": {"unread_feeds_count": 0, "direct_messages_count": 0,
                                                  "whats_new_count": 0},
                "limit": limit, "mangoapps_version": VERSION, "transaction_id": tid}


class _BadRequest(Exception):
    pass


def _handler(emu: MangoAppsEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _reply(self, status: int, body: Any, *, raw: bytes | None = None,
                   content_type: str = "application/json; charset=utf-8", headers: dict[str, str] | None = None) -> None:
            self._send(status, raw if raw is not None else json.dumps(body).encode(), headers, content_type)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _fault(self, kind: str | None, wait: float = 0.05) -> bool:
            """Answer an injected fault; False when there is none."""
            if kind in ("500", "502"):
                self._reply(int(kind), None, raw=b"<html><body>Bad Gateway</body></html>", content_type="text/html")
            elif kind == "timeout":
                self._stall(emu.faults.timeout_delay_s)
            elif kind == "truncated":
                self._reply(200, None, raw=b'{"ms_response":{"feeds":[{"id":33000')
            elif kind == "ms_errors":
                self._reply(200, ms_errors("INTERNAL_SERVER_ERROR", "Something went wrong. Please try again."))
            elif kind in ("429", "limit"):
                self._reply(429, ms_errors("RATE_LIMIT_EXCEEDED", "Too many requests"),
                            headers={"Retry-After": f"{wait:.3f}".rstrip("0").rstrip(".") or "0"})
            else:
                return False
            return True

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            try:
                self._post()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _post(self) -> None:
            path = urlsplit(self.path).path
            raw = self._body()
            if path == "/oauth/token":
                form = dict(parse_qsl(raw.decode()))
                with emu._lock:
                    ok = form.get("grant_type") == "refresh_token" and form.get("refresh_token") in emu._refresh_tokens \
                        and form.get("client_id") == emu.client_id
                    if ok:
                        emu._refresh_tokens.discard(form["refresh_token"])
                        refresh = uuid.uuid4().hex
                        emu._refresh_tokens.add(refresh)
                        token = emu._new_secret()
                        emu.stats.refreshes += 1
                if not ok:
                    self._reply(400, {"error": "invalid_grant"})
                    return
                self._reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                  "refresh_token": refresh, "scope": "openid profile email"})
                return
            if path == "/api/logout.json":
                sid = self._cookie()
                with emu._lock:
                    emu._sessions.pop(sid or "", None)
                    emu.stats.logouts += 1
                self._reply(200, {"ms_response": {"success": True, "transaction_id": uuid.uuid4().hex[:12]}})
                return
            if path != "/api/login.json":
                self._reply(404, ms_errors("NOT_FOUND", "No such API"))
                return
            kind = emu.draw()
            if kind in ("500", "502", "timeout", "truncated"):
                self._fault(kind)
                return
            try:
                user = json.loads(raw)["ms_request"]["user"]
                password = base64.b64decode(str(user.get("password", "")), validate=True).decode()
            except (ValueError, KeyError, TypeError, binascii.Error):
                self._reply(400, ms_errors("INVALID_REQUEST", "The request is not an ms_request with a user"))
                return
            if (user.get("api_key"), user.get("username"), password) != (emu.api_key, emu.username, emu.password):
                self._reply(401, ms_errors("AUTHENTICATION_ERROR", " Login id or Password is Incorrect."))
                return
            with emu._lock:
                sid = emu._new_secret()
                emu.stats.logins += 1
            me = emu.data.user_ref(emu.data.admin_id)
            self._reply(200, {"ms_response": {"user": {**me, "session_id": sid},
                                              "transaction_id": uuid.uuid4().hex[:12]}},
                        headers={"Set-Cookie": f"_felix_session_id={sid}; path=/; HttpOnly"})

        def _cookie(self) -> str | None:
            for part in (self.headers.get("Cookie") or "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "_felix_session_id" and value:
                    return value
            return None

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            try:
                self._get()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _get(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._reply(200, {"issuer": emu.root, "authorization_endpoint": f"{emu.root}/oauth/authorize",
                                  "token_endpoint": f"{emu.root}/oauth/token",
                                  "scopes_supported": ["openid", "profile", "email"],
                                  "code_challenge_methods_supported": ["S256"]})
                return
            name = parts.path.removeprefix("/api/").removesuffix(".json")
            if not parts.path.startswith("/api/") or name not in MAX_LIMIT:
                self._reply(404, ms_errors("NOT_FOUND", "No such API"))
                return
            auth = self.headers.get("Authorization") or ""
            secret = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else self._cookie()
            refusal = emu.admission(secret)
            if refusal is not None:
                kind, wait = refusal
                if kind == "unauthorized":
                    self._reply(401, ms_errors("AUTHENTICATION_ERROR", "Session expired. Please login again."))
                else:
                    self._fault(kind, wait)
                return
            try:
                body = emu.listing(name, dict(parse_qsl(parts.query)))
            except _BadRequest as exc:
                self._reply(400, ms_errors("INVALID_PARAMETER", str(exc)))
                return
            self._reply(200, {"ms_response": body})

    return Handler


def serve(org: DemoOrg, **options: Any) -> MangoAppsEmulator:
    """An emulator for `esn emulate`-style use; `faults` may be a dict of `Faults` fields."""
    from pipelines.emulators.base import pop_faults

    faults = pop_faults(options, Faults)
    return MangoAppsEmulator(org, faults=faults, **options)
