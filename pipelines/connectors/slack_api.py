"""Slack Web API transport: the `ok` envelope, error classification, cursor pagination, rate tiers.

Built on `pipelines.connectors.http`. `ok:false` is always an error (never an empty page): auth codes
and `missing_scope` are fatal and say which token or scope to fix; `ratelimited` and the documented
server-side codes are retried; anything else is an `ApiError` carrying the code so that the caller can
handle the expected ones (`not_in_channel`). Warnings (`warning`, `response_metadata.warnings`) are
kept for the report, never raised. The end of pages is recognised in all three forms Slack uses: an
empty `next_cursor`, no `response_metadata` at all, and `has_more: false`. A replayed page (its next
cursor already seen) is dropped and asked again (`PageReplays`), never yielded twice. This module knows nothing
of people or privacy: it returns Slack's objects to `pipelines.sources.slack`, which minimises them
before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipelines.connectors.budget import Budget
from pipelines.connectors.errors import (
    ApiError,
    AuthError,
    InvalidBodyError,
    MissingScopeError,
    RateLimitedError,
    ServerError,
)
from pipelines.connectors.http import HttpClient, PageReplays, RetryPolicy

DEFAULT_BASE_URL = "https://slack.com/api"

#: documented tier of each method we call (docs.slack.dev via slack-ruby/slack-api-ref)
METHOD_TIER: dict[str, int] = {
    "users.list": 2, "conversations.list": 2, "conversations.members": 4, "conversations.history": 3,
    "conversations.replies": 3, "conversations.join": 3, "conversations.info": 3, "auth.test": 4,
}
#: requests per minute of each tier (the documented lower bounds: "20+", "50+", "100+")
TIER_PER_MINUTE: dict[int, float] = {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0}

AUTH_CODES = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                        "not_allowed_token_type", "no_permission", "ekm_access_denied", "team_access_not_granted"})
RETRYABLE_CODES = frozenset({"ratelimited", "fatal_error", "service_unavailable", "request_timeout",
                             "internal_error"})
MAX_PAGES = 1_000_000  # requests of one paging loop, replays included: never loop forever


def method_limits(per_minute_overrides: Mapping[str, float] | None = None, *,
                  strict_per_minute: float | None = None) -> dict[str, float]:
    """Requests per minute per method: the tier defaults, then overrides; in strict mode history and
    replies get `strict_per_minute` (Slack's 2025 limit for non-Marketplace apps: 1/min)."""
    limits = {m: TIER_PER_MINUTE[t] for m, t in METHOD_TIER.items()}
    if strict_per_minute is not None:
        limits["conversations.history"] = strict_per_minute
        limits["conversations.replies"] = strict_per_minute
    limits.update(per_minute_overrides or {})
    return limits


def make_check(token_source: str) -> Callable[[str, dict[str, Any]], None]:
    def check(method: str, body: dict[str, Any]) -> None:
        ok = body.get("ok")
        if ok is True:
            return
        if ok is not False:
            raise InvalidBodyError(f"{method}: response has no boolean 'ok' (keys {sorted(body)[:8]})")
        code = str(body.get("error") or "unknown_error")
        if code in AUTH_CODES:
            raise AuthError(f"{method}: Slack refused {token_source}: {code}. Renew the token or fix its "
                            "type (a bot token xoxb- is expected).")
        if code == "missing_scope":
            needed = body.get("needed")
            provided = body.get("provided")
            raise MissingScopeError(
                f"{method}: {token_source} lacks the scope {needed or '(not named by Slack)'}"
                f"{f' (it has: {provided})' if provided else ''}; add it to the Slack app and reinstall.",
                needed=needed)
        if code == "ratelimited":
            raise RateLimitedError(f"{method}: ratelimited in the body")
        if code in RETRYABLE_CODES:
            raise ServerError(f"{method}: transient Slack error {code}")
        raise ApiError(f"{method}: Slack error {code}", code=code)
    return check


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """The cursor of the next page, or None at the end. Three end forms: `next_cursor: ""`, no
    `response_metadata`, `has_more: false` (history/replies)."""
    if body.get("has_more") is False:
        return None
    meta = body.get("response_metadata")
    if not isinstance(meta, Mapping):
        return None
    cursor = meta.get("next_cursor")
    return cursor or None


class SlackApi:
    def __init__(self, base_url: str, token: str, *, budget: Budget, token_source: str,
                 policy: RetryPolicy | None = None, timeout_s: float = 30.0, sleep: Callable[[float], None] | None = None,
                 seed: int | None = None):
        if not token:
            raise AuthError(f"no Slack token: {token_source} is empty or unset")
        kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self.http = HttpClient(base_url, budget=budget, auth_header=f"Bearer {token}", token_source=token_source,
                               policy=policy, timeout_s=timeout_s, check=make_check(token_source), seed=seed,
                               **kwargs)
        self.warnings: list[str] = []

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None, *, post: bool = False) -> dict[str, Any]:
        body = self.http.call(method, params, post=post)
        self._keep_warnings(method, body)
        return body

    def _keep_warnings(self, method: str, body: Mapping[str, Any]) -> None:
        if body.get("warning"):
            self.warnings.append(f"{method}: {body['warning']}")
        meta = body.get("response_metadata")
        if isinstance(meta, Mapping):
            for w in meta.get("warnings") or []:
                self.warnings.append(f"{method}: {w}")

    def pages(self, method: str, params: Mapping[str, Any], items_key: str) -> Iterator[list[dict[str, Any]]]:
        """Each page's items; a page without `items_key` is an invalid body (retried upstream once
        classified), since Slack's `ok:true` pages always carry their list.

        A page whose next cursor was already handed out is a replay of an earlier page (a proxy or CDN
        answering from its cache): it is checked before its items are yielded, dropped (they were
        yielded already) and the same cursor is asked again after the client's backoff, up to
        `MAX_PAGE_REPLAYS` times in a row, then an `ApiError` (code `page_replayed`) stops the run."""
        cursor: str | None = None
        replays = PageReplays(method, self.http.backoff_pause)
        for _ in range(MAX_PAGES):
            query = dict(params)
            if cursor:
                query["cursor"] = cursor
            body = self.call(method, query)
            items = body.get(items_key)
            if not isinstance(items, list):
                raise InvalidBodyError(f"{method}: ok:true but no '{items_key}' list")
            nxt = next_cursor(body)
            if replays.replayed(nxt):
                continue  # the same cursor again: this page's items were yielded already
            yield items
            if nxt is None:
                return
            cursor = nxt
        raise ApiError(f"{method}: more than {MAX_PAGES} pages", code="too_many_pages")

    def items(self, method: str, params: Mapping[str, Any], items_key: str) -> Iterator[dict[str, Any]]:
        for page in self.pages(method, params, items_key):
            yield from page
