"""aiohttp application of a worker: GET /customers/{id}, /health, /metrics.

``/customers`` needs a token of ``STREAMS_API_TOKENS`` when any is configured (``/metrics`` too
with ``STREAMS_METRICS_REQUIRE_TOKEN``); ``/health`` is always open for probes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from streams.codecs.timestamps import ms_to_seconds
from streams.kafka.partitioner import partition_for
from streams.settings import Settings
from streams.state.codec import decode_profile
from streams.state.store import StateStores
from streams.web.auth import authorize
from streams.web.routing import OwnerDirectory

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"


class WorkerState(Protocol):
    """What ``/health`` and the routing of ``/customers`` ask of the worker served."""

    @property
    def owned_partitions(self) -> frozenset[int]: ...

    @property
    def restoring_partitions(self) -> frozenset[int]: ...

    @property
    def alive(self) -> bool: ...


class ProfileApi:
    """Serves what its worker hands it: the worker's state, its stores, its rendered metrics."""

    def __init__(
        self,
        settings: Settings,
        worker: WorkerState,
        stores: StateStores,
        render_metrics: Callable[[], bytes],
        directory: OwnerDirectory,
        self_url: str,
    ) -> None:
        self._settings = settings
        self._worker = worker
        self._stores = stores
        self._render_metrics = render_metrics
        self._directory = directory
        self._self_url = self_url
        self._session: aiohttp.ClientSession | None = None

    def set_self_url(self, url: str) -> None:
        self._self_url = url

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/customers/{customer_id}", self.get_customer)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.on_cleanup.append(self._close_session)
        return app

    async def get_customer(self, request: web.Request) -> web.StreamResponse:
        token = authorize(request, self._settings)
        customer_id = request.match_info["customer_id"]
        with_ts = request.query.get("include_timestamps") == "1"
        key = customer_id.encode()
        partition = partition_for(key, self._settings.partitions)
        if partition in self._worker.owned_partitions:
            return self._answer_locally(partition, key, with_ts)
        if partition in self._worker.restoring_partitions:
            return _unavailable("partition_moving", "partition is being restored on this worker")
        if request.query.get("routed") == "1":
            return _unavailable("partition_moving", "partition is moving between workers")
        loop = asyncio.get_running_loop()
        owner = await loop.run_in_executor(None, self._directory.owner_url, partition)
        if owner is None or owner == self._self_url:
            return _unavailable("no_owner", "no worker owns this customer's partition right now")
        return await self._forward(owner, customer_id, with_ts, token)

    def _answer_locally(self, partition: int, key: bytes, with_ts: bool) -> web.Response:
        store = self._stores.get(partition)
        raw = store.get(key) if store is not None else None
        if raw is None:
            return _json({"error": "customer not found", "reason": "not_found"}, status=404)
        profile = decode_profile(raw)
        properties: dict[str, object] = {}
        for name, state in sorted(profile.properties.items()):
            if state.value is None:
                continue
            properties[name] = (
                {"value": state.value, "last_update": ms_to_seconds(state.last_update)}
                if with_ts
                else state.value
            )
        return _json({"properties": properties})

    async def _forward(
        self, owner: str, customer_id: str, with_ts: bool, token: str | None
    ) -> web.Response:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.route_timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        url = f"{owner}/customers/{quote(customer_id, safe='')}"
        params = {"include_timestamps": "1" if with_ts else "0", "routed": "1"}
        # The caller's own token: the owner checks it as this worker did.
        auth = {"Authorization": f"Bearer {token}"} if token else None
        try:
            async with self._session.get(url, params=params, headers=auth) as response:
                body = await response.read()
                headers = {"X-Served-By": owner}
                for name in ("Retry-After", "WWW-Authenticate"):
                    if name in response.headers:
                        headers[name] = response.headers[name]
                if response.status == 401:
                    logger.warning(
                        "owner refused a forwarded token owner=%s: every worker needs the "
                        "same STREAMS_API_TOKENS",
                        owner,
                    )
                return web.Response(
                    body=body,
                    status=response.status,
                    content_type="application/json",
                    headers=headers,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("routing to owner failed owner=%s: %s", owner, type(exc).__name__)
            return _unavailable("owner_unavailable", "the owning worker did not answer")

    async def health(self, request: web.Request) -> web.Response:
        alive = self._worker.alive
        body = {
            "status": "ok" if alive else "failed",
            "worker": self._self_url,
            # Every partition assigned here, those still restoring included.
            "partitions": sorted(self._worker.owned_partitions | self._worker.restoring_partitions),
        }
        return _json(body, status=200 if alive else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        if self._settings.metrics_require_token:
            authorize(request, self._settings)
        response = web.Response(body=self._render_metrics())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _close_session(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _unavailable(reason: str, error: str) -> web.Response:
    """503 in the one error shape of every HTTP API: ``reason`` a code, ``error`` for humans."""
    response = _json({"error": error, "reason": reason}, status=503)
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response
