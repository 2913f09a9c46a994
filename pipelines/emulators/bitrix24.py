"""A local Bitrix24 REST emulator: a real HTTP server on 127.0.0.1 serving a portal built from the demo
organisation (`bitrix24_portal.build_portal`) in the documented shapes.

Endpoints: incoming webhooks `/rest/<user id>/<code>/<method>[.json]` and OAuth calls
`/rest/<method>[.json]` with `auth=<access token>` (query string, form body or JSON body; nested
parameters in PHP's `A[B][0]=v` form), and the token server `/oauth/token/` (`grant_type=refresh_token`;
each refresh issues a new refresh token and, with `rotate_refresh`, retires the old one). Methods:
`user.admin`, `user.get` (FILTER with `>ID`, `start=-1` without total), `department.get` (`START`),
`sonet_group.get`, `sonet_group.user.get`, `log.blogpost.get` (`POST_ID`, `LOG_RIGHTS`,
`LOG_DATE_FROM/TO` unless `supports_log_date=False` as on portals older than those parameters; ordered by
LOG_UPDATE DESC; `start` rounded down to its page of 50 Feed entries; drafts dropped from a page after it
is cut, so a page can be short with a `next`, and its `result` then is an object with numeric keys, as
PHP encodes a list with holes), `log.blogcomment.user.get` (per author; an administrator asking for
another user gets `text: ""`; `post_id`, or `log_id` with `comment_parent_key="log_id"` as the docs'
example shows), `log.blogpost.getusers.important`, and `batch` (up to 50 commands, per-command errors in
`result_error`, PHP's `[]` for empty objects).

Limits, counted in `stats`: the leaky bucket (`Limits.drain_per_s` / `burst`: HTTP 503
`QUERY_LIMIT_EXCEEDED`, a `query_limit_breaches`) and each method's operating time in 10 baskets of a
tenth of `operating_window_s` (every call costs `cost_s` + `cost_per_row_s` per row; above
`operating_limit_s` the next call answers HTTP 429 `OPERATION_TIME_LIMIT`, an `operating_breaches`);
every answer's `time` carries `operating` and `operating_reset_at`. Access tokens expire after
`token_ttl_s` (401 `expired_token`); a wrong webhook answers 401 `NO_AUTH_FOUND`. Unreliable paging on
demand: `lying_total` ("page": `total` is the page's size, as a real portal answered; "random") and
`churn` (the share of Feed pages after which a post not yet reached by a forward scan is touched and
moves to the head, as a new comment moves it). Faults (a seeded 10% draw, `base.draw_fault`): 500
`INTERNAL_SERVER_ERROR`, a 502 HTML page, timeouts, truncated bodies, `QUERY_LIMIT_EXCEEDED` sent with
HTTP 200, a failed command inside a batch, and an access token expiring early. The data clock
(`advance_to`) decides what exists. Never bind to anything but 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipelines.emulators.base import LoopbackServer, QuietHandler, draw_fault, utc_midnight
from pipelines.emulators.bitrix24_portal import Portal, Post, build_portal, fmt_time
from pipelines.sources.bitrix24_api import parse_datetime
from pipelines.sources.demo_org import DemoOrg

FAULT_KINDS = ("500", "502", "timeout", "truncated", "limit_200", "batch_item", "expired")
PAGE = 50
_REST = re.compile(r"^/rest/(?:(\d+)/([^/]+)/)?([a-z0-9_.]+?)(?:\.json)?/?$", re.I)
_KEY = re.compile(r"^([^\[]+)((?:\[[^\]]*\])*)$")


@dataclass
class Faults:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_delay_s: float = 0.6
    seed: int = 0


@dataclass
class Limits:
    """The portal's limits (defaults: the documented ones, `limits.md`)."""

    drain_per_s: float = 2.0
    burst: int = 50
    operating_limit_s: float = 480.0
    operating_window_s: float = 600.0  # 10 baskets of a minute
    cost_s: float = 0.001  # operating time of one call ...
    cost_per_row_s: float = 0.0001  # ... and of each row it returns


