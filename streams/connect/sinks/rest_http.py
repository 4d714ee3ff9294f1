"""HTTP for REST sinks: one request with auth and bounded concurrency, and what a status means.

2xx: done. 429: SinkBackpressureError (Retry-After). 408, 425, 5xx, timeouts, connection
errors: RetryableSinkError. 400/409/422: handed back, the caller rejects the records concerned
(a conflict such as "email already taken" would fail the same way on every retry).
401 (after one credentials refresh), 403 and any other 4xx: RestConfigError, which stops the
connector: no retry or dead-letter queue can fix credentials or a wrong path.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

import httpx

from streams.connect.errors import RetryableSinkError, SinkBackpressureError, SinkConfigError
from streams.logs import mask_emails

if TYPE_CHECKING:
    from streams.connect.sinks.rest_auth import Authenticator

REJECT_STATUSES = frozenset({400, 409, 422})
TRANSIENT_STATUSES = frozenset({408, 425})
MAX_DETAIL = 300


class RestConfigError(SinkConfigError):
    """The destination refuses us for good (credentials, permissions, wrong path): stop."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HaltedError(Exception):
    """Another request of this write failed for the whole batch; this one was not sent."""


def parse_retry_after(value: str | None, default: float, now: float | None = None) -> float:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; ``default`` if absent."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return default
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else default


def classify_failure(
    failure: httpx.Response | httpx.HTTPError, what: str, default_retry_after: float = 1.0
) -> Exception:
    """The exception a failed response (not 400/422) or transport error stands for."""
    if isinstance(failure, httpx.TimeoutException):
        return RetryableSinkError(f"{what}: timed out ({type(failure).__name__})")
    if isinstance(failure, httpx.HTTPError):
        return RetryableSinkError(f"{what}: {type(failure).__name__}")
    status = failure.status_code
    header = failure.headers.get("Retry-After")
    if status == 429:
        retry_after = parse_retry_after(header, default_retry_after)
        return SinkBackpressureError(f"{what}: HTTP 429", retry_after=retry_after)
    if status >= 500 or status in TRANSIENT_STATUSES:
        hinted = parse_retry_after(header, -1.0)
        return RetryableSinkError(
            f"{what}: HTTP {status}", retry_after=hinted if hinted >= 0 else None
        )
    return RestConfigError(f"{what}: HTTP {status} {_snippet(failure)}".rstrip(), status=status)


def _snippet(response: httpx.Response) -> str:
    return mask_emails(response.text[:MAX_DETAIL]) if response.text else ""


class ErrorItem(NamedTuple):
    """One validation error from a 400/422 body or a bulk result."""

    position: int | None
    reason: str
    detail: str


def error_items(body: Any, status: int | None = None) -> list[ErrorItem]:
    """``{"errors": [{"index", "code", "field", "message"}]}`` (or ``{"error": ...}``)."""
    raw = body.get("errors", body.get("error")) if isinstance(body, dict) else body
    if isinstance(raw, dict | str):
        raw = [raw]
    items: list[ErrorItem] = []
    for entry in raw if isinstance(raw, list) else []:
        items.append(error_item(entry, status))
    return items or [ErrorItem(None, f"http_{status}" if status else "rejected", "")]


def error_item(entry: Any, status: int | None = None) -> ErrorItem:
    if not isinstance(entry, dict):
        return ErrorItem(None, str(entry)[:100] or "rejected", "")
    index = entry.get("index")
    message = str(entry.get("message") or "")
    reason = str(entry.get("code") or message or (f"http_{status}" if status else "rejected"))
    where = entry.get("field")
    detail = f"{where}: {message}" if where else message
    return ErrorItem(
        index if isinstance(index, int) else None,
        mask_emails(reason[:100]),
        mask_emails(detail[:MAX_DETAIL]),
    )


@dataclass(slots=True)
class Transport:
    """Sends requests for one write: auth, bounded concurrency, one 401 refresh, classification."""

    client: httpx.AsyncClient
    auth: Authenticator
    semaphore: asyncio.Semaphore
    default_retry_after: float
    halted: bool = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok_statuses: frozenset[int] = REJECT_STATUSES,
    ) -> httpx.Response:
        """The response when 2xx or in ``ok_statuses``; otherwise raise (and halt the write)."""
        try:
            return await self._request(method, url, json, params, ok_statuses)
        except (RetryableSinkError, SinkConfigError):
            self.halted = True
            raise

    async def _request(
        self,
        method: str,
        url: str,
        json: Any,
        params: Mapping[str, str] | None,
        ok_statuses: frozenset[int],
    ) -> httpx.Response:
        what = f"{method} {mask_emails(unquote(url.split('?')[0]))}"  # ids may be emails
        for attempt in (1, 2):
            if self.halted:
                raise HaltedError(what)
            headers = await self.auth.headers(self.client)
            async with self.semaphore:
                if self.halted:
                    raise HaltedError(what)
                try:
                    response = await self.client.request(
                        method, url, json=json, params=params, headers=headers
                    )
                except httpx.HTTPError as exc:
                    raise classify_failure(exc, what) from exc
            if response.status_code == 401:
                if attempt == 1 and await self.auth.refresh(self.client, headers):
                    continue
                raise RestConfigError(f"{what}: HTTP 401, credentials refused", status=401)
            if response.is_success or response.status_code in ok_statuses:
                return response
            raise classify_failure(response, what, self.default_retry_after)
        raise AssertionError("unreachable")
