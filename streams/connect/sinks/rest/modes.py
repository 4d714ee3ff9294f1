"""How a REST sink talks to its destination: the shared parts, upsert and create_or_update."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

from streams.connect.errors import RetryableSinkError, SinkConfigError
from streams.connect.sinks.rest.mapping import Mapper
from streams.connect.sinks.rest.options import RestSinkOptions
from streams.connect.sinks.rest.rejections import ErrorItem, error_items
from streams.connect.sinks.rest.state import CustomerPlan
from streams.field_types import JsonScalar
from streams.httpclient.transport import REJECT_STATUSES, Transport
from streams.optional import requires

with requires("httpx", "the REST sink"):
    import httpx

logger = logging.getLogger(__name__)

GONE = frozenset({404, 410})


@dataclass(slots=True)
class Job:
    """One customer's work: delete the contact first (``delete``), then send ``body``."""

    plan: CustomerPlan
    body: dict[str, JsonScalar] | None
    delete: bool


class Outcome(NamedTuple):
    job: Job
    error: ErrorItem | None  # None: the destination accepted everything


Delivery = tuple[list[Outcome], list[BaseException]]


def json_body(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise SinkConfigError(f"{what}: HTTP {response.status_code} without a JSON body") from exc


def rejection(response: httpx.Response) -> ErrorItem:
    """One customer's 400/422 as a single error (several field errors joined)."""
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"code": f"http_{response.status_code}"}}
    items = error_items(body, response.status_code)
    detail = "; ".join(item.detail for item in items if item.detail)
    return ErrorItem(None, items[0].reason, detail)


class Mode(ABC):
    def __init__(self, options: RestSinkOptions, mapper: Mapper) -> None:
        self.options = options
        self.mapper = mapper

    @abstractmethod
    async def deliver(self, jobs: Sequence[Job], transport: Transport) -> Delivery:
        """Outcomes of the customers that finished, and the failures of the others."""

    def _path(self, template: str, customer_id: str, contact_id: str = "") -> str:
        return template.format(
            id=quote(customer_id, safe=""), contact_id=quote(contact_id, safe="")
        )

    async def _delete(self, transport: Transport, path: str) -> ErrorItem | None:
        response = await transport.request(
            self.options.delete.method, path, ok_statuses=REJECT_STATUSES | GONE
        )
        return rejection(response) if response.status_code in REJECT_STATUSES else None


class _PerContact(Mode):
    async def deliver(self, jobs: Sequence[Job], transport: Transport) -> Delivery:
        results = await asyncio.gather(
            *(self.one(job, transport) for job in jobs), return_exceptions=True
        )
        outcomes: list[Outcome] = []
        failures: list[BaseException] = []
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                failures.append(result)
            else:
                outcomes.append(Outcome(job, result))
        return outcomes, failures

    @abstractmethod
    async def one(self, job: Job, transport: Transport) -> ErrorItem | None: ...


class UpsertMode(_PerContact):
    async def one(self, job: Job, transport: Transport) -> ErrorItem | None:
        cid = job.plan.customer_id
        if job.delete:
            error = await self._delete(transport, self._path(self.options.delete_path(), cid))
            if error is not None:
                return error
        if job.body is None:
            return None
        options = self.options.upsert
        path = self._path(options.path, cid)
        response = await transport.request(options.method, path, json=job.body)
        return rejection(response) if response.status_code in REJECT_STATUSES else None


class CreateOrUpdateMode(_PerContact):
    async def one(self, job: Job, transport: Transport) -> ErrorItem | None:
        options = self.options.create_or_update
        cid = job.plan.customer_id
        found = await self._search(job, transport)
        if isinstance(found, ErrorItem):
            return found
        if job.delete and found is not None:
            error = await self._delete(
                transport, self._path(self.options.delete_path(), cid, found)
            )
            if error is not None:
                return error
            found = None
        if job.body is None:
            return None
        if found is None:
            method, path = options.create_method, options.create_path
        else:
            method, path = options.update_method, self._path(options.update_path, cid, found)
        response = await transport.request(
            method, path, json=job.body, ok_statuses=REJECT_STATUSES | GONE
        )
        if response.status_code in GONE:
            raise RetryableSinkError(f"{method} {options.update_path}: contact vanished")
        return rejection(response) if response.status_code in REJECT_STATUSES else None

    def _search_value(self, plan: CustomerPlan) -> tuple[str, str]:
        options = self.options.create_or_update
        if options.search_by == "email":
            # The email the destination has now: the delivered one, else the one being sent.
            for profile in (plan.before, plan.after):
                values = {name: state.value for name, state in profile.properties.items()}
                email = self.mapper.field_value(options.email_field, values)
                if email:
                    return self.options.search_param(), str(email)
            return self.options.id_field, plan.customer_id
        return self.options.search_param(), plan.customer_id

    async def _search(self, job: Job, transport: Transport) -> str | ErrorItem | None:
        options = self.options.create_or_update
        param, value = self._search_value(job.plan)
        response = await transport.request(
            "GET", options.search_path, params={param: value}, ok_statuses=REJECT_STATUSES | GONE
        )
        if response.status_code in GONE:
            return None
        if response.status_code in REJECT_STATUSES:
            return rejection(response)
        body = json_body(response, f"GET {options.search_path}")
        keyed = options.results_key is not None and isinstance(body, dict)
        results = body.get(options.results_key) if keyed else body
        if not isinstance(results, list) or not results:
            return None
        if len(results) > 1:
            logger.warning("search matched %d contacts, updating the first", len(results))
        first = results[0]
        contact_id = first.get(options.contact_id_key) if isinstance(first, dict) else None
        return None if contact_id is None else str(contact_id)
