"""``GET /customers/{id}`` as a Faust web view: the caller's token is checked, Faust's
``table_route`` forwards the request to the worker whose table holds the customer's
partition, and that one answers from its store what the default engine answers
(:func:`streams.web.answer.stored_profile_answer`)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import ClientError

from streams.faust.store import TableStates
from streams.kafka.partitioner import partition_for
from streams.optional import requires
from streams.settings import Settings
from streams.web.answer import ProfileAnswer, stored_profile_answer, unavailable
from streams.web.auth import authorize

with requires("faust", "the Faust engine"):
    from faust.web.exceptions import ServiceUnavailable

logger = logging.getLogger(__name__)

CUSTOMER_ROUTE = "/customers/{customer_id}"


def add_views(app: Any, table: Any, settings: Settings) -> None:
    """Add the query route to ``app``'s web server."""
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
