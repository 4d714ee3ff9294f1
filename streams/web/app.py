"""aiohttp application of a worker: GET /customers/{id}, /health, /ready, /metrics, /status
(and its page at /), and Bloomreach's read routes (``GET /api/customers/{id}``,
``POST /data/v2/projects/{token}/customers/export-one``, translated by
:mod:`streams.web.bloomreach`).

``/customers`` and the Bloomreach routes need a token of ``STREAMS_API_TOKENS`` when any is
configured (``/metrics`` and ``/status`` too with ``STREAMS_METRICS_REQUIRE_TOKEN``); ``/health``
(alive) and ``/ready`` (serving: no partition restoring) are always open for probes, and so is
the status page, which holds no figures of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

import orjson
from aiohttp import web

from streams.settings import Settings
from streams.state.store import StateStores
from streams.web.answer import ProfileAnswer, stored_profile_answer, unavailable
from streams.web.auth import authorize
from streams.web.bloomreach import (
    API_CUSTOMER_ROUTE,
    EXPORT_ONE,
    ReadRequestError,
    customer_document,
    export_one_customer,
    export_one_document,
    failure_answer,
)
from streams.web.metrics import guarded_metrics
from streams.web.owners import OwnerClient
from streams.web.routing import OwnerDirectory
from streams.web.status_page import status_page

logger = logging.getLogger(__name__)


# The worker serves its partitions in these; "retrying" is a delivery failure being retried.
READY_STATES = ("running", "retrying")


class WorkerState(Protocol):
    """What ``/health`` and the routing of ``/customers`` ask of the worker served."""

    @property
    def owned_partitions(self) -> frozenset[int]: ...

    @property
    def restoring_partitions(self) -> frozenset[int]: ...

    @property
    def alive(self) -> bool: ...


class ProfileApi:
    """Serves what its worker hands it: the worker's state, its stores, its rendered metrics,
    its status document."""

    def __init__(
        self,
        settings: Settings,
        worker: WorkerState,
        stores: StateStores,
        render_metrics: Callable[[], bytes],
        directory: OwnerDirectory,
        self_url: str,
        *,
        status: Callable[[], Mapping[str, object]],
    ) -> None:
        self._settings = settings
        self._worker = worker
        self._stores = stores
        self._render_metrics = render_metrics
        self._status = status
        self._self_url = self_url
        self._owners = OwnerClient(settings, directory)

    def set_self_url(self, url: str) -> None:
        self._self_url = url

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/customers/{customer_id}", self.get_customer)
        app.router.add_get(API_CUSTOMER_ROUTE, self.get_bloomreach_customer)
        app.router.add_post(EXPORT_ONE, self.export_one)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/status", self.status)
        app.router.add_get("/", status_page)
        app.on_cleanup.append(self._close_session)
        return app

    async def get_customer(self, request: web.Request) -> web.StreamResponse:
        token = authorize(request, self._settings)
        with_ts = request.query.get("include_timestamps") == "1"
        answer = await self._profile(request, request.match_info["customer_id"], with_ts, token)
        return answer.response()

    async def get_bloomreach_customer(self, request: web.Request) -> web.StreamResponse:
        """Bloomreach's ``GET /api/customers/{id}``, with this worker's tokens."""
        try:
            token = authorize(request, self._settings)
        except web.HTTPUnauthorized as exc:
            return bloomreach_unauthorized(exc)
        with_ts = request.query.get("include_timestamps") == "1"
        answer = await self._profile(request, request.match_info["customer_id"], with_ts, token)
        return customer_document(answer).response()

    async def export_one(self, request: web.Request) -> web.StreamResponse:
        """Bloomreach's export-one, with this worker's tokens (any project token: the worker
        keeps no projects); ``STREAMS_BLOOMREACH_ID_KINDS`` name the customer."""
        try:
            token = authorize(request, self._settings)
        except web.HTTPUnauthorized as exc:
            return bloomreach_unauthorized(exc)
        try:
            kind, customer_id = export_one_customer(
                await request.read(), self._settings.bloomreach_id_kinds
            )
        except ReadRequestError as exc:
            return failure_answer(400, exc.reason, exc.detail or exc.reason).response()
        answer = await self._profile(request, customer_id, False, token)
        return export_one_document(answer, kind, customer_id).response()

    async def _profile(
        self, request: web.Request, customer_id: str, with_ts: bool, token: str | None
    ) -> ProfileAnswer:
        """The customer's answer: from the stores here, else from its owner (one hop)."""
        partition = self._owners.partition_of(customer_id)
        if partition in self._worker.owned_partitions:
            return self._answer_locally(partition, customer_id.encode(), with_ts)
        if partition in self._worker.restoring_partitions:
            return unavailable("partition_moving", "partition is being restored on this worker")
        if request.query.get("routed") == "1":
            return unavailable("partition_moving", "partition is moving between workers")
        return await self._owners.ask_owner(customer_id, with_ts, token, self._self_url)

    def _answer_locally(self, partition: int, key: bytes, with_ts: bool) -> ProfileAnswer:
        store = self._stores.get(partition)
        return stored_profile_answer(store.get(key) if store is not None else None, with_ts)

    async def health(self, request: web.Request) -> web.Response:
        alive = self._worker.alive
        body = {
            "status": "ok" if alive else "failed",
            "worker": self._self_url,
            # Every partition assigned here, those still restoring included.
            "partitions": sorted(self._worker.owned_partitions | self._worker.restoring_partitions),
        }
        return _json(body, status=200 if alive else 503)

    async def ready(self, request: web.Request) -> web.Response:
        """200 once the worker has its partitions and none is restoring (a readiness probe:
        a rolling update waits for it), 503 with the state otherwise."""
        state = self._status().get("state")
        ready = state in READY_STATES
        return _json({"ready": ready, "state": state}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return guarded_metrics(request, self._settings, self._render_metrics)

    async def status(self, request: web.Request) -> web.Response:
        if self._settings.metrics_require_token:
            authorize(request, self._settings)
        return _json(self._status())

    async def _close_session(self, app: web.Application) -> None:
        await self._owners.close()


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def bloomreach_unauthorized(exc: web.HTTPUnauthorized) -> web.Response:
    """A refused token in Bloomreach's failure shape (the Faust engine's routes too)."""
    challenge = {"WWW-Authenticate": exc.headers["WWW-Authenticate"]}
    detail = "missing or invalid credentials"
    return failure_answer(401, "unauthorized", detail, challenge).response()
