"""Requests of one write: auth, bounded concurrency, one credentials refresh, classification.

2xx and the statuses the caller handles itself (by default 400/409/422, a refusal of the
records sent) are answers; anything else raises (see ``failures``) and halts the write: the
requests not sent yet raise HaltedError instead of going out. A 401 refreshes the credentials
once, then raises HttpRefusedError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from streams.httpclient.auth import Authenticator
from streams.httpclient.errors import HaltedError, HttpClientError, HttpRefusedError
from streams.httpclient.failures import classify_failure
from streams.logs import mask_emails
from streams.optional import requires

with requires("httpx", "the REST sink and webhook fetches"):
    import httpx

REJECT_STATUSES = frozenset({400, 409, 422})


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
        except HttpClientError:
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
                raise HttpRefusedError(f"{what}: HTTP 401, credentials refused", status=401)
            if response.is_success or response.status_code in ok_statuses:
                return response
            raise classify_failure(response, what, self.default_retry_after)
        raise AssertionError("unreachable")
