"""The default worker's HTTP API (:mod:`streams.web.app`) as Faust web views, answering
alike: ``GET /customers/{id}``, Bloomreach's ``GET /api/customers/{id}`` and export-one,
``/health``, ``/ready``, ``/metrics``, ``/status`` and its page at ``/``.

A customer of a partition assigned here is answered from the table's store
(:func:`streams.web.answer.stored_profile_answer`); any other is asked of its owner, found
in Faust's own assignment, as the default worker asks (:class:`OwnerClient`: the caller's
token forwarded, ``X-Served-By`` naming the owner, one hop at most). Faust's
``table_route`` is not used: it drops the owner's headers (``Retry-After``,
``WWW-Authenticate``) and names no owner."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from streams.faust.status import faust_figures, faust_state, input_partitions, recovering
from streams.faust.store import TableStates
from streams.kafka.partitioner import partition_for
from streams.optional import requires
from streams.processor.metrics import WorkerMetrics
from streams.processor.records import BatchCounts
from streams.settings import Settings
from streams.web.answer import ProfileAnswer, stored_profile_answer, unavailable
from streams.web.app import READY_STATES, bloomreach_unauthorized
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
from streams.web.owners import OwnerClient
from streams.web.status import StatusSource
from streams.web.status_page import status_page

with requires("faust", "the Faust engine"):
    from faust.web import View

logger = logging.getLogger(__name__)

CUSTOMER_ROUTE = "/customers/{customer_id}"
HEALTH_ROUTE = "/health"
READY_ROUTE = "/ready"
METRICS_ROUTE = "/metrics"
STATUS_ROUTE = "/status"
PAGE_ROUTE = "/"


class FaustOwners:
    """Partition -> owning worker URL from Faust's assignment (every member's actives, as the
    assignor shares them): the :class:`~streams.web.owners.Owners` of :class:`OwnerClient`."""

    def __init__(self, app: Any, table: Any) -> None:
        self._app = app
        self._table = table

    def owner_url(self, partition: int) -> str | None:
        topic = self._table.changelog_topic.get_topic_name()
        for url, topics in self._app.router.table_metadata(self._table.name).items():
            if partition in topics.get(topic, ()):
                return str(url)
        return None


class Profiles:
    """A customer's :class:`ProfileAnswer`, from the store here or from its owner."""

    def __init__(self, app: Any, table: Any, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._states = TableStates(table)
        self._owners = OwnerClient(settings, FaustOwners(app, table))
        self._self_url = str(app.conf.canonical_url)

    async def answer(
        self, request: web.Request, customer_id: str, with_ts: bool, token: str | None
    ) -> ProfileAnswer:
        partition = partition_for(customer_id.encode(), self._settings.partitions)
        if partition in input_partitions(self._app, self._settings):
            if recovering(self._app):  # the store may miss customers: no 404 yet
                return unavailable("partition_moving", "partition is being restored on this worker")
            return stored_profile_answer(self._states.get(partition, customer_id.encode()), with_ts)
        if request.query.get("routed") == "1":
            return unavailable("partition_moving", "partition is moving between workers")
        return await self._owners.ask_owner(customer_id, with_ts, token, self._self_url)

    async def close(self) -> None:
        await self._owners.close()


def add_views(
    app: Any, table: Any, settings: Settings, metrics: WorkerMetrics, totals: BatchCounts
) -> None:
    """Add the worker's routes to ``app``'s web server; ``totals`` are the agent's, updated
    after each batch."""
    profiles = Profiles(app, table, settings)
    status = StatusSource(
        "worker",
        settings.group_id,
        lambda: faust_figures(app, settings, totals),
        url=str(app.conf.canonical_url),
    )

    async def close_owner_client(app: Any, **kwargs: Any) -> None:
        await profiles.close()

    app.on_before_shutdown.connect(close_owner_client)

    async def customer(view: Any, request: web.Request, customer_id: str) -> web.Response:
        token = authorize(request, settings)
        with_ts = request.query.get("include_timestamps") == "1"
        return (await profiles.answer(request, customer_id, with_ts, token)).response()

    async def bloomreach_customer(
        view: Any, request: web.Request, customer_id: str
    ) -> web.Response:
        try:
            token = authorize(request, settings)
        except web.HTTPUnauthorized as exc:
            return bloomreach_unauthorized(exc)
        with_ts = request.query.get("include_timestamps") == "1"
        answer = await profiles.answer(request, customer_id, with_ts, token)
        return customer_document(answer).response()

    class ExportOne(View):  # a POST route: a View class
        async def post(self, request: web.Request, project_token: str) -> web.Response:
            try:
                token = authorize(request, settings)
            except web.HTTPUnauthorized as exc:
                return bloomreach_unauthorized(exc)
            try:
                kind, customer_id = export_one_customer(
                    await request.read(), settings.bloomreach_id_kinds
                )
            except ReadRequestError as exc:
                return failure_answer(400, exc.reason, exc.detail or exc.reason).response()
            answer = await profiles.answer(request, customer_id, False, token)
            return export_one_document(answer, kind, customer_id).response()

    async def health(view: Any, request: web.Request) -> web.Response:
        """Always open: the input partitions assigned here (restoring ones included)."""
        partitions = sorted(input_partitions(app, settings))
        body = {"status": "ok", "worker": str(app.conf.canonical_url), "partitions": partitions}
        return _json(body)

    async def ready(view: Any, request: web.Request) -> web.Response:
        """200 once assigned and the table restored (a readiness probe), else 503."""
        state = faust_state(app, settings)
        is_ready = state in READY_STATES
        return _json({"ready": is_ready, "state": state}, 200 if is_ready else 503)

    async def render_metrics(view: Any, request: web.Request) -> web.Response:
        if settings.metrics_require_token:
            authorize(request, settings)
        figures = faust_figures(app, settings, totals)
        metrics.assigned.set(len(figures.partitions))
        metrics.lag.clear()  # the partitions assigned now, as the default worker keeps it
        for partition in figures.partitions:
            if partition.lag is not None:
                metrics.lag.labels(partition=str(partition.partition)).set(partition.lag)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def render_status(view: Any, request: web.Request) -> web.Response:
        if settings.metrics_require_token:
            authorize(request, settings)
        return _json(status.document())

    app.page(CUSTOMER_ROUTE, name="streams-customer")(customer)
    app.page(API_CUSTOMER_ROUTE, name="streams-bloomreach-customer")(bloomreach_customer)
    app.page(EXPORT_ONE, name="streams-export-one")(ExportOne)
    app.page(HEALTH_ROUTE, name="streams-health")(health)
    app.page(READY_ROUTE, name="streams-ready")(ready)
    app.page(METRICS_ROUTE, name="streams-metrics")(render_metrics)
    app.page(STATUS_ROUTE, name="streams-status")(render_status)

    async def page(view: Any, request: web.Request) -> web.Response:
        return await status_page(request)  # reads /status in the browser, as the default's

    app.page(PAGE_ROUTE, name="streams-status-page")(page)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
