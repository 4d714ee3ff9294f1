"""What went wrong with an HTTP exchange, as its caller needs to know: retry, slow down or stop.

Callers map these onto their own protocol (the REST sink onto sink errors for the connector
worker, the webhook fetcher onto its fetch reasons).
"""

from __future__ import annotations

from streams.errors import StreamsError


class HttpClientError(StreamsError):
    """Base class of the failures of a request."""


class RetryableHttpError(HttpClientError):
    """A transient failure (5xx, 408, 425, timeout, connection refused): trying again may work.

    ``retry_after`` (seconds) is the server's hint, when it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HttpBackpressureError(RetryableHttpError):
    """The server asks us to slow down (HTTP 429): wait ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class HttpRefusedError(HttpClientError):
    """The server refuses us for good (credentials, permissions, wrong path): stop."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HaltedError(StreamsError):
    """Another request of this write failed for the whole batch; this one was not sent."""