@dataclass
class ServerStats:
    requests: int = 0
    query_limit_breaches: int = 0
    operating_breaches: int = 0
    batches: int = 0
    refreshes: int = 0
    expired: int = 0
    auth_failures: int = 0
    faults: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)
    max_bucket: float = 0.0


class _Err(Exception):
    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


class LeakyBucket:
    """+1 per request, drained at `drain` per second; a request finding more than `burst` is refused."""

    def __init__(self, drain: float, burst: int):
        self.drain, self.burst = drain, burst
        self.level = 0.0
        self.stamp = time.monotonic()

    def admit(self, now: float) -> bool:
        self.level = max(0.0, self.level - (now - self.stamp) * self.drain)
        self.stamp = now
        if self.level >= self.burst:
            return False
        self.level += 1.0
        return True


class OperatingBaskets:
    """A method's execution time in 10 baskets of `window / 10`, each dropped `window` after it opened."""

    def __init__(self, limit: float, window: float):
        self.limit, self.window = limit, window
        self.baskets: dict[str, list[list[float]]] = {}

    def _live(self, method: str, now: float) -> list[list[float]]:
        live = [b for b in self.baskets.get(method, []) if b[0] + self.window > now]
        self.baskets[method] = live
        return live

    def blocked(self, method: str, now: float) -> bool:
        return sum(b[1] for b in self._live(method, now)) > self.limit

    def add(self, method: str, now: float, cost: float) -> tuple[float, float]:
        live = self._live(method, now)
        if live and live[-1][0] > now - self.window / 10:
            live[-1][1] += cost
        else:
            live.append([now, cost])
        return sum(b[1] for b in live), live[0][0] + self.window


