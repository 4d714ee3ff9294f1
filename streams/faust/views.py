"""``GET /customers/{id}`` as a Faust web view: the caller's token is checked, Faust's
``table_route`` forwards the request to the worker whose table holds the customer's
partition, and that one answers from its store what the default engine answers
(:func:`streams.web.answer.stored_profile_answer`)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import ClientError
from prometheus_client import CONTENT_TYPE_LATEST

from streams.faust.store import TableStates
from streams.kafka.partitioner import partition_for
from streams.optional import requires
from streams.processor.metrics import WorkerMetrics
from streams.settings import Settings
from streams.web.answer import ProfileAnswer, stored_profile_answer, unavailable
from streams.web.auth import authorize

with requires("faust", "the Faust engine"):
    from faust.web.exceptions import ServiceUnavailable

logger = logging.getLogger(__name__)

CUSTOMER_ROUTE = "/customers/{customer_id}"
HEALTH_ROUTE = "/health"
METRICS_ROUTE = "/metrics"


def add_views(app: Any, table: Any, settings: Settings, metrics: WorkerMetrics) -> None:
    """Add the query route, ``/health`` and ``/metrics`` to ``app``'s web server."""
    states = TableStates(table)

    async def answer_here(view: Any, request: Any, customer_id: str) -> Any:
        partition = partition_for(customer_id.encode(), settings.partitions)
        if _recovering(app):
            answer = unavailable("partition_moving", "partition is being restored on this worker")
        else:
            with_ts = request.query.get("include_timestamps") == "1"
            answer = stored_profile_answer(states.get(partition, customer_id.encode()), with_ts)
        return _response(view, answer)

    routed = app.table_route(table, match_info="customer_id")(answer_here)

    async def customer(view: Any, request: Any, customer_id: str) -> Any:
        authorize(request, settings)  # here and again by the owner: the headers travel
        try:
            return await routed(view, request, customer_id=customer_id)
        except ServiceUnavailable:
            return _response(view, unavailable("no_owner", "no worker owns the partition now"))
        except (ClientError, TimeoutError) as exc:
            logger.warning("owner did not answer: %s", type(exc).__name__)
            return _response(view, unavailable("owner_unavailable", "the owner did not answer"))

    app.page(CUSTOMER_ROUTE, name="streams-customer")(customer)

    async def health(view: Any, request: Any) -> Any:
        """As the default engine's: always open, the input partitions assigned here."""
        partitions = sorted(_input_partitions(app, settings))
        body = {"status": "ok", "worker": str(app.conf.canonical_url), "partitions": partitions}
        return view.bytes(orjson.dumps(body), content_type="application/json")

    async def render_metrics(view: Any, request: Any) -> Any:
        if settings.metrics_require_token:
            authorize(request, settings)
        metrics.assigned.set(len(_input_partitions(app, settings)))
        return view.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.page(HEALTH_ROUTE, name="streams-health")(health)
    app.page(METRICS_ROUTE, name="streams-metrics")(render_metrics)


def _input_partitions(app: Any, settings: Settings) -> set[int]:
    """The input partitions assigned to this worker (restoring ones included)."""
    actives = app.assignor.assigned_actives()
    return {tp.partition for tp in actives if tp.topic == settings.input_topic}


def _recovering(app: Any) -> bool:
    """From a rebalance's start until the active tables are restored, the local store may
    miss customers: answer nothing from it yet (a 404 would be wrong)."""
    return bool(app.rebalancing) or not app.tables.actives_ready


def _response(view: Any, answer: ProfileAnswer) -> Any:
    return view.bytes(
        answer.body,
        content_type="application/json",
        status=answer.status,
        headers=dict(answer.headers),
    )
