"""Fetch one profile from the origin's REST API after a bare notification, with retries.

429 waits for its Retry-After; 5xx, 408, 425, timeouts and connection errors retry with
exponential backoff and full jitter; 401 refreshes OAuth2 credentials once; 404, 410 and other
4xx are permanent. Attempts and total time are bounded, so a sender never waits forever and a
hopeless notification reaches the dead-letter topic with the last reason. An answer is read
up to ``max_answer_bytes`` and no further: a larger one is final (``origin_too_large``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from streams.errors import StreamsError
from streams.httpclient.auth import AuthOptions, build_authenticator
from streams.httpclient.backoff import Backoff, RetryConfig, parse_retry_after
from streams.httpclient.errors import HttpRefusedError, RetryableHttpError
from streams.httpclient.failures import TRANSIENT_STATUSES
from streams.optional import requires

with requires("httpx", "webhooks"):
    import httpx

logger = logging.getLogger(__name__)

GONE_STATUSES = frozenset({404, 410})
DEFAULT_MAX_ANSWER_BYTES = 512 * 1024
# An unmappable answer is dead-lettered whole: with its headers it must fit librdkafka's
# default message.max.bytes (1,000,000).
MAX_ANSWER_BYTES_CEILING = 900_000
# Ids that are not a path segment of their own: the URL's dot-segment removal would turn
# ``/contacts/..`` into another resource of the origin, fetched with its credentials.
DOT_SEGMENTS = frozenset({".", ".."})


def is_safe_id(profile_id: str) -> bool:
    """Whether ``profile_id``, percent-encoded, stays one path segment of the fetch URL."""
    return bool(profile_id) and profile_id not in DOT_SEGMENTS


class FetchConfig(BaseModel):
    """``[webhooks.<source>.fetch]``: where and how to fetch a notified profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^\s]*\{id\}")
    auth: AuthOptions | None = None
    timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    max_total_s: float = Field(default=30.0, gt=0)
    retry: RetryConfig = RetryConfig()
    max_concurrency: int = Field(default=8, ge=1)
    max_answer_bytes: int = Field(
        default=DEFAULT_MAX_ANSWER_BYTES, ge=1, le=MAX_ANSWER_BYTES_CEILING
    )
    profile_path: str | None = None  # where the profile sits inside the answer, if wrapped


class FetchFailedError(StreamsError):
    """No profile: ``permanent`` after a final answer (404, 403), else retries ran out."""

    def __init__(self, reason: str, detail: str, *, attempts: int, permanent: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    attempts: int


class _RetryableError(Exception):
    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class ProfileFetcher:
    """One per source: its own HTTP client, credentials and concurrency bound."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self._auth = build_authenticator(config.auth, timeout_s=config.timeout_s)
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s),
            limits=httpx.Limits(max_connections=self.config.max_concurrency),
            follow_redirects=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(self, profile_id: str) -> Fetched:
        """The origin's answer body for ``profile_id``; raises FetchFailedError."""
        if self._client is None:
            raise RuntimeError("ProfileFetcher.start() was not called")
        if not is_safe_id(profile_id):
            raise ValueError("refusing an id that is not a path segment of its own")
        url = self.config.url.replace("{id}", quote(profile_id, safe=""))
        deadline = time.monotonic() + self.config.max_total_s
        backoff = Backoff(self.config.retry)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._semaphore:
                    body = await self._attempt(self._client, url, attempt)
                return Fetched(body, attempt)
            except _RetryableError as retry:
                delay = backoff.next_delay(retry.retry_after)
                left = deadline - time.monotonic()
                if attempt >= self.config.max_attempts or delay > left:
                    raise FetchFailedError(
                        retry.reason,
                        f"{retry.detail}; gave up after {attempt} attempt(s)",
                        attempts=attempt,
                        permanent=False,
                    ) from None
                logger.info(
                    "origin fetch retry attempt=%d reason=%s wait_s=%.2f",
                    attempt,
                    retry.reason,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _attempt(self, client: httpx.AsyncClient, url: str, attempt: int) -> bytes:
        for refreshed in (False, True):
            with _auth_errors(attempt):
                headers = await self._auth.headers(client)
            request = client.build_request(
                "GET", url, headers={**headers, "Accept": "application/json"}
            )
            try:
                response = await client.send(request, stream=True)
                try:
                    if response.status_code == 401 and not refreshed:
                        with _auth_errors(attempt):
                            renewed = await self._auth.refresh(client, headers)
                        if renewed:
                            continue
                    self._judge(response, attempt)
                    return await self._capped_body(response, attempt)
                finally:
                    await response.aclose()
            except httpx.TimeoutException as exc:
                raise _RetryableError(
                    "origin_timeout", f"no answer in {self.config.timeout_s} s"
                ) from exc
            except httpx.HTTPError as exc:
                raise _RetryableError("origin_unreachable", type(exc).__name__) from exc
        raise AssertionError("unreachable")

    async def _capped_body(self, response: httpx.Response, attempt: int) -> bytes:
        """The answer's bytes, read no further than ``max_answer_bytes``."""
        cap = self.config.max_answer_bytes
        too_large = FetchFailedError(
            "origin_too_large",
            f"the origin's answer exceeds {cap} bytes",
            attempts=attempt,
            permanent=True,
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _judge(self, response: httpx.Response, attempt: int) -> None:
        """Raise unless the answer is a success."""
        status = response.status_code
        if response.is_success:
            return
        hinted = parse_retry_after(response.headers.get("Retry-After"), -1.0)
        retry_after = hinted if hinted >= 0 else None
        if status == 429:
            raise _RetryableError("origin_throttled", "HTTP 429", retry_after)
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise _RetryableError("origin_error", f"HTTP {status}", retry_after)
        reason = "origin_not_found" if status in GONE_STATUSES else "origin_refused"
        if status == 401:
            reason = "origin_auth"
        raise FetchFailedError(reason, f"HTTP {status}", attempts=attempt, permanent=True)


@contextmanager
def _auth_errors(attempt: int) -> Iterator[None]:
    """Credential failures: a refused configuration is final, an unavailable token endpoint
    retries."""
    try:
        yield
    except HttpRefusedError as exc:
        raise FetchFailedError("origin_auth", str(exc), attempts=attempt, permanent=True) from exc
    except RetryableHttpError as exc:
        raise _RetryableError("origin_auth_unavailable", str(exc), exc.retry_after) from exc
