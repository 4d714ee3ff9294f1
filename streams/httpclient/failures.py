"""What a failed response or transport error stands for: retry, slow down, or stop.

429: HttpBackpressureError (Retry-After). 408, 425, 5xx, timeouts, connection errors:
RetryableHttpError. Any other status: HttpRefusedError, which no retry can fix.
"""

from __future__ import annotations

from streams.httpclient.backoff import parse_retry_after
from streams.httpclient.errors import HttpBackpressureError, HttpRefusedError, RetryableHttpError
from streams.logs import mask_emails
from streams.optional import requires

with requires("httpx", "the REST sink and webhook fetches"):
    import httpx

TRANSIENT_STATUSES = frozenset({408, 425})
MAX_DETAIL = 300


def classify_failure(
    failure: httpx.Response | httpx.HTTPError, what: str, default_retry_after: float = 1.0
) -> Exception:
    """The exception a failed response (not 400/422) or transport error stands for."""
    if isinstance(failure, httpx.TimeoutException):
        return RetryableHttpError(f"{what}: timed out ({type(failure).__name__})")
    if isinstance(failure, httpx.HTTPError):
        return RetryableHttpError(f"{what}: {type(failure).__name__}")
    status = failure.status_code
    header = failure.headers.get("Retry-After")
    if status == 429:
        retry_after = parse_retry_after(header, default_retry_after)
        return HttpBackpressureError(f"{what}: HTTP 429", retry_after=retry_after)
    if status >= 500 or status in TRANSIENT_STATUSES:
        hinted = parse_retry_after(header, -1.0)
        return RetryableHttpError(
            f"{what}: HTTP {status}", retry_after=hinted if hinted >= 0 else None
        )
    return HttpRefusedError(f"{what}: HTTP {status} {_snippet(failure)}".rstrip(), status=status)


def _snippet(response: httpx.Response) -> str:
    return mask_emails(response.text[:MAX_DETAIL]) if response.text else ""
