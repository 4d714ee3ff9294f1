"""A feature of the ingestion service: its routes, its part of the OpenAPI document, hooks.

``streams serve`` composes the service from features (tracking, webhooks, jobs), so each lives
in its own module and is tested on its own aiohttp application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from streams.ingest.producer import IngestProducer
from streams.settings import Settings

Hook = Callable[[web.Application], Awaitable[None]]


@dataclass(frozen=True)
class Feature:
    """``openapi_paths``: OpenAPI 3.1 path items; ``openapi_components``: merged into
    ``components`` (``schemas``, ``securitySchemes``, ...) by section."""

    name: str
    routes: Sequence[web.AbstractRouteDef]
    openapi_paths: Mapping[str, Any]
    openapi_components: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    on_startup: Sequence[Hook] = ()
    on_cleanup: Sequence[Hook] = ()

    def install(self, app: web.Application) -> None:
        app.router.add_routes(self.routes)
        app.on_startup.extend(self.on_startup)
        app.on_cleanup.extend(self.on_cleanup)


@dataclass(frozen=True)
class FeatureContext:
    """What a feature factory may use: the settings and the service's one producer."""

    settings: Settings
    producer: IngestProducer


class FeatureFactory(Protocol):
    """``build_feature(section, context)``: ``section`` is the feature's table of the service's
    TOML file, ``${ENV}`` already expanded; raise :class:`streams.errors.ConfigError` on bad
    configuration."""

    def __call__(self, section: Mapping[str, Any], context: FeatureContext) -> Feature: ...
