"""One ingestion feature alone on a real port, as the feature's own tests serve it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from streams.ingest.http.feature import FeatureContext, FeatureFactory
from tests.app_thread import AppThread


@contextmanager
def running_feature(
    build: FeatureFactory, section: Mapping[str, Any], context: FeatureContext, name: str
) -> Iterator[str]:
    """``build(section, context)`` on an application of its own, served by an
    :class:`AppThread` called ``name``; yields its base URL, closes the context's producer
    afterwards."""
    feature = build(section, context)
    app = web.Application()
    feature.install(app)
    server = AppThread(app, name).start()
    try:
        yield server.url
    finally:
        server.stop()
        context.producer.close()
