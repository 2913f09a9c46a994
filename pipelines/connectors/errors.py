"""The error vocabulary of connectors: every failure is either fatal or retryable.

Fatal errors (bad credentials, a missing scope, a resource that does not exist) stop the run at once
with a message that names what to fix; retrying them only burns the rate budget. Retryable errors
(rate limited, server errors, timeouts, a truncated or invalid body) are retried with backoff by
`pipelines.connectors.http`. Messages must never contain the token itself, only the *name* of where it
came from.
"""

from __future__ import annotations


class ConnectorError(RuntimeError):
    """Base of all connector errors. `status` is the HTTP status of the response that caused it, when
    there was one (401 vs 403, 404 vs 410 are told apart on it, never on the message)."""

    retryable: bool = False

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message)
        self.status = status


class FatalError(ConnectorError):
    """Retrying cannot help: the configuration or the permissions are wrong."""


class AuthError(FatalError):
    """The token is missing, invalid, expired or revoked."""


class MissingScopeError(FatalError):
    """The token lacks a permission scope; `needed` names it when the platform says so."""

    def __init__(self, message: str, needed: str | None = None, *, status: int | None = None):
        super().__init__(message, status=status)
        self.needed = needed


class ApiError(FatalError):
    """The platform refused the request for a reason that is not transient (e.g. `channel_not_found`).

    `code` is the platform's error code, so that callers can handle the ones they expect
    (`not_in_channel`: join or skip) and let the others stop the run."""

    def __init__(self, message: str, code: str, *, status: int | None = None):
        super().__init__(message, status=status)
        self.code = code


class RetryableError(ConnectorError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None, *, status: int | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """HTTP 429 (or a platform's `ratelimited` code); `retry_after` is the server's wait in seconds."""


class ServerError(RetryableError):
    """HTTP 5xx or a platform's transient server-side code (`fatal_error`, `service_unavailable`)."""


class TransportTimeoutError(RetryableError):
    """The connection or the read timed out, or the connection dropped."""


class InvalidBodyError(RetryableError):
    """The body is truncated or is not the JSON object the API promises."""


class RetriesExhaustedError(ConnectorError):
    """A retryable error kept happening: the last one is chained as `__cause__`."""
