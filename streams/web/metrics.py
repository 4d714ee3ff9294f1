"""What every process's ``/metrics`` shares: a registry that also carries the process and
Python collectors, and the Prometheus answer (behind a token with
``STREAMS_METRICS_REQUIRE_TOKEN``)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from streams.settings import Settings
from streams.web.auth import authorize


def process_registry() -> CollectorRegistry:
    """A registry of one component with process_*, python_info and python_gc_* in it: each
    component keeps its own registry (tests run several per process), so none uses the
    global one that carries them by default."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return bytes(generate_latest(registry))


def prometheus_response(body: bytes) -> web.Response:
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def guarded_metrics(
    request: web.Request, settings: Settings, render_metrics: Callable[[], bytes]
) -> web.Response:
    """A worker's or connector's ``/metrics``: open unless ``metrics_require_token``."""
    if settings.metrics_require_token:
        authorize(request, settings)
    return prometheus_response(render_metrics())
