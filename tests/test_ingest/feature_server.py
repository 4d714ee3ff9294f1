"""One ingestion feature alone on a real port, as the feature's own tests serve it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from streams.ingest.http.app import RUNNER_OPTIONS, create_app
from streams.ingest.http.feature import FeatureContext, FeatureFactory
from tests.app_thread import AppThread


@contextmanager
def running_feature(
    build: FeatureFactory, section: Mapping[str, Any], context: FeatureContext, name: str
) -> Iterator[str]:
    """``build(section, context)`` alone in the service's application (its middleware, body
    bounds, /health), served by an :class:`AppThread` called ``name``; yields its base URL,
    closes the context's producer afterwards."""
    feature = build(section, context)
    app = create_app(context.settings, [feature], producer=context.producer)
    server = AppThread(app, name, **RUNNER_OPTIONS).start()
    try:
        yield server.url
    finally:
        server.stop()
        context.producer.close()
