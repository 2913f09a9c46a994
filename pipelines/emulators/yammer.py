"""A local Viva Engage (Yammer) REST v1 emulator: a real HTTP server on 127.0.0.1 serving a demo network.

Endpoints (under `/api/v1`): `messages.json` (the All feed, newest first, `older_than` / `newer_than` /
`threaded=true` / `limit` capped at 20, with `references` for users, groups, threads (with their
Viva Engage `topics[]`), topics and replied-to messages, and `meta.older_available`), `messages/<id>.json`, `users.json?page=N` and
`groups.json?page=N` (50 per page), and `export?since=&until=` (the Data Export zip of CSVs, see
`yammer_network.export_zip`). Auth: `Authorization: Bearer <token>`, else 401 with the documented
`{"response":{"message":"Token not found.","code":16,"stat":"fail"}}`. Rate limits per the docs,
scaled by `period_s` (the docs' 10 s): messages 10 requests per 3 periods, everything else 10 per
period; over the limit: 429 with `Retry-After` (its presence is unverified for the real API, the
connector copes either way). A fault rate injects 429s, 500/503s, timeouts and truncated bodies. The
data clock (`advance_to`) decides what exists; `add_like` adds a like at a given time (a late like). A
thread reference's `stats.updates` counts the thread's messages that exist at the clock (the starter
included). `withhold_replies` (a share, 0 by default) leaves that share of the replies out of the feeds,
chosen by id (the same ones on every call), while `stats.updates` still counts them: what a network shows
when replies are in places the token cannot read, which the connector's completeness tally must catch.
Never bind to anything but 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
from pipelines.emulators.yammer_network import TOPICS, Network, YMessage, build_network, export_zip
from pipelines.sources.demo_org import DemoOrg

FAULT_KINDS = ("429", "500", "503", "timeout", "truncated")
_TOPIC_NAMES = {tid: name for tid, name in TOPICS.values()}
PAGE_MAX = 20  # the messages API gives at most 20 messages per call
DIRECTORY_PAGE = 50


@dataclass
class Faults(FaultPlan):
    kinds: tuple[str, ...] = FAULT_KINDS


@dataclass
class ServerStats:
    requests: Counter = field(default_factory=Counter)
    rate_limited: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)


class _NotFound(Exception):
    pass


def endpoint_of(path: str) -> str:
    """The rate-limit family of a request path: `messages` (every messages feed) or the resource."""
    tail = path.split("/api/v1/", 1)[-1]
    if tail.startswith("messages"):
        return "messages"
    return tail.split("/", 1)[0].removesuffix(".json") or "root"


class YammerEmulator(LoopbackServer):
    url_path = "/api/v1"
    thread_name = "yammer-emulator"

    def __init__(self, org: DemoOrg, *, token: str = "yammer-emulator", period_s: float = 10.0,
                 faults: Faults | None = None, enforce_limits: bool = True, network: Network | None = None,
                 port: int = 0, withhold_replies: float = 0.0):
        if not 0.0 <= withhold_replies <= 1.0:
            raise ValueError(f"withhold_replies is a share (got {withhold_replies})")
        self.net = network or build_network(org)
        self.withhold_replies = withhold_replies
        self._threads: dict[int, list[YMessage]] = {}
        for m in self.net.messages:
            self._threads.setdefault(m.thread_id, []).append(m)
        self.users = self.net.users_by_id
        self.token = token
        self.period_s = period_s
        self.enforce_limits = enforce_limits
        self.faults = faults or Faults()
        self.stats = ServerStats()
        # documented: messages 10 per 30 s, everything else 10 per 10 s (period_s stands for 10 s)
        self._windows = RateLimits(10, period_s, {"messages": SlidingWindow(10, 3 * period_s)})
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self.now = _day_end(self.net.end)
        self._listen(_handler(self), port)

    def advance_to(self, day: dt.date) -> None:
        """Everything up to the end of `day` (UTC) exists; nothing later does."""
        with self._lock:
            self.now = _day_end(day)

    def admission(self, family: str) -> tuple[str, Any] | None:
        with self._lock:
            self.stats.requests[family] += 1
            wait = self._windows.admit(family, time.monotonic()) if self.enforce_limits else None
            if wait is not None:
                self.stats.rate_limited[family] += 1
                return ("ratelimited", wait)
            kind = draw_fault(self._rng, self.faults, self.stats.faults)
        return None if kind is None else (kind, None)

    def add_like(self, message_id: int, at: float, user: int) -> None:
        """`user` likes the message at epoch `at` (visible once the clock reaches it)."""
        with self._lock:
            self.net.by_id[message_id].likes.append((at, user))

    def withheld(self, m: YMessage) -> bool:
        """Whether the feeds leave this reply out (`withhold_replies`)."""
        return (bool(self.withhold_replies) and m.replied_to is not None
                and zlib.crc32(str(m.id).encode()) % 10_000 < self.withhold_replies * 10_000)

    def thread_updates(self, starter: YMessage, now: float) -> int:
        """`stats.updates` of a thread at `now`: its messages that exist, the starter included."""
        return sum(1 for m in self._threads.get(starter.id, [starter]) if m.exists(now))

    # --- ground truth for tests -------------------------------------------------------------------
    def visible_messages(self, until: dt.date) -> list[YMessage]:
        limit = _day_end(until)
        return [m for m in self.net.messages if m.exists(self.now) and m.created < limit]

    # --- endpoints --------------------------------------------------------------------------------
    def messages(self, params: dict[str, str]) -> dict[str, Any]:
        now = self.now
        older = int(params["older_than"]) if params.get("older_than") else None
        newer = int(params["newer_than"]) if params.get("newer_than") else None
        limit = max(1, min(int(params.get("limit") or PAGE_MAX), PAGE_MAX))
        threaded = params.get("threaded") in ("true", "extended")
        shown: list[YMessage] = []
        more = False
        for m in reversed(self.net.messages):  # newest first, by id
            if older is not None and m.id >= older:
                continue
            if newer is not None and m.id <= newer:
                break
            if not m.exists(now) or (threaded and m.replied_to is not None) or self.withheld(m):
                continue
            if len(shown) == limit:
                more = True
                break
            shown.append(m)
        refs: dict[tuple[str, int], dict[str, Any]] = {}
        for m in shown:
            for uid in [m.sender, *m.notified, *(u for at, u in m.likes if at <= now)]:
                u = self.users.get(uid)
                if u is not None:
                    refs[("user", uid)] = {"type": "user", "id": uid, "full_name": u["full_name"], "name": u["name"],
                                           "state": u["state"], "url": u["url"]}
            starter = m.thread or m
            refs[("thread", starter.id)] = {
                "type": "thread", "id": starter.id, "thread_starter_id": starter.id,
                "best_reply_id": starter.best_reply_id(now),  # unverified field name (see module doc)
                "stats": {"updates": self.thread_updates(starter, now)},
                "privacy": "private" if starter.private else "public",
                "topics": [{"type": "topic", "id": tid} for tid in starter.topics]}
            for tid in starter.topics:
                name = _TOPIC_NAMES[tid]
                refs[("topic", tid)] = {"type": "topic", "id": tid, "name": name, "normalized_name": name.lower(),
                                        "permalink": name.lower().replace(" ", "-"),
                                        "url": f"https://www.yammer.com/api/v1/topics/{tid}",
                                        "web_url": f"https://www.yammer.com/demo-corp.example/topics/{tid}"}
            if m.replied_to is not None and m.replied_to.exists(now):
                p = m.replied_to
                refs[("message", p.id)] = {"type": "message", "id": p.id, "sender_id": p.sender,
                                           "sender_type": "user", "thread_id": p.thread_id,
                                           "replied_to_id": p.replied_to.id if p.replied_to else None}
        return {"messages": [m.render(now, self.users) for m in shown], "references": list(refs.values()),
                "threaded_extended": {},
                "meta": {"older_available": more, "requested_poll_interval": 60, "feed_name": "All",
                         "current_user_id": self.net.users[0]["id"], "last_seen_message_id": None}}

    def message(self, mid: int) -> dict[str, Any]:
        m = self.net.by_id.get(mid)
        if m is None or not m.exists(self.now):
            raise _NotFound
        return m.render(self.now, self.users)

    def directory(self, items: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
        page = max(1, int(params.get("page") or 1))
        return [{k: v for k, v in i.items() if not k.startswith("_")}
                for i in items[(page - 1) * DIRECTORY_PAGE: page * DIRECTORY_PAGE]]

    def export(self, params: dict[str, str]) -> bytes:
        since = _parse_bound(params.get("since"), 0.0)
        until = _parse_bound(params.get("until"), self.now + 1)
        return export_zip(self.net, since, min(until, self.now + 1), self.now)


def _parse_bound(value: str | None, default: float) -> float:
    if not value:
        return default
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _day_end(day: dt.date) -> float:
    return utc_midnight(day) + 86400 - 1e-6


_MESSAGE_ID = re.compile(r"^messages/(\d+)\.json$")


def _handler(emu: YammerEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query))
            tail = parts.path.split("/api/v1/", 1)[-1]
            try:
                verdict = emu.admission(endpoint_of(parts.path))
                if verdict is not None:
                    self._fault(*verdict)
                    return
                if self.headers.get("Authorization") != f"Bearer {emu.token}":
                    self._send(401, json.dumps({"response": {"message": "Token not found.", "code": 16,
                                                             "stat": "fail"}}).encode())
                    return
                with emu._lock:
                    try:
                        if tail == "messages.json":
                            body: Any = emu.messages(params)
                        elif (m := _MESSAGE_ID.match(tail)) is not None:
                            body = emu.message(int(m.group(1)))
                        elif tail == "users.json":
                            body = emu.directory(emu.net.users, params)
                        elif tail == "groups.json":
                            body = emu.directory(emu.net.groups, params)
                        elif tail in ("export", "export.json"):
                            data = emu.export(params)
                            self._send(200, data, content_type="application/zip")
                            return
                        else:
                            raise _NotFound
                    except _NotFound:
                        self._send(404, b'{"response":{"message":"Not found","stat":"fail"}}')
                        return
                self._send(200, json.dumps(body).encode())
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _fault(self, kind: str, detail: Any) -> None:
            f = emu.faults
            if kind == "ratelimited":
                self._send(429, b'{"response":{"message":"Rate limited","stat":"fail"}}',
                           {"Retry-After": f"{max(float(detail), 0.001):.3f}"})
            elif kind == "429":
                self._send(429, b'{"response":{"message":"Rate limited","stat":"fail"}}',
                           {"Retry-After": f"{f.retry_after_s:g}"})
            elif kind in ("500", "503"):
                self._send(int(kind), b"<html><body>Service Unavailable</body></html>", content_type="text/html")
            elif kind == "timeout":
                self._stall(f.timeout_delay_s)
            elif kind == "truncated":
                self._send(200, b'{"messages":[{"id":2000337749565441,"sender_id":')

    return Handler


def serve(org: DemoOrg, port: int = 0, **options: Any) -> tuple[str, Callable[[], None]]:
    """Start an emulator in a background thread; returns (base url, stop)."""
    faults = pop_faults(options, Faults)
    emu = YammerEmulator(org, port=port, faults=faults, **options).start()
    return emu.url, emu.stop
