"""A connector's HTTP endpoints: GET /health, /metrics, /status and the status page at /.

``/health`` answers 200 while the connector runs (assigned, its sink taking batches) and 503
with the reason otherwise: starting, retrying after a sink failure, stopping, failed.
``/status`` is the JSON every worker and connector serves (totals, dead letters by reason,
per-partition position, end and lag; :mod:`streams.web.status`). ``/metrics`` and ``/status``
need a token only with ``STREAMS_METRICS_REQUIRE_TOKEN``, as a worker's; nothing here serves
personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from streams.connect.status import ConnectorStatus
from streams.settings import Settings
from streams.web.answer import json_answer
from streams.web.auth import authorize
from streams.web.metrics import guarded_metrics
from streams.web.status_page import status_page


class ConnectorView(Protocol):
    """What the endpoints ask of the connector served."""

    @property
    def url(self) -> str: ...

    def status(self) -> ConnectorStatus | None:
        """None before the worker exists."""

    def status_document(self) -> Mapping[str, object]:
        """The JSON of ``GET /status``."""

    def render_metrics(self) -> bytes: ...


class ConnectorApi:
    def __init__(self, settings: Settings, connector: ConnectorView) -> None:
        self._settings = settings
        self._connector = connector

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/status", self.status)
        app.router.add_get("/", status_page)
        return app

    async def health(self, request: web.Request) -> web.Response:
        status = self._connector.status()
        body: dict[str, object]
        if status is not None and status.state == "running":
            body = {"status": "ok", "connector": status.name, "url": self._connector.url}
            body["partitions"] = [p.partition for p in status.partitions]
            return json_answer(body).response()
        body = {"status": "unavailable", "url": self._connector.url, "reason": "starting"}
        if status is not None:
            body.update(connector=status.name, state=status.state, reason=status.state)
            if status.error is not None:
                body.update(reason="failed", error=status.error)
        return json_answer(body, 503).response()

    async def metrics(self, request: web.Request) -> web.Response:
        return guarded_metrics(request, self._settings, self._connector.render_metrics)

    async def status(self, request: web.Request) -> web.Response:
        if self._settings.metrics_require_token:
            authorize(request, self._settings)
        return json_answer(self._connector.status_document()).response()
