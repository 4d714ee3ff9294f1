"""Asking the worker that owns a customer for its profile: the owner found in the consumer group
(:class:`OwnerDirectory`), then its ``GET /customers/{id}`` with the caller's token. Used by a
worker for a customer it does not own and by ``streams serve``'s Bloomreach read routes."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from urllib.parse import quote

import aiohttp

from streams.kafka.partitioner import partition_for
from streams.settings import Settings
from streams.web.answer import ProfileAnswer, unavailable

logger = logging.getLogger(__name__)

_PASSED_HEADERS = ("Retry-After", "WWW-Authenticate")


class Owners(Protocol):
    """Who owns a partition: the consumer group's description (``OwnerDirectory``) or
    the Faust engine's assignment. Blocking; called from a thread pool."""

    def owner_url(self, partition: int) -> str | None: ...


class OwnerClient:
    def __init__(self, settings: Settings, directory: Owners) -> None:
        self._settings = settings
        self._directory = directory
        self._session: aiohttp.ClientSession | None = None

    def partition_of(self, customer_id: str) -> int:
        return partition_for(customer_id.encode(), self._settings.partitions)

    async def ask_owner(
        self, customer_id: str, with_ts: bool, token: str | None, self_url: str = ""
    ) -> ProfileAnswer:
        """The owner's answer, ``X-Served-By`` naming it; a 503 when no other worker owns the
        customer's partition or the owner does not answer. The owner answers only what it owns
        (``routed=1``): one hop at most."""
        loop = asyncio.get_running_loop()
        partition = self.partition_of(customer_id)
        owner = await loop.run_in_executor(None, self._directory.owner_url, partition)
        if owner is None or owner == self_url:
            return unavailable("no_owner", "no worker owns this customer's partition right now")
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.route_timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        url = f"{owner}/customers/{quote(customer_id, safe='')}"
        params = {"include_timestamps": "1" if with_ts else "0", "routed": "1"}
        # The caller's own token: the owner checks it as the asking side did.
        auth = {"Authorization": f"Bearer {token}"} if token else None
        try:
            async with self._session.get(url, params=params, headers=auth) as response:
                body = await response.read()
                headers = {"X-Served-By": owner}
                for name in _PASSED_HEADERS:
                    if name in response.headers:
                        headers[name] = response.headers[name]
                if response.status == 401:
                    logger.warning(
                        "owner refused a forwarded token owner=%s: every worker (and streams "
                        "serve) needs the same STREAMS_API_TOKENS",
                        owner,
                    )
                return ProfileAnswer(response.status, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("routing to owner failed owner=%s: %s", owner, type(exc).__name__)
            return unavailable("owner_unavailable", "the owning worker did not answer")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
