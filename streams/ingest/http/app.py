"""The ingestion service's aiohttp application: features plus /openapi.json, /health, /metrics.

Every error leaves as the one JSON error body (:mod:`streams.ingest.http.responses`), aiohttp's
own 404/405 too. Bodies are read through :mod:`streams.ingest.http.body` (size, time and
in-flight bounds); an answer given while the request's body is still unread closes the
connection, so a refused upload is never read into memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Histogram

from streams.ingest.http.body import (
    BODY_READER_KEY,
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_MAX_IN_FLIGHT_BYTES,
    BodyReader,
)
from streams.ingest.http.feature import Feature
from streams.ingest.http.openapi import compose_document, error_response
from streams.ingest.http.responses import error, json_response
from streams.ingest.producer import IngestProducer
from streams.settings import Settings
from streams.web.metrics import process_registry, prometheus_response, render

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
HEALTH_RETRY_AFTER_SECONDS = 5
# After an answer to an unread body, aiohttp discards what still arrives for this long (so the
# client can read the answer before the close) instead of its default 10 s.
LINGER_SECONDS = 2.0
RUNNER_OPTIONS: dict[str, Any] = {"lingering_time": LINGER_SECONDS}
_REASONS = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}
_PASSED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
# Anything else a client sends as a method is one label value, not a new series per word.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class IngestMetrics:
    """Prometheus metrics of one application (its own registry: apps in tests do not mix)."""

    def __init__(self) -> None:
        self.registry = process_registry()
        self.requests = Counter(
            "streams_ingest_http_requests",
            "HTTP requests by route template and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "streams_http_request_seconds",
            "Time to answer a request, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "streams_ingest_commands_accepted",
            "Commands accepted (their records acknowledged by Kafka), by feature.",
            ["feature"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "streams_ingest_commands_rejected",
            "Commands rejected, by feature and reason.",
            ["feature", "reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return render(self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        method = method if method in _METHODS else "OTHER"
        self.latency.labels(route, method, str(status)).observe(seconds)


METRICS_KEY = web.AppKey("ingest_metrics", IngestMetrics)
PRODUCER_KEY = web.AppKey("ingest_producer", IngestProducer)
OPENAPI_KEY = web.AppKey("openapi_document", bytes)


def create_app(
    settings: Settings,
    features: Sequence[Feature],
    *,
    producer: IngestProducer,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    max_in_flight_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES,
) -> web.Application:
    """The service with ``features`` installed; the producer is started and closed by the
    caller (it outlives the application's shutdown, which waits for in-flight requests)."""
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_errors_and_metrics])
    app[BODY_READER_KEY] = BodyReader(body_timeout_s, max_in_flight_bytes)
    app[METRICS_KEY] = IngestMetrics()
    app[PRODUCER_KEY] = producer
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    for feature in features:
        feature.install(app)
    app[OPENAPI_KEY] = orjson.dumps(compose_document(features, CORE_PATHS))
    logger.info(
        "ingest app features=%s topic=%s max_body_bytes=%d",
        ",".join(feature.name for feature in features) or "-",
        settings.input_topic,
        max_body_bytes,
    )
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    # The route template, never the path: ids in paths must not become label values.
    route = request.match_info.route.resource
    label = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc if exc.content_type == "application/json" else _as_json(request, exc)
        _finish(request, response, label, started)
        if response is exc:
            raise
        return response
    finally:
        request.app[BODY_READER_KEY].release(request)
    _finish(request, response, label, started)
    return response


def _finish(request: web.Request, response: web.StreamResponse, label: str, started: float) -> None:
    if not request.content.is_eof():
        # Answered before the body was read (401, 408, 413, 503): the connection closes
        # after at most LINGER_SECONDS of discarding, so a refused upload costs no memory.
        response.force_close()
    seconds = time.perf_counter() - started
    request.app[METRICS_KEY].observe(label, request.method, response.status, seconds)


def _as_json(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 413:
        detail = f"the request body exceeds {request.client_max_size} bytes"
    else:
        detail = exc.reason
    headers = {name: exc.headers[name] for name in _PASSED_HEADERS if name in exc.headers}
    return error(exc.status, _REASONS.get(exc.status, "http_error"), detail, headers)


async def _health(request: web.Request) -> web.Response:
    if request.app[PRODUCER_KEY].brokers_down:
        return json_response(
            {"status": "degraded", "kafka": "unreachable"},
            503,
            {"Retry-After": str(HEALTH_RETRY_AFTER_SECONDS)},
        )
    return json_response({"status": "ok", "kafka": "reachable"})


async def _metrics(request: web.Request) -> web.Response:
    return prometheus_response(request.app[METRICS_KEY].render())


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_KEY], content_type="application/json")


HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "kafka"],
    "properties": {
        "status": {"enum": ["ok", "degraded"]},
        "kafka": {"enum": ["reachable", "unreachable"]},
    },
}
CORE_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "summary": "Whether the service's Kafka producer reaches the broker",
            "operationId": "health",
            "responses": {
                "200": {
                    "description": "The producer reaches Kafka.",
                    "content": {"application/json": {"schema": HEALTH_SCHEMA}},
                },
                "503": {
                    "description": "librdkafka reports every broker down.",
                    "headers": error_response("", retry_after=True)["headers"],
                    "content": {"application/json": {"schema": HEALTH_SCHEMA}},
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (requests, latency, accepted and rejected commands)",
            "operationId": "metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document of the service.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}
