"""Connector framework shared by every API source: HTTP with retries, request budgets, incremental state.

- `errors`: the classification every connector speaks (fatal vs retryable);
- `budget`: per-method token buckets, shareable between threads;
- `http`: an httpx client that retries retryable failures with backoff and honours `Retry-After`;
- `state`: cursors and watermarks per source/stream in the warehouse table `etl_source_state`.
Platform specifics (Slack's `ok:false` envelope, its tiers) live in platform modules such as
`slack_api`. Nothing here may log a token, a request body or a response body: they can hold personal data.
"""

from pipelines.connectors.budget import Budget, TokenBucket
from pipelines.connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    InvalidBodyError,
    MissingScopeError,
    RateLimitedError,
    RetryableError,
    ServerError,
    TransportTimeoutError,
)
from pipelines.connectors.http import HttpClient, RetryPolicy
from pipelines.connectors.state import StateStore

__all__ = [
    "AuthError", "Budget", "ConnectorError", "FatalError", "HttpClient", "InvalidBodyError",
    "MissingScopeError", "RateLimitedError", "RetryPolicy", "RetryableError", "ServerError", "StateStore",
    "TokenBucket", "TransportTimeoutError",
]
