"""A local Slack Web API emulator: a real HTTP server on 127.0.0.1 serving a demo organisation.

Methods: auth.test, users.list, conversations.list / members / history / replies / join, in the shapes
of docs.slack.dev and the fixtures of `API_FORMATS.md` section 1: `ok` envelope, auth errors as HTTP 200
+ `ok:false`, `missing_scope` with `needed`, cursor pagination ending in each of Slack's three forms
(users.list and replies: `next_cursor: ""`; conversations.list: no `response_metadata`; history:
`has_more: false`), history newest first, the replies' parent first. Rate limits per method (tiers,
`period_s` seconds instead of a minute so tests run fast) answer 429 with `Retry-After` (alternating
header case). A fault rate injects 429s, 500/503s, timeouts (no answer), truncated bodies and
`ok:false` transient codes, before any state change. The data clock (`set_clock`, `advance_to`) decides
which messages, replies, reactions, edits and deletions exist; `add_reply` posts a reply to an existing
thread at a given time (a late reply). `withhold_replies` (a share, 0 by default) makes
`conversations.replies` leave out that share of every thread's replies, chosen by their ts (the same ones
on every call), while the parent's `reply_count` still counts them: what a workspace shows when replies
are hidden from the app (limited-access channels, replies from a disconnected Slack Connect org), which
the connector's completeness tally must catch. Never bind to anything but 127.0.0.1.

Use: `with SlackEmulator(org, token="xoxb-test") as emu: ... emu.url` or `url, stop = serve(org)`.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipelines.connectors.slack_api import METHOD_TIER, TIER_PER_MINUTE
from pipelines.emulators.base import (
    FaultPlan,
    LoopbackServer,
    QuietHandler,
    RateLimits,
    SlidingWindow,
    draw_fault,
    pop_faults,
    utc_midnight,
)
from pipelines.emulators.slack_workspace import Channel, Message, Workspace, build_workspace, micros
from pipelines.sources.demo_org import DemoOrg

DEFAULT_SCOPES = frozenset({"channels:read", "groups:read", "channels:history", "groups:history", "users:read",
                            "users:read.email", "channels:join"})
FAULT_KINDS = ("429", "500", "503", "timeout", "truncated", "ok_false")


@dataclass
class Faults(FaultPlan):
    kinds: tuple[str, ...] = FAULT_KINDS


@dataclass
class ServerStats:
    requests: Counter = field(default_factory=Counter)  # method -> requests received
    rate_limited: Counter = field(default_factory=Counter)  # method -> real 429s (over the limit)
    faults: Counter = field(default_factory=Counter)  # kind -> injected faults
    first_at: dict[str, float] = field(default_factory=dict)
    last_at: dict[str, float] = field(default_factory=dict)


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.b64decode(cursor.encode()).decode().partition(":")
        if kind != "offset":
            raise ValueError
        return int(value)
    except ValueError as exc:
        raise _SlackError("invalid_cursor") from exc


class _SlackError(Exception):
    def __init__(self, code: str, **extra: Any):
        super().__init__(code)
        self.code = code
        self.extra = extra


class SlackEmulator(LoopbackServer):
    url_path = "/api"
    thread_name = "slack-emulator"

    def __init__(self, org: DemoOrg, *, token: str = "xoxb-emulator", scopes: frozenset[str] = DEFAULT_SCOPES,
                 per_minute: dict[str, float] | None = None, period_s: float = 60.0, faults: Faults | None = None,
                 enforce_limits: bool = True, workspace: Workspace | None = None, port: int = 0,
                 monotonic: Callable[[], float] = time.monotonic, withhold_replies: float = 0.0):
        if not 0.0 <= withhold_replies <= 1.0:
            raise ValueError(f"withhold_replies is a share (got {withhold_replies})")
        self.ws = workspace or build_workspace(org)
        self.withhold_replies = withhold_replies
        self.token = token
        self.scopes = scopes
        limits = {m: TIER_PER_MINUTE[t] for m, t in METHOD_TIER.items()}
        limits.update(per_minute or {})
        self.limits = limits
        self.period_s = period_s
        self.enforce_limits = enforce_limits
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self._monotonic = monotonic
        self._windows = RateLimits(20, period_s, {m: SlidingWindow(v, period_s) for m, v in limits.items()})
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._header_flip = False
        self.now = float(_day_end(self.ws.end))
        self._listen(_handler(self), port)

    # --- data clock -------------------------------------------------------------------------------
    def set_clock(self, epoch_s: float) -> None:
        with self._lock:
            self.now = epoch_s

    def advance_to(self, day: dt.date) -> None:
        """Everything that happened up to the end of `day` (UTC) exists; nothing later does."""
        self.set_clock(float(_day_end(day)))

    def add_reply(self, channel: str, parent_ts: str, at: float, user: str) -> str:
        """Post a reply by `user` to the thread of `parent_ts` at epoch `at` (visible once the clock
        reaches it); returns its ts."""
        with self._lock:
            root = self.ws.by_ts[(channel, parent_ts)]
            ts = f"{int(at)}.{len(self.ws.by_ts) % 1_000_000:06d}"
            m = Message(channel, ts, user, "a late answer", thread_ts=root.ts, parent_user=root.user)
            root.thread_ts = root.ts
            root.replies.append(m)
            root.replies.sort(key=lambda x: micros(x.ts))
            self.ws.by_ts[(channel, ts)] = m
            return ts

    def withheld(self, ts: str) -> bool:
        """Whether `conversations.replies` leaves this reply out (`withhold_replies`)."""
        return bool(self.withhold_replies) and zlib.crc32(ts.encode()) % 10_000 < self.withhold_replies * 10_000

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = ServerStats()

    # --- request handling -------------------------------------------------------------------------
    def admission(self, method: str) -> tuple[str, Any] | None:
        """Rate limit and fault decision for one request: None to serve it, else (kind, detail)."""
        with self._lock:
            t = self._monotonic()
            st = self.stats
            st.requests[method] += 1
            st.first_at.setdefault(method, t)
            st.last_at[method] = t
            wait = self._windows.admit(method, t) if self.enforce_limits else None
            if wait is not None:
                st.rate_limited[method] += 1
                return ("ratelimited", wait)
            kind = draw_fault(self._rng, self.faults, st.faults)
        return None if kind is None else (kind, None)

    def retry_after_header(self) -> str:
        self._header_flip = not self._header_flip
        return "Retry-After" if self._header_flip else "retry-after"

    def dispatch(self, method: str, params: dict[str, str], auth: str | None) -> dict[str, Any]:
        if not auth:
            raise _SlackError("not_authed")
        if auth != f"Bearer {self.token}":
            raise _SlackError("invalid_auth")
        handler = _METHODS.get(method)
        if handler is None:
            raise _SlackError("unknown_method")
        with self._lock:
            now = self.now
        return handler(self, params, now)

    def need(self, scope: str) -> None:
        if scope not in self.scopes:
            raise _SlackError("missing_scope", needed=scope, provided=",".join(sorted(self.scopes)))

    def channel(self, params: dict[str, str]) -> Channel:
        ch = self.ws.channels.get(params.get("channel", ""))
        if ch is None or (ch.is_private and not ch.bot_is_member):
            raise _SlackError("channel_not_found")
        return ch

    # --- ground truth for tests -------------------------------------------------------------------
    def visible_messages(self, until: dt.date) -> list[dict[str, Any]]:
        """Every message (top-level, replies) rendered at the current clock with ts before the end of
        `until`, each once, with its channel: what a perfect extraction would land."""
        limit = _day_end(until) * 1_000_000
        out = {}
        for ch in self.ws.channels.values():
            for m in ch.messages:
                r = m.render(self.now)
                if r is not None and micros(m.ts) < limit:
                    out[(ch.id, m.ts)] = {**r, "channel": ch.id}
                for rep in (m.visible_replies(self.now) if not m.is_reply() else []):
                    rr = rep.render(self.now)
                    if rr is not None and micros(rep.ts) < limit:
                        out[(ch.id, rep.ts)] = {**rr, "channel": ch.id}
        return list(out.values())


def _day_end(day: dt.date) -> int:
    return int(utc_midnight(day)) + 86400


def _page(items: list[Any], params: dict[str, str], default_limit: int, max_limit: int) -> tuple[list[Any], int | None]:
    offset = _offset(params.get("cursor"))
    try:
        limit = int(params.get("limit") or default_limit)
    except ValueError as exc:
        raise _SlackError("invalid_arguments") from exc
    limit = max(1, min(limit, max_limit))
    chunk = items[offset:offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return chunk, nxt


def _users_list(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    emu.need("users:read")
    today = dt.datetime.fromtimestamp(now, tz=dt.UTC).date().isoformat()
    members = []
    for u in emu.ws.users:
        v = {k: val for k, val in u.items() if not k.startswith("_")}
        v["profile"] = dict(v["profile"])
        if u["_terminated"] and u["_terminated"] <= today:
            v["deleted"] = True
        if "users:read.email" not in emu.scopes:
            v["profile"].pop("email", None)
        members.append(v)
    chunk, nxt = _page(members, params, 100, 1000)
    return {"ok": True, "members": chunk, "cache_ts": int(now),
            "response_metadata": {"next_cursor": _cursor(nxt) if nxt is not None else ""}}


def _conversations_list(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    emu.need("channels:read")
    types = set((params.get("types") or "public_channel").split(","))
    if "private_channel" in types:
        emu.need("groups:read")
    chans = []
    for ch in emu.ws.channels.values():
        if ch.is_private and ("private_channel" not in types or not ch.bot_is_member):
            continue
        if not ch.is_private and "public_channel" not in types:
            continue
        chans.append({"id": ch.id, "name": ch.name, "is_channel": not ch.is_private, "is_group": ch.is_private,
                      "is_private": ch.is_private, "is_archived": False, "is_member": ch.bot_is_member,
                      "created": ch.created, "creator": ch.members[0] if ch.members else "",
                      "num_members": len(ch.members),
                      "topic": {"value": "", "creator": "", "last_set": 0},
                      "purpose": {"value": "", "creator": "", "last_set": 0}})
    chunk, nxt = _page(chans, params, 100, 1000)
    out: dict[str, Any] = {"ok": True, "channels": chunk}
    if nxt is not None:  # the last page has no response_metadata at all
        out["response_metadata"] = {"next_cursor": _cursor(nxt)}
    return out


def _conversations_members(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    ch = emu.channel(params)
    chunk, nxt = _page(ch.members, params, 100, 1000)
    return {"ok": True, "members": chunk, "response_metadata": {"next_cursor": _cursor(nxt) if nxt else ""}}


def _bound(value: str | None, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return micros(value if "." in value else value + ".000000")
    except ValueError as exc:
        raise _SlackError("invalid_ts_latest") from exc


def _conversations_history(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    ch = emu.channel(params)
    if not ch.bot_is_member:
        raise _SlackError("not_in_channel")
    inclusive = params.get("inclusive") in ("true", "1")
    oldest = _bound(params.get("oldest"), 0)
    latest = _bound(params.get("latest"), int(now * 1_000_000) + 1)
    lo = bisect.bisect_left(ch.keys, oldest) if inclusive else bisect.bisect_right(ch.keys, oldest)
    hi = bisect.bisect_right(ch.keys, latest) if inclusive else bisect.bisect_left(ch.keys, latest)
    shown = [r for r in (m.render(now) for m in reversed(ch.messages[lo:hi])) if r is not None]
    chunk, nxt = _page(shown, params, 100, 999)
    out: dict[str, Any] = {"ok": True, "messages": chunk, "has_more": nxt is not None, "pin_count": 0}
    if nxt is not None:
        out["response_metadata"] = {"next_cursor": _cursor(nxt)}
    return out


def _conversations_replies(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    ch = emu.channel(params)
    if not ch.bot_is_member:
        raise _SlackError("not_in_channel")
    parent = emu.ws.by_ts.get((ch.id, params.get("ts", "")))
    if parent is None or parent.is_reply():
        raise _SlackError("thread_not_found")
    rendered = parent.render(now)
    if rendered is None:
        raise _SlackError("thread_not_found")
    replies = [r for r in (x.render(now) for x in parent.visible_replies(now) if not emu.withheld(x.ts))
               if r is not None]
    chunk, nxt = _page(replies, params, 1000, 1000)
    return {"ok": True, "messages": [rendered, *chunk], "has_more": nxt is not None,
            "response_metadata": {"next_cursor": _cursor(nxt) if nxt is not None else ""}}


def _conversations_join(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    emu.need("channels:join")
    ch = emu.channel(params)
    if ch.is_private:
        raise _SlackError("method_not_supported_for_channel_type")
    out: dict[str, Any] = {"ok": True, "channel": {"id": ch.id, "name": ch.name, "is_member": True}}
    if ch.bot_is_member:
        out["warning"] = "already_in_channel"
        out["response_metadata"] = {"warnings": ["already_in_channel"]}
    ch.bot_is_member = True
    return out


def _auth_test(emu: SlackEmulator, params: dict[str, str], now: float) -> dict[str, Any]:
    return {"ok": True, "url": "https://emulated.slack.example/", "team": "Emulated", "user": "esn-bot",
            "team_id": "T0EMULATE", "user_id": "UBOT0EMUL"}


_METHODS: dict[str, Callable[[SlackEmulator, dict[str, str], float], dict[str, Any]]] = {
    "users.list": _users_list, "conversations.list": _conversations_list,
    "conversations.members": _conversations_members, "conversations.history": _conversations_history,
    "conversations.replies": _conversations_replies, "conversations.join": _conversations_join,
    "auth.test": _auth_test,
}


def _handler(emu: SlackEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._serve(dict(parse_qsl(urlsplit(self.path).query)))

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(urlsplit(self.path).query))
            if raw.lstrip().startswith("{"):
                params.update({k: str(v) for k, v in json.loads(raw).items()})
            else:
                params.update(dict(parse_qsl(raw)))
            self._serve(params)

        def _serve(self, params: dict[str, str]) -> None:
            method = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1]
            try:
                verdict = emu.admission(method)
                if verdict is not None:
                    self._fault(*verdict)
                    return
                try:
                    body = emu.dispatch(method, params, self.headers.get("Authorization"))
                except _SlackError as err:
                    body = {"ok": False, "error": err.code, **err.extra}
                self._send(200, json.dumps(body).encode())
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _fault(self, kind: str, detail: Any) -> None:
            f = emu.faults
            if kind == "ratelimited":
                wait = max(float(detail), 0.001)
                value = f"{wait:.3f}" if emu.period_s < 60 else str(int(wait) + 1)
                self._send(429, b'{"ok":false,"error":"ratelimited"}', {emu.retry_after_header(): value})
            elif kind == "429":
                self._send(429, b'{"ok":false,"error":"ratelimited"}',
                           {emu.retry_after_header(): f"{f.retry_after_s:g}"})
            elif kind in ("500", "503"):
                self._send(int(kind), b"<html><body>Service Unavailable</body></html>", content_type="text/html")
            elif kind == "timeout":
                self._stall(f.timeout_delay_s)
            elif kind == "truncated":
                self._send(200, b'{"ok":true,"messages":[{"type":"message","te')
            elif kind == "ok_false":
                self._send(200, b'{"ok":false,"error":"service_unavailable"}')

    return Handler


def serve(org: DemoOrg, port: int = 0, **options: Any) -> tuple[str, Callable[[], None]]:
    """Start an emulator in a background thread; returns (base url, stop). Options: token, scopes,
    per_minute, period_s, faults (a `Faults` or a dict), enforce_limits."""
    faults = pop_faults(options, Faults)
    emu = SlackEmulator(org, port=port, faults=faults, **options).start()
    return emu.url, emu.stop
