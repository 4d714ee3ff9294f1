"""``streams serve``: the HTTP ingestion service, composed of features over one producer.

Every feature (tracking too) is built only when its table is in the TOML file, and the other
features' modules are imported only then. Shutdown on SIGINT/SIGTERM: stop listening, let
in-flight requests finish (up to ``shutdown_timeout_seconds``), then flush and close the
producer.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.errors import ConfigError, StreamsError
from streams.ingest.config import load_sections
from streams.ingest.http.access_log import PathOnlyAccessLogger
from streams.ingest.http.app import DEFAULT_MAX_BODY_BYTES, RUNNER_OPTIONS, create_app
from streams.ingest.http.body import DEFAULT_BODY_TIMEOUT_SECONDS, DEFAULT_MAX_IN_FLIGHT_BYTES
from streams.ingest.http.feature import Feature, FeatureContext, FeatureFactory
from streams.ingest.http.track_routes import build_feature as build_tracking
from streams.ingest.producer import DEFAULT_SEND_TIMEOUT_SECONDS, IngestProducer
from streams.kafka.topics import verify_topics
from streams.logs import configure_logging
from streams.optional import driver_of, missing_driver
from streams.settings import Settings
from streams.validation import validation_problems

logger = logging.getLogger(__name__)

SERVER_SECTION = "server"
TRACKING_SECTION = "tracking"
FEATURE_FACTORIES: dict[str, str] = {
    "webhooks": "streams.ingest.webhooks.routes:build_feature",
    "jobs": "streams.ingest.http.jobs:build_feature",
    "bloomreach": "streams.ingest.http.bloomreach.routes:build_feature",
}
PRODUCER_CLIENT_ID = "profile-streams-serve"


class ServerOptions(BaseModel):
    """The ``[server]`` table; ``--host``/``--port`` override it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    body_timeout_seconds: float = Field(default=DEFAULT_BODY_TIMEOUT_SECONDS, gt=0)
    max_in_flight_bytes: int = Field(default=DEFAULT_MAX_IN_FLIGHT_BYTES, ge=1024)
    send_timeout_seconds: float = Field(default=DEFAULT_SEND_TIMEOUT_SECONDS, gt=0)
    shutdown_timeout_seconds: float = Field(default=30.0, ge=0)
    close_timeout_seconds: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _one_body_fits(self) -> ServerOptions:
        if self.max_in_flight_bytes < self.max_body_bytes:
            raise ValueError("max_in_flight_bytes must be at least max_body_bytes")
        return self


def server_options(sections: Mapping[str, Any], **overrides: Any) -> ServerOptions:
    values = {**dict(sections.get(SERVER_SECTION, {})), **overrides}
    try:
        return ServerOptions.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"[{SERVER_SECTION}] {validation_problems(exc)}") from exc


def load_factory(name: str, factories: Mapping[str, str] = FEATURE_FACTORIES) -> FeatureFactory:
    """Import ``module:function`` of the feature ``name``; ConfigError if it is not there."""
    target = factories.get(name)
    if target is None:
        raise ConfigError(f"unknown feature [{name}]; known: {', '.join(sorted(factories))}")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (driver := driver_of(exc)) is not None:
            raise missing_driver(driver, f"feature [{name}]", exc) from exc
        raise ConfigError(
            f"feature [{name}] is configured but its module {module_name} is not installed: {exc}"
        ) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"feature [{name}]: {target} is not a factory function")
    return cast(FeatureFactory, factory)


def build_features(
    sections: Mapping[str, Any],
    context: FeatureContext,
    factories: Mapping[str, str] = FEATURE_FACTORIES,
) -> list[Feature]:
    """Tracking if configured, then every configured feature of ``factories`` in the file's
    order; a feature needs only its own table, and a file that configures none is an error."""
    features = []
    if TRACKING_SECTION in sections:
        features.append(build_tracking(sections[TRACKING_SECTION], context))
    for name, section in sections.items():
        if name in (SERVER_SECTION, TRACKING_SECTION):
            continue
        if name not in factories:
            logger.warning("ignoring section [%s]: no feature of streams serve uses it", name)
            continue
        if not isinstance(section, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        features.append(load_factory(name, factories)(section, context))
    if not features:
        known = ", ".join(f"[{name}]" for name in (TRACKING_SECTION, *factories))
        raise ConfigError(f"nothing to serve: configure at least one of {known}")
    return features


def build_app(
    settings: Settings,
    sections: Mapping[str, Any],
    producer: IngestProducer,
    options: ServerOptions | None = None,
) -> web.Application:
    """The whole service's application over a producer the caller starts and closes."""
    options = options or server_options(sections)
    features = build_features(sections, FeatureContext(settings, producer))
    return create_app(
        settings,
        features,
        producer=producer,
        max_body_bytes=options.max_body_bytes,
        body_timeout_s=options.body_timeout_seconds,
        max_in_flight_bytes=options.max_in_flight_bytes,
    )


async def serve(
    settings: Settings, sections: Mapping[str, Any], options: ServerOptions, stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set, then shut down gracefully."""
    producer = IngestProducer(
        settings, client_id=PRODUCER_CLIENT_ID, send_timeout=options.send_timeout_seconds
    )
    try:
        app = build_app(settings, sections, producer, options)
        producer.start()
        runner = web.AppRunner(
            app,
            handle_signals=False,
            shutdown_timeout=options.shutdown_timeout_seconds,
            access_log_class=PathOnlyAccessLogger,
            **RUNNER_OPTIONS,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, options.host, options.port)
            try:
                await site.start()
            except OSError as exc:  # the port is taken, the interface does not exist
                raise StreamsError(
                    f"cannot listen on {options.host}:{options.port}: {exc}"
                ) from exc
            for address in runner.addresses:
                host, port = address[0], address[1]
                logger.info("ingest service listening on http://%s:%d", host, port)
            await stop.wait()
            logger.info("stopping: no new connections, finishing in-flight requests")
        finally:
            await runner.cleanup()
    finally:
        undelivered = producer.close(options.close_timeout_seconds)
        if undelivered:
            logger.warning("producer closed with %d records undelivered", undelivered)
        logger.info("ingest service stopped")


def run_serve(
    settings: Settings,
    config_path: Path | None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean shutdown."""
    configure_logging(settings.log_level, log_format=settings.log_format)
    sections = load_sections(config_path)
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    options = server_options(sections, **overrides)
    # A producer writing first would let the broker auto-create the topic mis-partitioned.
    verify_topics(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, sections, options, stop)

    asyncio.run(main())
    return 0
