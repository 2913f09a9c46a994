"""What the local vendor API emulators share: the loopback HTTP server's lifecycle, the quiet keep-alive
request handler, the sliding-window rate limiter and the seeded fault draw.

`LoopbackServer` owns a `ThreadingHTTPServer` on 127.0.0.1 (daemon threads), its serving thread, `root` /
`url`, `start` / `stop` and the context-manager protocol; `QuietHandler` is the handler base (HTTP/1.1
keep-alive, TCP_NODELAY, no request logging, `_send`, `_stall`); `SlidingWindow` / `RateLimits` are "N
requests per period" limits; `FaultPlan` / `draw_fault` / `pop_faults` are the fault-injection settings and
the per-request decision. Everything vendor-specific (paths, shapes, error bodies, which faults exist,
the limits themselves) stays in the vendor's module.

This module must never bind to anything but 127.0.0.1, never hold vendor behaviour, and never draw from a
fault stream other than the emulator's own seeded `random.Random` (the draw order is what makes a seeded
run reproducible).
"""

from __future__ import annotations

import datetime as dt
import random
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Protocol, Self, TypeVar

LOOPBACK = "127.0.0.1"


# --- server lifecycle -------------------------------------------------------------------------------
class LoopbackServer:
    """A real HTTP server on 127.0.0.1 served from a daemon thread. Subclasses call `_listen` in their
    `__init__` and set `url_path` (appended to `root` to make `url`) and `thread_name`."""

    url_path: ClassVar[str] = ""
    thread_name: ClassVar[str] = "emulator"
    _server: ThreadingHTTPServer
    _thread: threading.Thread | None

    def _listen(self, handler: type[BaseHTTPRequestHandler], port: int) -> None:
        self._server = ThreadingHTTPServer((LOOPBACK, port), handler)
        self._server.daemon_threads = True
        self._thread = None

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.root}{self.url_path}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class QuietHandler(BaseHTTPRequestHandler):
    """Request handler base: keep-alive, no Nagle delay, no request log."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without NODELAY, Nagle + delayed ACK add 40 ms each
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: request lines carry ids, and tokens in some clients' query strings

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _stall(self, delay_s: float) -> None:
        """The `timeout` fault: no answer for `delay_s`, then the connection is dropped."""
        time.sleep(delay_s)
        self.close_connection = True


def utc_midnight(day: dt.date) -> float:
    """Epoch seconds of the start of `day` (UTC); each emulator defines its own end of day from it."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


# --- rate limits ------------------------------------------------------------------------------------
class SlidingWindow:
    """At most `limit` requests in any `period` seconds (a sliding window, as 'N per minute' means)."""

    def __init__(self, limit: float, period: float):
        self.limit = max(1, int(limit))
        self.period = period
        self.times: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """None when admitted, else the seconds until a slot frees."""
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return self.times[0] + self.period - now
        self.times.append(now)
        return None


class RateLimits:
    """One `SlidingWindow` per key (a method, an endpoint family); a key without a preset window gets
    one of `default_limit` per `period` on first use."""

    def __init__(self, default_limit: float, period: float, windows: dict[str, SlidingWindow] | None = None):
        self.default_limit = default_limit
        self.period = period
        self.windows = dict(windows or {})

    def admit(self, key: str, now: float) -> float | None:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = SlidingWindow(self.default_limit, self.period)
        return window.admit(now)


# --- fault injection --------------------------------------------------------------------------------
class FaultSettings(Protocol):
    """What every emulator's `Faults` has: the share of requests faulted, the kinds to choose from, how
    long a `timeout` stalls, and the seed of the fault stream."""

    rate: float
    kinds: tuple[str, ...]
    timeout_delay_s: float
    seed: int


@dataclass
class FaultPlan:
    """Fault settings of an API that throttles with 429 + Retry-After; a vendor subclasses it as `Faults`
    with its own default `kinds`."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    retry_after_s: float = 0.05
    timeout_delay_s: float = 0.6  # longer than the client's timeout in tests
    seed: int = 0


def draw_fault(rng: random.Random, faults: FaultSettings, tally: Counter) -> str | None:
    """One request's fault decision from the emulator's seeded stream: None, or the kind injected (counted
    in `tally`). The caller holds the emulator's lock."""
    if faults.rate and rng.random() < faults.rate:
        kind = rng.choice(faults.kinds)
        tally[kind] += 1
        return kind
    return None


F = TypeVar("F")


def pop_faults(options: dict[str, Any], cls: type[F]) -> F | None:
    """The `faults` option of `serve(...)`, given as a `Faults` or as a dict of its fields."""
    faults = options.pop("faults", None)
    if isinstance(faults, dict):
        faults = cls(**faults)
    return faults