def php_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`A[B][0]=v` pairs as nested values (dicts with keys 0..n-1 become lists); top-level keys upper-cased
    (Bitrix24 reads them case-insensitively)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if m is None:
            continue
        path = [m.group(1), *re.findall(r"\[([^\]]*)\]", m.group(2))]
        node = root
        for i, part in enumerate(path):
            last = i == len(path) - 1
            part = part if part != "" else str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    break
    return {k.upper(): _lists(v) for k, v in root.items()}


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _lists(v) for k, v in value.items()}
        if value and all(k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
    return value


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().upper() in ("Y", "1", "TRUE")


class Bitrix24Emulator(LoopbackServer):
    thread_name = "b24-emulator"

    def __init__(self, org: DemoOrg, *, portal: Portal | None = None, webhook_code: str = "emulatorwebhookcode7",
                 client_id: str = "local.emulator.app", client_secret: str = "emulator-client-secret",
                 refresh_token: str = "emulator-first-refresh-token", token_ttl_s: float = 3600.0,
                 rotate_refresh: bool = True, limits: Limits | None = None, faults: Faults | None = None,
                 lying_total: str | None = None, churn: float = 0.0, churn_seed: int = 11,
                 supports_log_date: bool = True, comment_parent_key: str = "post_id", date_format: str = "iso",
                 admin: bool = True, port: int = 0):
        if comment_parent_key not in ("post_id", "log_id"):
            raise ValueError(f"comment_parent_key is post_id or log_id (got {comment_parent_key!r})")
        if lying_total not in (None, "page", "random"):
            raise ValueError(f"lying_total is None, 'page' or 'random' (got {lying_total!r})")
        self.data = portal or build_portal(org)
        self.webhook_user = self.data.admin_id
        self.webhook_code = webhook_code
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_tokens = {refresh_token}
        self.access_tokens: dict[str, float] = {}  # token -> expires at (epoch s)
        self.token_ttl_s, self.rotate_refresh = token_ttl_s, rotate_refresh
        self.limits = limits or Limits()
        self.faults = faults or Faults()
        self.lying_total, self.churn = lying_total, churn
        self.supports_log_date = supports_log_date
        self.comment_parent_key, self.date_format = comment_parent_key, date_format
        self.admin = admin
        self.stats = ServerStats()
        self.bucket = LeakyBucket(self.limits.drain_per_s, self.limits.burst)
        self.operating = OperatingBaskets(self.limits.operating_limit_s, self.limits.operating_window_s)
        self.touched: dict[int, float] = {}
        self._tick = 0.0
        self._lock = threading.RLock()
        self._rng = random.Random(self.faults.seed)
        self._churn_rng = random.Random(churn_seed)
        self._total_rng = random.Random(churn_seed + 1)
        self._users = {int(u["ID"]): u for u in self.data.users}
        self.now = _day_end(self.data.end)
        self._listen(_handler(self), port)

    # --- controls -------------------------------------------------------------------------------------
    def advance_to(self, day: dt.date) -> None:
        with self._lock:
            self.now = _day_end(day)

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired now (the hour has passed)."""
        with self._lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def visible_posts(self) -> list[Post]:
        """The ground truth: published posts that exist at the data clock."""
        return [p for p in self.data.posts if not p.draft and p.created <= self.now]

    # --- admission ------------------------------------------------------------------------------------
    def admit(self, caller_token: str | None, is_batch: bool) -> str | None:
        """None to serve, else what to answer: a fault kind or `limit`. Faults are decided first (a failed
        request at the edge never reached the portal)."""
        with self._lock:
            self.stats.requests += 1
            kind = draw_fault(self._rng, self.faults, self.stats.faults)
            if kind == "batch_item" and not is_batch or kind == "expired" and caller_token is None:
                self.stats.faults[kind] -= 1  # the kind does not apply to this request: a 500 instead
                self.stats.faults += Counter()  # drop a zero count
                kind = "500"
                self.stats.faults[kind] += 1
            if kind is not None:
                if kind == "expired" and caller_token in self.access_tokens:
                    self.access_tokens[caller_token] = 0.0
                return kind
            if not self.bucket.admit(time.monotonic()):
                self.stats.query_limit_breaches += 1
                return "limit"
            self.stats.max_bucket = max(self.stats.max_bucket, self.bucket.level)
        return None

    def caller(self, user: str | None, code: str | None, token: str | None) -> int:
        """The calling user, or an `_Err` (401) for bad credentials."""
        if user is not None:
            if int(user) != self.webhook_user or code != self.webhook_code:
                self.stats.auth_failures += 1
                raise _Err(401, "NO_AUTH_FOUND", "Wrong authorization data")
            return self.webhook_user
        expires = self.access_tokens.get(token or "")
        if expires is None:
            self.stats.auth_failures += 1
            raise _Err(401, "invalid_token", "The access token provided is invalid.")
        if expires <= time.time():
            self.stats.expired += 1
            raise _Err(401, "expired_token", "The access token provided has expired.")
        return self.data.admin_id

    def token(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if params.get("CLIENT_ID") != self.client_id or params.get("CLIENT_SECRET") != self.client_secret:
                return 400, {"error": "invalid_client", "error_description": "Invalid client"}
            if params.get("GRANT_TYPE") != "refresh_token" or params.get("REFRESH_TOKEN") not in self.refresh_tokens:
                return 400, {"error": "invalid_grant", "error_description": "Invalid grant"}
            if self.rotate_refresh:
                self.refresh_tokens.discard(params["REFRESH_TOKEN"])
            access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
            self.access_tokens[access] = time.time() + self.token_ttl_s
            self.refresh_tokens.add(refresh)
            self.stats.refreshes += 1
        return 200, {"access_token": access, "client_endpoint": f"{self.url}/rest/", "domain": "oauth.bitrix.info",
                     "expires_in": int(self.token_ttl_s), "member_id": "a223c6b3710f85df22e9377d6c4f7553",
                     "refresh_token": refresh, "scope": "log,sonet_group,user,department",
                     "server_endpoint": f"{self.url}/oauth/", "status": "L"}

    # --- methods --------------------------------------------------------------------------------------
    def run(self, method: str, params: dict[str, Any], caller: int, t0: float) -> dict[str, Any]:
        """One method's whole answer (`result`, paging, `time`), or an `_Err`."""
        method = method.lower()
        with self._lock:
            if method == "batch":
                return self._batch(params, caller, t0)
            now = time.time()
            if self.operating.blocked(method, now):
                self.stats.operating_breaches += 1
                raise _Err(429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")
            body = self._method(method, params, caller)
            rows = body["result"]
            n = len(rows) if isinstance(rows, list | dict) else 1
            operating, reset_at = self.operating.add(method, now, self.limits.cost_s + self.limits.cost_per_row_s * n)
            self.stats.methods[method] += 1
        body["time"] = _timing(t0, operating, reset_at, self.data.offset_h)
        return body

    def _method(self, method: str, p: dict[str, Any], caller: int) -> dict[str, Any]:
        if method == "user.admin":
            return {"result": self.admin}
        if method == "user.get":
            return self._user_get(p)
        if method == "department.get":
            return self._departments(p)
        if method == "sonet_group.get":
            return self._groups(p, caller)
        if method == "sonet_group.user.get":
            members = self.data.members.get(_int(p.get("ID")), [])
            return {"result": [{"USER_ID": str(u), "ROLE": r} for u, r in members]}
        if method == "log.blogpost.get":
            return self._feed(p, caller)
        if method == "log.blogcomment.user.get":
            return self._comments(p, caller)
        if method == "log.blogpost.getusers.important":
            return self._readers(p)
        raise _Err(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")

    def _page(self, rows: list[Any], start: Any, *, total: int | None = None) -> dict[str, Any]:
        s = _int(start)
        count = s >= 0
        first = (max(s, 0) // PAGE) * PAGE
        chunk = rows[first:first + PAGE]
        body: dict[str, Any] = {"result": chunk}
        if len(rows) > first + PAGE:
            body["next"] = first + PAGE
        if count:
            body["total"] = self._total(len(rows) if total is None else total, len(chunk))
        return body

    def _total(self, true: int, page: int) -> int:
        if self.lying_total == "page":
            return page
        if self.lying_total == "random":
            return self._total_rng.randint(0, 2 * true + 1)
        return true

    def _user_get(self, p: dict[str, Any]) -> dict[str, Any]:
        flt: dict[str, Any] = p["FILTER"] if isinstance(p.get("FILTER"), dict) else {}
        rows = list(self.data.users)
        for key, value in flt.items():
            if key == ">ID":
                rows = [u for u in rows if int(u["ID"]) > _int(value)]
            elif key in ("ID", "USER_TYPE"):
                rows = [u for u in rows if str(u.get(key)) == str(value)]
            elif key == "ACTIVE" and _truthy(value):
                rows = [u for u in rows if u.get("ACTIVE")]
        desc = str(p.get("ORDER") or "ASC").upper() == "DESC"
        rows.sort(key=lambda u: int(u["ID"]), reverse=desc)
        return self._page(rows, p.get("START"))

    def _departments(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [d for d in self.data.departments
                if ("ID" not in p or d["ID"] == str(p["ID"])) and ("PARENT" not in p or d.get("PARENT") == str(p["PARENT"]))]
        return self._page(rows, p.get("START"))

    def _groups(self, p: dict[str, Any], caller: int) -> dict[str, Any]:
        rows = list(self.data.groups)
        if not (_truthy(p.get("IS_ADMIN")) and self.admin):
            mine = {g for g, ms in self.data.members.items() if any(u == caller for u, _ in ms)}
            rows = [g for g in rows if g["VISIBLE"] == "Y" or int(g["ID"]) in mine]
        order: dict[str, Any] = p["ORDER"] if isinstance(p.get("ORDER"), dict) else {"ID": "DESC"}
        desc = str(next(iter(order.values()), "DESC")).upper() == "DESC"
        rows.sort(key=lambda g: int(g["ID"]), reverse=desc)
        return self._page(rows, p.get("START"))

    def _visible_to(self, post: Post, caller: int) -> bool:
        if self.admin or "UA" in post.rights or f"U{caller}" in post.rights:
            return True
        groups = {f"SG{g}" for g, ms in self.data.members.items() if any(u == caller for u, _ in ms)}
        dept = next(iter((self._users.get(caller) or {}).get("UF_DEPARTMENT") or []), None)
        depts = {f"DR{d}" for d, subs in self.data.sub_departments.items() if dept == d or dept in subs}
        return bool(post.rights & (groups | depts))

    def _feed(self, p: dict[str, Any], caller: int) -> dict[str, Any]:
        now = self.now
        entries = [x for x in self.data.posts if x.created <= now and self._visible_to(x, caller)]
        post_id = _int(p.get("POST_ID"))
        rights = p.get("LOG_RIGHTS")
        if post_id > 0:
            entries = [x for x in entries if x.id == post_id]
        elif rights:
            codes = {rights} if isinstance(rights, str) else set(rights)
            entries = [x for x in entries if x.rights & codes]
        if self.supports_log_date:
            lower, upper = parse_datetime(p.get("LOG_DATE_FROM")), parse_datetime(p.get("LOG_DATE_TO"))
            if lower is not None:
                entries = [x for x in entries if x.created >= lower.timestamp()]
            if upper is not None:
                entries = [x for x in entries if x.created <= upper.timestamp()]
        entries.sort(key=lambda x: (max(x.log_update(now), self.touched.get(x.id, float("-inf"))), x.id), reverse=True)
        body = self._page(entries, p.get("START"))
        page: list[Post] = body["result"]
        rows = {str(i): x.render(now, self.data.offset_h, self.date_format) for i, x in enumerate(page) if not x.draft}
        body["result"] = rows if len(rows) < len(page) else list(rows.values())
        if self.churn and post_id <= 0 and self._churn_rng.random() < self.churn:
            first = (max(_int(p.get("START")), 0) // PAGE) * PAGE
            ahead = entries[first + PAGE:]
            if ahead:  # a post a forward scan has not reached yet gets an update and moves to the head
                self._tick += 1.0
                self.touched[ahead[self._churn_rng.randrange(len(ahead))].id] = now + self._tick
        return body

    def _comments(self, p: dict[str, Any], caller: int) -> dict[str, Any]:
        asked = _int(p.get("USER_ID"))
        uid = asked if asked > 0 and self.admin else caller
        limit = _int(p.get("LIMIT"), 100)
        limit = 100 if limit <= 0 else min(limit, 1000)
        mine = [c for x in self.data.posts if not x.draft and x.created <= self.now for c in x.comments
                if c.author == uid and c.created <= self.now]
        if "FIRST_ID" in p:  # the core sets no order with FIRST_ID: the table's own, ascending here
            sel = sorted((c for c in mine if c.log_id > _int(p["FIRST_ID"])), key=lambda c: c.log_id)[:limit]
        else:
            last = _int(p.get("LAST_ID"))
            sel = sorted((c for c in mine if last <= 0 or c.log_id < last), key=lambda c: -c.log_id)[:limit]
        parent = {x.id: x for x in self.data.posts}
        out = []
        for c in sorted(sel, key=lambda c: -c.comment_id):
            row: dict[str, Any] = {"id": c.log_id, "comment_id": c.comment_id}
            row[self.comment_parent_key] = c.post_id if self.comment_parent_key == "post_id" else parent[c.post_id].log_id
            row.update({"date": fmt_time(c.created, self.data.offset_h), "text": c.text if uid == caller else "",
                        "attach": []})
            out.append(row)
        return {"result": {"comments": out, "files": []}}

    def _readers(self, p: dict[str, Any]) -> dict[str, Any]:
        post_id = _int(p.get("POST_ID"))
        if post_id <= 0:
            raise _Err(400, "", "Wrong post ID")
        post = next((x for x in self.data.posts if x.id == post_id), None)
        if post is None or not post.important or post.draft or post.created > self.now:
            return {"result": []}
        ids = [str(u) for t, u in sorted(post.readers) if t <= self.now and (self._users.get(u) or {}).get("ACTIVE")]
        return {"result": ids[:500]}

    def _batch(self, p: dict[str, Any], caller: int, t0: float) -> dict[str, Any]:
        cmds = p.get("CMD")
        if isinstance(cmds, list):
            cmds = {str(i): c for i, c in enumerate(cmds)}
        if not isinstance(cmds, dict) or not cmds:
            raise _Err(400, "ERROR_BATCH_LENGTH_EXCEEDED" if cmds else "INVALID_REQUEST", "No commands")
        self.stats.batches += 1
        failing = self._rng.choice(list(cmds)) if self._batch_fault else None
        self._batch_fault = False
        result: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for n, (key, cmd) in enumerate(cmds.items()):
            if n >= 50:
                errors[key] = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
                continue
            method, _, query = str(cmd).partition("?")
            if method.lower() == "batch":
                errors[key] = {"error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
                               "error_description": "Method is not allowed for batch usage"}
                continue
            if key == failing:
                errors[key] = {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
                continue
            try:
                body = self.run(method, php_params(parse_qsl(query, keep_blank_values=True)), caller, time.time())
            except _Err as err:
                errors[key] = {"error": err.code, "error_description": err.description}
                continue
            result[key] = body["result"]
            times[key] = body["time"]
            if "total" in body:
                totals[key] = body["total"]
            if "next" in body:
                nexts[key] = body["next"]
        inner: dict[str, Any] = {"result": result or [], "result_error": errors or [], "result_total": totals or [],
                 "result_next": nexts or [], "result_time": times or []}
        return {"result": inner, "time": _timing(t0, None, None, self.data.offset_h)}

    _batch_fault = False


def _timing(t0: float, operating: float | None, reset_at: float | None, offset_h: int) -> dict[str, Any]:
    t1 = time.time()
    out: dict[str, Any] = {"start": t0, "finish": t1, "duration": t1 - t0, "processing": t1 - t0,
                           "date_start": fmt_time(t0, offset_h), "date_finish": fmt_time(t1, offset_h)}
    if operating is not None:
        out["operating_reset_at"] = int(reset_at) if reset_at is not None else None
        out["operating"] = operating
    return out


def _day_end(day: dt.date) -> float:
    return utc_midnight(day) + 86400 - 1e-3


def _handler(emu: Bitrix24Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _reply(self, status: int, body: Any, *, raw: bytes | None = None,
                   content_type: str = "application/json; charset=utf-8") -> None:
            self._send(status, raw if raw is not None else json.dumps(body).encode(), None, content_type)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._serve()

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self._serve()

        def _params(self) -> dict[str, Any]:
            parts = urlsplit(self.path)
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if raw and "json" in (self.headers.get("Content-Type") or ""):
                body = json.loads(raw)
                merged = php_params(pairs)
                merged.update({str(k).upper(): v for k, v in (body if isinstance(body, dict) else {}).items()})
                return merged
            return php_params(pairs + parse_qsl(raw.decode(), keep_blank_values=True))

        def _serve(self) -> None:
            try:
                self._route()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _route(self) -> None:
            t0 = time.time()
            path = urlsplit(self.path).path
            try:
                params = self._params()
            except ValueError:
                self._reply(400, {"error": "INVALID_REQUEST", "error_description": "Malformed request"})
                return
            if path.rstrip("/") == "/oauth/token":
                self._reply(*emu.token(params))
                return
            m = _REST.match(path)
            if m is None:
                self._reply(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})
                return
            user, code, method = m.group(1), m.group(2), m.group(3)
            token = None if user is not None else str(params.get("AUTH") or "")
            verdict = emu.admit(token, method.lower() == "batch")
            if verdict == "timeout":
                self._stall(emu.faults.timeout_delay_s)
                return
            if verdict in ("500", "limit_200", "limit"):
                status, err = {"500": (500, ("INTERNAL_SERVER_ERROR", "Internal server error")),
                               "limit_200": (200, ("QUERY_LIMIT_EXCEEDED", "Too many requests")),
                               "limit": (503, ("QUERY_LIMIT_EXCEEDED", "Too many requests"))}[verdict]
                self._reply(status, {"error": err[0], "error_description": err[1]})
                return
            if verdict == "502":
                self._reply(502, None, raw=b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
                return
            if verdict == "truncated":
                self._reply(200, None, raw=b'{"result":[{"ID":"21', content_type="application/json")
                return
            try:
                with emu._lock:
                    caller = emu.caller(user, code, token)
                    emu._batch_fault = verdict == "batch_item"
                    body = emu.run(method, params, caller, t0)
            except _Err as err:
                self._reply(err.status, {"error": err.code, "error_description": err.description})
                return
            self._reply(200, body)

    return Handler
