"""Request budgets: a token bucket per API method, safe to share between threads.

Platforms limit requests per method (Slack: tiers per method, per workspace, per app). One `Budget`
per workspace/token holds a bucket per method; every thread of a run that calls that workspace must use
the same `Budget`, so the sum of their requests stays within the limit. Across processes nothing is
shared: in Airflow, bound the number of parallel extraction tasks per workspace with a pool of size 1
(`pool="slack_<workspace>"`), otherwise two tasks each spending a full budget will double the rate.

A 429 pauses the whole bucket (`pause`), not just the thread that received it, because the server's
`Retry-After` applies to the app, not to a connection. This module never sleeps while holding its lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class BucketStats:
    requests: int = 0
    waited_s: float = 0.0
    paused: int = 0
    first_at: float | None = None
    last_at: float | None = None

    def achieved_per_s(self) -> float:
        """Observed request rate between the first and the last request (0 with fewer than 2)."""
        if self.requests < 2 or self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.requests - 1) / (self.last_at - self.first_at)


class TokenBucket:
    """`rate` tokens per second, at most `capacity` stored. `acquire` blocks until a token is available.

    A capacity of 1 spreads requests evenly; a larger capacity allows bursts that the platform may
    or may not tolerate, so the connectors default to 1."""

    def __init__(self, rate: float, capacity: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError(f"rate must be positive (got {rate})")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 (got {capacity})")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = capacity
        self._stamp = clock()
        self._paused_until = 0.0
        self.stats = BucketStats()

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    wait = self._paused_until - now
                else:
                    self._refill(now)
                    # tolerance: float sums of tiny refills must not leave us a hair short forever
                    if self._tokens >= 1.0 - 1e-9:
                        self._tokens = max(0.0, self._tokens - 1.0)
                        st = self.stats
                        st.requests += 1
                        st.waited_s += waited
                        st.first_at = now if st.first_at is None else st.first_at
                        st.last_at = now
                        return waited
                    wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Nobody takes a token for `seconds` (the server said Retry-After); the bucket restarts empty
        so the first request after the pause is not followed by a burst."""
        with self._lock:
            now = self._clock()
            self._paused_until = max(self._paused_until, now + max(seconds, 0.0))
            self._tokens = 0.0
            self._stamp = self._paused_until
            self.stats.paused += 1


@dataclass
class Budget:
    """Buckets per method. `limits` maps a method to its allowed requests per `period_s` seconds;
    methods not listed use `default_limit`. `safety` keeps the client a little under the limit because
    client and server clocks never agree exactly."""

    limits: dict[str, float] = field(default_factory=dict)
    default_limit: float = 20.0
    period_s: float = 60.0
    safety: float = 0.95
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _buckets: dict[str, TokenBucket] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def allowed_per_s(self, method: str) -> float:
        return self.limits.get(method, self.default_limit) / self.period_s

    def bucket(self, method: str) -> TokenBucket:
        with self._lock:
            b = self._buckets.get(method)
            if b is None:
                b = self._buckets[method] = TokenBucket(self.allowed_per_s(method) * self.safety,
                                                        clock=self.clock, sleep=self.sleep)
            return b

    def acquire(self, method: str) -> float:
        return self.bucket(method).acquire()

    def pause(self, method: str, seconds: float) -> None:
        self.bucket(method).pause(seconds)

    def usage(self) -> dict[str, dict[str, float]]:
        """Per method: requests, achieved rate, allowed rate and their ratio (for reports and benches)."""
        out = {}
        with self._lock:
            items = list(self._buckets.items())
        for method, b in items:
            allowed = self.allowed_per_s(method)
            achieved = b.stats.achieved_per_s()
            out[method] = {"requests": b.stats.requests, "achieved_per_s": achieved, "allowed_per_s": allowed,
                           "utilisation": achieved / allowed if allowed else 0.0,
                           "waited_s": b.stats.waited_s, "pauses": b.stats.paused}
        return out
