"""How a sink tells the connector worker what went wrong."""

from __future__ import annotations

from streams.errors import StreamsError


class SinkError(StreamsError):
    """Base class of sink failures."""


class RetryableSinkError(SinkError):
    """The whole batch failed for a transient reason (5xx, timeout, connection refused).

    The worker retries the same batch with exponential backoff and jitter; ``retry_after``
    (seconds), when the destination said so, is honoured instead.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkBackpressureError(RetryableSinkError):
    """The destination asks us to slow down (HTTP 429): pause, then retry after ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class SinkConfigError(SinkError):
    """The connector's configuration is invalid (raised at construction, before any I/O)."""
