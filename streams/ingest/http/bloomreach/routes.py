"""The Bloomreach feature: ``/track/v2/projects/{project_token}/`` ``batch``, ``customers``,
``customers/events`` and ``system/time``, as Bloomreach Engagement answers them; and its read
routes ``GET /api/customers/{id}`` and ``POST /data/v2/projects/{project_token}/customers/
export-one``, asked of the worker that owns the customer (found as the workers find it, asked
with the first of ``STREAMS_API_TOKENS``) and translated by :mod:`streams.web.bloomreach`.

As on ``/track/batch``, the answer waits for Kafka's acknowledgement of every record (change
events to the input topic, customer events to ``customer_events_topic``); any record Kafka did
not acknowledge makes the whole request a 503 with ``Retry-After``: retrying it is safe, the
merge absorbs duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from streams.codecs.events import EventDecoder
from streams.errors import ConfigError
from streams.ingest.http.app import METRICS_KEY
from streams.ingest.http.bloomreach.answers import BloomreachError, shaped
from streams.ingest.http.bloomreach.auth import BloomreachAuth, Caller
from streams.ingest.http.bloomreach.commands import (
    CUSTOMER_EVENTS,
    CommandRules,
    Commands,
    batch_commands,
    load_object,
    run_commands,
)
from streams.ingest.http.bloomreach.config import BloomreachSection
from streams.ingest.http.bloomreach.openapi import bloomreach_components, bloomreach_paths
from streams.ingest.http.body import read_body
from streams.ingest.http.feature import Feature, FeatureContext
from streams.ingest.http.responses import JSON, json_response
from streams.ingest.producer import IngestProducer, Record
from streams.ingest.track import CUSTOMERS, TrackOptions
from streams.validation import validation_problems
from streams.web.answer import ProfileAnswer
from streams.web.bloomreach import (
    API_CUSTOMER_ROUTE,
    EXPORT_ONE,
    ReadRequestError,
    customer_document,
    export_one_customer,
    export_one_document,
)
from streams.web.owners import OwnerClient
from streams.web.routing import OwnerDirectory

logger = logging.getLogger(__name__)

NAME = "bloomreach"
PREFIX = "/track/v2/projects/{project_token}"


class BloomreachHandler:
    def __init__(self, section: BloomreachSection, context: FeatureContext) -> None:
        self._section = section
        self._auth = BloomreachAuth(section.keys)
        self._producer = context.producer
        settings = context.settings
        self._settings = settings
        self._owners: tuple[OwnerClient, OwnerDirectory] | None = None  # made on the first read
        self._events_topic = settings.customer_events_topic or None
        self._decoder = EventDecoder.from_settings(settings)
        self._options = TrackOptions(tuple(section.id_kinds), section.max_commands)
        self._max_event_bytes = settings.max_event_bytes
        self._max_skew_ms = round(settings.max_clock_skew_seconds * 1000)

    async def batch(self, request: web.Request) -> web.Response:
        caller, body = await self._read(request)
        try:
            commands = batch_commands(load_object(body), self._section.max_commands)
        except BloomreachError as exc:  # counted as /track/batch counts its refused bodies
            request.app[METRICS_KEY].rejected.labels(NAME, exc.reason).inc()
            raise
        start = time.time()
        done = await self._run(request, caller, commands)
        answer: dict[str, Any] = {"success": True, "results": done.results}
        answer.update(start_time=start, end_time=time.time())
        return json_response(answer)

    async def customers(self, request: web.Request) -> web.Response:
        caller, body = await self._read(request)
        command = {"name": CUSTOMERS, "data": load_object(body)}
        return _single(await self._run(request, caller, [command]))

    async def customer_events(self, request: web.Request) -> web.Response:
        caller, body = await self._read(request)
        command = {"name": CUSTOMER_EVENTS, "data": load_object(body)}
        return _single(await self._run(request, caller, [command]))

    async def system_time(self, request: web.Request) -> web.Response:
        self._auth.caller(request, request.match_info["project_token"])
        return json_response({"success": True, "time": time.time()})

    async def get_customer(self, request: web.Request) -> web.Response:
        key_id = self._auth.reader(request, None)
        customer_id = request.match_info["customer_id"]
        answer = await self._ask_owner(
            key_id, customer_id, request.query.get("include_timestamps") == "1"
        )
        return customer_document(answer).response()

    async def export_one(self, request: web.Request) -> web.Response:
        key_id = self._auth.reader(request, request.match_info["project_token"])
        try:
            kind, customer_id = export_one_customer(await _body(request), self._section.id_kinds)
        except ReadRequestError as exc:
            raise BloomreachError(400, exc.reason, exc.detail or exc.reason) from exc
        answer = await self._ask_owner(key_id, customer_id, False)
        return export_one_document(answer, kind, customer_id).response()

    async def _ask_owner(self, key_id: str, customer_id: str, with_ts: bool) -> ProfileAnswer:
        if self._owners is None:
            directory = OwnerDirectory(self._settings)
            self._owners = OwnerClient(self._settings, directory), directory
        tokens = self._settings.api_tokens
        token = tokens[0].get_secret_value() if tokens else None
        answer = await self._owners[0].ask_owner(customer_id, with_ts, token)
        if answer.status == 401:  # the service's token, not the caller's key: not theirs to fix
            logger.warning("bloomreach read refused by the owner key=%s", key_id)
            raise BloomreachError(
                502,
                "owner_refused",
                "the owning worker refused this service's token: streams serve needs one of "
                "the workers' STREAMS_API_TOKENS",
            )
        return answer

    async def close(self, app: web.Application) -> None:
        if self._owners is not None:
            client, directory = self._owners
            await client.close()
            directory.close()

    async def _read(self, request: web.Request) -> tuple[Caller, bytes]:
        caller = self._auth.caller(request, request.match_info["project_token"])
        return caller, await _body(request)

    async def _run(self, request: web.Request, caller: Caller, commands: list[Any]) -> Commands:
        """Run ``commands``; return once Kafka acknowledged every record (else a 503)."""
        rules = CommandRules(
            self._decoder,
            self._options,
            caller.binding,
            events=self._events_topic is not None,
            max_event_bytes=self._max_event_bytes,
            max_clock_skew_ms=self._max_skew_ms,
        )
        done = run_commands(commands, rules, time.time_ns() // 1_000_000)
        metrics = request.app[METRICS_KEY]
        for reason, count in done.rejected_reasons.items():
            metrics.rejected.labels(NAME, reason).inc(count)
        if done.rejected:
            logger.info(
                "bloomreach commands rejected key=%s count=%d reasons=%s",
                caller.key_id,
                done.rejected,
                ",".join(sorted(done.rejected_reasons)),
            )
        retry_after = self._section.retry_after_seconds
        failures = await asyncio.gather(
            _deliver(self._producer, done.changes, None, retry_after),
            _deliver(self._producer, done.events, self._events_topic, retry_after),
            return_exceptions=True,  # both sends are awaited to their end, whatever the first gave
        )
        for failure in failures:
            if failure is not None:
                raise failure
        metrics.accepted.labels(NAME).inc(done.accepted)
        return done


async def _body(request: web.Request) -> bytes:
    if request.content_type != JSON:
        raise BloomreachError(415, "unsupported_media_type", f"Content-Type must be {JSON}")
    return await read_body(request, request.client_max_size)


def _single(done: Commands) -> web.Response:
    """A single-command route: Bloomreach answers its failure as a 400."""
    [result] = done.results
    return json_response(result, 200 if result["success"] else 400)


async def _deliver(
    producer: IngestProducer, records: Sequence[Record], topic: str | None, retry_after: int
) -> None:
    """Return once Kafka acknowledged every record; raise the 503 to answer otherwise."""
    failed = await producer.acknowledged(
        records, retry_after=retry_after, topic=topic, what="bloomreach"
    )
    if failed is not None:
        headers = {"Retry-After": str(failed.retry_after)}
        raise BloomreachError(503, "broker_unavailable", failed.detail, headers)


def build_feature(section: Mapping[str, Any], context: FeatureContext) -> Feature:
    """The Bloomreach feature from its ``[bloomreach]`` table (see :class:`BloomreachSection`)."""
    try:
        options = BloomreachSection.model_validate(dict(section))
    except ValidationError as exc:
        raise ConfigError(f"[{NAME}] {validation_problems(exc)}") from exc
    handler = BloomreachHandler(options, context)
    return Feature(
        name=NAME,
        routes=[
            web.post(f"{PREFIX}/batch", shaped(handler.batch)),
            web.post(f"{PREFIX}/customers", shaped(handler.customers)),
            web.post(f"{PREFIX}/customers/events", shaped(handler.customer_events)),
            web.get(f"{PREFIX}/system/time", shaped(handler.system_time), allow_head=False),
            web.get(API_CUSTOMER_ROUTE, shaped(handler.get_customer), allow_head=False),
            web.post(EXPORT_ONE, shaped(handler.export_one)),
        ],
        openapi_paths=bloomreach_paths(PREFIX, options.max_commands),
        openapi_components=bloomreach_components(options.id_kinds),
        on_cleanup=[handler.close],
    )
